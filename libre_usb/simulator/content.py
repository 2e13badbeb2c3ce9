"""Deterministic, realistic reader content from a seed.

The virtual reader's memory: 90 days of 15-minute sensor history across 14-day sensors
(with warm-up gaps and error readings), about ten scans a day with trend arrows, strip
glucose and ketone tests, rapid and long insulin, carbs, exercise, medication, custom
notes in several scripts, a daylight-saving clock change the user made by hand, and a few
records of a type we do not decode (kept raw).

The content is built as typed records (:mod:`libre_usb.model`) first; the reader turns
them into lines with its own writers in :mod:`libre_usb.simulator.lines`. Tests compare a
dump with these records field by field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from decimal import Decimal

from ..model import (
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

#: the reader's clock when the dump is taken (its local time, naive)
DEFAULT_NOW = dt.datetime(2026, 6, 15, 12, 0, 0)
#: when the user moved the clock forward an hour for summer time: old -> new
DST_CHANGE = (dt.datetime(2026, 3, 29, 9, 12, 41), dt.datetime(2026, 3, 29, 10, 12, 41))


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
    #: $arresult? lines in order: each entry is the records of one line
    results: list[list[Record]]
    record_counter: int
    comments: tuple[str, ...] = COMMENTS

    @property
    def records(self) -> list[Record]:
        """All records, in the order a dump lists them."""
        out: list[Record] = list(self.history)
        for line in self.results:
            out.extend(line)
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


def generate(seed: int = 0, *, days: int = 90, now: dt.datetime = DEFAULT_NOW,
             time_change: bool = True) -> ReaderContent:
    """Build the content of a virtual Libre reader from ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - simulated data, not security
    curve = _Glucose(rng)
    start = now - dt.timedelta(days=days)
    change_old, change_new = DST_CHANGE
    shift = change_new - change_old
    has_change = time_change and start < change_old < now

    def clock(true_local_new_frame: dt.datetime) -> dt.datetime:
        """The reader's displayed time for an instant given in the current clock frame."""
        if has_change and true_local_new_frame < change_new:
            return true_local_new_frame - shift
        return true_local_new_frame

    # -- sensor history ----------------------------------------------------------------
    history: list[HistoryRecord] = []
    history_id = 40000 + rng.randrange(5000)
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
                    raw=((8, "1"), (9, "0"), (10, "0"), (11, "0")),
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
    day = start.replace(hour=0, minute=0, second=0)
    change_done = not has_change
    events: list[tuple[dt.datetime, str]] = []
    while day < now:
        for _ in range(rng.randint(7, 13)):
            events.append((day + dt.timedelta(seconds=rng.randrange(6 * 3600, 23 * 3600)), "scan"))
        if rng.random() < 0.35:
            events.append((day + dt.timedelta(seconds=rng.randrange(7 * 3600, 21 * 3600)), "strip"))
        if rng.random() < 0.12:
            when = day + dt.timedelta(seconds=rng.randrange(7 * 3600, 21 * 3600))
            events.append((when, "ketone"))
        if rng.random() < 0.03:
            events.append((day + dt.timedelta(seconds=rng.randrange(7 * 3600, 21 * 3600)), "other"))
        day += dt.timedelta(days=1)
    events.sort()
    for when, what in events:
        if when > now - dt.timedelta(minutes=5):
            continue
        if not change_done and when >= change_new:
            results.append([_time_change(result_id, change_old, change_new)])
            result_id += 1
            change_done = True
        results.append(_result_line(rng, result_id, clock(when), what, curve.at(when)))
        result_id += 1
    if not change_done:
        results.append([_time_change(result_id, change_old, change_new)])
        result_id += 1
    return ReaderContent(
        serial=_serial(rng),
        software_version="2.1.2",
        unit="mg/dL",
        patient_name="Zoë Ångström-Łukasz",
        patient_id="PT-" + str(rng.randrange(10**6, 10**7)),
        clock=now,
        history=history,
        results=results,
        record_counter=history_id + result_id + 100000,
    )


def _time_change(record_id: int, old: dt.datetime, new: dt.datetime) -> TimeChangeRecord:
    return TimeChangeRecord(
        record_id=record_id,
        source="$arresult?",
        record_type=5,
        local_time=new,
        raw=((8, "1"), (15, "0"), (16, "0"), (17, "0"), (18, "0"), (19, "0")),
        old_time=old,
        new_time=new,
    )


def _result_line(rng: random.Random, record_id: int, when: dt.datetime, what: str,
                 glucose: int) -> list[Record]:
    base: dict[str, object] = {
        "record_id": record_id,
        "source": "$arresult?",
        "record_type": 2,
        "local_time": when,
    }
    if what == "other":
        fields = [str(record_id), "6", str(when.month), str(when.day), str(when.year - 2000),
                  str(when.hour), str(when.minute), str(when.second), "1", "17", "0", "3"]
        return [UnknownRecord(record_id=record_id, source="$arresult?", record_type=6,
                              local_time=when, fields=tuple(fields))]
    reading: ReadingRecord
    hour = when.hour
    rapid = long = None
    food = None
    exercise = medication = False
    comment_bits = 0
    if what == "scan":
        is_meal = hour in (7, 8, 12, 13, 18, 19) and rng.random() < 0.5
        if is_meal:
            rapid = rng.randint(2, 20)
            food = rng.choice([None, 15, 30, 45, 60, 75, 120])
        if hour >= 21 and rng.random() < 0.3:
            long = rng.randint(16, 40)
        exercise = rng.random() < 0.04
        medication = rng.random() < 0.03
        if rng.random() < 0.06:
            comment_bits = rng.randrange(1, 64)
    error_flag = False
    errors = 0
    value = glucose
    if rng.random() < 0.01:
        error_flag, value = True, 0  # the reader's LO / error flag
    elif rng.random() < 0.005:
        errors = 0x8000
    raw: list[tuple[int, str]] = [(8, "1"), (10, "0"),
                                  (13, "1" if what == "scan" else "0"),
                                  (20, "0"), (21, "0"), (22, str(rng.randrange(6))),
                                  (24, "0"), (27, "0")]
    raw += [(29 + i, text) for i, text in enumerate(COMMENTS) if not comment_bits >> i & 1]
    if rapid is not None:
        raw += [(35, "7"), (36, str(when.month)), (37, str(when.day)),
                (38, str(when.year - 2000)), (39, str(when.hour)), (40, str(when.minute)),
                (41, str(when.second)), (42, "1")]
    if what == "ketone":
        ketone_raw = rng.randint(0, 30)
        reading = KetoneRecord(
            **base, raw=tuple(raw), value_raw=str(ketone_raw),  # type: ignore[arg-type]
            ketone_mmol_l=(Decimal(ketone_raw) / 18).quantize(Decimal("0.01")),
            error_flag=error_flag, errors=errors,
        )
    else:
        cls = ScanRecord if what == "scan" else GlucoseRecord
        reading = cls(
            **base, raw=tuple(raw), value_raw=str(value),  # type: ignore[arg-type]
            glucose_mg_dl=value, trend=rng.randint(1, 5) if what == "scan" else None,
            error_flag=error_flag, errors=errors,
        )
    line: list[Record] = [reading]
    if rapid is not None:
        line.append(InsulinRecord(**base, insulin_type="rapid",  # type: ignore[arg-type]
                                  units=Decimal(rapid) / 2))
    if long is not None:
        line.append(InsulinRecord(**base, insulin_type="long",  # type: ignore[arg-type]
                                  units=Decimal(long) / 2))
    if food is not None or (rapid is not None and rng.random() < 0.2):
        line.append(FoodRecord(**base, carbs_g=food or 0))  # type: ignore[arg-type]
    if exercise:
        line.append(ExerciseRecord(**base))  # type: ignore[arg-type]
    if medication:
        line.append(MedicationRecord(**base))  # type: ignore[arg-type]
    for i, text in enumerate(COMMENTS):
        if comment_bits >> i & 1:
            line.append(NoteRecord(**base, comment_index=i + 1, text=text))  # type: ignore[arg-type]
    return line
