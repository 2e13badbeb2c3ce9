"""What every benchmark case shares: the result row, the case registry, timing helpers and
the recorded sessions both sides are served.

A case is one function decorated with :func:`case` in a module under ``bench/cases/``; it
gets a :class:`Context` and returns (or yields) :class:`Row` objects. ``python -m bench``
imports every module there, runs every case and prints one table. Adding a case is adding a
function (or a module with one).

Every comparison runs both sides in the same run, interleaved round by round (ours, theirs,
ours, theirs...), and keeps each side's best round, so a machine that slows down part way
through slows both sides alike. Times are CPU times (of this process, or of a child process
from ``wait4``) wherever the case allows, so other people's work on a shared machine does
not count; only the paced case is about wall time, by its nature.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: record counts every size-dependent case runs at (12,572: the reader in glucometerutils
#: issue #63; 8,640 = 90 days of 15-minute history; 35,000 ~ a year)
SIZES = (100, 1000, 8640, 12572, 35000)
#: the days of virtual-reader content whose history is about each size (96 readings a day)
DAYS = {100: 1, 1000: 10, 8640: 90, 12572: 131, 35000: 365}


@dataclasses.dataclass
class Row:
    """One line of the table. ``ratio`` is ours / baseline (lower is better for us);
    ``target`` the largest ratio that passes (None: shown, not judged)."""

    case: str
    size: str
    ours: float
    baseline: float
    unit: str
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("inf")

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio <= self.target


@dataclasses.dataclass
class Context:
    """What the cases share in one run: sizes, rounds, a scratch directory and the
    recorded sessions (made once per run, by our own dump of the virtual reader)."""

    sizes: tuple[int, ...]
    rounds: int
    workdir: Path
    quick: bool = False
    _transcripts: dict[int, tuple[Path, int]] = dataclasses.field(default_factory=dict)

    def transcript(self, size: int) -> tuple[Path, int]:
        """A recorded ``--record`` session of a Libre reader holding about ``size`` history
        records: (path, IN reports in it)."""
        if size not in self._transcripts:
            path = self.workdir / f"session-{size}.jsonl"
            days = DAYS.get(size, max(1, size // 96))
            done = run_ours(["dump", "--device", f"sim:libre?days={days}", "--record",
                             str(path), "-o", os.devnull, "-q"])
            if done.returncode != 0:
                raise RuntimeError(f"recording a session failed: {done.stderr}")
            reports = sum(1 for line in path.read_text().splitlines() if '"dir": "in"' in line)
            self._transcripts[size] = (path, reports)
        return self._transcripts[size]


Case = Callable[[Context], Iterable[Row]]
CASES: list[tuple[str, Case]] = []


def case(name: str) -> Callable[[Case], Case]:
    """Register a benchmark case under ``name`` (``python -m bench --only NAME``)."""

    def register(func: Case) -> Case:
        CASES.append((name, func))
        return func

    return register


# -- measuring ----------------------------------------------------------------------------

def interleaved(rounds: int, ours: Callable[[], object], theirs: Callable[[], object]
                ) -> tuple[float, float]:
    """Best CPU time of each side over ``rounds`` rounds, the sides taking turns.

    CPU time of this process (``time.process_time``), not wall time: on a shared machine a
    side's wall time counts every moment another process held the core, which has nothing
    to do with either side's code."""
    best_ours = best_theirs = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        ours()
        best_ours = min(best_ours, time.process_time() - start)
        start = time.process_time()
        theirs()
        best_theirs = min(best_theirs, time.process_time() - start)
    return best_ours, best_theirs


@dataclasses.dataclass
class Process:
    returncode: int
    cpu: float  # user + system seconds of the child alone
    wall: float
    maxrss_kib: int
    stdout: str
    stderr: str


def run_process(argv: list[str], *, env: dict[str, str] | None = None) -> Process:
    """Run ``argv`` to completion; its own CPU time and peak RSS (``wait4``)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT,
                                 env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Process(child.returncode, usage.ru_utime + usage.ru_stime, wall,
                       usage.ru_maxrss, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"))


def compile_sources() -> None:
    """Byte-compile this checkout's ``libre_usb`` and ``bench`` (``__pycache__``, as Python
    itself writes it), so every process starts from bytecode like for like: an installed
    tool and the baseline in site-packages are compiled when pip installs them, while a
    checkout run with ``PYTHONDONTWRITEBYTECODE`` set would compile our sources again in
    every process (about 50 ms of a dump's start-up, none of it the tool's work)."""
    import compileall

    for package in ("libre_usb", "bench"):
        if not compileall.compile_dir(ROOT / package, quiet=1):
            raise RuntimeError(f"byte-compiling {package} failed")


def python_env() -> dict[str, str]:
    """This checkout first on the path, whatever is installed."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def run_ours(args: list[str]) -> Process:
    """``libre-dump ARGS`` as its own process (``python -m libre_usb``)."""
    return run_process([sys.executable, "-m", "libre_usb", *args], env=python_env())


def peak_rss_of_ours(args: list[str], workdir: Path) -> tuple[Process, int]:
    """``libre-dump ARGS`` and its own peak resident memory in bytes (bench/peak.py)."""
    peak_file = workdir / "peak.kib"
    peak_file.unlink(missing_ok=True)
    done = run_process([sys.executable, "-m", "bench.peak", "libre_usb", *args],
                       env={**python_env(), "LIBRE_BENCH_PEAK": str(peak_file)})
    if not peak_file.exists():
        raise RuntimeError(f"no peak memory reported: {done.stderr.strip()[-300:]}")
    return done, int(peak_file.read_text()) * 1024


def run_python(args: list[str]) -> Process:
    return run_process([sys.executable, *args], env=python_env())


def have_freestyle_hid() -> bool:
    try:
        import freestyle_hid  # noqa: F401
    except ImportError:
        return False
    return True


def records_in(path: Path) -> int:
    """How many records a ``json`` dump holds."""
    doc: Any = json.loads(path.read_text(encoding="utf-8"))
    return sum(doc["counts"].values())
