"""Issue 18's acceptance bombs, measured: each ends in exit 2 (or a correct report) in a
separate process under 500 MB of peak memory (RSS) and 10 s.

The bombs are built here, in the test (nothing large is committed): a gzip stream that
inflates to 250 MiB of ``[[],[],...]`` (a bomb made of structure, under the byte limit), a
300 MB mitmproxy flow file, a flow file declaring a length of 99999999999, and an upload
holding a glucose of 1e12 mg/dL rendered as an HTML report. Smaller cases run in-process:
a FIFO with no writer, a pipe past ``--max-bytes``, a multi-member gzip whose second member
header straddles the loader's first read.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
LIMIT_RSS = 500 * 1000 * 1000
LIMIT_S = 10.0


def run_measured(args: list[str], stdin: bytes | None = None) -> tuple[int, str, str, int, float]:
    """Run ``libre-dump ARGS`` in a child; (exit code, stdout, stderr, peak RSS, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as feed:
        feed.write(stdin or b"")
        feed.seek(0)
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "libre_usb", *args], env=env,
                                stdin=feed if stdin is not None else subprocess.DEVNULL,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the peak RSS of this child alone
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode(), err.read().decode(),
                usage.ru_maxrss * 1024, seconds)


def assert_bounded(code: int, err: str, peak: int, seconds: float, codes: tuple[int, ...]
                   ) -> None:
    assert code in codes, err
    assert "Traceback" not in err, err
    if code == 2:
        assert err.startswith("libre-dump: error: ") and err.count("\n") == 1, err
    assert peak < LIMIT_RSS, f"peak RSS {peak / MiB:.0f} MiB"
    assert seconds < LIMIT_S, f"{seconds:.1f} s"


@pytest.fixture(scope="module")
def reader_dump(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A saved 2-day dump of the virtual reader and the upload a vendor app would send."""
    where = tmp_path_factory.mktemp("bombs")
    dump = where / "dump.json"
    runner = CliRunner()
    result = runner.invoke(main, ["dump", "-d", "sim:libre?days=2", "-q", "-o", str(dump)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["dump", "-d", "sim:libre?days=2", "-q", "-f", "libreview",
                                  "--no-redact"])
    assert result.exit_code == 0, result.output
    return dump, json.loads(result.stdout)


def test_structure_bomb_of_250_mib(reader_dump: tuple[Path, dict[str, object]],
                                   tmp_path: Path) -> None:
    dump, _ = reader_dump
    # a multi-member gzip (valid: members are concatenated), built from one 1 MiB member
    # repeated, so the test costs no compression time
    chunk = b"[]," * (MiB // 3)
    middle = gzip.compress(chunk, 9, mtime=0)
    bomb = tmp_path / "bomb.gz"
    with bomb.open("wb") as handle:
        handle.write(gzip.compress(b"[", mtime=0))
        for _ in range(250 * MiB // len(chunk)):
            handle.write(middle)
        handle.write(gzip.compress(b"[]]", mtime=0))
    assert bomb.stat().st_size < 2 * MiB
    code, out, err, peak, seconds = run_measured(["diff", "--dump", str(dump), str(bomb)])
    assert_bounded(code, err, peak, seconds, (2,))
    assert "JSON values" in err and out == ""


def test_flow_body_of_300_mb(reader_dump: tuple[Path, dict[str, object]],
                             tmp_path: Path) -> None:
    dump, _ = reader_dump
    flow = tmp_path / "big.flow"
    size = 300 * 1000 * 1000
    with flow.open("wb") as handle:
        handle.write(f"{size}:".encode())
        handle.truncate(size + 16)  # sparse: the size is real, the disk cost is not
    code, _, err, peak, seconds = run_measured(["diff", "--dump", str(dump), str(flow)])
    assert_bounded(code, err, peak, seconds, (2,))
    assert "limit" in err


def test_flow_body_of_300_mb_through_a_pipe(reader_dump: tuple[Path, dict[str, object]]
                                            ) -> None:
    """The same bound holds where the size is not known in advance (stdin)."""
    dump, _ = reader_dump
    body = b"99999999:" + b"x" * (64 * MiB)
    code, _, err, peak, seconds = run_measured(
        ["diff", "--dump", str(dump), "--max-bytes", str(32 * MiB), "/dev/stdin"], stdin=body)
    assert_bounded(code, err, peak, seconds, (2,))
    assert "limit" in err


def test_flow_declaring_a_huge_length(reader_dump: tuple[Path, dict[str, object]],
                                      tmp_path: Path) -> None:
    dump, _ = reader_dump
    flow = tmp_path / "twelve.flow"
    flow.write_bytes(b"99999999999:")
    code, _, err, peak, seconds = run_measured(["diff", "--dump", str(dump), str(flow)])
    assert_bounded(code, err, peak, seconds, (2,))


@pytest.mark.parametrize("value", [1e12, 1e300, -1e300])
def test_html_report_with_an_absurd_glucose(reader_dump: tuple[Path, dict[str, object]],
                                            tmp_path: Path, value: float) -> None:
    dump, upload = reader_dump
    doc = json.loads(json.dumps(upload))
    doc["DeviceData"]["measurementLog"]["bloodGlucoseEntries"][0]["valueInMgPerDl"] = value
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(doc))
    report = tmp_path / "report.html"
    code, _, err, peak, seconds = run_measured(
        ["diff", "--dump", str(dump), str(path), "-f", "html", "-o", str(report)])
    assert_bounded(code, err, peak, seconds, (1,))  # a correct report: they differ
    text = report.read_text()
    assert "id=\"timeline\"" in text and text.count("<line") < 200


def test_a_fifo_with_no_writer_is_a_one_line_error(
        reader_dump: tuple[Path, dict[str, object]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dump, upload = reader_dump
    monkeypatch.setattr("libre_usb.inputs.WAIT_S", 0.3)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    body = tmp_path / "upload.json"
    body.write_text(json.dumps(upload))
    for args in (["diff", "--dump", str(dump), str(fifo)],
                 ["diff", "--dump", str(fifo), str(body)],
                 ["dump", "-d", f"replay:{fifo}"]):
        start = time.monotonic()
        result = CliRunner().invoke(main, args)
        assert time.monotonic() - start < 5
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert result.stderr.count("\n") == 1 and "no data for 0.3 s" in result.stderr, (
            result.stderr)


def test_gzip_member_header_straddling_the_first_read(
        reader_dump: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    """A valid multi-member gzip whose second member starts at byte 4095: the loader's
    first read (4096 bytes) ends one byte into the second member's magic."""
    dump, upload = reader_dump
    text = json.dumps(upload).encode()
    cut = len(text) // 2

    def first_member(padding: str) -> bytes:
        head = text[:1] + f'"pad": "{padding}", '.encode() + text[1:cut]
        return gzip.compress(head, 9, mtime=0)

    # incompressible padding (hex of seeded random bytes: the same every run) of the length
    # that makes the first member exactly 4095 bytes: the shortest length that reaches it
    # by bisection, then its neighbours (the size grows by about a byte every two characters)
    source = random.Random(4095)
    first = b""
    for _ in range(20):
        hexes = source.randbytes(8000).hex()
        low, high = 0, len(hexes)
        while low < high:
            middle = (low + high) // 2
            if len(first_member(hexes[:middle])) < 4095:
                low = middle + 1
            else:
                high = middle
        exact = [first_member(hexes[:n]) for n in range(max(0, low - 8), low + 8)]
        exact = [member for member in exact if len(member) == 4095]
        if exact:
            first = exact[0]
            break
    assert len(first) == 4095
    path = tmp_path / "two-members.gz"
    path.write_bytes(first + gzip.compress(text[cut:], mtime=0))
    result = CliRunner().invoke(main, ["diff", "--dump", str(dump), str(path), "-f", "json"])
    assert result.exit_code in (0, 1), (result.output, result.exception)
    assert json.loads(result.stdout)["uploads"][0]["encoding"] == "gzip"
