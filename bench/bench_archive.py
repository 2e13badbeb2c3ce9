"""The archive and the report at the scale of years: each command as the user runs it (its
own process, wall time), against a baseline run side by side in the same run.

Setup: the virtual reader's content for 3 years + 2 weeks (one Libre reader, ~125,000
records). The archive holds the first 3 years; the "new" dump is the reader's last 90 days,
so 76 of its days are archived already and 14 are new, as when a user syncs every few weeks.

Cases (best of R rounds, each a fresh process):

* ``sync 90 d -> 3 y archive``: ``libre-dump sync --dump dump.json`` into a copy of the
  3-year archive; baseline: the same sync into an empty archive (so the ratio shows what the
  3 years already archived cost: ideally ~1, merge cost independent of the archive's size).
* ``export 3 y <format>``: ``libre-dump export -f FORMAT`` of the whole archive; baseline:
  ``libre-dump dump -f FORMAT`` of the same records from the saved 3-year dump file (what you
  would run without an archive).
* ``report 3 y html/json``: ``libre-dump report --archive``; baseline: the same report from
  the saved 3-year dump file.
* archive size: bytes per record, and the file per year.

Budget: sync, the json/ndjson export and the report must each finish in under 2 s on this
machine's class (2 cores); the script prints every time and says which missed it.

Run: python3 bench/bench_archive.py [--rounds R] [--years Y]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libre_usb.archive import Archive  # noqa: E402
from libre_usb.devices import MODELS  # noqa: E402
from libre_usb.model import DeviceInfo, Dump  # noqa: E402
from libre_usb.output import export, timeline  # noqa: E402
from libre_usb.output.period import Period  # noqa: E402
from libre_usb.simulator.content import generate  # noqa: E402

BUDGET_S = 2.0
ZONE = "Europe/Berlin"


@dataclasses.dataclass
class Row:
    case: str
    ours: float
    baseline: float | None
    unit: str
    budget: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.ours / self.baseline

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return ""
        return "ok" if self.ours < self.budget else "MISSED"


def run(args: list[str]) -> float:
    """Wall time of ``libre-dump ARGS`` as its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "libre_usb", *args], env=env,
                          capture_output=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"libre-dump {' '.join(args)}: {done.stderr.decode()[-500:]}")
    return wall


def best(rounds: int, func: object) -> float:
    assert callable(func)
    return min(func() for _ in range(rounds))


def make_data(workdir: Path, years: float) -> dict[str, Path]:
    """The 3-year archive, its dump file, and the newest 90-day dump file."""
    days = round(365 * years) + 14
    content = generate(11, days=days)
    device = DeviceInfo(model="libre", product_id=MODELS["libre"].product_ids[0],
                        serial=content.serial, unit=content.unit, clock=content.clock,
                        record_count=content.record_counter)
    full = timeline.place(Dump(device=device, records=tuple(content.records)), ZONE)
    assert full.device.clock is not None
    cut = full.device.clock - dt.timedelta(days=14)
    old = dataclasses.replace(full, records=Period(None, cut).select(full.records))
    new = dataclasses.replace(full, records=Period(
        full.device.clock - dt.timedelta(days=90), None).select(full.records))
    paths = {"archive": workdir / "years.sqlite", "years_dump": workdir / "years.json",
             "new_dump": workdir / "new.json", "empty": workdir / "empty.sqlite"}
    with Archive(paths["archive"], create=True) as archive:
        archive.sync(old, "bench")
    paths["years_dump"].write_text(export.render(old, "json"), encoding="utf-8")
    paths["new_dump"].write_text(export.render(new, "json"), encoding="utf-8")
    return paths


def measure(workdir: Path, rounds: int, years: float) -> list[Row]:
    paths = make_data(workdir, years)
    rows: list[Row] = []
    with Archive(paths["archive"]) as archive:
        stats = archive.stats()
    label = f"{years:g} y"

    def sync_into(source: Path | None) -> float:
        target = workdir / "target.sqlite"
        target.unlink(missing_ok=True)
        if source is not None:
            shutil.copyfile(source, target)
        return run(["sync", "--dump", str(paths["new_dump"]), "--archive", str(target), "-q"])

    rows.append(Row(f"sync 90 d -> {label} archive", best(rounds, lambda: sync_into(
        paths["archive"])), best(rounds, lambda: sync_into(None)), "s", BUDGET_S))
    for fmt, budget in (("ndjson", BUDGET_S), ("json", BUDGET_S), ("csv", None),
                        ("libreview-csv", None), ("nightscout", None)):
        ours = best(rounds, lambda fmt=fmt: run(["export", "--archive", str(paths["archive"]),
                                                 "-f", fmt, "-o", os.devnull]))
        base = best(rounds, lambda fmt=fmt: _convert(paths, fmt))
        rows.append(Row(f"export {label} {fmt}", ours, base, "s", budget))
    for fmt in ("html", "json"):
        ours = best(rounds, lambda fmt=fmt: run(["report", "--archive", str(paths["archive"]),
                                                 "-f", fmt, "-o", os.devnull]))
        base = best(rounds, lambda fmt=fmt: run(["report", "--dump",
                                                 str(paths["years_dump"]), "-f", fmt,
                                                 "-o", os.devnull]))
        rows.append(Row(f"report {label} {fmt}", ours, base, "s", BUDGET_S))
    rows.append(Row("archive bytes per record", stats["bytes_per_record"], None, "B"))
    rows.append(Row(f"archive file, {label}", stats["bytes"] / 1e6, None, "MB"))
    rows.append(Row("records archived", stats["records"], None, ""))
    return rows


def _convert(paths: dict[str, Path], fmt: str) -> float:
    """The same records written as ``fmt`` from the saved dump file, without the archive:
    ``libre-dump export`` has no --dump, so this runs the library in a child process the way
    ``dump`` renders."""
    code = ("import sys; from libre_usb.output import export; "
            "d = export.load_dump(sys.argv[1]); "
            "open(sys.argv[2], 'w').write(export.render(d, sys.argv[3], "
            "unit=export.default_unit(d, sys.argv[3])))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(paths["years_dump"]), os.devnull, fmt],
                   env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def table(rows: list[Row]) -> str:
    lines = [f"{'case':34} {'ours':>10} {'baseline':>10} {'unit':>4} {'ratio':>6} "
             f"{'budget':>7}"]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        base = "" if row.baseline is None else f"{row.baseline:.2f}"
        budget = "" if row.budget is None else f"< {row.budget:g} s {row.verdict}"
        lines.append(f"{row.case:34} {row.ours:10.2f} {base:>10} {row.unit:>4} {ratio:>6} "
                     f"{budget}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--years", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp), args.rounds, args.years)
    print(table(rows))
    return 1 if any(row.verdict == "MISSED" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
