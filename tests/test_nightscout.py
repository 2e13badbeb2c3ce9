"""``nightscout``: the documented shapes (docs/nightscout.schema.json), what Nightscout's API
v3 checks on a new document (mirrored from cgm-remote-monitor ``lib/api3``: identifier,
``date`` after 2000-01-01, ``utcOffset`` within a day, ``app``), stable identifiers across
overlapping dumps, and cgm-format (PyPI, dev extra) reading the files back."""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from click.testing import CliRunner
from simdumps import content_dump

from libre_usb.cli import main
from libre_usb.model import (
    Dump,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    ScanRecord,
)
from libre_usb.output import export, nightscout
from libre_usb.output.period import Period

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" /
                     "nightscout.schema.json").read_text(encoding="utf-8"))
#: cgm-remote-monitor lib/api3/const.json
MIN_TIMESTAMP, MIN_UTC_OFFSET, MAX_UTC_OFFSET = 946684800000, -1440, 1440


@pytest.fixture(scope="module")
def dump() -> Dump:
    return content_dump(3, days=20)


@pytest.fixture(scope="module")
def docs(dump: Dump) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = json.loads(export.render(dump, "nightscout"))
    return out


def test_files_follow_the_documented_shapes(docs: dict[str, list[dict[str, Any]]]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(docs)
    events = Counter(t["eventType"] for t in docs["treatments"])
    assert set(events) == {"Correction Bolus", "Carb Correction", "Note", "Exercise",
                           "Sensor Start"}
    assert {e["type"] for e in docs["entries"]} == {"sgv", "mbg"}


def test_api_v3_would_accept_every_document(docs: dict[str, list[dict[str, Any]]]) -> None:
    """lib/api3/generic/create/validate.js + shared/operationTools.validateCommon."""
    for doc in docs["entries"] + docs["treatments"]:
        assert isinstance(doc["identifier"], str) and doc["identifier"].strip()
        assert isinstance(doc["date"], int) and doc["date"] > MIN_TIMESTAMP
        assert isinstance(doc["utcOffset"], int)
        assert MIN_UTC_OFFSET <= doc["utcOffset"] <= MAX_UTC_OFFSET
        assert isinstance(doc["app"], str) and doc["app"].strip()
        stamp = doc.get("dateString") or doc["created_at"]
        parsed = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.timezone.utc)
        assert int(parsed.timestamp() * 1000) == doc["date"]
    identifiers = [d["identifier"] for d in docs["entries"] + docs["treatments"]]
    assert len(identifiers) == len(set(identifiers))


def test_values_directions_and_offsets(dump: Dump,
                                       docs: dict[str, list[dict[str, Any]]]) -> None:
    def ms(when: dt.datetime | None) -> int:
        assert when is not None
        return int(when.timestamp() * 1000)

    sgv = Counter((e["date"], e["sgv"]) for e in docs["entries"] if e["type"] == "sgv")
    readings = [r for r in dump.records if isinstance(r, HistoryRecord | ScanRecord)
                and not r.invalid and r.glucose_mg_dl is not None]
    assert sgv == Counter((ms(r.utc), r.glucose_mg_dl) for r in readings)
    mbg = Counter((e["date"], e["mbg"]) for e in docs["entries"] if e["type"] == "mbg")
    strips = [r for r in dump.records if isinstance(r, GlucoseRecord) and not r.invalid
              and r.glucose_mg_dl is not None]
    assert mbg == Counter((ms(r.utc), r.glucose_mg_dl) for r in strips) and mbg
    arrows = {1: "SingleDown", 2: "FortyFiveDown", 3: "Flat", 4: "FortyFiveUp",
              5: "SingleUp"}
    scans = {ms(r.utc): arrows[r.trend] for r in dump.records
             if isinstance(r, ScanRecord) and r.trend in arrows and not r.invalid}
    got = {e["date"]: e["direction"] for e in docs["entries"] if "direction" in e}
    assert got == scans and scans
    # utcOffset is the zone's offset at that instant (Berlin, June: +2 h)
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    for entry in docs["entries"]:
        when = dt.datetime.fromtimestamp(entry["date"] / 1000, zone)
        offset = when.utcoffset()
        assert offset is not None and entry["utcOffset"] == offset.total_seconds() // 60


def test_identifiers_are_stable_across_overlapping_dumps(dump: Dump) -> None:
    assert dump.device.clock is not None
    cut = dump.device.clock - dt.timedelta(days=10)
    first = nightscout.documents(msgspec.structs.replace(
        dump, records=Period(None, cut + dt.timedelta(days=5)).select(dump.records)))
    second = nightscout.documents(msgspec.structs.replace(
        dump, records=Period(cut, None).select(dump.records)))
    whole = nightscout.documents(dump)
    for kind in ("entries", "treatments"):
        a = {d["identifier"]: d for d in first[kind]}
        b = {d["identifier"]: d for d in second[kind]}
        shared = a.keys() & b.keys()
        assert shared, "the overlap must share documents"
        assert all(a[i] == b[i] for i in shared)  # same record, same document
        assert {d["identifier"] for d in whole[kind]} == a.keys() | b.keys()


def test_only_placed_records_and_a_note_for_the_rest(dump: Dump) -> None:
    unplaced = msgspec.structs.replace(dump.records[0], utc=None, time_status="ambiguous")
    changed = msgspec.structs.replace(dump, records=(unplaced, *dump.records[1:]))
    notes = export.format_notes(changed, "nightscout-entries")
    assert notes and notes[0].startswith("1 records without a place in UTC")


def test_separate_arrays_for_posting(dump: Dump, docs: dict[str, list[dict[str, Any]]]) -> None:
    assert json.loads(export.render(dump, "nightscout-entries")) == docs["entries"]
    assert json.loads(export.render(dump, "nightscout-treatments")) == docs["treatments"]


def test_cgm_format_reads_the_files_back(dump: Dump,
                                         docs: dict[str, list[dict[str, Any]]]) -> None:
    cgm_format = pytest.importorskip(
        "cgm_format", reason="cgm-format (dev extra) is the independent Nightscout reader")
    frame = cgm_format.FormatParser.parse_nightscout(json.dumps(docs["entries"]),
                                                     json.dumps(docs["treatments"]))
    rows = frame.to_dicts()

    def utc_naive(when: dt.datetime | None) -> dt.datetime:
        assert when is not None
        return when.astimezone(dt.timezone.utc).replace(tzinfo=None)

    glucose = Counter((row["datetime"], row["glucose"]) for row in rows
                      if row["event_type"] == "EGV_READ")
    readings = Counter((utc_naive(r.utc), float(r.glucose_mg_dl)) for r in dump.records
                       if isinstance(r, HistoryRecord | ScanRecord) and not r.invalid
                       and r.glucose_mg_dl is not None)
    assert glucose == readings and readings
    insulin = Counter((row["datetime"], row["insulin_fast"]) for row in rows
                      if row["event_type"] == "INS_FAST")
    rapid = Counter((utc_naive(r.utc), float(r.units)) for r in dump.records
                    if isinstance(r, InsulinRecord) and r.units is not None
                    and "long" not in r.insulin_type)
    assert insulin == rapid and rapid
    carbs = Counter((row["datetime"], row["carbs"]) for row in rows
                    if row["event_type"] == "CARBS_IN")
    food = Counter((utc_naive(r.utc), float(r.carbs_g)) for r in dump.records
                   if isinstance(r, FoodRecord) and r.carbs_g)
    assert carbs == food and food


def test_cli_writes_each_file(tmp_path: Path) -> None:
    runner = CliRunner()
    for fmt in ("nightscout-entries", "nightscout-treatments"):
        out = tmp_path / f"{fmt}.json"
        result = runner.invoke(main, ["dump", "--device", "sim:libre?days=2", "--tz",
                                      "Europe/Berlin", "-f", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        items = json.loads(out.read_text(encoding="utf-8"))
        assert isinstance(items, list) and items


def test_identifiers_are_rfc_4122_uuid5_and_the_bytes_are_the_standard_encoders(
        dump: Dump) -> None:
    """The identifier is computed without uuid.UUID, the file without json.dump's
    pure-Python indenting encoder: both compared with the standard library's."""
    import uuid

    for serial, source, record_id, part, what in [
            ("JGMB123-A0001", "$history?", 1, 0, ""), ("", "$arresult?", 2 ** 31, 3, "x"),
            ("Seri\u00e4l \U0001f600", "binary:result", 0, 1, "sensor-start")]:
        name = f"{serial}/{source}/{record_id}/{part}" + (f"/{what}" if what else "")
        assert nightscout.identifier(serial, source, record_id, part, what) == str(
            uuid.uuid5(nightscout.NAMESPACE, name))
    when = dt.datetime(2024, 5, 1, 12, 0, 0, 987654, tzinfo=dt.timezone.utc)
    assert nightscout._iso(when) == when.strftime("%Y-%m-%dT%H:%M:%S.987Z")
    for other in (when.replace(microsecond=0), when.replace(microsecond=999),
                  dt.datetime(1000, 1, 1, tzinfo=dt.timezone.utc),
                  dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))):
        assert nightscout._iso(other) == other.astimezone(dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.") + f"{other.microsecond // 1000:03d}Z"
    out = io.StringIO()
    nightscout.write(dump, out)
    assert out.getvalue() == json.dumps(nightscout.documents(dump), ensure_ascii=False,
                                        indent=1) + "\n"


def test_a_utf8_file_gets_the_bytes_and_any_other_text_stream_the_text(
        dump: Dump, tmp_path: Path) -> None:
    """The file is written as bytes under a UTF-8 text file (not decoded into a str first),
    as text to anything else: the same content either way."""
    expected = export.render(dump, "nightscout")
    utf8 = tmp_path / "utf8.json"
    with open(utf8, "w", encoding="utf-8", newline="") as handle:
        handle.write("")  # text already buffered goes out first
        nightscout.write(dump, handle)
    assert utf8.read_text(encoding="utf-8") == expected
    other = tmp_path / "utf16.json"
    with open(other, "w", encoding="utf-16", newline="") as handle:
        nightscout.write(dump, handle)
    assert other.read_text(encoding="utf-16") == expected


@pytest.mark.parametrize("key", ["Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe",
                                 "Pacific/Chatham", "Asia/Kolkata"])
def test_offsets_are_the_zones_offsets_of_the_naive_time(key: str) -> None:
    """``_offsets`` hands a UTC time to ``ZoneInfo.utcoffset`` as it is: the same offset as
    of its naive copy, every 7 minutes over two years of changes, both folds."""
    zone = zoneinfo.ZoneInfo(key)
    offset_at = nightscout._offsets(zone)
    when = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    while when.year < 2022:
        for time in (when, when.replace(fold=1)):
            assert offset_at(time) == zone.utcoffset(time.replace(tzinfo=None))
        when += dt.timedelta(minutes=7)
    assert nightscout._offsets(None)(when) is None
    fixed = dt.timezone(dt.timedelta(hours=-3, minutes=-30))
    assert nightscout._offsets(fixed)(when) == dt.timedelta(hours=-3, minutes=-30)


def test_record_times_are_written_in_whole_seconds_as_isoformat_would() -> None:
    """model._iso takes isoformat() for times without microseconds: the same text as
    timespec="seconds", naive and aware, with and without microseconds."""
    from libre_usb.model import _iso

    for naive in (dt.datetime(2024, 5, 1, 12, 0), dt.datetime(2024, 5, 1, 12, 0, 7, 999999),
                  dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 1)):
        assert _iso(naive) == naive.isoformat(timespec="seconds")
        for zone in (dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30))):
            aware = naive.replace(tzinfo=zone)
            if aware.year == 1 and zone is not dt.timezone.utc:
                continue  # before datetime.min in UTC
            assert _iso(aware) == aware.astimezone(dt.timezone.utc).isoformat(
                timespec="seconds").removesuffix("+00:00") + "Z"
