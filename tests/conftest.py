"""Shared fixtures. Real data lives in tests/data/ (read through tests/captures.py)."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import pytest

from libre_usb.output import export

sys.path.insert(0, str(Path(__file__).resolve().parent))

_RUN_STATE = pytest.StashKey[tuple[str, "str | None"]]()


def pytest_configure(config: pytest.Config) -> None:
    """The virtual reader keeps a clock set with ``clock --set`` under $XDG_STATE_HOME
    (libre_usb/simulator/state.py). No test may read or write the real one: before any test
    module is imported (some build a subprocess environment at import), the whole run gets
    an empty state directory of its own; :func:`sim_state_is_private` then gives every test
    its own."""
    private = tempfile.mkdtemp(prefix="libre-dump-test-state-")
    config.stash[_RUN_STATE] = (private, os.environ.get("XDG_STATE_HOME"))
    os.environ["XDG_STATE_HOME"] = private


def pytest_unconfigure(config: pytest.Config) -> None:
    private, original = config.stash.get(_RUN_STATE, ("", None))
    if private:
        shutil.rmtree(private, ignore_errors=True)
        if original is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = original


@pytest.fixture(autouse=True)
def sim_state_is_private(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test starts with a virtual reader nobody has set the clock of, and what it sets
    stays with it (subprocesses inherit the variable)."""
    state = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


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
