"""bench/ itself: the case registry loads and the table renders (the numbers are bench/'s
job, not the tests': no timing is asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.__main__ import load_cases, table
from bench.core import CASES, Row

ROOT = Path(__file__).resolve().parent.parent


def test_every_case_module_registers_and_names_are_unique() -> None:
    load_cases()
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names))
    for required in ("startup", "assembly+parse", "dump-cpu", "paced", "memory", "diff",
                     "crypto"):
        assert required in names


def test_list_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    assert "dump-cpu" in done.stdout.split()


def test_rows_judge_their_ratio_against_the_target() -> None:
    met = Row("x", "1", 1.0, 4.0, "s", target=0.5)
    missed = Row("y", "1", 3.0, 4.0, "s", target=0.5)
    shown = Row("z", "1", 3.0, float("nan"), "s")
    assert (met.ratio, met.passed, missed.passed, shown.passed) == (0.25, True, False, None)
    text = table([met, missed, shown])
    assert "MISSED" in text.splitlines()[3] and " ok" in text.splitlines()[2]
