"""Start-up: ``libre-dump --version`` against a bare ``python -c pass``, as processes.

Both are the same interpreter with the same site set-up, so the ratio is what our package
adds to starting Python. CPU time (user + system) of each process, median of interleaved runs:
on a shared machine the wall time of a 30 ms process is mostly other people's work."""

from __future__ import annotations

import statistics
import sys

from ..core import Context, Row, case, python_env, run_process


@case("startup")
def startup(ctx: Context) -> list[Row]:
    runs = 7 if ctx.quick else 21
    ours: list[float] = []
    theirs: list[float] = []
    env = python_env()
    for _ in range(runs):
        done = run_process([sys.executable, "-m", "libre_usb", "--version"], env=env)
        if done.returncode != 0 or "version" not in done.stdout:
            raise RuntimeError(f"--version failed: {done.stderr}")
        ours.append(done.cpu)
        theirs.append(run_process([sys.executable, "-c", "pass"], env=env).cpu)
    return [Row("startup: --version vs python -c pass", "-", statistics.median(ours) * 1000,
                statistics.median(theirs) * 1000, "ms CPU", target=2.0)]
