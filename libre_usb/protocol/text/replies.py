"""Decoders for the replies of informational text commands (protocol.md section 3)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from .reply import reader_int

_DBRNUM = re.compile(r"(?:DB\s*Record\s*Number|DBRECORDS)\s*=\s*(\d+)", re.IGNORECASE)


def parse_dbrnum(text: str) -> int | None:
    """``$dbrnum?``: both spellings, ``DB Record Number = n`` and ``DBRECORDS = n``."""
    match = _DBRNUM.search(text)
    try:
        return reader_int(match.group(1)) if match else None
    except ValueError:  # thousands of digits: not a record count
        return None


class ReaderClock(msgspec.Struct, frozen=True):
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
        year, month, day, hour, minute, second, valid = (reader_int(p) for p in parts[:7])
        offset = reader_int(parts[7]) if len(parts) > 7 and parts[7] else None
    except ValueError:
        return None
    when: dt.datetime | None
    try:
        when = dt.datetime(2000 + year, month, day, hour, minute, second) if year < 100 else None
    except (ValueError, OverflowError):  # OverflowError: a field of 20 digits
        when = None
    return ReaderClock(when, valid == 1 and when is not None, offset)


def parse_date_time(date_text: str, time_text: str) -> dt.datetime | None:
    """``$date?`` (``M,D,YY``) and ``$time?`` (``H,M``); 255s mean the clock is invalid."""
    try:
        month, day, year = (reader_int(p) for p in date_text.strip().split(","))
        hour, minute = (reader_int(p) for p in time_text.strip().split(","))
    except ValueError:
        return None
    if 255 in (month, day, year, hour, minute) or year > 99:
        return None
    try:
        return dt.datetime(2000 + year, month, day, hour, minute)
    except (ValueError, OverflowError):
        return None


def clock_setters(when: dt.datetime) -> tuple[str, str]:
    """The two text commands that set a reader's wall clock to ``when``, to the minute:
    ``$date,M,D,YY`` then ``$time,H,M``, no leading zeros (protocol.md 3.1; glucometerutils
    ``set_datetime``, and ``$date,8,27,14`` / ``$time,13,40`` in OpenGlucose's capture)."""
    if not 2000 <= when.year <= 2099:
        raise ValueError(f"a reader's clock holds years 2000 to 2099, not {when.year}")
    return (f"$date,{when.month},{when.day},{when.year - 2000}",
            f"$time,{when.hour},{when.minute}")


def parse_unit(text: str, values: tuple[tuple[str, str], ...]) -> str | None:
    """``$uom?`` / ``$gunits?`` reply -> ``mg/dL`` or ``mmol/L``."""
    return dict(values).get(text.strip())


# -- settings ---------------------------------------------------------------------------------

#: ``$lang?`` codes of the Libre family (protocol.md 3, GP), as BCP 47 tags. Other families
#: number their languages differently (the French InsuLinx of the real capture answers 2).
LIBRE_LANGUAGES = {
    0: "pt-BR", 1: "es-US", 2: "en-US", 3: "de", 4: "fr", 5: "it", 6: "en-GB", 7: "fr-CA",
    8: "zh", 9: "ja", 10: "nl", 11: "sv", 12: "es-ES", 13: "no", 14: "da", 15: "fi", 16: "el",
    17: "pl", 18: "pt-PT", 19: "ru", 20: "tr", 21: "ar", 22: "he",
}
#: ``$getrmndr,0`` fields (protocol.md 3): repeat and action codes
REMINDER_REPEAT = {0: "off", 1: "once", 2: "daily", 3: "timer"}
REMINDER_ACTION = {10: "glucose", 11: "insulin", 12: "alarm"}
_TAG = re.compile(r"T(\d+)=(\d+),(.*)\Z", re.DOTALL)
_LABEL = re.compile(r"([A-Za-z][A-Za-z ]*[A-Za-z]):\s?(.*)\Z", re.DOTALL)


def _ints(text: str) -> list[int] | None:
    """``"1,0,0,0"`` -> ``[1, 0, 0, 0]``; None if any part is not a number."""
    parts = [p.strip() for p in text.strip().split(",")]
    try:
        return [reader_int(p) for p in parts]
    except ValueError:
        return None


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def parse_reminders(text: str) -> list[dict[str, Any]] | None:
    """``$getrmndr,0``: one ``repeat,action,enabled,hour,minute`` line per reminder slot.

    Known codes become names (``daily``, ``glucose``...); unknown ones stay numbers."""
    out: list[dict[str, Any]] = []
    for slot, line in enumerate(_lines(text)):
        values = _ints(line)
        if values is None or len(values) != 5:
            return None
        repeat, action, enabled, hour, minute = values
        out.append({
            "slot": slot,
            "repeat": REMINDER_REPEAT.get(repeat, repeat),
            "action": REMINDER_ACTION.get(action, action),
            "enabled": enabled == 1,
            "hour": hour,
            "minute": minute,
        })
    return out


def parse_sounds(notification: str | None, buttons: str | None) -> dict[str, bool] | None:
    """``$ntsound?`` (``notification[,vibrate]``) and ``$btsound?`` (``tone[,volume]``): 0/1
    flags. The Libre answers two values each, the InsuLinx one."""
    out: dict[str, bool] = {}
    for text, names in ((notification, ("notification", "vibrate")),
                        (buttons, ("button_tone", "button_volume"))):
        values = _ints(text) if text is not None else None
        if values is None:
            continue
        for name, value in zip(names, values, strict=False):
            out[name] = value == 1
    return out or None


def parse_tags(text: str) -> list[dict[str, Any]] | None:
    """``$gettags,2,2`` (InsuLinx): ``Tn=k,<text>`` lines, the user's smart-tag texts
    (``k`` is 1 for the tags in the capture that have a text, 2 for the empty ones)."""
    tags: list[dict[str, Any]] = []
    for line in _lines(text):
        match = _TAG.match(line)
        if match and len(match.group(1)) <= 10 and len(match.group(2)) <= 10:
            tags.append({"number": int(match.group(1)), "state": int(match.group(2)),
                         "text": match.group(3)})
    return tags or None


def parse_patch(text: str) -> dict[str, Any]:
    """``$patch?``: the current sensor. Labelled lines (``PID: ...``, ``SW Versions: ...``,
    ``Event Log: ...``, ``AFE Cal Data: ...``, ``Unused: ...``) become snake_case keys; every
    line (except the ``1,<checksum>`` trailer) is kept, in order, under ``lines``."""
    lines = _lines(text)
    if lines and re.fullmatch(r"\d+,[0-9A-Fa-f]{8}", lines[-1].strip()):
        lines = lines[:-1]
    out: dict[str, Any] = {"lines": lines}
    for line in lines:
        match = _LABEL.match(line.strip())
        if match:
            key = match.group(1).strip().lower().replace(" ", "_")
            if key not in ("lines",) and key not in out:
                out[key] = match.group(2).strip()
    return out


def parse_patient_name(text: str, family: str) -> str | None:
    """``$ptname?``: free text on the Libre; ``first,last,x`` on the InsuLinx (protocol.md 3),
    shown as ``first last``. The reply itself stays in ``replies``."""
    text = text.strip()
    if not text:
        return None
    if family == "insulinx":
        parts = text.split(",")
        if len(parts) == 3:
            return " ".join(part for part in parts[:2] if part) or None
    return text


def decode_settings(replies: Mapping[str, str], *, language_table: str | None,
                    rdt: ReaderClock | None = None) -> dict[str, Any]:
    """The settings a reader answered, decoded into plain JSON values.

    Keys appear only when the reader answered the command (see docs/formats.md):
    ``language_code``/``language``, ``sounds``, ``reminders``, ``brand``, ``market_level``,
    ``clock_valid``/``clock_offset_s`` ($rdt?), ``clock_format`` ($clktyp?), ``tags``.
    """
    out: dict[str, Any] = {}
    if "$lang?" in replies:
        codes = _ints(replies["$lang?"])
        if codes and len(codes) == 1:
            out["language_code"] = codes[0]
            if language_table == "libre":
                out["language"] = LIBRE_LANGUAGES.get(codes[0])
    sounds = parse_sounds(replies.get("$ntsound?"), replies.get("$btsound?"))
    if sounds:
        out["sounds"] = sounds
    if "$getrmndr,0" in replies:
        reminders = parse_reminders(replies["$getrmndr,0"])
        if reminders is not None:
            out["reminders"] = reminders
    if replies.get("$brandname?", "").strip():
        out["brand"] = replies["$brandname?"].strip()
    if "$marketlev?" in replies:
        level = _ints(replies["$marketlev?"])
        if level is not None:
            out["market_level"] = level
    if rdt is not None:
        out["clock_valid"] = rdt.valid
        out["clock_offset_s"] = rdt.offset
    if "$clktyp?" in replies:
        kind = _ints(replies["$clktyp?"])
        if kind and len(kind) == 1 and kind[0] in (0, 1):
            # `$clktyp,1` is the 12-hour clock (OpenGlucose capture set-12h-clock)
            out["clock_format"] = "12h" if kind[0] == 1 else "24h"
    if "$gettags,2,2" in replies:
        tags = parse_tags(replies["$gettags,2,2"])
        if tags is not None:
            out["tags"] = tags
    return out
