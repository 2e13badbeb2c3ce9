"""Shared fixtures. Real data lives in tests/data/ (read through tests/captures.py)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import IO, Any

import pytest

from libre_usb.output import export

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def json_dumps_follow_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``json`` dump written in-process during the tests is validated against
    docs/dump.schema.json (tests/dumpschema.py)."""
    from dumpschema import assert_valid_dump

    original = export.write_json

    def checked(dump: Any, out: IO[str], *, unit: str = "mg/dL") -> None:
        buffer = io.StringIO()
        original(dump, buffer, unit=unit)
        text = buffer.getvalue()
        assert_valid_dump(text)
        out.write(text)

    monkeypatch.setattr(export, "write_json", checked)
    monkeypatch.setitem(export.WRITERS, "json", checked)
