"""The numbers of an Ambulatory Glucose Profile (AGP) report, after the international
consensus on time in range (Battelino et al., Diabetes Care 2019;42:1593-1603) and the GMI of
Bergenstal et al. (Diabetes Care 2018;41:2275-2280).

Input: the reader's periodic sensor history (``history`` records; scans and strip tests are
not CGM data and are left out of the metrics, as in LibreView's AGP), valid readings only,
on the reader's clock (``local_time``: the time of day the user lived).

* **Time in ranges**, percent of readings: very low < 54 mg/dL, low 54-69, in range 70-180,
  high 181-250, very high > 250 (integer mg/dL, so 69.x does not occur).
* **Mean**, **SD** (sample, n - 1), **CV** = 100 SD / mean (target <= 36 %),
  **GMI** (%) = 3.31 + 0.02392 x mean mg/dL.
* **Days** of the period and **% of sensor time captured**: readings x the reading interval
  (the median gap between readings, 15 minutes on Libre 1/2 readers) / the period. The period
  is ``--since``/``--until`` when given, else first reading to last reading plus one
  interval. **Data sufficiency**: the consensus asks for at least 14 days and 70 % captured;
  below either, the report says so.
* **Modal day**: percentiles 5, 25, 50, 75 and 95 of the readings in each 15-minute slot of
  the day, over all days (linear interpolation between order statistics, the "type 7"
  quantile of R and NumPy's default).

Every step is linear (or n log n for the sorts) in the number of readings and never loops
over a range taken from the data: a reader clock set to the year 9999 or a value of 65535
cannot make the report loop or allocate more.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Sequence
from typing import Any

from ..output.period import ALL, Period

#: range limits, mg/dL (Battelino 2019)
VERY_LOW, LOW, HIGH, VERY_HIGH = 54, 70, 180, 250
#: name, inclusive mg/dL bounds (None: open)
RANGES: tuple[tuple[str, int | None, int | None], ...] = (
    ("very_low", None, VERY_LOW - 1),
    ("low", VERY_LOW, LOW - 1),
    ("in_range", LOW, HIGH),
    ("high", HIGH + 1, VERY_HIGH),
    ("very_high", VERY_HIGH + 1, None),
)
PERCENTILES = (5, 25, 50, 75, 95)
SLOT_MINUTES = 15
SLOTS = 24 * 60 // SLOT_MINUTES
MIN_DAYS, MIN_ACTIVE = 14, 70.0
#: reading interval assumed with fewer than two readings, and the bounds of a measured one
DEFAULT_INTERVAL, MIN_INTERVAL, MAX_INTERVAL = 15.0, 1.0, 60.0


def percentile(ordered: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) of an ascending sequence, linear interpolation."""
    if not ordered:
        raise ValueError("no values")
    h = (len(ordered) - 1) * p / 100
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


@dataclasses.dataclass(frozen=True)
class Glucose:
    """Sensor readings on the reader's clock, oldest first."""

    times: tuple[dt.datetime, ...]
    values: tuple[int, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[dt.datetime, int]]) -> Glucose:
        ordered = sorted(pairs, key=lambda pair: pair[0])
        return cls(tuple(t for t, _ in ordered), tuple(v for _, v in ordered))


@dataclasses.dataclass(frozen=True)
class Metrics:
    readings: int
    start: dt.datetime | None
    end: dt.datetime | None
    days: float
    interval_minutes: float
    active_percent: float
    ranges: dict[str, float]
    mean: float | None
    sd: float | None
    cv: float | None
    gmi: float | None
    #: slot start (minutes after midnight) -> percentiles (None for a slot without data)
    modal_day: tuple[tuple[int, tuple[float, ...] | None], ...]

    @property
    def sufficient(self) -> bool:
        return self.days >= MIN_DAYS and self.active_percent >= MIN_ACTIVE

    def warnings(self) -> list[str]:
        if self.readings == 0:
            return ["no sensor readings in this period"]
        if self.sufficient:
            return []
        return [f"{self.days:.1f} days with {self.active_percent:.0f} % of sensor time "
                f"captured: the consensus asks for at least {MIN_DAYS} days and "
                f"{MIN_ACTIVE:.0f} % for these metrics to be reliable"]


def later(when: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """``when + delta``, or the last representable time (a reader clock at 9999-12-31)."""
    try:
        return when + delta
    except OverflowError:
        return dt.datetime.max


def _interval(times: Sequence[dt.datetime]) -> float:
    if len(times) < 2:
        return DEFAULT_INTERVAL
    gaps = sorted((b - a).total_seconds() / 60 for a, b in itertools.pairwise(times))
    middle = percentile(gaps, 50)
    return min(MAX_INTERVAL, max(MIN_INTERVAL, round(middle)))


def compute(glucose: Glucose, period: Period = ALL) -> Metrics:
    times, values = glucose.times, glucose.values
    n = len(values)
    interval = _interval(times)
    if n == 0:
        return Metrics(0, period.start, period.end, 0.0, interval, 0.0,
                       {name: 0.0 for name, _, _ in RANGES}, None, None, None, None,
                       tuple((slot * SLOT_MINUTES, None) for slot in range(SLOTS)))
    start = period.start or times[0]
    end = period.end or later(times[-1], dt.timedelta(minutes=interval))
    span = max((end - start).total_seconds() / 60, interval)
    active = min(100.0, 100.0 * n * interval / span)
    ordered = sorted(values)
    ranges = {}
    for name, low, high in RANGES:
        first = 0 if low is None else bisect.bisect_left(ordered, low)
        last = n if high is None else bisect.bisect_right(ordered, high)
        ranges[name] = 100.0 * max(0, last - first) / n
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    slots: list[list[int]] = [[] for _ in range(SLOTS)]
    for when, value in zip(times, values, strict=True):
        slots[(when.hour * 60 + when.minute) // SLOT_MINUTES].append(value)
    modal = []
    for slot, items in enumerate(slots):
        items.sort()
        bands = tuple(percentile(items, p) for p in PERCENTILES) if items else None
        modal.append((slot * SLOT_MINUTES, bands))
    return Metrics(
        readings=n, start=start, end=end, days=span / (24 * 60), interval_minutes=interval,
        active_percent=active, ranges=ranges, mean=mean, sd=sd,
        cv=None if sd is None or mean == 0 else 100.0 * sd / mean,
        gmi=3.31 + 0.02392 * mean, modal_day=tuple(modal))


def to_json(metrics: Metrics, unit: str, convert: Any) -> dict[str, Any]:
    """The metrics as the ``--format json`` document; ``convert`` turns mg/dL into ``unit``."""
    def glucose(value: float | None) -> float | None:
        return None if value is None else convert(value)

    return {
        "unit": unit,
        "period": {"start": None if metrics.start is None else metrics.start.isoformat(),
                   "end": None if metrics.end is None else metrics.end.isoformat(),
                   "days": round(metrics.days, 2)},
        "readings": metrics.readings,
        "interval_minutes": metrics.interval_minutes,
        "sensor_active_percent": round(metrics.active_percent, 2),
        "sufficient": metrics.sufficient,
        "warnings": metrics.warnings(),
        "time_in_ranges_percent": {name: round(value, 2)
                                   for name, value in metrics.ranges.items()},
        "range_limits_mg_dl": {"very_low": f"<{VERY_LOW}", "low": f"{VERY_LOW}-{LOW - 1}",
                               "in_range": f"{LOW}-{HIGH}",
                               "high": f"{HIGH + 1}-{VERY_HIGH}",
                               "very_high": f">{VERY_HIGH}"},
        "mean": glucose(metrics.mean),
        "mean_mg_dl": None if metrics.mean is None else round(metrics.mean, 2),
        "sd": glucose(metrics.sd),
        "cv_percent": None if metrics.cv is None else round(metrics.cv, 2),
        "gmi_percent": None if metrics.gmi is None else round(metrics.gmi, 2),
        "modal_day": [
            {"time": f"{minute // 60:02d}:{minute % 60:02d}",
             **({f"p{p}": None for p in PERCENTILES} if bands is None else
                {f"p{p}": convert(v) for p, v in zip(PERCENTILES, bands, strict=True)})}
            for minute, bands in metrics.modal_day],
    }
