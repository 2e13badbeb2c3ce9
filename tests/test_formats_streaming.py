"""The streaming writers (issue 16): the same bytes as the standard library's encoder on the
same document, memory that does not grow with the dump, and no per-record reflection."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tracemalloc
from decimal import Decimal
from typing import IO, Any

import msgspec
import pytest
from msgspec.structs import asdict

from libre_usb import model
from libre_usb.model import (
    Dump,
    HistoryRecord,
    InsulinRecord,
    NoteRecord,
    Record,
    TimeChangeRecord,
    UnknownRecord,
    record_encoder,
    record_fields,
)
from libre_usb.output import export, timeline
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport

MODELS = ("libre", "libre2", "libre3", "neo", "insulinx")
#: the writers themselves (conftest wraps the json one to validate its whole output)
WRITERS = dict(export.WRITERS)


def _reference(dump: Dump, fmt: str, unit: str) -> str:
    """Each format as the standard library's encoder writes it (the writers before they
    streamed): the oracle for the fast path."""
    if fmt == "json":
        return json.dumps(export.dump_document(dump, unit), ensure_ascii=False, indent=1) + "\n"
    records = export.sorted_records(dump.records)
    if fmt == "ndjson":
        head = {"kind": "device", "format": export.FORMAT_NAME, "version": 1, "unit": unit,
                "device": dump.device.to_dict(), "timezone": dump.timezone}
        return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in
                       [head, *(export.record_dict(r, unit) for r in records)])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(export.CSV_COLUMNS)
    for record in records:
        data = export.record_dict(record, unit)
        writer.writerow(["" if data.get(name) is None else
                         json.dumps(data[name], ensure_ascii=False) if name in ("raw", "fields")
                         else ("true" if data[name] else "false")
                         if isinstance(data[name], bool) else str(data[name])
                         for name in export.CSV_COLUMNS])
    return out.getvalue()


@pytest.fixture(scope="module", params=MODELS)
def placed(request: pytest.FixtureRequest) -> Dump:
    reader = VirtualReader(request.param, seed=7, days=6)
    dump = Session(SimTransport(reader), request.param).dump()
    return timeline.place(dump, "Europe/Berlin")


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv"])
@pytest.mark.parametrize("unit", ["mg/dL", "mmol/L"])
def test_fast_writers_write_the_standard_librarys_bytes(placed: Dump, fmt: str,
                                                        unit: str) -> None:
    assert export.render(placed, fmt, unit=unit) == _reference(placed, fmt, unit)


def _odd_records() -> list[Record]:
    when = dt.datetime(2024, 3, 31, 2, 30)
    return [
        NoteRecord(record_id=1, source="$arresult?", record_type=2, local_time=when,
                   text="emoji 😀, quote \" backslash \\ tab \t newline \n nul \x00 \u2028 é"),
        InsulinRecord(record_id=2, source="$arresult?", record_type=2, local_time=None,
                      units=Decimal("1.5"), raw=((40, "x,y"), (41, ""))),
        TimeChangeRecord(record_id=3, source="$arresult?", record_type=5, local_time=when,
                         old_time=when.replace(microsecond=250000), new_time=when),
        HistoryRecord(record_id=4, source="$history?", record_type=0, local_time=when,
                      utc=dt.datetime(2024, 3, 31, 5, 30, tzinfo=dt.timezone(
                          dt.timedelta(hours=5))), time_status="ok", glucose_mg_dl=None),
        HistoryRecord(record_id=5, source="$history?", record_type=0, local_time=when,
                      utc=dt.datetime(2024, 3, 31, 0, 30, 1, 7, tzinfo=dt.timezone.utc),
                      time_status="ok", glucose_mg_dl=40),
        UnknownRecord(record_id=-1, source="$result?", record_type=-1, local_time=None,
                      fields=("a", "", "ü")),
    ]


def test_the_walking_encoder_makes_the_compiled_encoders_dict(placed: Dump) -> None:
    """record_encoder(compiled=False), for kinds with few records, against the compiled one:
    the same keys in the same order and the same values, both units, both time modes."""
    seen = set()
    for record in (*placed.records, *_odd_records()):
        for derived in ((), (("glucose_mg_dl", "glucose_mmol_l"),)):
            for native in (False, True):
                walked = record_encoder(type(record), derived, native_times=native,
                                        compiled=False)(record)
                made = record_encoder(type(record), derived, native_times=native)(record)
                assert list(walked.items()) == list(made.items())
                assert [type(v) for v in walked.values()] == [type(v) for v in made.values()]
        seen.add(type(record))
    assert len(seen) >= 5  # the odd records alone bring 5 classes


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv"])
def test_fast_writers_on_odd_values(placed: Dump, fmt: str) -> None:
    """Texts with every kind of escape, fractional seconds and other zones (written as _iso
    writes them), missing times and values, unknown records."""
    dump = msgspec.structs.replace(placed, records=tuple(_odd_records()))
    for unit in ("mg/dL", "mmol/L"):
        assert export.render(dump, fmt, unit=unit) == _reference(dump, fmt, unit)


def test_records_out_of_order_are_written_in_order(placed: Dump) -> None:
    ordered = tuple(export.sorted_records(placed.records))
    half = len(ordered) // 2
    shuffled = msgspec.structs.replace(placed, records=ordered[half:] + ordered[:half])
    assert export.in_order(shuffled.records) is not shuffled.records
    assert export.in_order(ordered) is ordered  # no copy when already in order
    for fmt in ("json", "ndjson", "csv"):
        assert export.render(shuffled, fmt) == _reference(shuffled, fmt, "mg/dL")


class _Sink(io.TextIOBase):
    """An output that keeps nothing, counting what was written."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, text: str) -> int:
        self.written += len(text)
        return len(text)


def _peak(dump: Dump, fmt: str) -> int:
    sink: IO[str] = _Sink()  # type: ignore[assignment]
    tracemalloc.start()
    try:
        WRITERS[fmt](dump, sink)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv"])
def test_writers_stream_in_memory_that_does_not_grow_with_the_dump(fmt: str) -> None:
    history = [HistoryRecord(record_id=i, source="$history?", record_type=0,
                             local_time=dt.datetime(2024, 1, 1) + dt.timedelta(minutes=15 * i),
                             glucose_mg_dl=100 + i % 50, raw=((8, "1"), (9, "0")))
               for i in range(20000)]
    small = Dump(device=_device(), records=tuple(history[:2000]))
    large = Dump(device=_device(), records=tuple(history))
    assert _peak(large, fmt) < 1.5 * _peak(small, fmt)


def _device() -> Any:
    from libre_usb.model import DeviceInfo

    return DeviceInfo(model="libre", product_id=0x3650, serial="X")


def test_to_dict_is_compiled_once_per_class_not_reflected_per_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    record = _odd_records()[0]
    encoder = record_encoder(type(record))
    assert record_encoder(type(record)) is encoder

    assert export.render(Dump(device=_device(), records=(record,)), "csv")

    def no_reflection(*args: object) -> None:
        raise AssertionError("record fields read while writing a record")

    monkeypatch.setattr(model, "record_fields", no_reflection)
    monkeypatch.setattr(export, "record_fields", no_reflection)
    assert record.to_dict()["text"].startswith("emoji")
    assert export.render(Dump(device=_device(), records=(record,) * 3), "csv")


def test_fast_history_records_equal_the_ones_init_makes() -> None:
    """The history parser's records are the very records the class's __init__ makes from
    the same values (every field, the shared raw tuple's hash)."""
    from libre_usb.protocol.text.records import parse_lines

    lines = [b"58012,12,4,8,19,22,33,13,1,0,0,0,0,95,3765,0",
             b"58013,12,4,8,19,22,48,13,1,0,0,0,1,96,3780,32768",
             b"58014,12,255,255,255,255,255,255,1,0,0,0,0,97,3795,0",
             b"58015,12,4,8,19,22,48,13,1,0,0,0,7,98,3810,0"]
    for record in parse_lines("libre_history", lines, "$history?"):
        assert isinstance(record, HistoryRecord)
        made = HistoryRecord(**{f.name: getattr(record, f.name)
                                for f in record_fields(HistoryRecord)})
        assert made == record and asdict(made) == asdict(record)
        assert hash(made.raw) == hash(record.raw)


def _both_ways(data: dict[str, Any]) -> tuple[object, object]:
    """(what Record.from_dict makes of ``data``, what the general field-by-field checks
    make of it): a record, or the error's type and text."""
    def attempt(func: Any) -> object:
        try:
            record = func(data)
        except (TypeError, ValueError, KeyError) as exc:
            return (type(exc), str(exc))
        return (type(record), asdict(record))

    return attempt(Record.from_dict), attempt(Record._from_dict_checked)


def test_compiled_decoders_read_every_record_as_the_general_checks_do(placed: Dump) -> None:
    """model.record_decoder (one compiled function per class) against the general
    field-by-field way, on every record of every virtual reader model, and on the same
    records with each field spoiled: the same record, or the same error."""
    spoilers: list[Any] = [None, "", "x", 1, -1, 10 ** 10, 1.5, float("nan"), True, [], [[1]],
                           [[1, "a"]], [["1", "a"]], {}, "2024-05-01T12:00:00",
                           "2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-13-01"]
    seen: set[str] = set()
    for record in placed.records:
        data = record.to_dict()
        fast, general = _both_ways(data)
        assert fast == general and fast[0] is type(record)
        assert fast[1] == asdict(record)
        if record.kind.value in seen:
            continue
        seen.add(record.kind.value)
        for name in [key for key in data if key != "kind"]:
            for value in spoilers:
                changed = {**data, name: value}
                assert _both_ways(changed)[0] == _both_ways(changed)[1], (name, value)
            missing = {key: value for key, value in data.items() if key != name}
            assert _both_ways(missing)[0] == _both_ways(missing)[1], name


def test_record_readers_read_the_archived_text_as_the_general_way_does(placed: Dump) -> None:
    """model.record_reader (msgspec into a struct generated from the class, then the same
    checks) against json.loads + the general field-by-field way, on the text the archive
    keeps of every record (json.dumps of to_dict) and on spoiled texts: the same record, or
    None where the general way is left to decide (which then refuses or reads it)."""
    from libre_usb.model import read_record

    spoilers: list[Any] = [None, "", "x", 1, -1, 10 ** 10, 10 ** 30, 1.5, 1e300, True, [],
                           [[1]], [[1, "a"]], [[True, "a"]], [["1", "a"]], [[1, "a", 2]], {},
                           "2024-05-01T12:00:00", "2024-05-01T12:00:00Z", "2024-05-01 12:00:00",
                           "2024-05-01T12:00:00+02:00", "2024-13-01", "2024-05-01t12:00:00z",
                           "\ud800"]
    seen: set[str] = set()
    for record in placed.records:
        data = record.to_dict()
        text = json.dumps(data, ensure_ascii=False)
        read = read_record(record.kind.value, text)
        assert read is not None and type(read) is type(record)
        assert asdict(read) == asdict(record)
        if record.kind.value in seen:
            continue
        seen.add(record.kind.value)
        variants = [{**data, name: value} for name in data if name != "kind"
                    for value in spoilers]
        variants += [{k: v for k, v in data.items() if k != name} for name in data]
        variants.append({**data, "kind": "note" if record.kind.value != "note" else "food"})
        for changed in variants:
            text = json.dumps(changed, ensure_ascii=False)
            fast = read_record(record.kind.value, text)
            if fast is None:
                continue
            general = Record.from_dict(json.loads(text))
            assert type(fast) is type(general) and asdict(fast) == asdict(general), changed


@pytest.mark.parametrize("seconds", [True, False])
def test_reader_time_fast_way_reads_as_the_field_by_field_way(seconds: bool) -> None:
    """reader_time reads count plain numbers with one regular expression; anything else
    field by field (_canonical): both ways give the same time or None on every spelling."""
    import itertools
    import random

    from libre_usb.protocol.text import records as text_records

    def general(fields: list[str], start: int) -> dt.datetime | None:
        count = 6 if seconds else 5
        try:
            parts = [text_records._canonical(t) for t in fields[start:start + count]]
        except ValueError:
            return None
        if len(parts) < count:
            return None
        month, day, year, hour, minute = parts[:5]
        if year > 99:
            return None
        try:
            return dt.datetime(2000 + year, month, day, hour, minute,
                               parts[5] if seconds else 0)
        except (ValueError, OverflowError):
            return None

    spellings = ["0", "1", "5", "12", "24", "59", "60", "99", "100", "007", "-1", "+1", " 1",
                 "1 ", "", "1,2", "\u0661", "\u00b2", "1e1", "999999999", "1234567890",
                 "9" * 30, "255"]
    rng = random.Random(16)
    cases = [["5", "1", "24", "12", "30", "15"], ["2", "30", "24", "0", "0", "0"]]
    cases += [[rng.choice(spellings) for _ in range(rng.randint(3, 7))] for _ in range(3000)]
    cases += [list(p) for p in itertools.product(["1", "01", "1,1"], repeat=6)]
    for fields in cases:
        line = ["x", "y", *fields]
        assert text_records.reader_time(line, 2, seconds=seconds) == general(line, 2), fields
