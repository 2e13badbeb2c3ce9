"""The archive and the AGP report at the scale of years, each command as the user runs it
(its own process), best of R rounds. Times are the child's CPU seconds (user + system): on
this shared 2-core machine the wall time mostly measures the other jobs; the wall time of
the best round is in the note.

Setup: the virtual reader's content for 3 years + 2 weeks (one Libre reader, about 125,000
records). The archive holds the first 3 years; the new dump is the reader's last 90 days, so
76 of its days are archived already and 14 are new, as when a user syncs every few weeks.

Rows (ratio = ours / baseline, judged against the target):

* ``archive: sync 90 d``: ``sync --dump`` into a copy of the 3-year archive, against the same
  sync into an empty archive: the years already archived may cost little (target 1.5x).
* ``archive: export <format>``: ``export`` of the whole archive, against writing the same
  records in the same format from the saved 3-year dump file without an archive (target 1x:
  never slower than without an archive). json and ndjson stream the stored text; csv,
  libreview-csv and nightscout make the rows and entries of history and scans from the
  values of their stored text (``libre_usb.archive.stored``) and read every other record
  back (``model.record_reader``).
* ``archive: report html/json``: ``report --archive`` against the same report of the saved
  3-year file (in a process of its own: ``report --dump`` refuses a file of more than
  4,000,000 JSON values, and 3 years are more) (target 1x).
* ``... (2 s budget)``: issue 15's absolute limit for sync, the export in every format and
  the report: CPU seconds against a 2 s budget (target 1x).
* archive size: bytes per record and MB for the 3 years (shown).

``--quick`` uses 3 months instead of 3 years.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..core import Context, Row, case, run_ours, run_python

BUDGET_S = 2.0
ZONE = "Europe/Berlin"


def _data(workdir: Path, days: int) -> dict[str, Path]:
    """The archive of all but the last 14 days, its dump file, the newest 90-day dump."""
    from libre_usb.archive import Archive
    from libre_usb.devices import MODELS
    from libre_usb.model import DeviceInfo, Dump
    from libre_usb.output import export, timeline
    from libre_usb.output.period import Period
    from libre_usb.simulator.content import generate

    content = generate(11, days=days + 14)
    device = DeviceInfo(model="libre", product_id=MODELS["libre"].product_ids[0],
                        serial=content.serial, unit=content.unit, clock=content.clock,
                        record_count=content.record_counter)
    full = timeline.place(Dump(device=device, records=tuple(content.records)), ZONE)
    assert full.device.clock is not None
    old = Dump(device=full.device, timezone=full.timezone, records=Period(
        None, full.device.clock - dt.timedelta(days=14)).select(full.records))
    new = Dump(device=full.device, timezone=full.timezone, records=Period(
        full.device.clock - dt.timedelta(days=90), None).select(full.records))
    paths = {"archive": workdir / "years.sqlite", "years": workdir / "years.json",
             "new": workdir / "new.json"}
    paths["archive"].unlink(missing_ok=True)
    with Archive(paths["archive"], create=True) as archive:
        archive.sync(old, "bench")
    paths["years"].write_text(export.render(old, "json"), encoding="utf-8")
    paths["new"].write_text(export.render(new, "json"), encoding="utf-8")
    return paths


def _cpu(args: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``libre-dump ARGS`` as its own process."""
    done = run_ours(args)
    if done.returncode != 0:
        raise RuntimeError(f"libre-dump {' '.join(args)}: {done.stderr.strip()[-400:]}")
    return done.cpu, done.wall


#: the saved 3-year dump read with load_dump's checks but without its structure budget
#: (4,000,000 JSON values; 3 years of records are more): what the baselines start from
_READ_YEARS = ("import json, sys; from libre_usb.output import export; "
               "d = export.dump_from_document(json.loads(open(sys.argv[1], encoding='utf-8')"
               ".read()), sys.argv[1]); ")


def _without_archive(years: Path, fmt: str) -> tuple[float, float]:
    """The same records written as ``fmt`` from the saved dump file, in a process of its
    own, the way ``dump`` writes them."""
    code = _READ_YEARS + ("export.write(d, sys.argv[3], open(sys.argv[2], 'w'), "
                          "unit=export.default_unit(d, sys.argv[3]))")
    done = run_python(["-c", code, str(years), os.devnull, fmt])
    if done.returncode != 0:
        raise RuntimeError(f"writing {fmt} from the dump file: {done.stderr.strip()[-400:]}")
    return done.cpu, done.wall


def _report_without_archive(years: Path, fmt: str) -> tuple[float, float]:
    """The report of the saved dump file, in a process of its own (``report --dump``
    refuses a file of more than 4,000,000 JSON values)."""
    code = _READ_YEARS + ("from libre_usb import report; from libre_usb.report import data; "
                          "r = data.from_dump(d); open(sys.argv[2], 'w').write(report.render("
                          "r, unit='mg/dL', fmt=sys.argv[3]))")
    done = run_python(["-c", code, str(years), os.devnull, fmt])
    if done.returncode != 0:
        raise RuntimeError(f"the {fmt} report from the dump file: {done.stderr.strip()[-400:]}")
    return done.cpu, done.wall


@case("archive")
def archive(ctx: Context) -> Iterator[Row]:
    days = 91 if ctx.quick else 3 * 365
    size = "3 months" if ctx.quick else "3 years"
    paths = _data(ctx.workdir, days)
    rounds = max(1, min(ctx.rounds, 3))

    def best(func: object) -> tuple[float, float]:
        """The round with the least CPU: (CPU s, its wall s)."""
        assert callable(func)
        return min(func() for _ in range(rounds))

    target = ctx.workdir / "target.sqlite"

    def sync_into(source: Path | None) -> tuple[float, float]:
        target.unlink(missing_ok=True)
        if source is not None:
            shutil.copyfile(source, target)
        return _cpu(["sync", "--dump", str(paths["new"]), "--archive", str(target), "-q"])

    (into_years, wall), (into_empty, _) = best(lambda: sync_into(paths["archive"])), best(
        lambda: sync_into(None))
    yield Row("archive: sync 90 d, into the archive vs into an empty one", size, into_years,
              into_empty, "s CPU", target=1.5, note=f"wall {wall:.1f} s")
    yield Row("archive: sync 90 d (2 s budget)", size, into_years, BUDGET_S, "s CPU",
              target=1.0)
    for fmt in ("ndjson", "json", "csv", "libreview-csv", "nightscout"):
        ours, wall = best(lambda fmt=fmt: _cpu(["export", "--archive", str(paths["archive"]),
                                                "-f", fmt, "-o", os.devnull]))
        base, _ = best(lambda fmt=fmt: _without_archive(paths["years"], fmt))
        yield Row(f"archive: export {fmt}, vs from the dump file", size, ours, base, "s CPU",
                  target=1.0, note=f"wall {wall:.1f} s")
        yield Row(f"archive: export {fmt} (2 s budget)", size, ours, BUDGET_S, "s CPU",
                  target=1.0)
    for fmt in ("html", "json"):
        ours, wall = best(lambda fmt=fmt: _cpu(["report", "--archive", str(paths["archive"]),
                                                "-f", fmt, "-o", os.devnull]))
        base, _ = best(lambda fmt=fmt: _report_without_archive(paths["years"], fmt))
        yield Row(f"archive: report {fmt}, vs from the dump file", size, ours, base, "s CPU",
                  target=1.0, note=f"wall {wall:.1f} s")
        yield Row(f"archive: report {fmt} (2 s budget)", size, ours, BUDGET_S, "s CPU",
                  target=1.0)
    from libre_usb.archive import Archive

    with Archive(paths["archive"]) as store:
        stats = store.stats()
    yield Row("archive: file size per record", size, stats["bytes_per_record"],
              float("nan"), "bytes", note=f"{stats['records']} records")
    yield Row("archive: file size", size, stats["bytes"] / 1e6, float("nan"), "MB")
