"""The plain-line fast way of parse_lines against the general way (split_line, then
parse_fields field by field), on the history lines of the virtual readers and on the same
lines spoiled field by field: the same records, the same counts of lines kept raw."""

from __future__ import annotations

import random

import pytest
from msgspec.structs import asdict

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


def _general(parser: str, lines: list[bytes]) -> tuple[list[object], LineStats]:
    family, command = PARSER_FAMILIES[parser]
    stats = LineStats()
    records = [record for line in lines
               for record in parse_fields(family, command, split_line(line), stats)]
    return records, stats


def _lines(model: str) -> list[bytes]:
    """The history lines the virtual reader ``model`` sends for two days."""
    write = libre3_history_line if model == "libre3" else history_line
    lines = [write(record).encode() for record in generate(3, model=model, days=2).history]
    assert len(lines) > 150, model
    return lines


@pytest.mark.parametrize(("model", "parser"), [("libre", "libre_history"),
                                               ("libre2", "libre2_history"),
                                               ("libre3", "libre3_history")])
def test_plain_history_lines_parse_as_the_general_way(model: str, parser: str) -> None:
    lines = _lines(model)
    rng = random.Random(7)
    spoiled = []
    for line in lines[:40]:
        fields = line.decode().split(",")
        for index in range(len(fields)):
            for value in rng.sample(SPOILERS, 6):
                spoiled.append(",".join([*fields[:index], value, *fields[index + 1:]]).encode())
        spoiled.append(line + b",0")
        spoiled.append(line.rsplit(b",", 1)[0])
    for batch in (lines, spoiled):
        command = PARSER_FAMILIES[parser][1]
        stats = LineStats()
        fast = parse_lines(parser, batch, command, stats)
        general, general_stats = _general(parser, batch)
        assert [type(r) for r in fast] == [type(r) for r in general]
        assert [asdict(r) for r in fast] == [asdict(r) for r in general]
        assert (stats.unrecognised, stats.other_types) == (general_stats.unrecognised,
                                                           general_stats.other_types)
    assert len(spoiled) > 1000
