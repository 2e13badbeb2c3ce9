"""Replay every input the fuzzers ever crashed on (tests/regressions/<target>/*).

Each file is an input that once raised something other than a documented error; it must
now pass through its target (fuzz/targets.py) cleanly. New crashes found with
``python -m fuzz`` are added here (docs/reliability.md, "Fuzzing").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fuzz.targets import TARGETS, run_target

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
CASES = sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file())


def test_the_regression_inputs_are_there() -> None:
    assert CASES, f"no regression inputs under {REGRESSIONS}"
    for case in CASES:
        assert case.parent.name in TARGETS, f"{case}: no fuzz target {case.parent.name!r}"


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_regression_input(case: Path) -> None:
    run_target(case.parent.name, case.read_bytes())  # raises on a crash
