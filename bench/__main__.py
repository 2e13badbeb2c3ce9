"""``python -m bench``: run every benchmark case, print one table, write bench/results.json.

Exit status 0 when every judged row meets its target, 1 when one misses it, 2 when a case
could not run (e.g. freestyle-hid, the baseline, is not installed: ``pip install -e
'.[bench]'``).

Options: ``--only NAME`` (repeatable) runs the named cases; ``--quick`` runs the smallest
sizes and fewer rounds (a smoke test, not numbers to quote); ``--rounds N``;
``--json PATH`` writes the results elsewhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import pkgutil
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import cases as cases_package
from .core import CASES, SIZES, Context, Row, compile_sources

RESULTS = Path(__file__).resolve().parent / "results.json"


def load_cases() -> None:
    for module in pkgutil.iter_modules(cases_package.__path__):
        importlib.import_module(f"{cases_package.__name__}.{module.name}")


def _fmt(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    head = ("case", "size", "ours", "baseline", "unit", "ratio", "target", "")
    body = []
    for row in rows:
        verdict = {True: "ok", False: "MISSED", None: ""}[row.passed]
        body.append((row.case, row.size, _fmt(row.ours), _fmt(row.baseline), row.unit,
                     _fmt(row.ratio), "" if row.target is None else f"<= {row.target:g}",
                     verdict))
    widths = [max(len(str(line[i])) for line in (head, *body)) for i in range(len(head))]
    lines = []
    for number, line in enumerate((head, *body)):
        cells = [str(cell).ljust(widths[i]) if i in (0, 1, 4, 7) else str(cell).rjust(widths[i])
                 for i, cell in enumerate(line)]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", type=Path, default=RESULTS, metavar="PATH")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()

    load_cases()
    if args.list:
        for name, _ in CASES:
            print(name)
        return 0
    unknown = set(args.only) - {name for name, _ in CASES}
    if unknown:
        parser.error(f"no such case: {', '.join(sorted(unknown))}")
    sizes = SIZES[:2] if args.quick else SIZES
    rounds = args.rounds or (2 if args.quick else 5)
    rows: list[Row] = []
    failed: list[str] = []
    started = time.monotonic()
    compile_sources()
    with tempfile.TemporaryDirectory(prefix="libre-bench-") as work:
        ctx = Context(sizes=sizes, rounds=rounds, workdir=Path(work), quick=args.quick)
        for name, func in CASES:
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                for row in func(ctx):
                    rows.append(row)
                    print(f"  {row.size}: ours {_fmt(row.ours)} / baseline "
                          f"{_fmt(row.baseline)} {row.unit} = {_fmt(row.ratio)}",
                          file=sys.stderr, flush=True)
            except Exception:
                failed.append(name)
                traceback.print_exc()
    print(table(rows))
    missed = [row for row in rows if row.passed is False]
    summary = (f"{len(rows)} rows, {sum(r.passed is True for r in rows)} met their target, "
               f"{len(missed)} missed" + (f", cases that failed to run: {', '.join(failed)}"
                                          if failed else "")
               + f" ({time.monotonic() - started:.0f} s)")
    print(summary)
    args.json.write_text(json.dumps({
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}",
        "quick": args.quick,
        "rows": [{"case": r.case, "size": r.size, "ours": r.ours, "baseline": r.baseline,
                  "unit": r.unit, "ratio": r.ratio if r.baseline else None,
                  "target": r.target, "passed": r.passed, "note": r.note} for r in rows],
        "failed_cases": failed,
    }, indent=1) + "\n", encoding="utf-8")
    if failed:
        return 2
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
