"""Deterministic, realistic reader content from a seed, for every reader model.

The virtual reader's memory, built as typed records (:mod:`libre_usb.model`) first; the reader
turns them into lines with its own writers in :mod:`libre_usb.simulator.lines`. Tests compare
a dump with these records field by field.

* Libre family (``libre``, ``libre2``, ``libre_pro``; ``libre3`` with its own line layouts):
  90 days of 15-minute sensor history across 14-day sensors (with warm-up gaps and error
  readings), about ten scans a day with trend arrows, strip glucose and ketone tests, rapid
  and long insulin, carbs, exercise, medication, custom notes in several scripts (not on the
  Libre 3, whose lines carry no comment texts), a daylight-saving clock change the user made
  by hand, and a few records of a type we do not decode (kept raw).
* ``neo`` (Precision/Optium Neo): strip glucose (with HI and LO), ketone strips, insulin
  entered on the meter (all five insulin types), a time change, and a few records of a type
  we do not decode.
* ``insulinx``: strip glucose, the weekly type-4 records, time changes, Latin-1 smart tags.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from decimal import Decimal

import msgspec

from ..model import (
    ALARM_NAMES,
    AlertRecord,
    EventRecord,
    ExerciseRecord,
    FoodRecord,
    GlucoseRecord,
    HistoryRecord,
    InsulinRecord,
    KetoneRecord,
    MedicationRecord,
    NoteRecord,
    ReadingRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
    UnknownRecord,
)

#: the six custom comments a user configured (non-ASCII on purpose)
COMMENTS = ("Café", "Sport intensif", "Müde", "Стресс", "夜食", "Alcool 🍷")
#: the InsuLinx smart tags (its text is Latin-1): (number, state, text)
TAGS = ((1, 1, "Activité très intense"), (2, 1, "Fête"), (3, 1, "Malade"),
        (4, 1, "Médicaments"), *((n, 2, "") for n in range(5, 12)))

#: the reader's clock when the dump is taken (its local time, naive)
DEFAULT_NOW = dt.datetime(2026, 6, 15, 12, 0, 0)
#: when the user moved the clock forward an hour for summer time: old -> new
DST_CHANGE = (dt.datetime(2026, 3, 29, 9, 12, 41), dt.datetime(2026, 3, 29, 10, 12, 41))

#: models whose lines have the Libre 1 layout
LIBRE_LAYOUT = ("libre", "libre2", "libre_pro")
MODELS = (*LIBRE_LAYOUT, "libre3", "neo", "insulinx")


@dataclasses.dataclass
class ReaderContent:
    """Everything the virtual reader stores."""

    serial: str
    software_version: str
    unit: str
    patient_name: str
    patient_id: str
    clock: dt.datetime
    history: list[HistoryRecord]
    #: $arresult? (Libre family) or $result? (Neo, InsuLinx) lines in order: each entry is
    #: the records of one line
    results: list[list[Record]]
    record_counter: int
    comments: tuple[str, ...] = COMMENTS
    #: the model this content is shaped for (it decides the line layouts)
    model: str = "libre"
    #: InsuLinx smart tags
    tags: tuple[tuple[int, int, str], ...] = ()
    #: the ``$lang?`` code
    language: int = 2
    #: glycemic alarms on results and the device's event log (Libre 1 layout models only;
    #: the binary protocol shows them, the text protocol does not)
    alerts: list[AlertRecord] = dataclasses.field(default_factory=list)
    events: list[EventRecord] = dataclasses.field(default_factory=list)
    #: the events table's record number of the user's clock change (binary protocol)
    clock_change_event_id: int = 0
    #: the Neo's ``$event?`` log as the host keeps it (the layout is not public, so the lines
    #: are made up and every field stays raw)
    meter_events: list[EventRecord] = dataclasses.field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        """All records, in the order a dump lists them."""
        out: list[Record] = list(self.history)
        for line in self.results:
            out.extend(line)
        out.extend(self.meter_events)
        return out


def _serial(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return (
        "".join(rng.choice(letters) for _ in range(4))
        + "".join(rng.choice("0123456789") for _ in range(3))
        + "-"
        + rng.choice(letters)
        + "".join(rng.choice("0123456789") for _ in range(4))
    )


class _Glucose:
    """A smooth, plausible glucose curve in mg/dL."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.phase = rng.uniform(0, 2 * math.pi)
        self.meals = [(7.5, 50), (12.5, 60), (19.0, 70)]

    def at(self, when: dt.datetime) -> int:
        hours = when.hour + when.minute / 60
        value = 115 + 25 * math.sin(hours / 24 * 2 * math.pi + self.phase)
        for meal_hour, rise in self.meals:
            delta = hours - meal_hour
            if 0 <= delta < 4:
                value += rise * delta * math.exp(1 - delta) / 1.0
        value += 10 * math.sin(when.toordinal() * 1.3)
        return max(40, min(500, round(value)))


class _Clock:
    """The reader's displayed time for an instant given in the current clock frame: before
    the user's DST change the clock showed an hour less. When the content's window does not
    hold :data:`DST_CHANGE`, the user changed the clock in the middle of the window."""

    def __init__(self, start: dt.datetime, now: dt.datetime, enabled: bool,
                 change: tuple[dt.datetime, dt.datetime]) -> None:
        self.old, self.new = change
        if not start < self.old < now:
            shift = self.new - self.old
            self.old = (start + (now - start) / 2).replace(
                hour=self.old.hour, minute=self.old.minute, second=self.old.second,
                microsecond=0)
            self.new = self.old + shift
        self.active = enabled and start < self.old < now

    def __call__(self, when: dt.datetime) -> dt.datetime:
        if self.active and when < self.new:
            return when - (self.new - self.old)
        return when


def _events(rng: random.Random, start: dt.datetime, now: dt.datetime,
            rates: dict[str, tuple[float, int, int]]) -> list[tuple[dt.datetime, str]]:
    """Random events per day: name -> (probability or count per day, first hour, last hour).
    A rate above 1 is a number of events per day (7..13 for ``10``)."""
    events: list[tuple[dt.datetime, str]] = []
    day = start.replace(hour=0, minute=0, second=0)
    while day < now:
        for name, (rate, first, last) in rates.items():
            count = rng.randint(int(rate * 0.7), int(rate * 1.3)) if rate >= 1 else (
                1 if rng.random() < rate else 0)
            for _ in range(count):
                seconds = rng.randrange(first * 3600, last * 3600)
                events.append((day + dt.timedelta(seconds=seconds), name))
        day += dt.timedelta(days=1)
    events = [(when, name) for when, name in events if when <= now - dt.timedelta(minutes=5)]
    # every kind of event at least once, so any window holds every kind of record
    seen = {name for _, name in events}
    for name, (_, first, last) in rates.items():
        if name not in seen:
            day = (start + (now - start) * rng.uniform(0.1, 0.9)).replace(
                hour=0, minute=0, second=0, microsecond=0)
            events.append((day + dt.timedelta(seconds=rng.randrange(first * 3600,
                                                                     last * 3600)), name))
    events.sort()
    return events


def generate(seed: int = 0, *, model: str = "libre", days: int = 90,
             now: dt.datetime = DEFAULT_NOW, time_change: bool = True) -> ReaderContent:
    """Build the content of a virtual reader of ``model`` from ``seed``."""
    if model in (*LIBRE_LAYOUT, "libre3"):
        return _generate_libre(seed, model, days, now, time_change)
    if model == "neo":
        return _generate_neo(seed, days, now, time_change)
    if model == "insulinx":
        return _generate_insulinx(seed, days, now, time_change)
    raise ValueError(f"no virtual reader content for model {model!r}")


# -- Libre family -------------------------------------------------------------------------------

def _generate_libre(seed: int, model: str, days: int, now: dt.datetime,
                    time_change: bool) -> ReaderContent:
    rng = random.Random(seed)  # noqa: S311 - test content, not secrets
    curve = _Glucose(rng)
    libre3 = model == "libre3"
    start = now - dt.timedelta(days=days)
    clock = _Clock(start, now, time_change, DST_CHANGE)

    # -- sensor history ----------------------------------------------------------------
    history: list[HistoryRecord] = []
    history_id = 40000 + rng.randrange(5000)
    history_raw = ((8, "1"), (9, "0"), (10, "0")) if libre3 else (
        (8, "1"), (9, "0"), (10, "0"), (11, "0"))
    sensor_start = start.replace(second=0, microsecond=0) + dt.timedelta(minutes=rng.randrange(60))
    while sensor_start < now:
        runtime = 60  # one hour warm-up with no readings
        first = True
        while runtime <= 14 * 24 * 60:
            when = sensor_start + dt.timedelta(minutes=runtime)
            if when > now:
                break
            errored = rng.random() < 0.004
            history.append(
                HistoryRecord(
                    record_id=history_id,
                    source="$history?",
                    record_type=12,
                    local_time=clock(when),
                    raw=history_raw,
                    glucose_mg_dl=0 if errored else curve.at(when),
                    sensor_runtime_min=runtime,
                    first_after_insertion=first,
                    errors=0x8000 if errored else 0,
                )
            )
            history_id += 1
            first = False
            runtime += 15
        # a new sensor goes on a little after the old one ends
        sensor_start += dt.timedelta(days=14, minutes=30 + rng.randrange(120))

    # -- scans, strips, logbook ---------------------------------------------------------
    results: list[list[Record]] = []
    result_id = 1200 + rng.randrange(500)
    change_done = not clock.active
    rates = {"scan": (10.0, 6, 23), "strip": (0.35, 7, 21), "ketone": (0.12, 7, 21),
             "other": (0.03, 7, 21)}
    for when, what in _events(rng, start, now, rates):
        if not change_done and when >= clock.new:
            results.append([_libre_time_change(result_id, clock.old, clock.new)])
            result_id += 1
            change_done = True
        if libre3:
            results.append(_libre3_result_line(rng, result_id, clock(when), what,
                                               curve.at(when)))
        else:
            results.append(_libre_result_line(rng, result_id, clock(when), what,
                                              curve.at(when), libre2=model == "libre2"))
        result_id += 1
    if not change_done:
        results.append([_libre_time_change(result_id, clock.old, clock.new)])
        result_id += 1
    content = ReaderContent(
        serial=_serial(rng),
        software_version="1.0.14" if libre3 else "2.1.2",
        unit="mg/dL",
        patient_name="Zoë Ångström-Łukasz",
        patient_id="PT-" + str(rng.randrange(10**6, 10**7)),
        clock=now,
        history=history,
        results=results,
        record_counter=max(history_id, result_id),
        comments=() if libre3 else COMMENTS,
        model=model,
    )
    if not libre3:
        _alerts_and_events(content, seed, start, now, clock.old if clock.active else None)
    return content


def shift_ids(content: ReaderContent, base: int) -> None:
    """Add ``base`` to every record id (and the record counter)."""
    def moved(record: Record) -> Record:
        return msgspec.structs.replace(record, record_id=record.record_id + base)

    content.history = [moved(r) for r in content.history]  # type: ignore[misc]
    content.results = [[moved(r) for r in line] for line in content.results]
    content.alerts = [moved(r) for r in content.alerts]  # type: ignore[misc]
    content.events = [moved(r) for r in content.events]  # type: ignore[misc]
    if content.clock_change_event_id:
        content.clock_change_event_id += base
    content.record_counter += base


def _alarm(record: ScanRecord) -> int:
    """The alarm a scan came with (derived from its value and trend, no randomness)."""
    glucose = record.glucose_mg_dl or 0
    if record.error_flag or not glucose:
        return 0
    # thresholds that the simulated curve (80..220 mg/dL) crosses now and then
    # codes as libre_usb.model.ALARM_NAMES reads them (inferred, see there)
    if glucose <= 95:
        return 1
    if glucose >= 200:
        return 5
    if glucose < 110 and record.trend in (1, 2):
        return 2
    if glucose > 170 and record.trend in (4, 5):
        return 4
    return 0


#: device events: (record type, name, {field id: value} kept raw), per day probability
_EVENT_KINDS: tuple[tuple[int, str, dict[int, int], float], ...] = (
    (33, "low_battery", {181: 1}, 0.02), (36, "lost_time", {168: 0}, 0.005),
    (49, "microcontroller_reset", {186: 0, 189: 1, 184: 0}, 0.01),
    (50, "masked_mode_status", {193: 0, 194: 1}, 0.005),
    (32, "error", {}, 0.03))


def _alerts_and_events(content: ReaderContent, seed: int, start: dt.datetime,
                       now: dt.datetime, clock_change: dt.datetime | None) -> None:
    """Glycemic alarms on scans, and a device event log: the binary protocol's extra kinds.
    A separate random stream, so the text content is the same with or without them."""
    rng = random.Random(seed * 7919 + 17)  # noqa: S311 - test content, not secrets
    for line in content.results:
        first = line[0]
        if isinstance(first, ScanRecord) and _alarm(first):
            code = _alarm(first)
            content.alerts.append(AlertRecord(
                record_id=first.record_id, source="db:results", record_type=first.record_type,
                local_time=first.local_time, alarm=ALARM_NAMES[code], alarm_code=code,
                glucose_mg_dl=first.glucose_mg_dl))
    happenings: list[tuple[dt.datetime, int, str, dict[int, int]]] = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < now:
        for rtype, name, fields, rate in _EVENT_KINDS:
            if rng.random() < rate:
                when = day + dt.timedelta(seconds=rng.randrange(8 * 3600, 22 * 3600))
                extra = dict(fields)
                if rtype == 32:
                    extra = {160: rng.choice((2, 3, 4, 5, 373)), 161: rng.randrange(1 << 16)}
                happenings.append((when, rtype, name, extra))
        day += dt.timedelta(days=1)
    happenings = [h for h in happenings if h[0] < now]
    # every kind at least once, so any window holds every kind of event
    seen = {h[1] for h in happenings}
    for rtype, name, fields, _ in _EVENT_KINDS:
        if rtype not in seen:
            when = start + (now - start) * rng.uniform(0.2, 0.8)
            extra = ({160: rng.choice((2, 3, 4, 5, 373)), 161: rng.randrange(1 << 16)}
                     if rtype == 32 else dict(fields))
            happenings.append((when.replace(microsecond=0), rtype, name, extra))
    # a sensor expires where the history's 14-day sensors end
    for record in content.history:
        if record.sensor_runtime_min == 14 * 24 * 60 and record.local_time is not None:
            happenings.append((record.local_time + dt.timedelta(minutes=1), 51,
                               "sensor_expired", {}))
    happenings = [h for h in happenings if h[0] < now]
    if clock_change is not None:
        happenings.append((clock_change, -1, "", {}))
    happenings.sort(key=lambda h: (h[0], h[1]))
    number = 9000 + rng.randrange(500)
    for when, rtype, name, fields in happenings:
        number += 1
        if rtype < 0:
            content.clock_change_event_id = number
            continue
        error_code: int | None = fields.pop(160) if 160 in fields else None
        error_data: int | None = fields.pop(161) if 161 in fields else None
        content.events.append(EventRecord(
            record_id=number, source="db:events", record_type=rtype, local_time=when,
            raw=tuple((k, str(v)) for k, v in sorted(fields.items())), event=name,
            error_code=error_code, error_data=error_data))
    content.record_counter = max(content.record_counter, number)


def _libre_time_change(record_id: int, old: dt.datetime, new: dt.datetime) -> TimeChangeRecord:
    return TimeChangeRecord(
        record_id=record_id,
        source="$arresult?",
        record_type=5,
        local_time=new,
        raw=((8, "1"), (15, "0"), (16, "0"), (17, "0"), (18, "0"), (19, "0")),
        old_time=old,
        new_time=new,
    )


@dataclasses.dataclass
class _Noted:
    """What the user noted with one reading."""

    rapid: int | None = None  # half units
    long: int | None = None  # half units
    food: int | None = None  # grams; 0 = food without an amount given
    exercise: bool = False
    medication: bool = False
    comment_bits: int = 0

    @property
    def anything(self) -> bool:
        return (self.rapid is not None or self.long is not None or self.food is not None
                or self.exercise or self.medication or bool(self.comment_bits))


def _noted(rng: random.Random, when: dt.datetime, what: str, comments: bool) -> _Noted:
    noted = _Noted()
    if what != "scan":
        return noted
    hour = when.hour
    if hour in (7, 8, 12, 13, 18, 19) and rng.random() < 0.5:
        noted.rapid = rng.randint(2, 20)
        noted.food = rng.choice([None, 15, 30, 45, 60, 75, 120])
        if noted.food is None and rng.random() < 0.2:
            noted.food = 0
    if hour >= 21 and rng.random() < 0.3:
        noted.long = rng.randint(16, 40)
    noted.exercise = rng.random() < 0.04
    noted.medication = rng.random() < 0.03
    if comments and rng.random() < 0.06:
        noted.comment_bits = rng.randrange(1, 64)
    return noted


def _libre_reading(rng: random.Random, base: dict[str, object], what: str, glucose: int,
                   raw: list[tuple[int, str]], *, errors_field: bool) -> ReadingRecord:
    error_flag = False
    errors = 0
    value = glucose
    if rng.random() < 0.01:
        error_flag, value = True, 0  # the reader's LO / error flag
    elif errors_field and rng.random() < 0.005:
        errors = 0x8000
    if what != "scan":
        raw.append((14, "0"))  # the trend field of a strip test
    raw.sort()
    if what == "ketone":
        ketone_raw = rng.randint(0, 30)
        return KetoneRecord(
            **base, raw=tuple(raw), value_raw=str(ketone_raw),  # type: ignore[arg-type]
            ketone_mmol_l=(Decimal(ketone_raw) / 18).quantize(Decimal("0.01")),
            error_flag=error_flag, errors=errors,
        )
    cls = ScanRecord if what == "scan" else GlucoseRecord
    return cls(
        **base, raw=tuple(raw), value_raw=str(value),  # type: ignore[arg-type]
        glucose_mg_dl=value, trend=rng.randint(1, 5) if what == "scan" else None,
        error_flag=error_flag, errors=errors,
    )


def _logbook(base: dict[str, object], noted: _Noted, comments: tuple[str, ...]) -> list[Record]:
    line: list[Record] = []
    if noted.rapid is not None:
        line.append(InsulinRecord(**base, insulin_type="rapid",  # type: ignore[arg-type]
                                  units=Decimal(noted.rapid) / 2))
    if noted.long is not None:
        line.append(InsulinRecord(**base, insulin_type="long",  # type: ignore[arg-type]
                                  units=Decimal(noted.long) / 2))
    if noted.food is not None:
        line.append(FoodRecord(**base, carbs_g=noted.food))  # type: ignore[arg-type]
    if noted.exercise:
        line.append(ExerciseRecord(**base))  # type: ignore[arg-type]
    if noted.medication:
        line.append(MedicationRecord(**base))  # type: ignore[arg-type]
    for i, text in enumerate(comments):
        if noted.comment_bits >> i & 1:
            line.append(NoteRecord(**base, comment_index=i + 1, text=text))  # type: ignore[arg-type]
    return line


def _unknown_arresult(record_id: int, when: dt.datetime) -> list[Record]:
    fields = [str(record_id), "6", str(when.month), str(when.day), str(when.year - 2000),
              str(when.hour), str(when.minute), str(when.second), "1", "17", "0", "3"]
    return [UnknownRecord(record_id=record_id, source="$arresult?", record_type=6,
                          local_time=when, fields=tuple(fields))]


def _time_copy(when: dt.datetime, start: int) -> list[tuple[int, str]]:
    values = (when.month, when.day, when.year - 2000, when.hour, when.minute, when.second)
    return [(start + i, str(v)) for i, v in enumerate(values)]


def _libre_result_line(rng: random.Random, record_id: int, when: dt.datetime, what: str,
                       glucose: int, *, libre2: bool = False) -> list[Record]:
    """One Libre 1 ``$arresult?`` line (protocol.md 4.2) as records; with ``libre2`` one of
    the Libre 2 reader, whose lines hold three more fields (29..31, meaning unknown: values
    like the real lines of glucometerutils issue #137, field 30 a copy of the glucose) before
    the comment texts, which move to 32..37, and the rapid-acting tail to 38..46."""
    if what == "other":
        return _unknown_arresult(record_id, when)
    base: dict[str, object] = {"record_id": record_id, "source": "$arresult?",
                               "record_type": 2, "local_time": when}
    noted = _noted(rng, when, what, comments=True)
    raw: list[tuple[int, str]] = [(8, "1"), (10, "0"), (13, "1" if what == "scan" else "0"),
                                  (20, "0"), (21, "0"), (22, str(rng.randrange(6))),
                                  (24, "0"), (27, "0")]
    if noted.long is None:
        raw.append((23, "0"))
    if noted.food is None:
        raw.append((26, "0"))
    shift = 3 if libre2 else 0
    if libre2:
        # from the id, not the seeded generator: the same seed gives the same records on a
        # virtual Libre and Libre 2 (tests/test_libre2_session.py compares them)
        raw += [(29, str(250 + record_id % 80)), (30, str(glucose)),
                (31, str(-(record_id % 61)))]
    raw += [(29 + shift + i, text) for i, text in enumerate(COMMENTS)
            if not noted.comment_bits >> i & 1]
    if noted.rapid is not None:
        raw += [(35 + shift, "7"), *_time_copy(when, 36 + shift), (42 + shift, "1")]
    reading = _libre_reading(rng, base, what, glucose, raw, errors_field=True)
    return [reading, *_logbook(base, noted, COMMENTS)]


def _libre3_result_line(rng: random.Random, record_id: int, when: dt.datetime, what: str,
                        glucose: int) -> list[Record]:
    """One Libre 3 ``$arresult?`` line (protocol.md 4.3): 28 fields, 37 with a note."""
    if what == "other":
        return _unknown_arresult(record_id, when)
    base: dict[str, object] = {"record_id": record_id, "source": "$arresult?",
                               "record_type": 2, "local_time": when}
    noted = _noted(rng, when, what, comments=False)
    runtime = 3000 + rng.randrange(17000)
    raw: list[tuple[int, str]] = [(8, "1"), (10, "0"), (13, "1" if what == "scan" else "0"),
                                  (19, "0"), (20, "0"), (21, str(rng.randrange(6))),
                                  (23, "0"), (26, "0"), (27, str(runtime))]
    if noted.long is None:
        raw.append((22, "0"))
    if noted.food is None:
        raw.append((25, "0"))
    if noted.anything:
        raw += [(28, "7"), *_time_copy(when, 29), (35, "1")]
        if noted.rapid is None:
            raw.append((36, "0"))
    reading = _libre_reading(rng, base, what, glucose, raw, errors_field=False)
    return [reading, *_logbook(base, noted, ())]


# -- $result? meters ---------------------------------------------------------------------------

def _minute(when: dt.datetime) -> dt.datetime:
    return when.replace(second=0, microsecond=0)


def _result_time_change(record_id: int, record_type: int, old: dt.datetime,
                        new: dt.datetime) -> TimeChangeRecord:
    return TimeChangeRecord(record_id=record_id, source="$result?", record_type=record_type,
                            local_time=new, raw=((7, "1"),), old_time=old, new_time=new)


def _result_fields(record_type: int, record_id: int, when: dt.datetime,
                   rest: list[str]) -> tuple[str, ...]:
    return (str(record_type), str(record_id), str(when.month), str(when.day),
            str(when.year - 2000), str(when.hour), str(when.minute), *rest)


def _generate_neo(seed: int, days: int, now: dt.datetime, time_change: bool) -> ReaderContent:
    rng = random.Random(seed)  # noqa: S311 - test content, not secrets
    curve = _Glucose(rng)
    start = now - dt.timedelta(days=days)
    old, new = DST_CHANGE
    clock = _Clock(start, now, time_change, (_minute(old), _minute(new)))
    rates = {"glucose": (4.0, 6, 23), "ketone": (0.1, 7, 21), "insulin": (2.0, 6, 22),
             "other": (0.05, 7, 21)}
    results: list[list[Record]] = []
    record_id = 1 + rng.randrange(40)
    change_done = not clock.active
    for true_when, what in _events(rng, start, now, rates):
        when = _minute(clock(true_when))
        if not change_done and true_when >= clock.new:
            results.append([_result_time_change(record_id, 6, clock.old, clock.new)])
            record_id += 1
            change_done = True
        base: dict[str, object] = {"record_id": record_id, "source": "$result?",
                                   "local_time": when}
        if what == "glucose":
            value = curve.at(true_when) + rng.randint(-15, 15)
            text = "HI" if rng.random() < 0.01 else "LO" if rng.random() < 0.01 else str(value)
            blood = "0" if rng.random() < 0.02 else "1"  # 0: control solution (Tidepool)
            raw = ((7, "1"), (9, "0"), (10, blood), *((i, "0") for i in range(11, 19)))
            results.append([GlucoseRecord(
                **base, record_type=7, raw=raw, value_raw=text,  # type: ignore[arg-type]
                glucose_mg_dl=None if text in ("HI", "LO") else value,
                out_of_range=text if text in ("HI", "LO") else None)])
        elif what == "ketone":
            raw_value = rng.randint(0, 60)
            text = "HI" if rng.random() < 0.05 else str(raw_value)
            results.append([KetoneRecord(
                **base, record_type=9, raw=((7, "1"), (9, "1"), (10, "0")),  # type: ignore[arg-type]
                value_raw=text, out_of_range="HI" if text == "HI" else None,
                ketone_mmol_l=None if text == "HI"
                else (Decimal(raw_value) / 18).quantize(Decimal("0.01")))])
        elif what == "insulin":
            kind = rng.choice(["long_morning", "short_breakfast", "short_lunch",
                               "long_evening", "short_dinner"])
            results.append([InsulinRecord(
                **base, record_type=10, raw=((7, "1"), (10, "0"), (11, "0"), (12, "0")),  # type: ignore[arg-type]
                insulin_type=kind, units=Decimal(rng.randint(1, 40)))])
        else:
            fields = _result_fields(11, record_id, when, ["1", "0", str(rng.randint(1, 30)), "0"])
            results.append([UnknownRecord(record_id=record_id, source="$result?",
                                          record_type=11, local_time=when, fields=fields)])
        record_id += 1 + (1 if rng.random() < 0.1 else 0)  # ids of records $result? omits
    if not change_done:
        results.append([_result_time_change(record_id, 6, clock.old, clock.new)])
        record_id += 1
    return ReaderContent(
        serial=_serial(rng),
        software_version="1.18 May 21 2015",
        unit="mg/dL",
        patient_name="Zoë Ångström-Łukasz",
        patient_id="PT-" + str(rng.randrange(10**6, 10**7)),
        clock=_minute(now),
        history=[],
        results=results,
        record_counter=record_id,
        comments=(),
        model="neo",
        meter_events=_meter_events(seed * 31 + 5, now),
    )


def _meter_events(salt: int, now: dt.datetime) -> list[EventRecord]:
    """A ``$event?`` log (Neo, InsuLinx). No public source shows its lines, so these are
    made-up numbers the host must keep raw, nothing more."""
    rng = random.Random(salt)  # noqa: S311 - test content, not secrets
    events = []
    for number in range(1, 9):
        when = now - dt.timedelta(days=rng.randrange(1, 80), minutes=rng.randrange(1440))
        fields = (number, rng.choice((3, 7, 12, 21)), when.month, when.day, when.year - 2000,
                  when.hour, when.minute, rng.randrange(256))
        events.append(EventRecord(record_id=number, source="$event?", record_type=-1,
                                  local_time=None, event="meter_event",
                                  raw=tuple((i, str(v)) for i, v in enumerate(fields))))
    return events


def _generate_insulinx(seed: int, days: int, now: dt.datetime,
                       time_change: bool) -> ReaderContent:
    rng = random.Random(seed)  # noqa: S311 - test content, not secrets
    curve = _Glucose(rng)
    start = now - dt.timedelta(days=days)
    old, new = DST_CHANGE
    clock = _Clock(start, now, time_change, (_minute(old), _minute(new)))
    rates = {"glucose": (3.0, 7, 23)}
    events = _events(rng, start, now, rates)
    # the weekly type-4 records, always at the same time of day (as in the real capture)
    week = start.replace(hour=11, minute=26, second=0) + dt.timedelta(days=1)
    while week < now:
        events.append((week, "weekly"))
        week += dt.timedelta(days=7)
    events.sort()
    results: list[list[Record]] = []
    record_id = 20000 + rng.randrange(400)
    change_done = not clock.active
    for true_when, what in events:
        when = _minute(clock(true_when))
        if not change_done and true_when >= clock.new:
            results.append([_result_time_change(record_id, 6, clock.old, clock.new)])
            record_id += 1
            change_done = True
        if what == "glucose":
            value = curve.at(true_when) + rng.randint(-15, 15)
            text = "HI" if rng.random() < 0.005 else str(value)
            meal = str(rng.choice([0, 1, 2, 3, 3, 3]))
            raw = ((7, "1"), (8, "0"), (9, "0"), (10, "0"), (11, meal), (12, "0"), (14, "0"),
                   (15, "0"))
            results.append([GlucoseRecord(
                record_id=record_id, source="$result?", record_type=0, local_time=when,
                raw=raw, value_raw=text, glucose_mg_dl=None if text == "HI" else value,
                out_of_range="HI" if text == "HI" else None)])
        else:
            fields = _result_fields(4, record_id, when,
                                    ["1", "0", "5", "70", "160", str(rng.randint(0, 30)),
                                     str(rng.randint(0, 3)), "0"])
            results.append([UnknownRecord(record_id=record_id, source="$result?",
                                          record_type=4, local_time=when, fields=fields)])
        record_id += 1 + (1 if rng.random() < 0.3 else 0)
    if not change_done:
        results.append([_result_time_change(record_id, 6, clock.old, clock.new)])
        record_id += 1
    return ReaderContent(
        serial=_serial(rng),
        software_version="1.40",
        unit="mg/dL",
        patient_name="Zoë Ångström",
        patient_id="PT-" + str(rng.randrange(10**6, 10**7)),
        clock=_minute(now),
        history=[],
        results=results,
        record_counter=record_id,
        comments=(),
        model="insulinx",
        tags=TAGS,
        language=2,
        meter_events=_meter_events(seed * 37 + 11, now),
    )
