"""Upload diff with the binary protocol's kinds: ``ondemandalarm.*``, ``sensorend`` and
``error`` generic entries against reader ``alert`` and ``event`` records."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from libre_usb.model import AlertRecord, Dump, EventRecord, Kind
from libre_usb.output import timeline
from libre_usb.output.libreview import GENERIC_ALARMS, GENERIC_EVENTS, build_upload
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport
from libre_usb.upload.diff import DiffResult, diff_uploads
from libre_usb.upload.load import load_bytes

TZ = "Europe/Berlin"


@pytest.fixture(scope="module")
def dump() -> Dump:
    with Session(SimTransport(VirtualReader("libre", seed=5, days=30)), protocol="binary",
                 timeout_ms=2000) as session:
        return timeline.place(session.dump(), TZ)


def generic(body: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = body["DeviceData"]["measurementLog"]["genericEntries"]
    return entries


def run_diff(dump: Dump, body: dict[str, Any]) -> DiffResult:
    return diff_uploads(dump, load_bytes(json.dumps(body).encode(), name="upload.json"))


def test_alerts_and_events_become_generic_entries_and_match(dump: Dump) -> None:
    body = build_upload(dump, tz=TZ, redact=False)
    types = [entry["type"] for entry in generic(body)]
    alerts = [r for r in dump.records if isinstance(r, AlertRecord)]
    events = [r for r in dump.records if isinstance(r, EventRecord) and r.event in GENERIC_EVENTS]
    assert alerts and {e.event for e in events} == {"sensor_expired", "error"}
    for alert in alerts:
        assert GENERIC_ALARMS[alert.alarm] in types
    assert sum(t.endswith("sensorend") for t in types) == sum(
        e.event == "sensor_expired" for e in events)
    result = run_diff(dump, body)
    assert result.identical
    counts = result.counts()
    assert counts["alert"]["matched"] == len(alerts)
    assert counts["sensorend"]["matched"] + counts["error"]["matched"] == len(events)
    # events without an upload entry (battery, resets...) are shown, not differences
    others = [r for r in dump.by_kind(Kind.EVENT) if r not in events]
    assert counts["other"]["not_expected"] >= len(others) > 0


def test_missing_and_extra_alerts_are_reported(dump: Dump) -> None:
    body = build_upload(dump, tz=TZ, redact=False)
    entries = generic(body)
    first = next(i for i, e in enumerate(entries) if "ondemandalarm" in e["type"])
    extra = copy.deepcopy(entries[first])
    del entries[first]
    # an alarm the reader never raised: same time, another kind of alarm, another number
    extra["type"] = extra["type"].rsplit(".", 1)[0] + (
        ".projectedhigh" if not extra["type"].endswith("projectedhigh") else ".low")
    extra["recordNumber"] = 987654321
    entries.append(extra)
    error = next(i for i, e in enumerate(entries) if e["type"].endswith(".error"))
    del entries[error]
    result = run_diff(dump, body)
    assert not result.identical
    alert = result.kinds["alert"]
    assert len(alert.reader_only) + len(alert.changed) >= 1
    assert len(alert.upload_only) + len(alert.changed) >= 1
    assert len(result.kinds["error"].reader_only) == 1
