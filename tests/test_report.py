"""``libre-dump report``: the consensus metrics agree with an independent implementation
(iglu-python from PyPI, dev extra: a port of the R package iglu) on the same readings; the
page is self-contained, escapes every text, renders in headless Chromium and prints on A4;
hostile times and values cannot stretch it."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from simdumps import content_dump

from libre_usb import report
from libre_usb.archive import Archive
from libre_usb.cli import main
from libre_usb.model import Dump, HistoryRecord, NoteRecord
from libre_usb.output.period import Period
from libre_usb.report import agp
from libre_usb.report.data import PROFILE_DAYS, from_archive, from_dump

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def dump() -> Dump:
    return content_dump(3, days=90)


def readings(dump: Dump) -> list[tuple[dt.datetime, int]]:
    return [(r.local_time, r.glucose_mg_dl) for r in dump.records
            if isinstance(r, HistoryRecord) and not r.invalid and r.glucose_mg_dl is not None
            and r.local_time is not None]


def wide_series(seed: int = 1, days: int = 20) -> list[tuple[dt.datetime, int]]:
    """Readings every 15 minutes over every range, with sensor gaps (random walk)."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, 0, 7)
    out, value = [], 120.0
    for step in range(days * 96):
        value = min(420.0, max(42.0, value + rng.gauss(0, 12)))
        if 300 <= step % 1300 < 420:  # a day-long gap now and then
            continue
        out.append((start + dt.timedelta(minutes=15 * step), round(value)))
    return out


def iglu() -> Any:
    return pytest.importorskip(
        "iglu_python", reason="iglu-python (dev extra, Python >= 3.11) is the independent "
                              "implementation of the consensus metrics")


@pytest.mark.parametrize("source", ["virtual reader", "random walk with gaps"])
def test_metrics_match_iglu(dump: Dump, source: str) -> None:
    ig = iglu()
    import pandas as pd

    pairs = readings(dump) if source == "virtual reader" else wide_series()
    ours = agp.compute(agp.Glucose.of(pairs))
    values = pd.Series([v for _, v in pairs], dtype=float)
    below = ig.below_percent(values, targets_below=[54, 70])
    above = ig.above_percent(values, targets_above=[180, 250])
    in_range = ig.in_range_percent(values, target_ranges=[[70, 180]])
    expected = {
        "very_low": below["below_54"],
        "low": below["below_70"] - below["below_54"],
        "in_range": in_range["in_range_70_180"],
        "high": above["above_180"] - above["above_250"],
        "very_high": above["above_250"],
    }
    for name, value in expected.items():
        assert ours.ranges[name] == pytest.approx(value, abs=1e-9), name
    assert ours.mean == pytest.approx(ig.mean_glu(values))
    assert ours.gmi == pytest.approx(ig.gmi(values))
    assert ours.cv == pytest.approx(ig.cv_glu(values))
    series = pd.Series([v for _, v in pairs], index=pd.DatetimeIndex([t for t, _ in pairs]),
                       dtype=float)
    active = ig.active_percent(series, dt0=15, tz="UTC")
    assert ours.active_percent == pytest.approx(active["active_percent"], abs=0.05)
    assert ours.days == pytest.approx(active["ndays"], abs=0.06)
    if source == "random walk with gaps":
        assert all(ours.ranges[name] > 1 for name in expected)  # every range exercised
        assert ours.active_percent < 95


def test_modal_day_percentiles_match_iglu(dump: Dump) -> None:
    ig = iglu()
    pairs = readings(dump)
    ours = agp.compute(agp.Glucose.of(pairs)).modal_day
    slots: dict[int, list[int]] = {}
    for when, value in pairs:
        slots.setdefault((when.hour * 60 + when.minute) // 15 * 15, []).append(value)
    checked = 0
    for minute, bands in ours:
        if minute not in slots:
            assert bands is None
            continue
        expected = ig.quantile_glu(slots[minute], quantiles=list(agp.PERCENTILES))
        assert bands == pytest.approx(expected)
        checked += 1
    assert checked == 96


def test_sufficiency_warning_below_14_days_or_70_percent() -> None:
    short = agp.compute(agp.Glucose.of(wide_series(days=10)))
    assert not short.sufficient and "at least 14 days and 70 %" in short.warnings()[0]
    full = agp.compute(agp.Glucose.of([(dt.datetime(2026, 1, 1) + dt.timedelta(minutes=15 * i),
                                        100) for i in range(96 * 15)]))
    assert full.sufficient and full.warnings() == [] and full.active_percent == 100.0
    sparse = agp.compute(agp.Glucose.of([(dt.datetime(2026, 1, 1) + dt.timedelta(hours=i),
                                          100) for i in range(24 * 20)]),
                         Period(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 21)))
    assert sparse.interval_minutes == 60 and sparse.days == 20


def test_json_metrics_in_either_unit(dump: Dump) -> None:
    data = from_dump(dump)
    mg = json.loads(report.render(data, unit="mg/dL", fmt="json"))
    mmol = json.loads(report.render(data, unit="mmol/L", fmt="json"))
    assert mg["format"] == "libre-dump-agp" and mg["sufficient"] is True
    assert mmol["mean"] == pytest.approx(mg["mean_mg_dl"] / 18.0, abs=0.01)
    assert mg["time_in_ranges_percent"] == mmol["time_in_ranges_percent"]
    assert sum(mg["time_in_ranges_percent"].values()) == pytest.approx(100, abs=0.05)
    assert len(mg["modal_day"]) == 96 and mg["modal_day"][0]["time"] == "00:00"


def test_html_references_nothing_and_escapes_every_text(dump: Dump) -> None:
    hostile = "<script>alert('x')</script> & \"quoted\""
    device = msgspec.structs.replace(dump.device, serial="<b>SER&IAL</b>")
    last = max(r.local_time for r in dump.records if r.local_time is not None)
    note = NoteRecord(record_id=10**9, source="$arresult?", record_type=2,
                      local_time=last - dt.timedelta(hours=1), comment_index=1, text=hostile)
    page = report.render(from_dump(msgspec.structs.replace(
        dump, device=device, records=(*dump.records, note))), unit="mg/dL")
    lower = page.lower()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in lower and "http://" not in lower and "https://" not in lower
    assert "<link" not in lower and "@import" not in lower and "url(" not in lower
    assert not re.search(r"\ssrc\s*=", lower)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "&lt;b&gt;SER&amp;IAL&lt;/b&gt;" in page and "<b>SER" not in page


def test_hostile_times_and_values_are_clamped(dump: Dump) -> None:
    """A reader clock in the years 1 and 9999 and a value of 65535: the page still has at
    most 14 daily profiles, and every point stays inside its plot."""
    base = next(r for r in dump.records if isinstance(r, HistoryRecord))
    odd = [msgspec.structs.replace(base, record_id=-1, local_time=dt.datetime(1, 1, 1, 0, 0)),
           msgspec.structs.replace(base, record_id=-2, local_time=dt.datetime(9999, 12, 31, 23, 59),
                               glucose_mg_dl=65535)]
    data = from_dump(msgspec.structs.replace(dump, records=(*dump.records, *odd)))
    assert len(data.days) == PROFILE_DAYS
    page = report.render(data, unit="mg/dL")
    for points in re.findall(r'points="([^"]+)"', page):
        for pair in points.split():
            x, y = (float(n) for n in pair.split(","))
            assert 0 <= x <= 700 and 0 <= y <= 250
    metrics = json.loads(report.render(data, unit="mg/dL", fmt="json"))
    assert metrics["period"]["days"] > 3_000_000  # reported as it is, never walked over


def test_report_cli_from_reader_dump_and_archive(tmp_path: Path) -> None:
    runner = CliRunner()
    saved = tmp_path / "d.json"
    result = runner.invoke(main, ["dump", "--device", "sim:libre?days=20", "--tz",
                                  "Europe/Berlin", "-o", str(saved)])
    assert result.exit_code == 0, result.stderr
    archive = tmp_path / "a.sqlite"
    assert runner.invoke(main, ["sync", "--dump", str(saved), "--archive",
                                str(archive)]).exit_code == 0
    from_file = runner.invoke(main, ["report", "--dump", str(saved), "-f", "json",
                                     "--since", "2026-06-01"])
    from_store = runner.invoke(main, ["report", "--archive", str(archive), "-f", "json",
                                      "--since", "2026-06-01"])
    assert from_file.exit_code == 0 and from_store.exit_code == 0, from_store.stderr
    assert json.loads(from_file.stdout) == json.loads(from_store.stdout)
    page = tmp_path / "agp.html"
    result = runner.invoke(main, ["report", "--device", "sim:libre?days=20", "-o", str(page)])
    assert result.exit_code == 0 and page.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    both = runner.invoke(main, ["report", "--dump", str(saved), "--archive", str(archive)])
    assert both.exit_code == 2


def test_archive_and_dump_give_the_same_daily_profiles(tmp_path: Path, dump: Dump) -> None:
    with Archive(tmp_path / "a.sqlite", create=True) as archive:
        archive.sync(dump, "test")
        stored = from_archive(archive, None, Period.parse("2026-05-01", None))
    direct = from_dump(dump, Period.parse("2026-05-01", None))
    assert stored.days == direct.days and len(direct.days) == PROFILE_DAYS
    assert stored.glucose == direct.glucose
    kinds = {m.kind for day in direct.days for m in day.markers}
    assert {"insulin", "food", "note"} <= kinds


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[bytes]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run(command, capture_output=True, timeout=120, env=env, check=True)


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is not installed (apt-get install -y chromium); "
                           "the AGP page is not checked in a browser")
def test_page_renders_in_headless_chromium_and_prints_on_a4(tmp_path: Path) -> None:
    """The acceptance run: `libre-dump report --device sim:libre -o agp.html`, opened in
    Chromium; the numbers on the rendered page are iglu-python's on the same readings."""
    from test_upload_html import _png_pixels

    runner = CliRunner()
    page = tmp_path / "agp.html"
    result = runner.invoke(main, ["report", "--device", "sim:libre", "--tz", "Europe/Berlin",
                                  "-o", str(page)])
    assert result.exit_code == 0, result.stderr
    saved = tmp_path / "same.json"
    result = runner.invoke(main, ["dump", "--device", "sim:libre", "--tz", "Europe/Berlin",
                                  "-o", str(saved)])
    assert result.exit_code == 0, result.stderr
    from libre_usb.output import export

    values = [v for _, v in readings(export.load_dump(saved))]

    dom = _chromium("--dump-dom", page.as_uri(), tmp=tmp_path).stdout.decode("utf-8")
    ranges = re.search(r'<table id="ranges">.*?</table>', dom, re.S)
    assert ranges is not None and ranges.group(0).count("<tr") == 5

    def shown(row: str) -> float:
        found = re.search(rf'id="{row}">.*?<td class="num">([\d.]+)', dom, re.S)
        assert found is not None, row
        return float(found.group(1))

    ig = iglu()
    import pandas as pd

    series = pd.Series(values, dtype=float)
    in_range = ig.in_range_percent(series, target_ranges=[[70, 180]])["in_range_70_180"]
    above = ig.above_percent(series, targets_above=[180, 250])
    assert shown("range-in_range") == pytest.approx(in_range, abs=0.05)
    assert shown("range-high") == pytest.approx(above["above_180"] - above["above_250"],
                                                abs=0.05)
    assert shown("metric-mean") == pytest.approx(ig.mean_glu(series), abs=0.5)
    assert shown("metric-gmi") == pytest.approx(ig.gmi(series), abs=0.05)
    assert shown("metric-cv") == pytest.approx(ig.cv_glu(series), abs=0.05)
    for part in ('<svg id="agp"', 'class="band-5-95"', 'class="band-25-75"',
                 'class="median"', 'id="tir-bar"', "marker-insulin", "marker-food",
                 "marker-note"):
        assert part in dom, part
    assert dom.count('class="day"') == PROFILE_DAYS

    shot = tmp_path / "agp.png"
    _chromium("--window-size=900,1400", f"--screenshot={shot}", page.as_uri(), tmp=tmp_path)
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (900, 1400)
    assert len(set(pixels[i:i + 3] for i in range(0, len(pixels) - 3, 997))) > 20  # drawn

    pdf = tmp_path / "agp.pdf"
    _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri(), tmp=tmp_path)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes())
    assert boxes, "no page in the PDF"
    for w, h in boxes:  # A4: 210 x 297 mm = 595.3 x 841.9 pt
        assert math.isclose(float(w), 595.3, abs_tol=1.5)
        assert math.isclose(float(h), 841.9, abs_tol=1.5)
    assert len(boxes) <= 6
