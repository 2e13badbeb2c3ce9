"""``--redact``: a dump with every identifier and free text replaced by stable placeholders.

What is replaced (everything else, numbers and times included, stays as read):

=====================================  ====================================================
where                                  placeholder
=====================================  ====================================================
reader serial (``device.serial``, the  ``REDACTED-reader-serial``
``$sn?``/``$serlnum?`` reply)
patient name (``device.patient_name``, ``REDACTED-patient-name``
the ``$ptname?`` reply)
patient id (``device.patient_id``, the ``REDACTED-patient-id``
``$ptid?`` reply)
note texts (``NoteRecord.text``) and   ``REDACTED-note-<n>``, n = the comment slot 1..6, so a
the comment texts every Libre          comment has the same placeholder wherever it occurs
``$arresult?`` line carries in ``raw``
(or ``fields``) at positions 29..34
InsuLinx smart tags (``$gettags,2,2``  ``REDACTED-tag-<n>``, n = the tag number
reply, ``settings.tags``)
any other text in ``raw``/``fields``   ``REDACTED-text-<n>``, numbered by first appearance
(a value that is not a number, HI or   (the same text always gets the same n within a dump)
LO) and the texts of the InsuLinx
reminder labels (``$getrmndrst,0``)
=====================================  ====================================================

Empty texts stay empty (an unused comment slot reveals nothing). Placeholders are the same as
the ones ``libre_usb.output.libreview`` writes. They are numbered, never hashed: a reader serial or
a short name is easy to recover from its hash.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..model import DeviceInfo, Dump, NoteRecord, Record, UnknownRecord
from .export import sorted_records

PREFIX = "REDACTED-"
SERIAL = PREFIX + "reader-serial"
PATIENT_NAME = PREFIX + "patient-name"
PATIENT_ID = PREFIX + "patient-id"
#: commands whose whole reply is an identifier, and what replaces it
_WHOLE_REPLIES = {"$sn?": SERIAL, "$serlnum?": SERIAL, "$ptname?": PATIENT_NAME,
                  "$ptid?": PATIENT_ID}
#: Libre ``$arresult?`` comment slots: field index -> comment number (protocol.md 4.2)
COMMENT_FIELDS = {29 + i: i + 1 for i in range(6)}
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)\Z")
_TAG = re.compile(r"(T(\d+)=\d+,)(.*)\Z", re.DOTALL)
_NUMBERED = re.compile(r"(\d+,)(.*)\Z", re.DOTALL)


def note(comment_index: int) -> str:
    return f"{PREFIX}note-{comment_index}"


def is_text(value: str) -> bool:
    """True for a field value that may carry words: not empty, not a number, not HI/LO."""
    stripped = value.strip()
    return bool(stripped) and not _NUMBER.match(stripped) and stripped.upper() not in ("HI", "LO")


class Redactor:
    """Keeps the numbering of ``REDACTED-text-<n>`` placeholders for one dump."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def text(self, value: str) -> str:
        if value not in self.texts:
            self.texts[value] = f"{PREFIX}text-{len(self.texts) + 1}"
        return self.texts[value]

    def field(self, index: int, value: str, *, comment_slots: bool) -> str:
        if not is_text(value):
            return value
        if comment_slots and index in COMMENT_FIELDS:
            return note(COMMENT_FIELDS[index])
        return self.text(value)

    # -- device -------------------------------------------------------------------------------

    def reply(self, command: str, text: str) -> str:
        if command in _WHOLE_REPLIES:
            return _WHOLE_REPLIES[command] if text.strip() else text
        if command == "$gettags,2,2":
            lines = []
            for line in text.split("\n"):
                match = _TAG.match(line)
                if match and match.group(3).strip():
                    line = match.group(1) + f"{PREFIX}tag-{match.group(2)}"
                lines.append(line)
            return "\n".join(lines)
        if command == "$getrmndrst,0":
            # "<n>,<label>" lines; a label may hold a bare LF, which shows as a line of its own
            lines = []
            for line in text.split("\n"):
                match = _NUMBERED.match(line)
                if match and is_text(match.group(2)):
                    line = match.group(1) + self.text(match.group(2))
                elif not match and is_text(line):
                    line = self.text(line)
                lines.append(line)
            return "\n".join(lines)
        return text

    def device(self, info: DeviceInfo) -> DeviceInfo:
        settings = dict(info.settings)
        if "tags" in settings:
            settings["tags"] = [
                {**tag, "text": f"{PREFIX}tag-{tag.get('number')}" if tag.get("text") else ""}
                for tag in settings["tags"]
            ]
        return dataclasses.replace(
            info,
            serial=SERIAL if info.serial else info.serial,
            patient_name=PATIENT_NAME if info.patient_name else info.patient_name,
            patient_id=PATIENT_ID if info.patient_id else info.patient_id,
            replies=tuple((command, self.reply(command, text)) for command, text in info.replies),
            settings=settings,
        )

    # -- records ------------------------------------------------------------------------------

    def record(self, record: Record) -> Record:
        libre_line = record.source == "$arresult?"
        changes: dict[str, Any] = {}
        if record.raw:
            changes["raw"] = tuple((index, self.field(index, value, comment_slots=libre_line))
                                   for index, value in record.raw)
        if isinstance(record, UnknownRecord):
            slots = libre_line and len(record.fields) >= 35
            changes["fields"] = tuple(self.field(index, value, comment_slots=slots)
                                      for index, value in enumerate(record.fields))
        if isinstance(record, NoteRecord) and record.text:
            changes["text"] = note(record.comment_index)
        return dataclasses.replace(record, **changes) if changes else record


def redact(dump: Dump) -> Dump:
    """The dump with identifiers and free texts replaced (see the module docstring)."""
    redactor = Redactor()
    device = redactor.device(dump.device)
    records = tuple(redactor.record(record) for record in sorted_records(dump.records))
    return dataclasses.replace(dump, device=device, records=records)
