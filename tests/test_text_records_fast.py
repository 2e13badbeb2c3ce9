"""The fast way of parse_lines (history lines of plain numbers) against the general way
(split_line, then parse_fields field by field): the same records, spelled the same (repr),
the same counts of lines kept raw.

Lines: the virtual readers' history lines, the real history lines of the other tests
(glucometerutils issue #63, the Libre 3's in protocol.md), and all of them spoiled field by
field (signs, leading zeros, spaces, 10- and 20-digit numbers, the reader's 255 dates,
broken UTF-8, a field more or less); any line hypothesis makes, for every parser."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_models_libre import ISSUE_63_HISTORY
from test_models_libre3 import HISTORY as LIBRE3_HISTORY

from libre_usb.model import Record
from libre_usb.protocol.text import layouts, records
from libre_usb.protocol.text.records import (
    PARSER_FAMILIES,
    LineStats,
    parse_fields,
    parse_lines,
    split_line,
)
from libre_usb.simulator.content import generate
from libre_usb.simulator.lines import history_line, libre3_history_line

SPOILERS = ["0", "1", "2", "99", "100", "255", "13", "31", "32", "60", "007", "-1", "+1",
            " 1", "", "123456789", "1234567890", "99999999999999999999", "1.5", "x", "\u0661"]
#: what else a line's fields may hold (for the lines hypothesis makes): out-of-range values,
#: quoted notes (commas, quotes, line breaks), a quoted number, a full-width digit
READING_SPOILERS = [*SPOILERS, "HI", "LO", '"12"', '"a,b"', '"x\r\ny"', '"say ""hi"""', '"',
                    '""', "a\rb", "a\nb", "Caf\u00e9", "\uff11", "0x1", "1e3", "-0", "0,1"]
#: numbers and times the lines hypothesis makes may hold
NUMBERS = ["0", "1", "2", "3", "7", "17", "18", "19", "27", "63", "64", "127", "255",
           "999999999", "1000000000", "01", "-0"]
TIMES = ["0", "1", "12", "13", "24", "29", "30", "31", "59", "60", "99", "100", "255"]

REAL_HISTORY = {"libre_history": [ISSUE_63_HISTORY], "libre2_history": [ISSUE_63_HISTORY],
                "libre3_history": LIBRE3_HISTORY}


def _general(parser: str, lines: list[bytes]) -> tuple[list[Record], LineStats]:
    family, command = PARSER_FAMILIES[parser]
    stats = LineStats()
    out = [record for line in lines
           for record in parse_fields(family, command, split_line(line), stats)]
    return out, stats


def _same(parser: str, lines: list[bytes]) -> list[Record]:
    """parse_lines of ``lines``, checked record by record against the general way."""
    command = PARSER_FAMILIES[parser][1]
    stats = LineStats()
    fast = parse_lines(parser, lines, command, stats)
    general, general_stats = _general(parser, lines)
    assert [repr(r) for r in fast] == [repr(r) for r in general]
    assert stats == general_stats
    return fast


class _Counter:
    """Counts the lines parse_lines hands to parse_fields (the general way; _general calls
    the function itself, not through the module)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        general = records.parse_fields

        def counted(*args: object, **kwargs: object) -> list[Record]:
            self.calls += 1
            return general(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(records, "parse_fields", counted)


def _history_lines(model: str, seed: int = 3, days: int = 2) -> list[bytes]:
    """The history lines the virtual reader ``model`` sends for ``days`` days."""
    write = libre3_history_line if model == "libre3" else history_line
    lines = [write(record).encode() for record in generate(seed, model=model, days=days).history]
    assert len(lines) > 150, model
    return lines


def _fields(line: bytes) -> list[bytes]:
    """The fields of a line as bytes (csv as split_line splits them); in a line with quoted
    fields, every field that is not a number is quoted again, as the reader writes notes."""
    quoted = b'"' in line
    return [(_quote(t) if quoted and not re.fullmatch("-?[0-9]*", t) else t).encode()
            for t in split_line(line)]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _with(fields: list[bytes], index: int, value: bytes) -> bytes:
    return b",".join([*fields[:index], value, *fields[index + 1:]])


def _spoiled(lines: list[bytes], spoilers: list[str], per_field: int,
             seed: int = 7) -> Iterator[bytes]:
    """Each line with each field in turn replaced by ``per_field`` spoilers, one field more
    and one less."""
    rng = random.Random(seed)
    for line in lines:
        fields = line.split(b",") if b'"' not in line else _fields(line)
        for index in range(len(fields)):
            for value in rng.sample(spoilers, per_field):
                yield _with(fields, index, value.encode())
        yield line + b",0"
        yield line.rsplit(b",", 1)[0]
        yield b"\xff" + line  # broken UTF-8 in the id
        yield line.replace(b"Caf\xc3\xa9", b"Caf\xc3")  # broken UTF-8 in a note


# -- history lines -----------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "parser"), [("libre", "libre_history"),
                                               ("libre2", "libre2_history"),
                                               ("libre3", "libre3_history")])
def test_plain_history_lines_parse_as_the_general_way(
        model: str, parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _history_lines(model) + [line.encode() for line in REAL_HISTORY[parser]]
    counter = _Counter(monkeypatch)
    _same(parser, lines)
    assert counter.calls == 0  # every plain history line took the fast way
    assert records._plain_rows(lines) is not None  # all of them read at once
    spoiled = list(_spoiled(lines[:40] + lines[-3:], SPOILERS, 6))
    assert len(spoiled) > 1000
    counter.calls = 0
    _same(parser, spoiled)
    assert 0 < counter.calls < len(spoiled)  # both ways were taken


def test_the_real_history_lines_take_the_fast_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real readers' history lines are not left to the general way (a fast way that fits
    only our own simulator's lines would not be one)."""
    counter = _Counter(monkeypatch)
    for parser, lines in REAL_HISTORY.items():
        command = PARSER_FAMILIES[parser][1]
        parse_lines(parser, [line.encode() for line in lines], command)
    assert counter.calls == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSER_FAMILIES)),
       fields=st.lists(st.one_of(st.sampled_from(READING_SPOILERS + NUMBERS + TIMES),
                                 st.integers(0, 10**10).map(str)), min_size=0, max_size=50),
       record_type=st.sampled_from(["2", "5", "12", "0", "6", "7", "9", "10"]))
def test_any_line_parses_as_the_general_way(parser: str, fields: list[str],
                                           record_type: str) -> None:
    at_type = layouts.type_index(PARSER_FAMILIES[parser][1])
    if len(fields) > at_type:
        fields[at_type] = record_type
    _same(parser, [",".join(fields).encode()])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSER_FAMILIES)), data=st.data())
def test_lines_of_a_layouts_length_parse_as_the_general_way(parser: str,
                                                            data: st.DataObject) -> None:
    """Lines of exactly a known layout's length, mostly plain numbers: the fast decoders'
    own ground."""
    family, command = PARSER_FAMILIES[parser]
    shapes = [lay for lay in layouts.LAYOUTS if (lay.family, lay.command) == (family, command)]
    layout = data.draw(st.sampled_from(shapes))
    value = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["0", "1"]),
                      st.sampled_from(READING_SPOILERS))
    fields = data.draw(st.lists(value, min_size=layout.fields, max_size=layout.fields))
    fields[layouts.type_index(command)] = str(layout.record_type)
    if data.draw(st.booleans()):
        fields[2:8] = ["6", "15", "26", "10", "48", "32"]
    _same(parser, [",".join(fields).encode()])


# -- the plain-number readers against a regex of what a plain number is ------------------------

PLAIN_BYTES = re.compile(rb"(?:0|[1-9][0-9]{0,8})(?:,(?:0|[1-9][0-9]{0,8}))*")
PIECES = ["0", "1", "00", "01", "10", "123456789", "999999999", "1000000000", "1234567890",
          "", "-1", "-0", "+1", " 1", "1 ", "1.0", "1e3", "\u0661", "\uff11", "0x1", '"1"',
          "\r", "99999999999999999999999", "1,2", ","]


def test_plain_numbers_reads_exactly_the_plain_lines() -> None:
    seen = 0
    for a in PIECES:
        for b in PIECES:
            for c in ["", *PIECES]:
                line = ",".join(p for p in (a, b, c) if p or c).encode()
                want = ([int(x) for x in line.split(b",")]
                        if PLAIN_BYTES.fullmatch(line) else None)
                assert records._plain_numbers(line) == want, line
                seen += want is not None
    assert records._plain_numbers(b"") is None
    assert seen > 50


def test_plain_rows_reads_all_lines_or_none() -> None:
    rng = random.Random(16)
    lines = [",".join(p for p in (a, b) if p or b).encode() for a in PIECES for b in PIECES]
    plain = [line for line in lines if PLAIN_BYTES.fullmatch(line)]
    assert len(plain) > 20
    assert records._plain_rows(plain) == [records._plain_numbers(line) for line in plain]
    assert records._plain_rows([]) is None
    for batch in ([b""], [b"1", b""], [b"", b"1"], [b"1,2", b"", b"3"]):
        assert records._plain_rows(batch) is None, batch  # an empty line is no number
    for _ in range(300):
        batch = rng.sample(plain, 5) + rng.sample(lines, rng.randrange(3))
        rng.shuffle(batch)
        want = [records._plain_numbers(line) for line in batch]
        got = records._plain_rows(batch)
        assert got == (want if None not in want else None), batch


def test_lines_are_numbered_a_block_at_a_time_as_one_by_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """_numbered reads _BLOCK lines at once (bounding the numbers held at a time): the same
    pairs as line by line, whatever block holds a line that is not plain."""
    rng = random.Random(17)
    lines = [",".join(p for p in (a, b) if p or b).encode() for a in PIECES for b in PIECES]
    plain = [line for line in lines if PLAIN_BYTES.fullmatch(line)]
    monkeypatch.setattr(records, "_BLOCK", 4)
    for _ in range(200):
        batch = rng.sample(plain, rng.randrange(12)) + rng.sample(lines, rng.randrange(3))
        rng.shuffle(batch)
        assert list(records._numbered(batch)) == [(line, records._plain_numbers(line))
                                                  for line in batch]
