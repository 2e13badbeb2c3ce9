"""Diff a reader's records against one or more captured uploads, and list what they reveal.

Matching is per kind (the entry lists LibreLink fills, as Juggluco's ``libreview.cpp`` does):

===========================  ==============================================================
kind                         reader record <-> upload entry
===========================  ==============================================================
history                      ``$history?`` reading <-> ``scheduledContinuousGlucoseEntries``
scan                         scan <-> ``unscheduledContinuousGlucoseEntries`` (+ trendArrow)
glucose                      strip glucose <-> ``bloodGlucoseEntries``
ketone                       strip ketone <-> ``ketoneEntries`` (mmol/L)
insulin                      insulin <-> ``insulinEntries`` (insulinType and units)
food                         food <-> ``foodEntries`` (gramsCarbs)
exercise, medication, note   <-> ``genericEntries`` exercise / medication / customnote (text)
sensorstart                  first history reading of a sensor <-> generic ``sensorstart``
time_change                  time change <-> ``isFirstAfterTimeChange`` on the first glucose
                             entry after it (:func:`~.build.first_after_time_changes`)
current                      (nothing on a reader) <-> ``currentGlucoseEntries``
other                        unknown reader records <-> generic entries of other types
===========================  ==============================================================

Times: the reader's local clock is compared with the wall clock of the upload's local
``timestamp``. When an entry's ``timestamp`` carries no local offset (``…Z`` or none), its
``factoryTimestamp`` (UTC) is moved to local time with ``tz`` if given, else with the
offset the upload itself shows (``timestamp`` minus ``factoryTimestamp`` of its other
entries, or of ``deviceSettings.timestamp``). When the reader record has been placed in UTC
by the timeline (``record.utc``), agreeing UTC instants count as a match too (a vendor may
copy the reader's clock or correct it). Two times match within ``time_tolerance`` seconds
(default 60).

Values: glucose in mg/dL, insulin units and grams match within ``value_tolerance``
(default 0.05: readers store whole mg/dL, half units and whole grams, so this only absorbs
float printing); ketones in mmol/L within 0.005 (uploads round to 0.01). Booleans may be JSON
bools or the strings "true"/"false".

Pairing, for each kind: (1) same ``recordNumber``, time within tolerance, same values;
(2) same ``recordNumber``, time within tolerance; (3) time within tolerance, same values;
(4) nearest time within tolerance; (5) same ``recordNumber`` with the time off by more than
the tolerance. Steps 3 and 4 (for uploads that number entries their own way) never take an
entry whose ``recordNumber`` is another reader record's id of the same kind. Pairs with a
difference are "changed"; the rest are "reader only" and "upload only". Readings the reader
marks invalid are not expected in an upload: they are listed as "not expected", and are
"changed" only if an upload carries them anyway.

Several uploads are merged first: entries with the same kind, ``recordNumber``, values and
time (to the second) are one entry, carried by every upload listed in ``carriers``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ..model import (
    Dump,
)
from ..output.libreview import (
    ANNOTATION_KEY,
    resolve_tz,
)
from .fields import _unexplained
from .items import reader_items, upload_items
from .kinds import (
    _GLUCOSE_KINDS,
    DEFAULT_TIME_TOLERANCE,
    DEFAULT_VALUE_TOLERANCE,
    KETONE_TOLERANCE,
    KINDS,
    Difference,
    DiffResult,
    KindResult,
    Pair,
    PrivacyItem,
    ReaderItem,
    UnexplainedField,
    UploadItem,
    UploadSummary,
)
from .load import Upload
from .match import _iso, _match_kind, _match_time_changes, compare_values
from .privacy import _privacy


def time_shift(kinds: dict[str, KindResult], uploads: Sequence[Upload],
               zone_name: str | None) -> dict[str, Any] | None:
    """The constant time shift that most "changed" pairs differ by and nothing else, when at
    least half of them (and two or more) do: an upload made in another zone or with another
    clock, named first in the report instead of a wall of differences."""
    shifts: Counter[int] = Counter()
    changed = 0
    for result in kinds.values():
        for pair in result.changed:
            changed += 1
            if (pair.reader.local is not None and pair.upload.local is not None
                    and pair.differences and all(d.field == "time" for d in pair.differences)):
                shifts[round((pair.upload.local - pair.reader.local).total_seconds())] += 1
    if not shifts:
        return None
    seconds, entries = shifts.most_common(1)[0]
    if seconds == 0 or entries < 2 or entries * 2 < changed:
        return None
    zones = set()
    for upload in uploads:
        note = upload.data.get(ANNOTATION_KEY)
        if isinstance(note, dict) and isinstance(note.get("timezone"), str):
            zones.add(note["timezone"])
    zones.discard(zone_name or "")
    return {"seconds": seconds, "entries": entries, "changed": changed,
            "zone": sorted(zones)[0] if len(zones) == 1 else None}


def diff_uploads(dump: Dump, uploads: Sequence[Upload], *, tz: str | dt.tzinfo | None = None,
                 time_tolerance: float = DEFAULT_TIME_TOLERANCE,
                 value_tolerance: float = DEFAULT_VALUE_TOLERANCE,
                 zone_source: str | None = None) -> DiffResult:
    """Compare the reader's records in ``dump`` with the entries of ``uploads``. ``tz`` (else
    the zone ``dump`` was placed in) places upload entries that carry UTC times only;
    ``zone_source`` says where that zone came from, for the report."""
    zone = resolve_tz(tz) if tz is not None else (
        resolve_tz(dump.timezone) if dump.timezone else None)
    warnings: list[str] = []
    by_kind, duplicates = upload_items(uploads, zone, time_tolerance, warnings)
    readers: dict[str, list[ReaderItem]] = defaultdict(list)
    for item in reader_items(dump.records):
        readers[item.kind].append(item)
    kinds: dict[str, KindResult] = {}
    for kind in KINDS:
        if kind == "time_change":
            continue
        kinds[kind] = _match_kind(kind, readers.get(kind, []), by_kind.get(kind, []),
                                  time_tolerance, value_tolerance)
    flagged = [item for kind in (*_GLUCOSE_KINDS, "current") for item in by_kind.get(kind, [])
               if item.first_after_time_change]
    kinds["time_change"] = _match_time_changes(dump.records, kinds, flagged, time_tolerance)
    kinds = {kind: kinds[kind] for kind in KINDS}
    device = dump.device
    reader = {
        "model": device.model,
        "serial": device.serial,
        "software_version": device.software_version,
        "unit": device.unit,
        "clock": _iso(device.clock),
        "records": len(dump.records),
        "counts": dump.counts(),
    }
    summaries = [
        UploadSummary(index=index, label=upload.label(), container=upload.source.container,
                      file=upload.source.file, method=upload.source.method,
                      url=upload.source.url, host=upload.source.host,
                      server_address=upload.source.server_address, time=upload.source.time,
                      encoding=upload.source.encoding, size=upload.size,
                      entries=dict(Counter(entry.list_name for entry in upload.entries)))
        for index, upload in enumerate(uploads)
    ]
    zone_name = None if zone is None else str(getattr(zone, "key", None) or zone)
    settings: dict[str, Any] = {
        "time_tolerance_s": time_tolerance,
        "value_tolerance": value_tolerance,
        "ketone_tolerance_mmol_l": KETONE_TOLERANCE,
        "timezone": zone_name,
        "timezone_source": zone_source if zone is not None else None,
    }
    return DiffResult(reader=reader, uploads=summaries, kinds=kinds,
                      privacy=_privacy(uploads, dump), unexplained=_unexplained(uploads),
                      warnings=warnings, settings=settings, duplicates=duplicates,
                      time_shift=time_shift(kinds, uploads, zone_name))


__all__ = [
    "DEFAULT_TIME_TOLERANCE",
    "DEFAULT_VALUE_TOLERANCE",
    "KINDS",
    "DiffResult",
    "Difference",
    "KindResult",
    "Pair",
    "PrivacyItem",
    "ReaderItem",
    "UnexplainedField",
    "UploadItem",
    "UploadSummary",
    "compare_values",
    "diff_uploads",
    "time_shift",
]
