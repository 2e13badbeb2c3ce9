"""Output paths (issue 11 section 3, issue 18 class 8): every writer (``dump -o``, ``diff -o``,
``--record``) goes through one helper (libre_usb/output/atomic.py). Atomic replacement is for
regular files and new paths only; a FIFO, a character device and ``-`` are written directly;
a symbolic link is written through and stays a link; a directory is an error; overwriting
keeps the mode and owner; bad paths are refused before the reader is opened.

The device-node tests need root (mknod); they make their nodes in a temporary directory.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.output.atomic import atomic_write

ROOT = os.geteuid() == 0
NEEDS_ROOT = pytest.mark.skipif(not ROOT, reason="mknod of a character device needs root")
SIM = ["--device", "sim:neo?days=3"]


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _char_device(path: Path) -> None:
    """A character device like /dev/null (1, 3)."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))


@NEEDS_ROOT
@pytest.mark.parametrize("option", ["-o", "--record"])
def test_a_character_device_stays_a_device(tmp_path: Path, option: str) -> None:
    node = tmp_path / "null"
    _char_device(node)
    code, _, err = _cli("dump", *SIM, "-q", option, str(node))
    assert code == 0, err
    assert stat.S_ISCHR(node.stat().st_mode)
    assert os.listdir(tmp_path) == ["null"]  # no temporary file left behind


@NEEDS_ROOT
def test_diff_output_onto_a_character_device(tmp_path: Path) -> None:
    upload = tmp_path / "up.json"
    assert _cli("dump", *SIM, "-q", "-f", "libreview", "--no-redact", "-o", str(upload))[0] == 0
    node = tmp_path / "null"
    _char_device(node)
    code, _, err = _cli("diff", str(upload), *SIM, "-o", str(node))
    assert code == 0, err
    assert stat.S_ISCHR(node.stat().st_mode)


def test_a_fifo_is_written_directly(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    proc = subprocess.run([sys.executable, "-m", "libre_usb", "dump", *SIM, "-q", "-o",
                           str(fifo)], capture_output=True, timeout=120, check=False)
    reader.join(30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(got[0])["device"]["model"] == "neo"


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real.name)
    assert _cli("dump", *SIM, "-q", "-o", str(link))[0] == 0
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert json.loads(real.read_text())["device"]["model"] == "neo"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("made.json")
    assert _cli("dump", *SIM, "-q", "--record", str(dangling))[0] == 0
    assert dangling.is_symlink() and (tmp_path / "made.json").stat().st_size > 0


def test_overwriting_keeps_the_mode_and_owner(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    out.chmod(0o640)
    if ROOT:
        os.chown(out, 1234, 5678)
    assert _cli("dump", *SIM, "-q", "-o", str(out))[0] == 0
    info = out.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    if ROOT:
        assert (info.st_uid, info.st_gid) == (1234, 5678)
    # a new file is private to its owner (it holds health data)
    new = tmp_path / "new.json"
    assert _cli("dump", *SIM, "-q", "-o", str(new))[0] == 0
    assert stat.S_IMODE(new.stat().st_mode) == 0o600


@pytest.mark.parametrize("args", [
    ("dump", "-o", ""), ("dump", "--record", ""), ("diff", "X", "-o", ""),
])
def test_an_empty_path_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    args = tuple(str(tmp_path / "x.json") if a == "X" else a for a in args)
    (tmp_path / "x.json").write_text("{}")
    code, out, err = _cli(*args, *SIM)
    assert code == 2 and out == ""
    assert "path is empty" in err


def test_a_directory_is_an_error(tmp_path: Path) -> None:
    code, _, err = _cli("dump", *SIM, "-o", str(tmp_path))
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("option", ["-o", "--record"])
def test_a_missing_directory_is_found_before_the_reader_is_opened(tmp_path: Path,
                                                                   option: str) -> None:
    missing = tmp_path / "nowhere" / "out.json"
    # a reader that never answers: had it been opened, the run would time out (exit 5)
    code, _, err = _cli("dump", "--device", "sim:libre?silent=1", "--timeout", "5", option,
                        str(missing))
    assert code == 2, err
    assert str(missing.parent) in err and "does not exist" in err


@pytest.mark.skipif(ROOT, reason="root may write to any directory")
def test_an_unwritable_directory_is_found_first(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = _cli("dump", "--device", "sim:libre?silent=1", "--timeout", "5", "-o",
                        str(locked / "out.json"))
    assert code == 2 and "not writable" in err


def test_diff_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    upload = tmp_path / "up.json"
    assert _cli("dump", *SIM, "-q", "-f", "libreview", "--no-redact", "-o", str(upload))[0] == 0
    before = upload.read_bytes()
    code, _, err = _cli("diff", str(upload), *SIM, "-o", str(upload))
    assert code == 2 and "refusing to overwrite" in err
    assert upload.read_bytes() == before


def test_output_and_record_on_one_file_are_refused(tmp_path: Path) -> None:
    both = tmp_path / "both"
    code, _, err = _cli("dump", "--device", "sim:libre?silent=1", "--timeout", "5", "-o",
                        str(both), "--record", str(both))
    assert code == 2 and "same file" in err
    assert not both.exists()


def test_the_helper_writes_stdout_for_dash(capsys: pytest.CaptureFixture[str]) -> None:
    with atomic_write("-") as handle:
        handle.write("hello")
    assert capsys.readouterr().out == "hello"
