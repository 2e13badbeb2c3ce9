"""Validate ``json`` dump documents against docs/dump.schema.json.

``assert_valid_dump(doc_or_text)`` is the helper any test can call; ``tests/conftest.py``
also wraps the ``json`` writer so that every ``json`` dump the test suite produces in-process
is checked.

The schema file itself is checked with jsonschema (the reference implementation). Documents
are validated with jsonschema-rs when it is installed (the ``dev`` extra has it): a 90-day
Libre dump has ~10,000 records, which the pure-Python validator needs seconds for and the
compiled one milliseconds. Without it the pure-Python validator is used. ``test_formats.py``
checks that both give the same verdicts.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "dump.schema.json"
#: how many documents were validated (tests check the hook really runs)
stats = {"validated": 0}


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@functools.cache
def python_validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@functools.cache
def fast_validator() -> Any:
    """jsonschema-rs's validator, or None when it is not installed."""
    python_validator()  # the schema itself is checked by the reference implementation
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.Draft202012Validator(load_schema())


def schema_errors(doc: Any, *, fast: bool = True) -> list[str]:
    """Every schema violation of ``doc``, as short lines."""
    validator = fast_validator() if fast else None
    if validator is not None:
        return [str(error).split("\n")[0][:300] for error in validator.iter_errors(doc)]
    errors = sorted(python_validator().iter_errors(doc), key=lambda e: list(map(str, e.path)))
    return ["/".join(map(str, e.path)) + ": " + e.message[:300] for e in errors]


def assert_valid_dump(doc_or_text: Any) -> None:
    """Fail with the first violations when a ``json`` dump does not follow the schema."""
    doc = json.loads(doc_or_text) if isinstance(doc_or_text, str) else doc_or_text
    errors = schema_errors(doc)
    stats["validated"] += 1
    if errors:
        raise AssertionError("json dump does not follow docs/dump.schema.json:\n"
                             + "\n".join(errors[:10]))
