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

#: the variables pointing into the home directory that the run replaces (see below)
_PRIVATE_DIRS = ("XDG_STATE_HOME", "MPLCONFIGDIR")
_RUN_STATE = pytest.StashKey[tuple[str, dict[str, "str | None"]]]()


def pytest_configure(config: pytest.Config) -> None:
    """The run writes nothing into the home directory and reads nothing an earlier run left
    there. The virtual reader keeps a clock set with ``clock --set`` under $XDG_STATE_HOME
    (libre_usb/simulator/state.py): before any test module is imported (some build a
    subprocess environment at import), the whole run gets an empty state directory of its
    own, and :func:`sim_state_is_private` then gives every test its own. matplotlib (which
    iglu-python, an oracle of test_report, imports) keeps its caches in MPLCONFIGDIR."""
    private = tempfile.mkdtemp(prefix="libre-dump-test-")
    config.stash[_RUN_STATE] = (private, {name: os.environ.get(name) for name in _PRIVATE_DIRS})
    for name in _PRIVATE_DIRS:
        os.environ[name] = os.path.join(private, name.lower())


def pytest_unconfigure(config: pytest.Config) -> None:
    private, original = config.stash.get(_RUN_STATE, ("", {}))
    if private:
        shutil.rmtree(private, ignore_errors=True)
        for name, value in original.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
