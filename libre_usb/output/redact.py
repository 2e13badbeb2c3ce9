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
any other value in ``raw``/``fields``  ``REDACTED-text-<n>``, numbered by first appearance
that is not a small number (at most 4  (the same text always gets the same n within a dump)
digits), HI or LO, and the texts of
the InsuLinx reminder labels
(``$getrmndrst,0``)
binary protocol config tables          patient name and id as above; the sensor UID
(``settings.config``, ``sensor_uid``,  ``REDACTED-sensor-uid``; smart-tag texts
``smart_tag_texts``,                   ``REDACTED-note-<n>`` (they are the note texts);
``reminder_texts``)                    any other text ``REDACTED-text-<n>``; the brand
                                       name stays
=====================================  ====================================================

What we could not classify is treated as identifying: a field whose meaning is unknown
(``raw``, the fields of an ``unknown`` record) keeps its value only when it cannot identify
anyone (empty, HI/LO, a number of at most 4 digits: flags, error bits, small counts); a
comment slot is replaced whatever it holds (a phone number typed as a note is digits). The
first two fields of an ``unknown`` record (record id and type) are kept. Empty texts stay
empty (an unused comment slot reveals nothing). Placeholders are the same as
the ones ``libre_usb.output.libreview`` writes. They are numbered, never hashed: a reader serial or
a short name is easy to recover from its hash.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..model import DeviceInfo, Dump, NoteRecord, Record, UnknownRecord, sorted_records

PREFIX = "REDACTED-"
SERIAL = PREFIX + "reader-serial"
PATIENT_NAME = PREFIX + "patient-name"
PATIENT_ID = PREFIX + "patient-id"
#: commands whose whole reply is an identifier, and what replaces it
_WHOLE_REPLIES = {"$sn?": SERIAL, "$serlnum?": SERIAL, "$ptname?": PATIENT_NAME,
                  "$ptid?": PATIENT_ID}
#: Libre ``$arresult?`` comment slots: field index -> comment number (protocol.md 4.2)
COMMENT_FIELDS = {29 + i: i + 1 for i in range(6)}
SENSOR_UID = PREFIX + "sensor-uid"
#: binary config fields (protocol/binary/fields.py) that are identifiers, and their placeholder
_CFG_IDENTIFIERS = {1130: PATIENT_NAME, 1131: PATIENT_ID, 1321: SENSOR_UID}
#: config texts that are not personal (the reader's brand name)
_CFG_PUBLIC = {1029}
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)\Z")
#: a number too short to identify anyone (flags, error bits, small counts, times)
_SMALL_NUMBER = re.compile(r"[-+]?\d{1,4}(\.\d{0,4})?\Z")
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

    @staticmethod
    def keeps(index: int, value: str, *, comment_slots: bool) -> bool:
        """Whether a field whose meaning we do not know may be shown as it is: only when it
        cannot identify anyone (empty, HI/LO, a number of at most 4 digits outside a
        comment slot)."""
        stripped = value.strip()
        if not stripped:
            return True
        if comment_slots and index in COMMENT_FIELDS:
            return False
        return bool(_SMALL_NUMBER.match(stripped)) or stripped.upper() in ("HI", "LO")

    @staticmethod
    def keeps_unknown(record: UnknownRecord, index: int, value: str) -> bool:
        """:meth:`keeps` for a field of an ``unknown`` record: its id and type (the first two
        fields) are kept too."""
        if index < 2 and _NUMBER.match(value.strip()):
            return True
        slots = record.source == "$arresult?" and len(record.fields) >= 35
        return Redactor.keeps(index, value, comment_slots=slots)

    def field(self, index: int, value: str, *, comment_slots: bool) -> str:
        """A field whose meaning we do not know: kept only when it cannot identify."""
        if self.keeps(index, value, comment_slots=comment_slots):
            return value
        if comment_slots and index in COMMENT_FIELDS:
            return note(COMMENT_FIELDS[index])
        return self.text(value)

    # -- device -------------------------------------------------------------------------------

    def whole(self, command: str, text: str) -> str:
        """The placeholder of a reply that is an identifier as a whole."""
        return _WHOLE_REPLIES[command]

    def tag(self, number: str, text: str) -> str:
        """The placeholder of an InsuLinx smart-tag text."""
        return f"{PREFIX}tag-{number}"

    def reply(self, command: str, text: str) -> str:
        if command in _WHOLE_REPLIES:
            return self.whole(command, text) if text.strip() else text
        if command == "$gettags,2,2":
            lines = []
            for line in text.split("\n"):
                match = _TAG.match(line)
                if match and match.group(3).strip():
                    line = match.group(1) + self.tag(match.group(2), match.group(3))
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

    def config_value(self, field_id: int | None, value: Any) -> Any:
        """A binary config field's value, redacted (see the module docstring)."""
        if not isinstance(value, str) or not value or field_id in _CFG_PUBLIC:
            return value
        if field_id in _CFG_IDENTIFIERS:
            return _CFG_IDENTIFIERS[field_id]
        if field_id is not None and 1290 <= field_id <= 1295:
            return note(field_id - 1289)
        return self.text(value) if is_text(value) or field_id is None else value

    def binary_settings(self, settings: dict[str, Any]) -> None:
        if isinstance(settings.get("config"), list):
            settings["config"] = [
                {**entry, "value": self.config_value(entry.get("field_id"), entry.get("value"))}
                for entry in settings["config"]]
        if isinstance(settings.get("sensor_uid"), dict):
            settings["sensor_uid"] = {**settings["sensor_uid"], "value": SENSOR_UID}
        for key in ("smart_tag_texts", "reminder_texts"):
            if isinstance(settings.get(key), list):
                settings[key] = [{**item, "text": self.config_value(item.get("field_id"),
                                                                    item.get("text"))}
                                 for item in settings[key]]

    def device(self, info: DeviceInfo) -> DeviceInfo:
        settings = dict(info.settings)
        self.binary_settings(settings)
        if "tags" in settings:
            settings["tags"] = [
                {**tag, "text": f"{PREFIX}tag-{tag.get('number')}" if tag.get("text") else ""}
                for tag in settings["tags"]
            ]
        return msgspec.structs.replace(
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
            # the record id and type (the first two) are kept; the rest is unclassified
            changes["fields"] = tuple(
                value if self.keeps_unknown(record, index, value)
                else self.field(index, value, comment_slots=slots)
                for index, value in enumerate(record.fields))
        if isinstance(record, NoteRecord) and record.text:
            changes["text"] = note(record.comment_index)
        return msgspec.structs.replace(record, **changes) if changes else record


def redact(dump: Dump) -> Dump:
    """The dump with identifiers and free texts replaced (see the module docstring)."""
    redactor = Redactor()
    device = redactor.device(dump.device)
    records = tuple(redactor.record(record) for record in sorted_records(dump.records))
    return msgspec.structs.replace(dump, device=device, records=records)


# -- shareable transcripts ----------------------------------------------------------------------
#
# ``--record FILE --redact`` writes a transcript that still verifies and replays
# (libre_usb/transport/shareable.py applies these rules to the bytes). Two differences from
# a redacted dump: a placeholder has the length and character class of what it replaces
# (the caller's ``placeholder``), and a line's fields are replaced in place, by the same
# rule (``Redactor.keeps``), the comment texts of its notes included.

#: informational replies decoded into numbers, codes, times or the software version: a
#: shareable transcript keeps them as the reader sent them. Every other reply that is not an
#: identifier, a tag list or a reminder-label list (above) is not decoded by us, so it is
#: replaced whole but for its ``Label:`` prefixes (``$patch?``, most InsuLinx settings).
KEPT_REPLIES = frozenset({
    "$swver?", "$rdt?", "$date?", "$time?", "$dbrnum?", "$uom?", "$gunits?", "$lang?",
    "$ntsound?", "$btsound?", "$getrmndr,0", "$marketlev?", "$clktyp?", "$brandname?",
})
_LINE_LABEL = re.compile(r"[A-Za-z][A-Za-z ]*[A-Za-z]:")
#: the names the header of a shareable transcript counts replacements by
_WHOLE_NAMES = {"$sn?": "reader serial", "$serlnum?": "reader serial",
                "$ptname?": "patient name", "$ptid?": "patient id"}


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _unknown_decoded(record: UnknownRecord) -> set[int]:
    """The fields of a line of unknown layout that are still read: its id, its type and
    its time (``unknown_record``/``unknown_result_record`` in protocol/text/records.py)."""
    fields = record.fields
    result_line = record.source == "$result?"
    id_at, type_at = (1, 0) if result_line else (0, 1)
    kept = {i for i in (id_at, type_at) if i < len(fields) and _is_int(fields[i])}
    if record.local_time is not None:
        kept.update(range(2, 7 if result_line else 8))
    return kept


def identifying_fields(fields: Sequence[str], records: Sequence[Record]) -> dict[int, str]:
    """The fields of one reader line a shareable transcript replaces, with what each is:
    the fields a redacted dump replaces (:meth:`Redactor.keeps`: a field whose meaning we
    do not know, in ``raw`` or in a line of unknown layout, unless it cannot identify
    anyone; a comment slot whatever it holds) and the comment texts of its notes."""
    hide: dict[int, str] = {}
    for record in records:
        slots = record.source == "$arresult?"
        hide.update((index, "undecoded record fields") for index, value in record.raw
                    if not Redactor.keeps(index, value, comment_slots=slots))
        if isinstance(record, UnknownRecord):
            hide.update((index, "undecoded record fields")
                        for index, value in enumerate(record.fields)
                        if not Redactor.keeps_unknown(record, index, value))
    decoded = set(range(len(fields))) - set(hide)
    for record in records:
        if isinstance(record, NoteRecord) and record.text:
            at = [i for i in sorted(decoded) if fields[i] == record.text]
            slot = [i for i in at if COMMENT_FIELDS.get(i) == record.comment_index]
            hide.update((index, "comment texts") for index in slot or at)
    return hide


def decoded_shape(records: Sequence[Record]) -> list[dict[str, Any]]:
    """What a line decodes to, without the texts a shareable transcript replaces: the
    records of a line and of its redacted copy must have the same shape."""
    out = []
    for record in records:
        data = record.to_dict()
        data["raw"] = [index for index, _ in record.raw]
        data.pop("text", None)
        if isinstance(record, UnknownRecord):
            data["fields"] = [value if i in _unknown_decoded(record) else None
                              for i, value in enumerate(record.fields)]
        out.append(data)
    return out


class _Placeholding(Redactor):
    """The dump rules with the caller's placeholders, counting what they replace."""

    def __init__(self, placeholder: Callable[[str], str],
                 counts: collections.Counter[str]) -> None:
        super().__init__()
        self.placeholder = placeholder
        self.counts = counts

    def _replace(self, what: str, value: str) -> str:
        new = self.placeholder(value)
        if new != value:
            self.counts[what] += 1
        return new

    def whole(self, command: str, text: str) -> str:
        return self._replace(_WHOLE_NAMES.get(command, "identifiers"), text)

    def tag(self, number: str, text: str) -> str:
        return self._replace("tag texts", text)

    def text(self, value: str) -> str:
        return self._replace("reply texts", value)


class TranscriptPolicy:
    """The redaction rules of a shareable transcript, as decisions on reader text; the
    recorder's writer (libre_usb/transport/shareable.py) applies them to the bytes."""

    def __init__(self) -> None:
        #: what was replaced, by kind (the transcript's header shows it)
        self.counts: collections.Counter[str] = collections.Counter()

    def reply_line(self, command: str | None, line: str,
                   placeholder: Callable[[str], str]) -> str:
        """One line of an informational reply with its identifying parts replaced by
        ``placeholder(part)``. ``command`` is None for a reply to nothing we sent."""
        if command in KEPT_REPLIES:
            return line
        if command is not None and (command in _WHOLE_REPLIES
                                    or command in ("$gettags,2,2", "$getrmndrst,0")):
            return _Placeholding(placeholder, self.counts).reply(command, line)
        label = _LINE_LABEL.match(line)
        start = label.end() if label else 0
        new = line[:start] + placeholder(line[start:])
        if new != line:
            self.counts["undecoded reply lines"] += 1
        return new

    identifying_fields = staticmethod(identifying_fields)
    decoded_shape = staticmethod(decoded_shape)
