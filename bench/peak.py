"""``python -m bench.peak MODULE ARGS...``: run ``python -m MODULE ARGS`` and, at exit, write
the process's peak resident memory (VmHWM, KiB) to the file named by $LIBRE_BENCH_PEAK.

The parent cannot take it from ``wait4``: on Linux a child's ``ru_maxrss`` starts at the
peak of the process it was forked from (the bench itself, holding hundreds of MiB), while
VmHWM belongs to the memory the program has after ``exec``."""

from __future__ import annotations

import atexit
import os
import runpy
import sys


def _write_peak() -> None:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(os.environ["LIBRE_BENCH_PEAK"], "w", encoding="ascii") as out:
                    out.write(line.split()[1])
                return


if __name__ == "__main__":
    atexit.register(_write_peak)
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
