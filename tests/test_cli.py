"""The command line: output, exit codes, one-line errors, atomic files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_dump_json_of_the_virtual_reader() -> None:
    code, out, err = run("dump", "--device", "sim:libre")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["format"] == "libre-dump" and doc["device"]["model"] == "libre"
    assert doc["counts"]["history"] > 8000 and doc["counts"]["time_changes"] == 1
    assert doc["counts"]["unknown"] >= 1  # records of a type we cannot decode are kept
    assert sum(doc["counts"].values()) == sum(len(v) for v in doc["records"].values())


def test_dump_formats_agree_on_record_count() -> None:
    _, out_json, _ = run("dump", "--device", "sim:libre?seed=7")
    _, out_nd, _ = run("dump", "--device", "sim:libre?seed=7", "--format", "ndjson")
    _, out_csv, _ = run("dump", "--device", "sim:libre?seed=7", "--format", "csv")
    total = sum(json.loads(out_json)["counts"].values())
    assert len(out_nd.splitlines()) == total + 1  # the device line first
    assert out_csv.splitlines()[0].startswith("kind,record_id,")
    assert len(out_csv.splitlines()) == total + 1


def test_info_text_and_json() -> None:
    code, out, _ = run("info", "--device", "sim:libre")
    assert code == 0 and "Serial:" in out and "Record counter:" in out
    code, out, _ = run("info", "--device", "sim:libre", "--json")
    assert json.loads(out)["unit"] == "mg/dL"


def test_silent_reader_exits_5_within_the_timeout() -> None:
    start = time.monotonic()
    code, out, err = run("dump", "--device", "sim:libre?silent=1", "--timeout", "1")
    elapsed = time.monotonic() - start
    assert code == 5
    assert err.count("\n") == 1 and "did not answer" in err and "Traceback" not in err
    assert out == ""
    assert elapsed < 2.5


def test_bad_device_exits_2_with_a_hint() -> None:
    code, _, err = run("dump", "--device", "/dev/hidraw3")
    assert code == 2 and "hidraw:/dev/hidraw3" in err and err.count("\n") == 1


def test_no_reader_attached_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("libre_usb.transport.interface.list_attached", lambda: [])
    code, _, err = run("info")
    assert code == 3 and "no FreeStyle reader found" in err and err.count("\n") == 1


def test_output_file_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "dump.json"
    code, out, _ = run("dump", "--device", "sim:libre", "-o", str(target))
    assert code == 0 and out == ""
    good = target.read_text()
    assert json.loads(good)["format"] == "libre-dump"
    # a failing run leaves the old file untouched and no temporary file behind
    code, _, _ = run("dump", "--device", "sim:libre?silent_after=5", "--timeout", "0.2",
                     "-o", str(target))
    assert code == 5
    assert target.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump.json"]


def test_record_then_replay_is_byte_identical(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    code, first, _ = run("dump", "--device", "sim:libre?seed=9&keepalive=7&stale=1",
                         "--record", str(transcript))
    assert code == 0
    code, second, err = run("dump", "--device", f"replay:{transcript}")
    assert code == 0, err
    assert first == second


def test_replay_of_a_missing_or_bad_file_exits_2(tmp_path: Path) -> None:
    code, _, err = run("dump", "--device", f"replay:{tmp_path / 'nope.jsonl'}")
    assert code == 2 and err.count("\n") == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dir": "in", "data": "xyz"}\n')
    code, _, err = run("dump", "--device", f"replay:{bad}")
    assert code == 2 and "line 1" in err


def test_sigterm_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "libre_usb", "dump", "--device", "sim:libre?pace_ms=2",
         "-o", str(target)],
        stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err  # 128 + SIGTERM, as shells expect
    assert "no partial output" in err
    assert not target.exists()
    assert [p for p in tmp_path.iterdir()] == []
    assert os.path.exists(tmp_path)


def test_dump_libreview_is_redacted_by_default_and_never_has_a_token() -> None:
    code, out, err = run("dump", "--device", "sim:libre?seed=2", "--format", "libreview",
                         "--tz", "Europe/Berlin")
    assert code == 0, err
    upload = json.loads(out)
    assert "UserToken" not in out and set(upload) >= {"DeviceData", "libreDump"}
    log = upload["DeviceData"]["measurementLog"]
    assert log["scheduledContinuousGlucoseEntries"] and log["unscheduledContinuousGlucoseEntries"]
    _, info, _ = run("info", "--device", "sim:libre?seed=2", "--json")
    serial = json.loads(info)["serial"]
    assert serial not in out
    # every reader record is either an upload entry or listed as not uploadable
    assert upload["libreDump"]["timeAssumedLocal"] == []  # the timeline placed everything
    code, out, _ = run("dump", "--device", "sim:libre?seed=2", "--format", "libreview",
                       "--tz", "Europe/Berlin", "--no-redact")
    assert code == 0 and serial in out
