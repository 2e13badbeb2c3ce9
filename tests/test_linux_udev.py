"""libre_usb.linux.udev: check() states and install() against temporary directories."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.errors import AccessDenied, InputError
from libre_usb.linux import udev

OURS = udev.rules_bytes()


def dirs(tmp_path: Path) -> list[Path]:
    out = [tmp_path / "etc", tmp_path / "run", tmp_path / "usr"]
    for d in out:
        d.mkdir()
    return out


def with_version(version: int, extra: bytes = b"") -> bytes:
    return OURS.replace(
        f"libre-dump-rules-version: {udev.rules_version(OURS)}".encode(),
        f"libre-dump-rules-version: {version}".encode(),
    ) + extra


def test_packaged_rules_have_a_version() -> None:
    assert udev.rules_version(OURS) == 1
    assert udev.rules_version(b"# nothing here\n") is None
    assert udev.rules_text().startswith("# libre-dump")


def test_check_missing(tmp_path: Path) -> None:
    status = udev.check(dirs(tmp_path))
    assert status.state == "missing" and not status.ok and status.path is None
    assert "udev install" in (status.fix() or "") or "sudo tee" in (status.fix() or "")


def test_check_current_and_shadowed(tmp_path: Path) -> None:
    etc, run, usr = dirs(tmp_path)
    (etc / udev.RULES_NAME).write_bytes(OURS)
    (usr / udev.RULES_NAME).write_bytes(with_version(0))
    status = udev.check([etc, run, usr])
    assert status.state == "current" and status.ok
    assert status.path == str(etc / udev.RULES_NAME)
    assert status.shadowed == (str(usr / udev.RULES_NAME),)
    assert status.fix() is None


def test_the_highest_priority_copy_decides(tmp_path: Path) -> None:
    etc, run, usr = dirs(tmp_path)
    (etc / udev.RULES_NAME).write_bytes(with_version(0))
    (usr / udev.RULES_NAME).write_bytes(OURS)
    status = udev.check([etc, run, usr])
    assert status.state == "outdated"
    assert status.installed_version == 0 and status.packaged_version == 1
    assert "outdated" in status.summary()


def test_check_newer_and_modified(tmp_path: Path) -> None:
    etc, run, usr = dirs(tmp_path)
    (run / udev.RULES_NAME).write_bytes(with_version(7))
    assert udev.check([etc, run, usr]).state == "newer"
    (run / udev.RULES_NAME).write_bytes(OURS + b"# my own edit\n")
    status = udev.check([etc, run, usr])
    assert status.state == "modified"
    assert "diff" in (status.fix() or "")


def test_check_finds_late_files_that_do_nothing(tmp_path: Path) -> None:
    etc, run, usr = dirs(tmp_path)
    (etc / "99-freestyle.rules").write_text(
        'SUBSYSTEM=="hidraw", ATTRS{idVendor}=="1a61", TAG+="uaccess"\n')
    (etc / "69-other.rules").write_text('ATTRS{idVendor}=="1a61", TAG+="uaccess"\n')
    (usr / "73-seat-late.rules").write_text('TAG=="uaccess", RUN{builtin}+="uaccess"\n')
    status = udev.check([etc, run, usr])
    assert status.late_files == (str(etc / "99-freestyle.rules"),)


class Recorder:
    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail

    def __call__(self, cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(tuple(cmd))
        rc = 1 if self.fail and self.fail in cmd else 0
        return subprocess.CompletedProcess(list(cmd), rc, "", "Failed to send reload request")


def fake_sysfs(tmp_path: Path) -> Path:
    sysfs = tmp_path / "sys"
    for name, hid_id in (
        ("hidraw2", "0003:00001A61:00003650"),
        ("hidraw3", "0003:0000046D:0000C52B"),
    ):
        dev = sysfs / "class" / "hidraw" / name / "device"
        dev.mkdir(parents=True)
        (dev / "uevent").write_text(f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME=x\n")
    return sysfs


def test_install_as_root_writes_atomically_then_reloads_and_triggers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(udev.os, "geteuid", lambda: 0)
    prefix = tmp_path / "rules.d"
    prefix.mkdir()
    runner = Recorder()
    result = udev.install(str(prefix), runner=runner, sysfs=str(fake_sysfs(tmp_path)))
    target = prefix / udev.RULES_NAME
    assert target.read_bytes() == OURS
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(prefix) == [udev.RULES_NAME]  # no temporary file left
    assert result.changed and not result.dry_run
    assert runner.calls[0] == ("udevadm", "control", "--reload")
    assert runner.calls[1] == ("udevadm", "trigger", "--action=change",
                               "--attr-match=idVendor=1a61")
    # hidraw nodes have no idVendor attribute: the Abbott one is triggered by path
    assert runner.calls[2] == ("udevadm", "trigger", "--action=change",
                               str(tmp_path / "sys" / "class" / "hidraw" / "hidraw2"))
    assert len(runner.calls) == 3
    # a second install changes nothing but still reloads
    again = udev.install(str(prefix), runner=Recorder(), sysfs=str(tmp_path / "nosys"))
    assert not again.changed


def test_install_creates_run_udev_rules_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udev.os, "geteuid", lambda: 0)
    prefix = tmp_path / "udev" / "rules.d"
    (tmp_path / "udev").mkdir()
    udev.install(str(prefix), runner=Recorder(), sysfs=str(tmp_path))
    assert (prefix / udev.RULES_NAME).read_bytes() == OURS
    with pytest.raises(InputError):
        udev.install(str(tmp_path / "no" / "such" / "dir"), runner=Recorder())


def test_install_reports_a_failing_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udev.os, "geteuid", lambda: 0)
    result = udev.install(str(tmp_path), runner=Recorder(fail="control"), sysfs=str(tmp_path))
    assert (tmp_path / udev.RULES_NAME).exists()
    assert any("Failed to send reload request" in n and "replug" in n for n in result.notes)


def test_dry_run_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udev.os, "geteuid", lambda: 0)
    runner = Recorder()
    result = udev.install(str(tmp_path), dry_run=True, runner=runner, sysfs=str(tmp_path))
    assert result.dry_run and result.changed
    assert runner.calls == [] and os.listdir(tmp_path) == []
    assert ("udevadm", "control", "--reload") in result.commands


def test_not_root_and_not_writable_is_one_line_with_the_sudo_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(udev.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(udev.os, "access", lambda path, mode: False)
    with pytest.raises(AccessDenied) as err:
        udev.install(str(tmp_path), runner=Recorder())
    message = str(err.value)
    assert "\n" not in message and "needs root" in message
    assert "sudo " in message
    assert os.listdir(tmp_path) == []


def test_install_hint_names_this_executable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    exe = tmp_path / "bin" / "libre-dump"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    monkeypatch.setattr(udev.sys, "argv", [str(exe)])
    assert udev.install_hint() == f"sudo {exe} udev install"
    assert udev.install_hint("/run/udev/rules.d").endswith("--prefix /run/udev/rules.d")
    monkeypatch.setattr(udev.sys, "argv", ["python"])
    monkeypatch.setattr(udev.shutil, "which", lambda name: None)
    hint = udev.install_hint()
    assert hint.startswith("libre-dump udev show | sudo tee /etc/udev/rules.d/70-libre-dump.rules")
    assert "udevadm control --reload" in hint and "--attr-match=idVendor=1a61" in hint


def test_cli_show_prints_the_packaged_bytes() -> None:
    result = CliRunner().invoke(main, ["udev", "show"])
    assert result.exit_code == 0
    assert result.output.encode() == OURS


def test_cli_install_dry_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["udev", "install", "--dry-run", "--prefix", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"would write {tmp_path / udev.RULES_NAME}" in result.output
    assert "would run: udevadm control --reload" in result.output
    assert os.listdir(tmp_path) == []


def test_cli_check_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(udev, "RULES_DIRS", (str(tmp_path),))
    monkeypatch.setattr(udev.check, "__defaults__", ((str(tmp_path),),))
    result = CliRunner().invoke(main, ["udev", "check"])
    assert result.exit_code == 3 and "not installed" in result.output
    assert "fix: " in result.output
    (tmp_path / udev.RULES_NAME).write_bytes(OURS)
    result = CliRunner().invoke(main, ["udev", "check"])
    assert result.exit_code == 0 and "current" in result.output


def test_cli_install_as_non_root_is_one_line_exit_3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(udev.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(udev.os, "access", lambda path, mode: False)
    result = CliRunner().invoke(main, ["udev", "install", "--prefix", str(tmp_path)])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("libre-dump: error: ")
    assert "needs root" in lines[0] and "sudo " in lines[0]
