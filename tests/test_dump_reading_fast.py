"""Reading a saved dump fast, with the same answers: the schema check of each record compiled
once per kind (dumpcheck.acceptor) accepts exactly what the schema walk (dumpcheck.problem)
accepts, and the structure count of text without escapes (jsonsafe.Budget._split) is the
scanning count (Budget._scan), wherever the text is cut."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from docpaths import paths, replaced
from simdumps import content_dump

from libre_usb.errors import InputError
from libre_usb.jsonsafe import Budget
from libre_usb.model import AlertRecord
from libre_usb.output import dumpcheck, export

#: values put into a record's fields (and the items of its raw fields)
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 7, 0x8000, 1.0, 0.5, -0.5, 1e300, 10 ** 30, "", " ", "x",
    "1", "LO", "HI", "ok", "rapid", "$history?", "$arresult?", "db:history", "db:7", "db:x",
    "2026-06-15T12:00:00", "2026-06-15T12:00:00Z", "2026-13-45T25:61:61", "0001-01-01T00:00",
    "2026-06-15T12:00:00+01:00", [], [1], [1, "a"], [[1, "a"]], [[-1, "a"]], [[1, 2]],
    [["1", "a"]], [[1, "a", "b"]], {}, {"a": 1}, [[[[]]]],
]


def _records() -> list[dict[str, Any]]:
    """Records of every kind the virtual readers make, as a saved dump holds them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for model in ("libre", "libre_pro", "neo", "insulinx"):
        dump = content_dump(days=20, model=model)
        for record in dump.records:
            body = json.loads(json.dumps(record.to_dict(), ensure_ascii=False))
            kept = out.setdefault(body["kind"], [])
            if len(kept) < 3:
                kept.append(body)
    alert = AlertRecord(record_id=12, source="db:results", record_type=0,
                        local_time=dt.datetime(2026, 6, 15, 12), alarm="low", alarm_code=1,
                        glucose_mg_dl=52)
    out["alert"] = [json.loads(json.dumps(alert.to_dict()))]
    return [body for bodies in out.values() for body in bodies]


def _same(record: Any) -> bool:
    """Whether the compiled check and the schema walk agree on ``record``."""
    kind = record.get("kind") if isinstance(record, dict) else None
    node = dumpcheck.schema()["$defs"].get(kind) if isinstance(kind, str) else None
    if node is None:
        return True
    return dumpcheck.acceptor(node)(record) == (dumpcheck.problem(record, node) is None)


def test_compiled_record_checks_accept_what_the_schema_walk_accepts() -> None:
    records = _records()
    kinds = {record["kind"] for record in records}
    assert {"history", "scan", "glucose", "insulin", "food", "note", "alert", "event"} <= kinds
    checked = rejected = 0
    for record in records:
        assert dumpcheck.record_problem(record, "record") is None
        assert _same(record)
        variants = [replaced(record, path, value) for path in paths(record, 3)
                    for value in HOSTILE]
        variants += [{k: v for k, v in record.items() if k != key} for key in record]
        variants += [{**record, "unexpected": 1}]
        for variant in variants:
            assert _same(variant), variant
            found = dumpcheck.record_problem(variant, "record")
            kind = variant.get("kind")
            node = dumpcheck.schema()["$defs"].get(kind) if isinstance(kind, str) else None
            if isinstance(node, dict):
                assert found == dumpcheck.problem(variant, node, "record")
            checked += 1
            rejected += found is not None
    assert checked > 5000 and rejected > checked // 3  # (both answers well exercised)


def _count(pieces: list[bytes], *, scanning: bool) -> tuple[int, bool] | str:
    budget = Budget("x", max_values=10 ** 9)
    try:
        for piece in pieces:
            if scanning:  # the reference: the scanning count alone, carry and all
                if budget._carry:
                    piece = budget._carry + piece
                    budget._carry = b""
                budget._scan(piece)
            else:
                budget.feed(piece)
    except InputError as exc:
        return str(exc)
    return budget.values, budget._in_string


@pytest.mark.parametrize("seed", range(6))
def test_the_split_count_is_the_scanning_count_wherever_the_text_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [b'"', b",", b"[", b"]", b"{", b"}", b":", b"a", b" ", b"\xc3\xa9", b"1"]
    if seed % 2:
        alphabet.append(b"\\")
    for _ in range(300):
        text = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randrange(0, 6))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert _count(pieces, scanning=False) == _count(pieces, scanning=True), pieces


def test_the_split_count_of_a_real_dump_and_its_limit() -> None:
    text = export.render(content_dump(days=5), "json").encode()
    assert b"\\" not in text
    assert _count([text], scanning=False) == _count([text], scanning=True)
    values = _count([text], scanning=True)
    assert isinstance(values, tuple)
    small = Budget("x", max_values=values[0] - 1)
    with pytest.raises(InputError, match="more than"):
        small.feed(text)
