"""Every JSON the tool writes is strict (RFC 8259): never ``NaN``, ``Infinity`` or
``-Infinity``, and always encodable as UTF-8.

Values are range-checked where they enter the data model, so no non-finite number should
reach a writer; this test makes sure the writers themselves refuse one anyway, in every
format (``json``, ``ndjson``, ``libreview``, the ``diff`` JSON report, transcripts), whatever
serialiser sits behind them. It builds records the validation would never let through (a NaN
glucose, an infinite dose) and requires each writer to either fail with ValueError or write
strict JSON.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from libre_usb import jsonsafe
from libre_usb.model import DeviceInfo, Dump, HistoryRecord, InsulinRecord, NoteRecord
from libre_usb.output import export

CLOCK = dt.datetime(2026, 6, 15, 12, 0)


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-strict JSON written: {name}")

    text.encode("utf-8")
    return json.loads(text, parse_constant=refuse)


def hostile_dumps() -> list[Dump]:
    info = DeviceInfo(model="libre", product_id=0x3650, serial="S", clock=CLOCK)
    base = {"source": "$history?", "record_type": 3, "local_time": CLOCK - dt.timedelta(hours=1)}
    return [
        Dump(device=info, records=(HistoryRecord(record_id=1, glucose_mg_dl=float("nan"),
                                                 **base),)),  # type: ignore[arg-type]
        Dump(device=info, records=(InsulinRecord(
            record_id=2, source="$arresult?", record_type=2, local_time=CLOCK,
            insulin_type="rapid", units=Decimal("Infinity")),)),
        Dump(device=info, records=(NoteRecord(
            record_id=3, source="$arresult?", record_type=2, local_time=CLOCK,
            comment_index=1, text="lone \udc80 surrogate"),)),
    ]


WRITERS = {
    "json": lambda d: export.render(d, "json"),
    "ndjson": lambda d: export.render(d, "ndjson"),
    "libreview": lambda d: export.render_libreview(d, dt.timezone.utc, redact=False),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("index", range(3))
def test_no_dump_writer_emits_non_strict_json(fmt: str, index: int) -> None:
    dump = hostile_dumps()[index]
    try:
        text = WRITERS[fmt](dump)
    except (ValueError, ArithmeticError):
        return  # refused: nothing was written
    for line in text.splitlines() if fmt == "ndjson" else [text]:
        strict(line)


def test_the_shared_writer_refuses_nan_and_escapes_surrogates() -> None:
    for value in (float("nan"), float("inf"), -float("inf"), [1, {"a": float("nan")}]):
        with pytest.raises(ValueError):
            jsonsafe.dumps(value)
    assert strict(jsonsafe.dumps({"t": "a\udc80b"})) == {"t": "a\udc80b"}


def test_the_diff_report_and_transcripts_are_strict(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from libre_usb.cli import main

    runner = CliRunner()
    transcript = tmp_path / "t.jsonl"
    dump = tmp_path / "d.json"
    result = runner.invoke(main, ["dump", "-d", "sim:libre?days=2", "-q", "-o", str(dump),
                                  "--record", str(transcript)])
    assert result.exit_code == 0, result.output
    for line in transcript.read_text().splitlines():
        strict(line)
    upload = runner.invoke(main, ["dump", "-d", "sim:libre?days=2", "-q", "-f", "libreview"])
    body = tmp_path / "u.json"
    doc = json.loads(upload.stdout)
    doc["DeviceData"]["measurementLog"]["bloodGlucoseEntries"][0]["valueInMgPerDl"] = 1e308
    body.write_text(json.dumps(doc))
    result = runner.invoke(main, ["diff", "--dump", str(dump), str(body), "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    strict(result.stdout)
    out = io.StringIO()
    out.write(result.stdout)
    assert "Infinity" not in out.getvalue()
