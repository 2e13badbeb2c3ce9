"""Every known record-line layout, as data: (family, command, record type, field count).

A record parser never guesses: it reads the line's record type (field 1 on the Libre family,
field 0 on the ``$result?`` meters), counts its fields and looks the pair up here. A line
whose count fits no layout of its family and record type is kept whole as an ``unknown``
record, counted and reported: it is never read with a neighbouring layout (a Libre 2 line
read with the Libre 1 layout takes the copied minute for the rapid-acting dose).

``at`` names the field positions a decoder uses (0-based indices into the comma-split line).
``source`` says where the layout is known from; ``confirmed`` is True only when a real line
of that exact shape, from a device nobody here owns, is in a public source (and in
``tests/data/``). The same table is in ``docs/records.md``.

Families: ``libre`` (FreeStyle Libre and Libre Pro readers), ``libre2``, ``libre3``,
``neo`` (Precision/Optium Neo), ``insulinx``.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

HISTORY = "$history?"
ARRESULT = "$arresult?"
RESULT = "$result?"

#: sources, cited by the table (full references in docs/records.md)
GP = "glucometer-protocols freestyle-libre.md (reverse engineered from real readers)"
GP_PR32 = "glucometer-protocols PR #32 (fields 35..43 on a real Libre, 2023)"
ISS63 = "glucometerutils issue #63 (real Libre history lines)"
ISS137 = ("glucometerutils issue #137 (real Libre 2 lines, 38 and 47 fields; the owner "
          "compared the doses with the reader's logbook) and #140")
PR131 = "glucometerutils PR #131 (real Libre 3 reader lines, one user's device)"
GP_NEO = "glucometer-protocols freestyle-precision-neo.md, glucometerutils fsprecisionneo.py"
ISS18 = "glucometerutils issue #18 (real Optium Neo lines; the user read the meter's values)"
OG = "OpenGlucose InsuLinx USB capture (real $result? reply, 237 lines)"


class Layout(msgspec.Struct, frozen=True):
    """One line shape and where its decoded fields are."""

    family: str
    command: str
    record_type: int
    fields: int
    #: which decoder reads it: history, reading, time_change, result_reading,
    #: neo_insulin, result_time_change
    decoder: str
    at: Mapping[str, int]
    source: str
    confirmed: bool


_L1_READING = {
    "reading_type": 9, "error_flag": 11, "value": 12, "trend": 14, "exercise": 15,
    "medication": 16, "rapid_flag": 17, "long_flag": 18, "comment_bits": 19, "long_half": 23,
    "food_flag": 25, "carbs": 26, "errors": 28, "comments": 29,
}
#: Libre 2: three more fields (29..31, meaning unknown) before the six comment texts, which
#: move to 32..37; the ``7``, time copy and ``1`` to 38..45, the rapid dose to 46 (#137)
_L2_READING = {**_L1_READING, "comments": 32}
#: Libre 3: no comment bits, no comment texts, no error field (PR #131)
_L3_READING = {
    "reading_type": 9, "error_flag": 11, "value": 12, "trend": 14, "exercise": 15,
    "medication": 16, "rapid_flag": 17, "long_flag": 18, "long_half": 22, "food_flag": 24,
    "carbs": 25,
}
_LIBRE_HISTORY = {"first": 12, "glucose": 13, "runtime": 14, "errors": 15}
_LIBRE_TIME_CHANGE = {"new": 2, "old": 9}
_RESULT_TIME_CHANGE = {"new": 2, "old": 8}

LAYOUTS: tuple[Layout, ...] = (
    # FreeStyle Libre (and Libre Pro: no public text line; it shares the Libre's reader
    # software family, so the Libre layouts are used, inferred)
    Layout("libre", HISTORY, 12, 16, "history", _LIBRE_HISTORY, f"{GP}; {ISS63}", True),
    Layout("libre", ARRESULT, 2, 35, "reading", _L1_READING,
           f"{GP}; glucometerutils issue #103 (real line)", True),
    Layout("libre", ARRESULT, 2, 44, "reading", {**_L1_READING, "rapid_half": 43},
           f"{GP}; {GP_PR32}", True),
    Layout("libre", ARRESULT, 5, 20, "time_change", _LIBRE_TIME_CHANGE, GP, False),
    # FreeStyle Libre 2
    Layout("libre2", HISTORY, 12, 16, "history", _LIBRE_HISTORY,
           "inferred: glucometerutils reads Libre 2 history with the Libre layout and the "
           "owner in #137 reports correct glucose; no public Libre 2 history line", False),
    Layout("libre2", ARRESULT, 2, 38, "reading", _L2_READING, ISS137, True),
    Layout("libre2", ARRESULT, 2, 47, "reading", {**_L2_READING, "rapid_half": 46},
           ISS137, True),
    Layout("libre2", ARRESULT, 5, 20, "time_change", _LIBRE_TIME_CHANGE,
           "inferred: the Libre layout; no public Libre 2 time-change line", False),
    # FreeStyle Libre 3 reader
    Layout("libre3", HISTORY, 12, 15, "history",
           {"first": 11, "glucose": 12, "runtime": 13, "errors": 14}, PR131, True),
    Layout("libre3", ARRESULT, 2, 28, "reading", _L3_READING, PR131, True),
    Layout("libre3", ARRESULT, 2, 37, "reading", {**_L3_READING, "rapid_half": 36},
           f"{PR131}: the user noted 1 U rapid, 2 U long, 3 g carbs", True),
    Layout("libre3", ARRESULT, 5, 20, "time_change", _LIBRE_TIME_CHANGE,
           "inferred: the Libre layout; no public Libre 3 time-change line", False),
    # FreeStyle Precision / Optium Neo: type first, then id; no seconds
    Layout("neo", RESULT, 7, 19, "result_reading", {"value": 8, "reading_type": 0},
           GP_NEO, False),
    Layout("neo", RESULT, 9, 11, "result_reading", {"value": 8, "reading_type": 1},
           f"{GP_NEO}; {ISS18}", True),
    Layout("neo", RESULT, 10, 13, "neo_insulin", {"insulin_type": 8, "units": 9},
           GP_NEO, False),
    Layout("neo", RESULT, 6, 13, "result_time_change", _RESULT_TIME_CHANGE,
           f"{ISS18}; field order as on the InsuLinx capture", True),
    # FreeStyle InsuLinx
    Layout("insulinx", RESULT, 0, 16, "result_reading", {"value": 13, "reading_type": 0},
           OG, True),
    Layout("insulinx", RESULT, 6, 13, "result_time_change", _RESULT_TIME_CHANGE,
           f"{OG} (meaning of the fields inferred)", True),
)

#: (family, command, record type, field count) -> layout
TABLE: dict[tuple[str, str, int, int], Layout] = {
    (layout.family, layout.command, layout.record_type, layout.fields): layout
    for layout in LAYOUTS
}
#: (family, command) -> the record types that have at least one layout
KNOWN_TYPES: dict[tuple[str, str], frozenset[int]] = {}
for _layout in LAYOUTS:
    _key = (_layout.family, _layout.command)
    KNOWN_TYPES[_key] = KNOWN_TYPES.get(_key, frozenset()) | {_layout.record_type}
del _layout, _key

#: which family each reader model's lines are read with
MODEL_FAMILY = {"libre": "libre", "libre_pro": "libre", "libre2": "libre2",
                "libre3": "libre3", "neo": "neo", "insulinx": "insulinx"}


def type_index(command: str) -> int:
    """Where a line of ``command`` keeps its record type."""
    return 0 if command == RESULT else 1


def find(family: str, command: str, record_type: int, count: int) -> Layout | None:
    """The layout of a line, or None when no known layout fits."""
    return TABLE.get((family, command, record_type, count))
