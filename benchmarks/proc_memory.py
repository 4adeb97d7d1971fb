"""This process's memory, read from /proc (Linux), for the benchmark scripts. Standard library only: ``worker.py``
imports it from the peers' venvs too."""

from __future__ import annotations

import os


def rss_kb() -> int:
    """Resident set size now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def peak_rss_kb() -> int:
    """Peak resident set size (VmHWM). Not ``ru_maxrss``: Linux carries that over from the parent across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
