"""Build an upload from the virtual reader's records, perturb it, and check that the diff
reports exactly the perturbations, for every kind of entry; plus the builder's conventions
(redaction, record numbers, time-change flag), merging of several uploads and time handling.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.model import (
    Dump,
    HistoryRecord,
    Kind,
    Record,
    TimeChangeRecord,
    UnknownRecord,
)
from libre_usb.output import export, timeline
from libre_usb.output.libreview import (
    build_upload,
    decode_reading_identifier,
    encode_reading_identifier,
    first_after_time_changes,
)
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.upload.diff import KINDS, DiffResult, diff_uploads
from libre_usb.upload.load import load_bytes
from libre_usb.upload.report import render

TZ = "Europe/Berlin"
LOG = "measurementLog"
SCHED = "scheduledContinuousGlucoseEntries"
UNSCHED = "unscheduledContinuousGlucoseEntries"
BG = "bloodGlucoseEntries"
GENERIC = "com.abbottdiabetescare.informatics."


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_dump() -> Dump:
    """Everything the virtual reader holds, read through the session (the real path)."""
    with Session(SimTransport(VirtualReader("libre", seed=0))) as session:
        return session.dump()


@pytest.fixture(scope="module")
def dump(full_dump: Dump) -> Dump:
    """A part of the reader, to keep each diff fast: three weeks of scans, strips and
    logbook around the reader's time change, sensor history for three days around it and
    the first reading of every sensor, every time change and unknown record. The part
    must hold every kind."""
    change = next(r for r in full_dump.records if isinstance(r, TimeChangeRecord))
    assert change.new_time is not None
    start = change.new_time - dt.timedelta(days=14)
    end = change.new_time + dt.timedelta(days=7)
    near = (change.new_time - dt.timedelta(days=2), change.new_time + dt.timedelta(days=1))

    def keep(record: Record) -> bool:
        if isinstance(record, (TimeChangeRecord, UnknownRecord)):
            return True
        if record.local_time is None:
            return False
        if isinstance(record, HistoryRecord):
            return record.first_after_insertion or near[0] <= record.local_time <= near[1]
        return start <= record.local_time <= end

    records = tuple(r for r in full_dump.records if keep(r))
    kinds = {r.kind for r in records}
    # alerts and events come from the binary protocol only (tests/test_binary_upload.py)
    assert kinds >= set(Kind) - {Kind.UNKNOWN, Kind.ALERT, Kind.EVENT}, kinds
    assert any(isinstance(r, HistoryRecord) and r.first_after_insertion for r in records)
    return Dump(device=full_dump.device, records=records)


@pytest.fixture(scope="module")
def upload(dump: Dump) -> dict[str, Any]:
    return build_upload(dump, tz=TZ, redact=False)


def run_diff(dump: Dump, *uploads: dict[str, Any], **kwargs: Any) -> DiffResult:
    loaded = []
    for index, body in enumerate(uploads):
        loaded.extend(load_bytes(json.dumps(body).encode(), name=f"upload{index}.json"))
    return diff_uploads(dump, loaded, **kwargs)


def summary(result: DiffResult) -> dict[str, dict[str, list[Any]]]:
    """Only what differs: kind -> {"changed": [(record id, fields)], "reader_only": [ids],
    "upload_only": [recordNumbers]}."""
    out: dict[str, dict[str, list[Any]]] = {}
    for kind, res in result.kinds.items():
        if not res.differs:
            continue
        out[kind] = {
            "changed": sorted((p.reader.record_number, tuple(d.field for d in p.differences))
                              for p in res.changed),
            "reader_only": sorted(r.record_number for r in res.reader_only),
            "upload_only": sorted(u.record_number or 0 for u in res.upload_only),
        }
    return out


def entries(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return body["DeviceData"][LOG][name]  # type: ignore[no-any-return]


def generic(body: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [e for e in entries(body, "genericEntries") if e["type"] == GENERIC + suffix]


def shift(entry: dict[str, Any], seconds: float) -> None:
    """Move an entry in time, keeping timestamp and factoryTimestamp the same instant."""
    delta = dt.timedelta(seconds=seconds)
    local = dt.datetime.fromisoformat(entry["timestamp"]) + delta
    entry["timestamp"] = local.isoformat(timespec="milliseconds")
    factory = dt.datetime.fromisoformat(entry["extendedProperties"]["factoryTimestamp"]
                                        .replace("Z", "+00:00")) + delta
    entry["extendedProperties"]["factoryTimestamp"] = (
        factory.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z")


def added(entry: dict[str, Any], number: int) -> dict[str, Any]:
    """A new entry: a copy moved 7 minutes (no reader record within the tolerance)."""
    new = copy.deepcopy(entry)
    new["recordNumber"] = number
    new["extendedProperties"]["isFirstAfterTimeChange"] = False
    shift(new, 7 * 60)
    return new


class _Cycle(list[dict[str, Any]]):
    """A list indexed modulo its length (some kinds have only a few entries)."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            assert len(self) > 0
            return super().__getitem__(index % len(self))
        return super().__getitem__(index)


def plain(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries not flagged as first after a time change (perturbing those would also
    change the time-change result)."""
    return _Cycle(e for e in items if not e["extendedProperties"].get("isFirstAfterTimeChange"))


# -- the unperturbed upload ---------------------------------------------------------------------


def test_own_upload_matches_the_reader_exactly(dump: Dump, upload: dict[str, Any]) -> None:
    result = run_diff(dump, upload)
    assert summary(result) == {}
    assert result.identical
    counts = result.counts()
    # every uploadable record matched, per kind
    by_kind = {kind: sum(1 for r in dump.records if r.kind.value == kind) for kind in KINDS}
    assert counts["insulin"]["matched"] == by_kind["insulin"] > 0
    assert counts["food"]["matched"] == by_kind["food"] > 0
    assert counts["exercise"]["matched"] == by_kind["exercise"] > 0
    assert counts["medication"]["matched"] == by_kind["medication"] > 0
    assert counts["note"]["matched"] == by_kind["note"] > 0
    assert counts["ketone"]["matched"] + counts["ketone"]["not_expected"] == by_kind["ketone"]
    assert counts["history"]["matched"] + counts["history"]["not_expected"] == \
        by_kind["history"]
    assert counts["scan"]["matched"] + counts["scan"]["not_expected"] == by_kind["scan"]
    assert counts["glucose"]["matched"] + counts["glucose"]["not_expected"] == \
        by_kind["glucose"]
    assert counts["sensorstart"]["matched"] == sum(
        1 for r in dump.records if isinstance(r, HistoryRecord) and r.first_after_insertion)
    assert counts["time_change"]["matched"] == 1
    # invalid readings and unknown records are shown, not counted as differences
    assert counts["history"]["not_expected"] > 0
    assert counts["other"]["not_expected"] == sum(
        1 for r in dump.records if isinstance(r, UnknownRecord))
    assert all(n.note for res in result.kinds.values() for n in res.not_expected)


# -- one perturbation at a time, every kind -----------------------------------------------------

Perturb = Callable[[dict[str, Any]], dict[str, dict[str, list[Any]]]]


def _drop(name: str, kind: str, suffix: str | None = None) -> Perturb:
    def perturb(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
        items = entries(body, name)
        target = plain(generic(body, suffix) if suffix else items)[3]
        items.remove(target)
        return {kind: {"changed": [], "reader_only": [target["recordNumber"]],
                       "upload_only": []}}
    return perturb


def _add(name: str, kind: str, suffix: str | None = None) -> Perturb:
    def perturb(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
        items = entries(body, name)
        source = plain(generic(body, suffix) if suffix else items)[2]
        items.append(added(source, 990001))
        return {kind: {"changed": [], "reader_only": [], "upload_only": [990001]}}
    return perturb


def _change(name: str, kind: str, key: str, field: str, new: Any,
            suffix: str | None = None, ext: bool = False) -> Perturb:
    def perturb(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
        items = plain(generic(body, suffix) if suffix else entries(body, name))
        target = items[4]
        holder = target["extendedProperties"] if ext else target
        holder[key] = new(holder[key]) if callable(new) else new
        return {kind: {"changed": [(target["recordNumber"], (field,))], "reader_only": [],
                       "upload_only": []}}
    return perturb


def _shift(name: str, kind: str, suffix: str | None = None) -> Perturb:
    def perturb(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
        target = plain(generic(body, suffix) if suffix else entries(body, name))[5]
        shift(target, 2 * 3600 + 7 * 60)
        return {kind: {"changed": [(target["recordNumber"], ("time",))], "reader_only": [],
                       "upload_only": []}}
    return perturb


def _unflag(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    for name in (SCHED, UNSCHED, BG):
        for entry in entries(body, name):
            if entry["extendedProperties"]["isFirstAfterTimeChange"]:
                entry["extendedProperties"]["isFirstAfterTimeChange"] = False
    change = next(r for r in _DUMP[0].records if isinstance(r, TimeChangeRecord))
    return {"time_change": {"changed": [], "reader_only": [change.record_id],
                            "upload_only": []}}


def _flag_another(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    target = plain(entries(body, SCHED))[10]
    target["extendedProperties"]["isFirstAfterTimeChange"] = "true"  # a string bool
    return {"time_change": {"changed": [], "reader_only": [],
                            "upload_only": [target["recordNumber"]]}}


def _add_current(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    entry = added(entries(body, UNSCHED)[0], 2560)
    entry["extendedProperties"]["isViewed"] = "false"
    body["DeviceData"][LOG]["currentGlucoseEntries"] = [entry]
    return {"current": {"changed": [], "reader_only": [], "upload_only": [2560]}}


def _add_alarm(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    entry = added(generic(body, "exercise")[0], 1807)
    entry["type"] = GENERIC + "ondemandalarm.low"
    entries(body, "genericEntries").append(entry)
    # a text-protocol dump has no alerts: the upload's alarm is one the reader does not show
    return {"alert": {"changed": [], "reader_only": [], "upload_only": [1807]}}


_DUMP: list[Dump] = []  # the module's dump, for perturbations that need reader facts

PERTURBATIONS: dict[str, Perturb] = {
    "history-drop": _drop(SCHED, "history"),
    "history-add": _add(SCHED, "history"),
    "history-value": _change(SCHED, "history", "valueInMgPerDl", "mg/dL", lambda v: v + 1),
    "history-time": _shift(SCHED, "history"),
    "scan-drop": _drop(UNSCHED, "scan"),
    "scan-add": _add(UNSCHED, "scan"),
    "scan-value": _change(UNSCHED, "scan", "valueInMgPerDl", "mg/dL", lambda v: v - 12),
    "scan-trend": _change(UNSCHED, "scan", "trendArrow", "trendArrow",
                          lambda v: "Falling" if v != "Falling" else "Rising", ext=True),
    "scan-time": _shift(UNSCHED, "scan"),
    "glucose-drop": _drop(BG, "glucose"),
    "glucose-add": _add(BG, "glucose"),
    "glucose-value": _change(BG, "glucose", "valueInMgPerDl", "mg/dL", lambda v: v + 0.5),
    "glucose-time": _shift(BG, "glucose"),
    "ketone-drop": _drop("ketoneEntries", "ketone"),
    "ketone-add": _add("ketoneEntries", "ketone"),
    "ketone-value": _change("ketoneEntries", "ketone", "valueInMmolPerL", "mmol/L",
                            lambda v: round(v + 0.3, 2)),
    "insulin-drop": _drop("insulinEntries", "insulin"),
    "insulin-add": _add("insulinEntries", "insulin"),
    "insulin-units": _change("insulinEntries", "insulin", "units", "units", lambda v: v + 1),
    "insulin-type": _change("insulinEntries", "insulin", "insulinType", "insulinType",
                            lambda v: "LongActing" if v == "RapidActing" else "RapidActing"),
    "insulin-time": _shift("insulinEntries", "insulin"),
    "food-drop": _drop("foodEntries", "food"),
    "food-add": _add("foodEntries", "food"),
    "food-grams": _change("foodEntries", "food", "gramsCarbs", "gramsCarbs", lambda v: v + 10),
    "food-time": _shift("foodEntries", "food"),
    "exercise-drop": _drop("genericEntries", "exercise", "exercise"),
    "exercise-add": _add("genericEntries", "exercise", "exercise"),
    "exercise-time": _shift("genericEntries", "exercise", "exercise"),
    "medication-drop": _drop("genericEntries", "medication", "medication"),
    "medication-add": _add("genericEntries", "medication", "medication"),
    "medication-time": _shift("genericEntries", "medication", "medication"),
    "note-drop": _drop("genericEntries", "note", "customnote"),
    "note-add": _add("genericEntries", "note", "customnote"),
    "note-text": _change("genericEntries", "note", "text", "text", "changed text",
                         suffix="customnote", ext=True),
    "note-time": _shift("genericEntries", "note", "customnote"),
    "sensorstart-drop": lambda body: _sensorstart(body, "drop"),
    "sensorstart-add": lambda body: _sensorstart(body, "add"),
    "sensorstart-time": lambda body: _sensorstart(body, "time"),
    "time_change-unflagged": _unflag,
    "time_change-flag-elsewhere": _flag_another,
    "current-add": _add_current,
    "other-add": _add_alarm,
}


def _sensorstart(body: dict[str, Any], how: str) -> dict[str, dict[str, list[Any]]]:
    starts = generic(body, "sensorstart")
    assert len(starts) >= 2
    target = starts[0]
    if how == "drop":
        entries(body, "genericEntries").remove(target)
        return {"sensorstart": {"changed": [], "reader_only": [target["recordNumber"]],
                                "upload_only": []}}
    if how == "add":
        entries(body, "genericEntries").append(added(target, 990002))
        return {"sensorstart": {"changed": [], "reader_only": [], "upload_only": [990002]}}
    shift(target, -3 * 3600)
    return {"sensorstart": {"changed": [(target["recordNumber"], ("time",))],
                            "reader_only": [], "upload_only": []}}


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_each_perturbation_is_reported_exactly(name: str, dump: Dump,
                                               upload: dict[str, Any]) -> None:
    _DUMP[:] = [dump]
    body = copy.deepcopy(upload)
    expected = PERTURBATIONS[name](body)
    result = run_diff(dump, body)
    assert summary(result) == expected
    assert not result.identical


def test_all_perturbations_at_once(dump: Dump, upload: dict[str, Any]) -> None:
    """One change of each sort in one upload: all reported, nothing else."""
    _DUMP[:] = [dump]
    body = copy.deepcopy(upload)
    expected: dict[str, dict[str, list[Any]]] = {}
    chosen = ["history-drop", "scan-value", "glucose-time", "ketone-add", "insulin-type",
              "food-grams", "exercise-drop", "medication-add", "note-text", "sensorstart-time",
              "time_change-unflagged", "current-add", "other-add"]
    for name in chosen:
        for kind, parts in PERTURBATIONS[name](body).items():
            assert kind not in expected
            expected[kind] = parts
    result = run_diff(dump, body)
    assert summary(result) == expected
    text = render(result, "text")
    for kind in expected:
        assert KINDS[kind] in text


def test_added_identifiers_are_listed_and_nothing_else_changes(dump: Dump) -> None:
    body = build_upload(dump, tz=TZ)  # redacted
    device = body["DeviceData"]["header"]["device"]
    device["uniqueIdentifier"] = "b76f19a9-d4a0-4d67-8999-56b89b0968ee"
    device["serialNumber"] = dump.device.serial
    body["DeviceData"]["header"]["patient"]["name"] = dump.device.patient_name
    body["DeviceData"]["header"]["patient"]["email"] = "zoe@example.org"
    note = generic(body, "customnote")[0]
    reader_note = next(r for r in dump.records
                       if r.kind is Kind.NOTE and r.record_id == note["recordNumber"])
    note["extendedProperties"]["text"] = reader_note.text  # type: ignore[attr-defined]
    body["UserToken"] = "eyJ-secret-token-value"
    result = run_diff(dump, body)
    assert summary(result) == {}  # identifiers are not record differences
    found = {(p.category, p.path, p.value) for p in result.privacy}
    assert ("device", "DeviceData.header.device.uniqueIdentifier",
            "b76f19a9-d4a0-4d67-8999-56b89b0968ee") in found
    assert ("serial", "DeviceData.header.device.serialNumber", dump.device.serial) in found
    assert ("patient", "DeviceData.header.patient.name", dump.device.patient_name) in found
    assert ("patient", "DeviceData.header.patient.email", "zoe@example.org") in found
    assert ("note", "DeviceData.measurementLog.genericEntries[].extendedProperties.text",
            reader_note.text) in found  # type: ignore[attr-defined]
    assert ("credential", "UserToken", None) in found
    serial_item = next(p for p in result.privacy if p.value == dump.device.serial)
    assert "this reader's serial" in serial_item.what
    for fmt in ("text", "json", "html"):
        assert "eyJ-secret-token-value" not in render(result, fmt)


# -- builder conventions ----------------------------------------------------------------------


def test_redaction_by_default(dump: Dump) -> None:
    device = dump.device
    secrets = [device.serial, device.patient_name, device.patient_id]
    notes = {r.text for r in dump.records if r.kind is Kind.NOTE}  # type: ignore[attr-defined]
    assert all(secrets) and notes
    redacted = json.dumps(build_upload(dump, tz=TZ), ensure_ascii=False)
    for secret in [*secrets, *notes]:
        assert secret not in redacted
    assert "REDACTED-reader-serial" in redacted
    full = json.dumps(build_upload(dump, tz=TZ, redact=False), ensure_ascii=False)
    for secret in [*secrets, *notes]:
        assert secret in full
    for text in (redacted, full):
        assert "UserToken" not in text


def test_record_numbers_times_and_unuploadable_records(dump: Dump,
                                                       upload: dict[str, Any]) -> None:
    ids = {r.record_id for r in dump.records}
    log = upload["DeviceData"][LOG]
    for name in ("scheduledContinuousGlucoseEntries", "unscheduledContinuousGlucoseEntries",
                 "insulinEntries", "foodEntries", "genericEntries"):
        for entry in log[name]:
            assert entry["recordNumber"] in ids
            local = dt.datetime.fromisoformat(entry["timestamp"])
            factory = dt.datetime.fromisoformat(
                entry["extendedProperties"]["factoryTimestamp"].replace("Z", "+00:00"))
            assert local == factory  # the same instant
            assert entry["extendedProperties"]["factoryTimestamp"].endswith(".000Z")
    # the history reading's timestamp shows the reader's own clock
    history = {r.record_id: r for r in dump.records if isinstance(r, HistoryRecord)}
    entry = log[SCHED][0]
    reader = history[entry["recordNumber"]]
    assert dt.datetime.fromisoformat(entry["timestamp"]).replace(tzinfo=None) == \
        reader.local_time
    left_out = upload["libreDump"]["notInUpload"]
    kinds = {item["kind"] for item in left_out}
    assert {"time_change", "unknown", "history"} <= kinds
    assert all(item["reason"] for item in left_out)


def test_time_change_flags_the_first_glucose_entry_after_it(dump: Dump,
                                                            upload: dict[str, Any]) -> None:
    (change, reading), = first_after_time_changes(dump.records)
    assert reading is not None and reading.local_time is not None
    assert change.new_time is not None and reading.local_time >= change.new_time
    flagged = [e for name in (SCHED, UNSCHED, BG) for e in entries(upload, name)
               if e["extendedProperties"]["isFirstAfterTimeChange"]]
    assert [e["recordNumber"] for e in flagged] == [reading.record_id]
    # nothing recorded after the change comes earlier than the flagged reading
    later = [r for r in dump.records if r.kind in (Kind.SCAN, Kind.GLUCOSE)
             and r.record_id > change.record_id and r.local_time is not None]
    assert all(r.local_time >= reading.local_time for r in later)  # type: ignore[operator]


def test_reading_identifier_round_trip_and_the_documented_example() -> None:
    # Juggluco's sample strings (libreview.cpp): -6629292502336270757 is serial ?MH00C5XP2R,
    # minute 3675
    assert decode_reading_identifier(-6629292502336270757) == ("?MH00C5XP2R", 3675)
    assert decode_reading_identifier(-6629292502336274432) == ("?MH00C5XP2R", 0)
    assert encode_reading_identifier("0MH00C5XP2R", 3675) == -6629292502336270757
    for serial, minute in (("3MH0012ACDE", 0), ("0M00009DHCR", 16383), ("1ZZZZZZZZZZ", 15)):
        number = encode_reading_identifier(serial, minute)
        assert -(1 << 63) <= number < 1 << 63
        assert decode_reading_identifier(number) == ("?" + serial[1:], minute)


# -- merging and time handling ------------------------------------------------------------------


def test_two_overlapping_uploads_merge(dump: Dump, upload: dict[str, Any]) -> None:
    first, second = copy.deepcopy(upload), copy.deepcopy(upload)
    history = entries(upload, SCHED)
    half = len(history) // 2
    entries(first, SCHED)[:] = history[: half + 10]  # 10 readings sent twice
    entries(second, SCHED)[:] = history[half:]
    for name in ("insulinEntries", "foodEntries", "genericEntries", UNSCHED, BG,
                 "ketoneEntries"):
        entries(second, name)[:] = []
    result = run_diff(dump, first, second)
    assert summary(result) == {}
    twice = [p for p in result.kinds["history"].matched if p.upload.carriers == [0, 1]]
    assert len(twice) == 10
    assert result.duplicates == 10
    only_second = [p for p in result.kinds["history"].matched if p.upload.carriers == [1]]
    assert len(only_second) == len(history) - half - 10


def test_a_resent_entry_with_another_value_is_kept(dump: Dump, upload: dict[str, Any]) -> None:
    second = copy.deepcopy(upload)
    for name in ("insulinEntries", "foodEntries", "genericEntries", UNSCHED, BG,
                 "ketoneEntries"):
        entries(second, name)[:] = []
    target = plain(entries(second, SCHED))[7]
    entries(second, SCHED)[:] = [target]
    target["valueInMgPerDl"] += 40
    result = run_diff(dump, upload, second)
    assert summary(result) == {"history": {"changed": [], "reader_only": [],
                                           "upload_only": [target["recordNumber"]]}}
    assert any("different contents" in w for w in result.warnings)


def test_utc_only_timestamps_need_a_zone(dump: Dump, upload: dict[str, Any]) -> None:
    """Nightscout-style uploads put UTC ("...Z") in timestamp; --tz places them."""
    body = copy.deepcopy(upload)
    del body["DeviceData"]["deviceSettings"]["timestamp"]
    for name, items in body["DeviceData"][LOG].items():
        if name == "capabilities":
            continue
        for entry in items:
            entry["timestamp"] = entry["extendedProperties"]["factoryTimestamp"]
    assert run_diff(dump, body, tz=TZ).identical
    lost = run_diff(dump, body)
    assert any("pass --tz" in w for w in lost.warnings)
    assert not lost.identical


def test_string_booleans_and_integer_values_are_accepted(dump: Dump,
                                                         upload: dict[str, Any]) -> None:
    body = copy.deepcopy(upload)
    for name in (SCHED, UNSCHED, BG):
        for entry in entries(body, name):
            ext = entry["extendedProperties"]
            ext["isFirstAfterTimeChange"] = "true" if ext["isFirstAfterTimeChange"] else "false"
            entry["valueInMgPerDl"] = int(entry["valueInMgPerDl"])
    assert run_diff(dump, body).identical


def test_tolerances(dump: Dump, upload: dict[str, Any]) -> None:
    body = copy.deepcopy(upload)
    target = plain(entries(body, SCHED))[9]
    shift(target, 45)  # inside the default 60 s
    target["valueInMgPerDl"] += 0.04  # inside the 0.05 float tolerance
    assert run_diff(dump, body).identical
    tight = run_diff(dump, body, time_tolerance=30)
    assert summary(tight) == {"history": {"changed": [(target["recordNumber"], ("time",))],
                                          "reader_only": [], "upload_only": []}}
    target["valueInMgPerDl"] += 0.02
    assert summary(run_diff(dump, body)) == {
        "history": {"changed": [(target["recordNumber"], ("mg/dL",))], "reader_only": [],
                    "upload_only": []}}


def test_a_different_numbering_still_matches_by_time(dump: Dump,
                                                     upload: dict[str, Any]) -> None:
    """Uploads from other tools number entries their own way (e.g. LibreLink's sensor
    encoding); matching then falls back to time and values."""
    body = copy.deepcopy(upload)
    for index, entry in enumerate(entries(body, SCHED)):
        entry["recordNumber"] = encode_reading_identifier("0MH00C5XP2R", index % 16384)
    result = run_diff(dump, body)
    assert summary(result) == {}
    assert {p.by for p in result.kinds["history"].matched} == {"time"}
    serials = [p for p in result.privacy if p.category == "serial"]
    assert [p.value for p in serials] == ["?MH00C5XP2R"]


# -- records placed in UTC by the timeline --------------------------------------------------------


def test_placed_records_match_uploads_with_copied_or_corrected_clocks(dump: Dump) -> None:
    """After the timeline placed the reader's records in UTC, an upload that copied the
    reader's clock and one whose times were corrected for the reader's clock changes both
    match; without the placement, the corrected one differs in the hours before the change."""
    placed = timeline.place(dump, TZ)
    assert all(r.utc is not None for r in placed.records if r.local_time is not None)
    copied = build_upload(dump, tz=TZ, redact=False)
    corrected = build_upload(placed, tz=TZ, redact=False)
    assert copied != corrected  # the segment before the clock change moved
    assert run_diff(placed, copied).identical
    assert run_diff(placed, corrected).identical
    unplaced = run_diff(dump, corrected)
    assert not unplaced.identical
    moved = [p for p in unplaced.kinds["history"].changed
             if [d.field for d in p.differences] == ["time"]]
    assert moved and all(abs((p.time_delta or 0) - 3600) < 1 for p in moved)


def test_cli_tz_places_the_reader(dump: Dump, tmp_path: Path) -> None:
    corrected = build_upload(timeline.place(dump, TZ), tz=TZ, redact=False)
    upload_file = tmp_path / "upload.json"
    upload_file.write_text(json.dumps(corrected))
    dump_file = tmp_path / "reader.json"
    dump_file.write_text(json.dumps(export.dump_document(dump)))
    base = ["diff", str(upload_file), "--dump", str(dump_file)]
    assert CliRunner().invoke(main, base).exit_code == 1
    with_tz = CliRunner().invoke(main, [*base, "--tz", TZ])
    assert with_tz.exit_code == 0, with_tz.output
