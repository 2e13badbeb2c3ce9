"""Decoders for the replies of informational text commands (protocol.md section 3)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

_DBRNUM = re.compile(r"(?:DB\s*Record\s*Number|DBRECORDS)\s*=\s*(\d+)", re.IGNORECASE)


def parse_dbrnum(text: str) -> int | None:
    """``$dbrnum?``: both spellings, ``DB Record Number = n`` and ``DBRECORDS = n``."""
    match = _DBRNUM.search(text)
    return int(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True)
class ReaderClock:
    """``$rdt?``: the reader's displayed time, whether it is valid, and the offset in seconds
    between its factory (RTC) time and the user time (absent on the Libre Pro)."""

    time: dt.datetime | None
    valid: bool
    offset: int | None


def parse_rdt(text: str) -> ReaderClock | None:
    """``YY,MM,DD,hh,mm,ss,valid[,offset]`` (Tidepool's reading of the reply)."""
    parts = [p.strip() for p in text.strip().split(",")]
    if len(parts) < 7:
        return None
    try:
        year, month, day, hour, minute, second, valid = (int(p) for p in parts[:7])
        offset = int(parts[7]) if len(parts) > 7 and parts[7] else None
    except ValueError:
        return None
    when: dt.datetime | None
    try:
        when = dt.datetime(2000 + year, month, day, hour, minute, second) if year < 100 else None
    except ValueError:
        when = None
    return ReaderClock(when, valid == 1 and when is not None, offset)


def parse_date_time(date_text: str, time_text: str) -> dt.datetime | None:
    """``$date?`` (``M,D,YY``) and ``$time?`` (``H,M``); 255s mean the clock is invalid."""
    try:
        month, day, year = (int(p) for p in date_text.strip().split(","))
        hour, minute = (int(p) for p in time_text.strip().split(","))
    except ValueError:
        return None
    if 255 in (month, day, year, hour, minute) or year > 99:
        return None
    try:
        return dt.datetime(2000 + year, month, day, hour, minute)
    except ValueError:
        return None


def parse_unit(text: str, values: tuple[tuple[str, str], ...]) -> str | None:
    """``$uom?`` / ``$gunits?`` reply -> ``mg/dL`` or ``mmol/L``."""
    return dict(values).get(text.strip())
