"""Whole-process dump CPU: ours against freestyle-hid on the same recorded session.

Each size is one session recorded once (``dump --device sim:libre?days=D --record``: the
virtual Libre reader holding D days, about 96 history records a day). Then, as separate
processes, interleaved round by round:

* ours: ``libre-dump dump --device replay:SESSION -o out.json`` (start-up, the replay
  player, the protocol, typed records, time placement, the ``json`` format);
* freestyle-hid: ``python -m bench.baseline_freestyle_hid SESSION out.json`` (start-up, the
  same transcript served to freestyle-hid's Session, the same commands, rows written with
  ``json.dump``).

The number is each process's own CPU time (user + system, from ``wait4``), best round. Both
outputs are checked: the same history lines must come out of both. At the smallest size a
third process, ``python -c "import click, msgspec"``, shows the floor under any dump of
ours (its row is not judged).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..core import Context, Process, Row, case, have_freestyle_hid, run_ours, run_python


def ours(session: Path, out: Path, fmt: str = "json") -> Process:
    done = run_ours(["dump", "--device", f"replay:{session}", "-f", fmt, "-o", str(out), "-q"])
    if done.returncode != 0:
        raise RuntimeError(f"our dump failed: {done.stderr.strip()}")
    return done


def floor() -> Process:
    """The least a dump of ours can cost: the interpreter with the command line's library
    (click) and the record types' and writers' library (msgspec) imported, nothing else."""
    done = run_python(["-c", "import click, msgspec"])
    if done.returncode != 0:
        raise RuntimeError(f"importing click and msgspec failed: {done.stderr.strip()}")
    return done


def theirs(session: Path, out: Path) -> Process:
    done = run_python(["-m", "bench.baseline_freestyle_hid", str(session), str(out)])
    if done.returncode != 0:
        raise RuntimeError(f"the freestyle-hid baseline failed: {done.stderr.strip()[-500:]}")
    return done


def _same_history(mine: Path, baseline: Path) -> int:
    doc = json.loads(mine.read_text(encoding="utf-8"))
    rows = json.loads(baseline.read_text(encoding="utf-8"))["records"]["$history?"]
    ids = sorted(record["record_id"] for record in doc["records"]["history"])
    if ids != sorted(int(row[0]) for row in rows):
        raise RuntimeError("our history records and freestyle-hid's rows differ")
    return sum(doc["counts"].values())


@case("dump-cpu")
def dump_cpu(ctx: Context) -> Iterator[Row]:
    if not have_freestyle_hid():
        raise RuntimeError("needs freestyle-hid, the baseline: pip install -e '.[bench]'")
    for size in ctx.sizes:
        session, _ = ctx.transcript(size)
        mine, baseline = ctx.workdir / "ours.json", ctx.workdir / "theirs.json"
        rounds = ctx.rounds if size <= 12572 else max(1, ctx.rounds // 2)
        best_ours = best_theirs = best_floor = float("inf")
        smallest = size == min(ctx.sizes)
        for _ in range(rounds):
            best_ours = min(best_ours, ours(session, mine).cpu)
            best_theirs = min(best_theirs, theirs(session, baseline).cpu)
            if smallest:
                best_floor = min(best_floor, floor().cpu)
        records = _same_history(mine, baseline)
        target = 0.2 if size == 8640 else 1.0
        yield Row("dump CPU (replay) vs freestyle-hid", f"{size:,}", best_ours * 1000,
                  best_theirs * 1000, "ms CPU", target=target, note=f"{records} records")
        if smallest:
            yield Row("dump CPU floor: Python with click and msgspec imported, vs "
                      "freestyle-hid's whole dump", f"{size:,}", best_floor * 1000,
                      best_theirs * 1000, "ms CPU",
                      note="any process of ours costs this before it reads a report")
