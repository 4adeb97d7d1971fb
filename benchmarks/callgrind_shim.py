"""The two callgrind client requests the callgrind benchmarks need, as a shared library loaded with ``ctypes``.

``cg_zero()`` zeroes the counters and ``cg_dump(label)`` dumps them under ``label`` (with ``--separate-threads=yes``
the dump holds only the calling thread's counts). Compiled with ``cc`` against ``valgrind/callgrind.h``.
"""

from __future__ import annotations

import subprocess
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
