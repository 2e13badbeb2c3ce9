"""The output formats: lossless views of one dump, units, redaction, and the JSON Schema."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import dumpschema
import pytest
from captures import INSULINX, need, transcript_from_capture, usbsnoop_reports
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.model import Dump, NoteRecord, Record
from libre_usb.output import export, timeline
from libre_usb.output.redact import redact
from libre_usb.output.units import mmol_l
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.simulator.content import COMMENTS, TAGS
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.transport.transcript import ReplayTransport

ROOT = Path(__file__).resolve().parents[1]


def _key(record: Record) -> tuple[str, int, str]:
    return (record.source, record.record_id, repr(record.to_dict()))


def _read(name: str, seed: int = 5, days: int = 12) -> tuple[Dump, VirtualReader]:
    reader = VirtualReader(name, seed=seed, days=days)
    with Session(SimTransport(reader)) as session:
        return timeline.place(session.dump(), "Europe/Berlin"), reader


@pytest.fixture(scope="module")
def libre() -> Dump:
    return _read("libre")[0]


@pytest.fixture(scope="module")
def insulinx_capture() -> Dump:
    reports = usbsnoop_reports(need(INSULINX / "plug.usbsnoop.log"))
    transport = ReplayTransport.from_lines(transcript_from_capture(reports))
    with Session(transport, "insulinx") as session:
        return timeline.place(session.dump(), "Europe/Paris")


# -- lossless ---------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["mg/dL", "mmol/L"])
def test_csv_ndjson_json_are_views_of_the_same_records(libre: Dump, unit: str) -> None:
    want = sorted(libre.records, key=_key)
    assert {r.kind.value for r in want} >= {"history", "scan", "note", "time_change", "unknown"}
    doc = export.dump_from_document(json.loads(export.render(libre, "json", unit=unit)))
    assert doc.device == libre.device and doc.timezone == libre.timezone
    assert sorted(doc.records, key=_key) == want
    nd = export.dump_from_ndjson(export.render(libre, "ndjson", unit=unit).splitlines())
    assert nd.device == libre.device and nd.timezone == libre.timezone
    assert sorted(nd.records, key=_key) == want
    rows = export.records_from_csv(export.render(libre, "csv", unit=unit))
    assert sorted(rows, key=_key) == want
    # the same records in the same order in every format
    order = [(r["source"], r["record_id"], r["kind"]) for r in (
        json.loads(line) for line in export.render(libre, "ndjson").splitlines()[1:])]
    csv_order = [(r.source, r.record_id, r.kind.value) for r in rows]
    assert order == csv_order


def test_libreview_is_a_view_of_the_same_records(libre: Dump) -> None:
    build = pytest.importorskip(
        "libre_usb.output.libreview",
        reason="libre_usb.output.libreview (the libreview format) is not in this tree")
    from libre_usb.upload.diff import diff_uploads
    from libre_usb.upload.load import load_bytes

    for dump in (libre, _read("neo")[0], _read("insulinx")[0]):
        upload = build.build_upload(dump, tz="Europe/Berlin", redact=False)
        # back: the upload's entries, read as any captured upload, match the reader's records
        result = diff_uploads(dump, load_bytes(json.dumps(upload).encode()), tz="Europe/Berlin")
        assert result.identical, result.counts()
        # and what has no upload entry is kept whole under notInUpload
        left = upload[build.ANNOTATION_KEY]["notInUpload"]
        back = [Record.from_dict({k: v for k, v in item.items()
                                  if k not in ("reason", "flaggedRecordNumber")})
                for item in left]
        expected = [r for r in dump.records if not build.is_uploadable(r)]
        assert sorted(back, key=_key) == sorted(expected, key=_key)
        uploaded = sum(len(v) for v in upload["DeviceData"]["measurementLog"].values()
                       if isinstance(v, list) and v and isinstance(v[0], dict))
        assert uploaded + len(left) >= len(dump.records)


def test_csv_columns_are_stable() -> None:
    assert export.CSV_COLUMNS[:10] == (
        "kind", "record_id", "source", "record_type", "local_time", "utc", "time_status",
        "glucose_mg_dl", "glucose_mmol_l", "value_raw")
    assert len(set(export.CSV_COLUMNS)) == len(export.CSV_COLUMNS)


# -- units ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mg_dl", "mmol"), [
    (0, "0.0"), (1, "0.1"), (18, "1.0"), (40, "2.2"), (54, "3.0"), (70, "3.9"), (90, "5.0"),
    (99, "5.5"), (100, "5.6"), (126, "7.0"), (180, "10.0"), (250, "13.9"), (500, "27.8"),
    (600, "33.3"),
])
def test_mmol_conversion(mg_dl: int, mmol: str) -> None:
    assert mmol_l(mg_dl) == Decimal(mmol)


def test_unit_option_adds_converted_values(libre: Dump) -> None:
    doc = json.loads(export.render(libre, "json", unit="mmol/L"))
    assert doc["unit"] == "mmol/L"
    for group in ("history", "scans", "glucose"):
        for item in doc["records"][group]:
            value = item["glucose_mg_dl"]
            assert item["glucose_mmol_l"] == (None if value is None else float(mmol_l(value)))
    assert all("glucose_mmol_l" not in item for item in doc["records"]["insulin"])
    plain = json.loads(export.render(libre, "json"))
    assert plain["unit"] == "mg/dL"
    assert all("glucose_mmol_l" not in item for item in plain["records"]["scans"])
    rows = export.render(libre, "csv", unit="mmol/L").splitlines()
    header = rows[0].split(",")
    index = header.index("glucose_mmol_l")
    assert any(row.split(",")[index] not in ("",) for row in rows[1:])
    runner = CliRunner()
    result = runner.invoke(main, ["dump", "-d", "sim:neo?days=5", "--unit", "mmol/L",
                                  "-f", "ndjson", "--tz", "UTC"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["unit"] == "mmol/L"
    glucose = [line for line in lines[1:] if line["kind"] == "glucose"
               and line["glucose_mg_dl"] is not None]
    assert glucose and all(line["glucose_mmol_l"] == float(mmol_l(line["glucose_mg_dl"]))
                           for line in glucose)
    # ketones are mmol/L already
    assert all("ketone_mmol_l" in line for line in lines[1:] if line["kind"] == "ketone")


# -- redaction --------------------------------------------------------------------------------

def _all_formats(dump: Dump) -> dict[str, str]:
    return {fmt: export.render(dump, fmt) for fmt in ("json", "ndjson", "csv")}


def _secrets_absent(texts: dict[str, str], secrets: list[str]) -> None:
    for fmt, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} left in {fmt}"
            assert json.dumps(secret)[1:-1] not in text, f"{secret!r} left (escaped) in {fmt}"


def test_redact_removes_every_identifier_and_text_in_every_format(libre: Dump) -> None:
    device = libre.device
    secrets = [device.serial, device.patient_name, device.patient_id, *COMMENTS]
    assert all(isinstance(s, str) and s for s in secrets)
    plain = _all_formats(libre)
    assert all(any(s in text for text in plain.values()) for s in secrets)  # they were there
    redacted = redact(libre)
    texts = _all_formats(redacted)
    _secrets_absent(texts, secrets)  # type: ignore[arg-type]
    # stable placeholders: the same comment slot has the same placeholder everywhere
    notes = [r for r in redacted.records if isinstance(r, NoteRecord)]
    assert notes and all(n.text == f"REDACTED-note-{n.comment_index}" for n in notes)
    raw_texts = {(index, value) for r in redacted.records if r.source == "$arresult?"
                 for index, value in r.raw if 29 <= index <= 34}
    assert raw_texts and raw_texts <= {(28 + i, f"REDACTED-note-{i}") for i in range(1, 7)}
    assert redacted.device.serial == "REDACTED-reader-serial"
    assert dict(redacted.device.replies)["$sn?"] == "REDACTED-reader-serial"
    # deterministic, and everything else unchanged
    assert _all_formats(redact(libre)) == texts
    assert len(redacted.records) == len(libre.records)
    same = sorted(libre.records, key=lambda r: (r.source, r.record_id, r.kind.value))
    red = sorted(redacted.records, key=lambda r: (r.source, r.record_id, r.kind.value))
    for before, after in zip(same, red, strict=True):
        assert (before.local_time, before.utc, before.kind) == (after.local_time, after.utc,
                                                                after.kind)
        assert getattr(before, "glucose_mg_dl", None) == getattr(after, "glucose_mg_dl", None)


def test_redact_the_virtual_insulinx_tags_and_reminder_labels() -> None:
    dump, reader = _read("insulinx")
    secrets = [reader.content.serial, "Zoë", "Ångström", reader.content.patient_id,
               *(text for _, _, text in TAGS if text), "Dosage", "Alarme", "insuline"]
    texts = _all_formats(redact(dump))
    _secrets_absent(texts, secrets)
    settings = redact(dump).device.settings
    assert [t["text"] for t in settings["tags"][:5]] == [
        "REDACTED-tag-1", "REDACTED-tag-2", "REDACTED-tag-3", "REDACTED-tag-4", ""]


def test_redact_the_real_insulinx_session(insulinx_capture: Dump) -> None:
    secrets = ["JAGT241-U6242", "Xavier", "Claessens", "iddupatient", "Activité", "pompe",
               "Malade", "Médicaments", "Dosage", "Alarme", "Prendre"]
    plain = _all_formats(insulinx_capture)
    assert all(any(s in text for text in plain.values()) for s in secrets)
    _secrets_absent(_all_formats(redact(insulinx_capture)), secrets)


def test_cli_redact_on_every_format_and_info(tmp_path: Path) -> None:
    runner = CliRunner()
    reader = VirtualReader("libre", seed=0, days=3)
    secrets = [reader.content.serial, reader.content.patient_name, reader.content.patient_id,
               *COMMENTS]
    for fmt in ("json", "ndjson", "csv"):
        out = tmp_path / f"dump.{fmt}"
        result = runner.invoke(main, ["dump", "-d", "sim:libre?days=3", "-f", fmt, "--redact",
                                      "--tz", "UTC", "-o", str(out)])
        assert result.exit_code == 0, result.output
        _secrets_absent({fmt: out.read_text(encoding="utf-8")}, secrets)
    for extra in ([], ["--json"]):
        result = runner.invoke(main, ["info", "-d", "sim:libre?days=3", "--redact", *extra])
        assert result.exit_code == 0, result.output
        _secrets_absent({"info": result.output}, secrets[:3])
        assert "REDACTED-reader-serial" in result.output


# -- the schema -------------------------------------------------------------------------------

def test_schema_file_is_a_valid_2020_12_schema_and_is_shipped() -> None:
    import jsonschema

    schema = dumpschema.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["version"] == {"const": export.SCHEMA_VERSION}
    packaged = ROOT / "libre_usb" / "data" / "dump.schema.json"
    assert packaged.read_text(encoding="utf-8") == dumpschema.SCHEMA_PATH.read_text(
        encoding="utf-8")
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == schema


def test_every_json_output_is_validated(libre: Dump) -> None:
    before = dumpschema.stats["validated"]
    export.render(libre, "json")
    CliRunner().invoke(main, ["dump", "-d", "sim:insulinx?days=2", "--tz", "UTC"])
    assert dumpschema.stats["validated"] == before + 2


def _corruptions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for change in (
        lambda d: d["records"]["scans"][0].update(surprise=1),
        lambda d: d["records"]["scans"][0].pop("utc"),
        lambda d: d["records"]["scans"][0].update(utc="2026-01-01T00:00:00"),
        lambda d: d["records"]["scans"][0].update(time_status="maybe"),
        lambda d: d["records"]["scans"][0].update(kind="glucose"),
        lambda d: d["records"]["history"][0].update(raw=[[1, 2]]),
        lambda d: d["records"].pop("notes"),
        lambda d: d["device"]["settings"].update(color="red"),
        lambda d: d.update(version=2),
        lambda d: d["counts"].update(history=-1),
    ):
        bad = copy.deepcopy(doc)
        change(bad)
        out.append(bad)
    return out


def test_schema_rejects_what_the_format_does_not_allow(libre: Dump) -> None:
    doc = json.loads(export.render(libre, "json", unit="mmol/L"))
    small = copy.deepcopy(doc)
    for group, items in small["records"].items():
        small["records"][group] = items[:3]
    assert dumpschema.schema_errors(small) == []
    assert dumpschema.schema_errors(small, fast=False) == []
    for bad in _corruptions(small):
        assert dumpschema.schema_errors(bad), bad
        # the reference validator agrees with the fast one
        assert dumpschema.schema_errors(bad, fast=False)
