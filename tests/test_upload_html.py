"""The HTML diff report is one self-contained file that a real browser renders: headless
Chromium dumps its DOM (summary table, SVG timeline with the differences marked) and takes a
screenshot that is not blank. The file references nothing outside itself.

Needs /usr/bin/chromium (CI: ``apt-get install -y chromium``); skipped without it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from libre_usb.model import Dump
from libre_usb.output.libreview import build_upload
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.upload.diff import KINDS, DiffResult, diff_uploads
from libre_usb.upload.load import load_bytes
from libre_usb.upload.report import render

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def result() -> DiffResult:
    """A diff with each sort of difference: a changed value, a dropped and an added entry."""
    with Session(SimTransport(VirtualReader("libre", seed=5))) as session:
        full = session.dump()
    assert full.device.clock is not None
    start = full.device.clock - dt.timedelta(days=5)
    dump = Dump(device=full.device, records=tuple(
        r for r in full.records if r.local_time is not None and r.local_time >= start))
    body = build_upload(dump, tz="Europe/Berlin")
    log = body["DeviceData"]["measurementLog"]
    history = log["scheduledContinuousGlucoseEntries"]
    history[40]["valueInMgPerDl"] += 60
    del history[100]
    extra = copy.deepcopy(log["unscheduledContinuousGlucoseEntries"][3])
    extra["recordNumber"] = 999_999
    extra["valueInMgPerDl"] = 310.0
    stamp = dt.datetime.fromisoformat(extra["timestamp"]) + dt.timedelta(minutes=9)
    extra["timestamp"] = stamp.isoformat(timespec="milliseconds")
    extra["extendedProperties"]["factoryTimestamp"] = (
        stamp.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(
            timespec="milliseconds") + "Z")
    log["unscheduledContinuousGlucoseEntries"].append(extra)
    uploads = load_bytes(json.dumps(body).encode(), name="upload.json")
    outcome = diff_uploads(dump, uploads)
    counts = outcome.counts()
    assert counts["history"]["changed"] == 1 and counts["history"]["reader_only"] == 1
    assert counts["scan"]["upload_only"] == 1
    return outcome


def test_html_references_nothing_outside_itself(result: DiffResult) -> None:
    html = render(result, "html")
    assert html.startswith("<!DOCTYPE html>")
    lower = html.lower()
    assert "http://" not in lower and "https://" not in lower
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", lower)
    assert "<link" not in lower and "<script" not in lower and "<iframe" not in lower
    assert "@import" not in lower and "url(" not in lower
    assert not re.search(r"\ssrc\s*=", lower)


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[bytes]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run(command, capture_output=True, timeout=120, env=env, check=True)


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is not installed (apt-get install -y chromium); "
                           "the HTML report is not checked in a browser")
def test_html_renders_in_headless_chromium(result: DiffResult, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(result, "html"), encoding="utf-8")
    url = page.as_uri()

    dom = _chromium("--dump-dom", url, tmp=tmp_path).stdout.decode("utf-8")
    summary = re.search(r'<table id="summary".*?</table>', dom, re.S)
    assert summary is not None
    assert summary.group(0).count("<tr") == 1 + len(KINDS)
    assert '<svg id="timeline"' in dom
    assert "<polyline" in dom
    for mark in ("mark-changed", "mark-reader-only", "mark-upload-only"):
        assert mark in dom
    assert 'id="privacy"' in dom

    shot = tmp_path / "report.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", url, tmp=tmp_path)
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1200, 1600)
    # a blank page encodes to a handful of byte values, nearly all 0 or 255; text, tables
    # and the chart give every value and a large share of mid tones
    histogram = Counter(pixels)
    assert len(histogram) > 64
    mid = sum(count for value, count in histogram.items() if value not in (0, 255))
    assert mid / len(pixels) > 0.01
