"""``python -m fuzz --seconds N [--target NAME]``: run each fuzz target for N seconds under
atheris and report executions and crashes per target.

Each target runs in its own process (libFuzzer ends the process when its time is up).
The corpus grows in ``fuzz/corpus/<target>/`` (seeded from :func:`fuzz.targets.seeds`);
crashing inputs and their tracebacks land in ``fuzz/crashes/<target>/``. Exit status 1 if
any target crashed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from fuzz.targets import TARGETS, seeds

HERE = Path(__file__).resolve().parent


def run_one(name: str, seconds: int, work: Path) -> tuple[int, int, float]:
    corpus = work / "corpus" / name
    crashes = work / "crashes" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(seeds(name)):
        (corpus / f"seed-{index}").write_bytes(seed)
    before = {p.name for p in crashes.glob("*.bin")} if crashes.exists() else set()
    start = time.monotonic()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "fuzz.run", name, str(seconds), str(corpus), str(crashes)],
        capture_output=True, text=True, env=env, cwd=HERE.parent, check=False,
    )
    elapsed = time.monotonic() - start
    match = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    if match is None:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"fuzz: target {name} did not report its statistics "
                         f"(exit {proc.returncode})")
    after = {p.name for p in crashes.glob("*.bin")} if crashes.exists() else set()
    return int(match.group(1)), len(after - before), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="run only this target (repeatable); default: all")
    parser.add_argument("--work", type=Path, default=HERE,
                        help="where corpus/ and crashes/ go (default: fuzz/)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args()
    if args.list:
        for name in TARGETS:
            print(name)
        return 0
    total_runs = total_crashes = 0
    print(f"{'target':12} {'executions':>12} {'exec/s':>8} {'new crashes':>12}")
    for name in args.target or list(TARGETS):
        runs, crashes, elapsed = run_one(name, args.seconds, args.work)
        total_runs += runs
        total_crashes += crashes
        print(f"{name:12} {runs:12d} {runs / max(elapsed, 1e-9):8.0f} {crashes:12d}", flush=True)
    print(f"{'total':12} {total_runs:12d} {'':8} {total_crashes:12d}")
    if total_crashes:
        print(f"crashing inputs: {args.work / 'crashes'}", file=sys.stderr)
    return 1 if total_crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
