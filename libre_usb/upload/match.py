"""Pairing reader items with upload items, per kind (diff.py, "Pairing"), and the time
changes an upload flags on the first glucose entry after them."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from ..model import (
    Record,
)
from ..output.libreview import (
    TREND_NONE,
    first_after_time_changes,
    is_placeholder,
    place_local,
)
from .items import _norm_trend
from .kinds import (
    _GLUCOSE_KINDS,
    KETONE_TOLERANCE,
    Difference,
    KindResult,
    Pair,
    ReaderItem,
    UploadItem,
)


def _num_diff(out: list[Difference], name: str, reader: Any, upload: Any,
              tolerance: float) -> None:
    if reader is None and upload is None:
        return
    if reader is None or upload is None or abs(float(reader) - float(upload)) > tolerance:
        out.append(Difference(name, _plain(reader), _plain(upload)))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compare_values(kind: str, reader: dict[str, Any], upload: dict[str, Any],
                   value_tolerance: float) -> list[Difference]:
    """The value differences between a reader item and an upload item of one kind."""
    out: list[Difference] = []
    if kind in _GLUCOSE_KINDS or kind == "ketone":
        # the out-of-range flags only stand for the value when the reader gave none (LO/HI);
        # beside a number they are derived from it, and the number is compared
        if reader.get("range"):
            if reader.get("range") != upload.get("range"):
                unit = "mmol_l" if kind == "ketone" else "mg_dl"
                out.append(Difference("out of range",
                                      reader.get("range") or _plain(reader.get(unit)),
                                      upload.get("range") or _plain(upload.get(unit))))
        elif kind == "ketone":
            _num_diff(out, "mmol/L", reader.get("mmol_l"), upload.get("mmol_l"),
                      KETONE_TOLERANCE)
        else:
            _num_diff(out, "mg/dL", reader.get("mg_dl"), upload.get("mg_dl"), value_tolerance)
        if kind == "scan" and _norm_trend(reader.get("trend")) != upload.get("trend"):
            out.append(Difference("trendArrow", reader.get("trend") or TREND_NONE,
                                  upload.get("trend")))
    elif kind == "insulin":
        if str(reader.get("insulin_type")).lower() != str(upload.get("insulin_type")).lower():
            out.append(Difference("insulinType", reader.get("insulin_type"),
                                  upload.get("insulin_type")))
        _num_diff(out, "units", reader.get("units"), upload.get("units"), value_tolerance)
    elif kind == "food":
        _num_diff(out, "gramsCarbs", reader.get("carbs_g"), upload.get("carbs_g"),
                  value_tolerance)
    elif kind == "note":
        text = upload.get("text")
        if not is_placeholder(text) and text != reader.get("text"):
            out.append(Difference("text", reader.get("text"), text))
    elif kind == "alert" and reader.get("alarm") != upload.get("alarm"):
        out.append(Difference("alarm", reader.get("alarm"), upload.get("alarm")))
    return out


def _delta(reader: ReaderItem, upload: UploadItem) -> float | None:
    """Upload time minus reader time in seconds, the smallest of the comparable ones:

    - the reader's clock against the wall clock of the upload's local ``timestamp``;
    - when the upload entry has only a UTC time and a zone was given, the reader's clock
      placed in that zone (as :func:`~.build.place_local` does) against the UTC time;
    - when the timeline placed the reader record (``utc``), the two UTC instants.

    A vendor that copied the reader's clock matches on the first, one that corrected it
    with the reader's time changes on the last. None when no pair of times is comparable.
    """
    deltas: list[float] = []
    if reader.local is not None and upload.local is not None:
        deltas.append((upload.local - reader.local).total_seconds())
    if upload.zone is not None and upload.utc is not None and reader.local is not None:
        deltas.append((upload.utc - place_local(reader.local, upload.zone)[1]).total_seconds())
    if reader.utc is not None and upload.utc is not None:
        deltas.append((upload.utc - reader.utc).total_seconds())
    return min(deltas, key=abs) if deltas else None


class _Matcher:
    def __init__(self, kind: str, uploads: list[UploadItem], tolerance: float,
                 value_tolerance: float, reader_numbers: set[int]) -> None:
        self.kind = kind
        #: record ids of this kind on the reader: an upload entry carrying one of them is
        #: that record's entry, never paired with another record by time alone
        self.reader_numbers = reader_numbers
        self.tolerance = tolerance
        self.value_tolerance = value_tolerance
        self.used: set[int] = set()
        self.by_number: dict[int | None, list[UploadItem]] = defaultdict(list)
        for item in uploads:
            self.by_number[item.record_number].append(item)
        timed = [(item.local, position, item) for position, item in enumerate(uploads)
                 if item.local is not None]
        timed.sort(key=lambda row: (row[0], row[1]))
        self.timed = [row[2] for row in timed]
        self.times: list[dt.datetime] = [row[0] for row in timed]
        instants = [(item.utc, position, item) for position, item in enumerate(uploads)
                    if item.utc is not None]
        instants.sort(key=lambda row: (row[0], row[1]))
        self.by_instant = [row[2] for row in instants]
        self.instants: list[dt.datetime] = [row[0] for row in instants]

    def diffs(self, reader: ReaderItem, upload: UploadItem) -> list[Difference]:
        return compare_values(self.kind, reader.values, upload.values, self.value_tolerance)

    def _best(self, reader: ReaderItem, candidates: Iterable[UploadItem], strict: bool,
              within: bool, near: bool) -> tuple[UploadItem, float | None] | None:
        best: tuple[UploadItem, float | None] | None = None
        for item in candidates:
            if id(item) in self.used:
                continue
            if (near and item.record_number != reader.record_number
                    and item.record_number in self.reader_numbers):
                continue
            delta = _delta(reader, item)
            in_time = delta is None or abs(delta) <= self.tolerance
            if within != in_time:
                continue
            if strict and self.diffs(reader, item):
                continue
            if best is None or abs(delta or 0) < abs(best[1] or 0):
                best = (item, delta)
        return best

    def _near(self, reader: ReaderItem) -> list[UploadItem]:
        """Upload items whose local time, or UTC instant, is near the reader's."""
        span = dt.timedelta(seconds=self.tolerance)
        found: list[UploadItem] = []
        if reader.local is not None:
            low = bisect.bisect_left(self.times, reader.local - span)
            high = bisect.bisect_right(self.times, reader.local + span)
            found.extend(self.timed[low:high])
        if reader.utc is not None:
            low = bisect.bisect_left(self.instants, reader.utc - span)
            high = bisect.bisect_right(self.instants, reader.utc + span)
            seen = {id(item) for item in found}
            found.extend(item for item in self.by_instant[low:high] if id(item) not in seen)
        return found

    def run(self, readers: list[ReaderItem]) -> tuple[list[Pair], list[ReaderItem]]:
        pairs: list[Pair] = []
        pending = readers
        passes = (
            ("recordNumber", True, True, False),
            ("recordNumber", False, True, False),
            ("time", True, True, True),
            ("time", False, True, True),
            ("recordNumber (time differs)", False, False, False),
        )
        for by, strict, within, near in passes:
            left: list[ReaderItem] = []
            for reader in pending:
                candidates = self._near(reader) if near else self.by_number.get(
                    reader.record_number, [])
                found = self._best(reader, candidates, strict, within, near)
                if found is None:
                    left.append(reader)
                    continue
                item, delta = found
                self.used.add(id(item))
                differences = self.diffs(reader, item)
                if not within:
                    differences.insert(0, Difference("time", _iso(reader.local),
                                                     _iso(item.local)))
                elif delta is None:  # no comparable time on one side: cannot confirm it
                    upload_time = (f"{_iso(item.utc.replace(tzinfo=None))}Z (UTC only; no "
                                   "local offset known)" if item.utc is not None else None)
                    differences.insert(0, Difference("time", _iso(reader.local),
                                                     upload_time or _iso(item.local)))
                pairs.append(Pair(reader=reader, upload=item, by=by, time_delta=delta,
                                  differences=differences))
            pending = left
        return pairs, pending

    def unused(self) -> list[UploadItem]:
        return [item for items in self.by_number.values() for item in items
                if id(item) not in self.used]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _match_kind(kind: str, readers: list[ReaderItem], uploads: list[UploadItem],
                tolerance: float, value_tolerance: float) -> KindResult:
    result = KindResult(kind)
    matcher = _Matcher(kind, uploads, tolerance, value_tolerance,
                       {item.record_number for item in readers})
    expected = [item for item in readers if item.expected]
    unexpected = [item for item in readers if not item.expected]
    pairs, left = matcher.run(expected)
    for pair in pairs:
        (result.changed if pair.differences else result.matched).append(pair)
    result.reader_only.extend(left)
    if unexpected and matcher.unused():
        extra, left_unexpected = matcher.run(unexpected)
        for pair in extra:
            pair.differences.insert(0, Difference("validity", pair.reader.note,
                                                  "uploaded anyway"))
            result.changed.append(pair)
        result.not_expected.extend(left_unexpected)
    else:
        result.not_expected.extend(unexpected)
    result.upload_only.extend(matcher.unused())
    _sort(result)
    return result


def _sort(result: KindResult) -> None:
    def reader_key(item: ReaderItem) -> tuple[Any, ...]:
        return (item.local or dt.datetime.min, item.record_number)

    def upload_key(item: UploadItem) -> tuple[Any, ...]:
        return (item.local or dt.datetime.min, item.record_number or 0)

    result.matched.sort(key=lambda pair: reader_key(pair.reader))
    result.changed.sort(key=lambda pair: reader_key(pair.reader))
    result.reader_only.sort(key=reader_key)
    result.not_expected.sort(key=reader_key)
    result.upload_only.sort(key=upload_key)


def _match_time_changes(records: Sequence[Record], kinds: dict[str, KindResult],
                        flagged: list[UploadItem], tolerance: float) -> KindResult:
    result = KindResult("time_change")
    pair_of: dict[int, Pair] = {}
    for kind in _GLUCOSE_KINDS:
        for known in (*kinds[kind].matched, *kinds[kind].changed):
            pair_of[id(known.reader.record)] = known
    used: set[int] = set()
    pending: list[tuple[ReaderItem, Record | None, Pair | None]] = []
    for change, reading in first_after_time_changes(records):
        values = {"old_time": _iso(change.old_time), "new_time": _iso(change.new_time),
                  "first_reading": None if reading is None else
                  f"{reading.kind.value} {reading.record_id}"}
        item = ReaderItem(kind="time_change", record=change, record_number=change.record_id,
                          local=change.new_time or change.local_time, utc=change.utc,
                          values=values)
        if reading is None:
            item.expected = False
            item.note = "no uploadable glucose reading follows it"
            result.not_expected.append(item)
            continue
        pair = pair_of.get(id(reading))
        if pair is not None and pair.upload.first_after_time_change:
            used.add(id(pair.upload))
            result.matched.append(Pair(reader=item, upload=pair.upload,
                                       by="isFirstAfterTimeChange", time_delta=pair.time_delta,
                                       differences=[]))
        else:
            pending.append((item, reading, pair))
    for item, reading, found in pending:
        assert reading is not None
        best: UploadItem | None = None
        start = item.local
        for candidate in flagged:
            if id(candidate) in used or candidate.local is None or start is None:
                continue
            if candidate.local < start - dt.timedelta(seconds=tolerance):
                continue
            if best is None or candidate.local < best.local:  # type: ignore[operator]
                best = candidate
        expected_entry = f"{reading.kind.value} record {reading.record_id}"
        if best is not None:
            used.add(id(best))
            result.changed.append(Pair(
                reader=item, upload=best, by="isFirstAfterTimeChange", time_delta=None,
                differences=[Difference("flagged entry", expected_entry,
                                        f"{best.kind} recordNumber {best.record_number}")]))
        else:
            item.note = ("the upload does not flag the reading after it "
                         f"({expected_entry}"
                         + (", which is not in the upload)" if found is None else ")"))
            result.reader_only.append(item)
    result.upload_only.extend(item for item in flagged if id(item) not in used)
    _sort(result)
    return result
