"""What the callgrind benchmarks share: the client-request shim, and reading the head of a callgrind dump.

The shim is a shared library loaded with ``ctypes``: ``cg_zero()`` zeroes the counters and ``cg_dump(label)`` dumps
them under ``label`` (with ``--separate-threads=yes`` the dump holds only the calling thread's counts). Compiled with
``cc`` against ``valgrind/callgrind.h``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SOURCE = """#include <valgrind/callgrind.h>
void cg_dump(const char *s) { CALLGRIND_DUMP_STATS_AT(s); }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
"""


def build(directory: str) -> str:
    """Compile the shim into ``directory``; returns the library's path."""
    source = Path(directory) / "shim.c"
    source.write_text(_SOURCE)
    library = str(Path(directory) / "libshim.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", library, str(source)], check=True)
    return library


@dataclass(frozen=True)
class Dump:
    """One callgrind output file: its client-request label (None for the dump at exit), thread and total."""

    label: str | None
    thread: int | None
    instructions: int


def read_dump(path: str) -> Dump | None:
    """The head of the callgrind output file at ``path``; None when it holds no total (an empty part)."""
    head = Path(path).read_text(errors="replace")[:20000]
    total = re.search(r"^(?:summary|totals): (\d+)", head, re.M)
    if total is None:
        return None
    label = re.search(r"Client Request: (\S+)", head)
    thread = re.search(r"^thread: (\d+)$", head, re.M)
    return Dump(label.group(1) if label else None, int(thread.group(1)) if thread else None, int(total.group(1)))
