"""Static checks of udev/70-libre-dump.rules: pure Python, udev's own parser, packaging."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from libre_usb.linux import udev

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "udev" / udev.RULES_NAME
ALL_PIDS = ("3650", "3670", "3950", "3960", "3850", "3460", "3450")


def rule_lines() -> list[str]:
    lines = []
    for raw in RULES.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def keys(line: str) -> dict[str, tuple[str, str]]:
    """KEY -> (operator, value) of one rule line (udev's comma-separated tokens)."""
    out = {}
    for match in re.finditer(r'([A-Z_]+(?:\{[^}]*\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"', line):
        out[match.group(1)] = (match.group(2), match.group(3))
    return out


def test_every_known_pid_has_a_hidraw_and_a_usb_rule_with_uaccess() -> None:
    assert set(ALL_PIDS) == {f"{pid:04x}" for pid in udev.READER_PRODUCT_IDS}
    hidraw, usb = set(), set()
    for line in rule_lines():
        k = keys(line)
        if k.get("SUBSYSTEM") == ("==", "hidraw") and "ATTRS{idProduct}" in k:
            assert k["ATTRS{idVendor}"] == ("==", "1a61"), line
            assert k["TAG"] == ("+=", "uaccess"), line
            hidraw.add(k["ATTRS{idProduct}"][1])
        if k.get("SUBSYSTEM") == ("==", "usb") and "ATTR{idProduct}" in k:
            assert k["ENV{DEVTYPE}"] == ("==", "usb_device"), line
            assert k["ATTR{idVendor}"] == ("==", "1a61"), line
            assert k["TAG"] == ("+=", "uaccess"), line
            usb.add(k["ATTR{idProduct}"][1])
    assert hidraw == set(ALL_PIDS)
    assert usb == set(ALL_PIDS)


def test_ids_are_lower_case_hex() -> None:
    for line in rule_lines():
        for key, (_, value) in keys(line).items():
            if "idVendor" in key or "idProduct" in key:
                assert re.fullmatch(r"[0-9a-f]{4}", value), line


def test_never_world_writable_and_group_on_its_own_line() -> None:
    text = "\n".join(rule_lines())
    assert not re.search(r'MODE\s*=\s*"0?666"', text)
    for line in rule_lines():
        k = keys(line)
        if "MODE" in k:
            assert int(k["MODE"][1], 8) & 0o002 == 0, line
        if "GROUP" in k:
            assert "uaccess" not in line, f"GROUP and uaccess share a line: {line}"


def test_sorts_before_seat_late_and_has_an_action_guard() -> None:
    number = int(RULES.name.split("-", 1)[0])
    assert number < 73
    assert RULES.name < udev.SEAT_LATE
    first = rule_lines()[0]
    assert keys(first)["ACTION"] == ("!=", "add|change")
    assert 'GOTO="libre_dump_end"' in first
    assert rule_lines()[-1] == 'LABEL="libre_dump_end"'


def test_file_ends_with_a_newline_and_declares_its_version() -> None:
    data = RULES.read_bytes()
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")
    assert udev.rules_version(data) is not None


def test_the_package_resource_is_the_canonical_file() -> None:
    assert udev.rules_bytes() == RULES.read_bytes()


def test_wheel_ships_the_same_bytes(tmp_path: Path) -> None:
    """`pip install .` must install the rules as package data, byte-identical."""
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
         "--target", str(target), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    installed = target / "libre_usb" / "data" / udev.RULES_NAME
    assert not installed.is_symlink()
    assert installed.read_bytes() == RULES.read_bytes()
    # and the installed package finds it through importlib.resources
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys; from libre_usb.linux import udev; "
         "sys.stdout.buffer.write(udev.rules_bytes())"],
        capture_output=True, timeout=60, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == RULES.read_bytes()


def _udevadm_parse_output(rules: Path) -> str:
    """Run `udevadm test` with only our file added, in a private mount namespace.

    Debian 12's udev (252) has no `udevadm verify`; `udevadm test` parses every
    rules file and reports bad lines, but exits 0, so the output is what counts.
    """
    script = (
        "mount -t tmpfs tmpfs /run/udev/rules.d 2>/dev/null || "
        "{ mkdir -p /run/udev/rules.d && mount -t tmpfs tmpfs /run/udev/rules.d; } && "
        'cp "$1" /run/udev/rules.d/ && udevadm test --action=add /sys/class/mem/null 2>&1'
    )
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(rules)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if proc.returncode != 0 and "Operation not permitted" in (proc.stdout + proc.stderr):
        pytest.skip("unshare -m is not permitted here (a container without CAP_SYS_ADMIN)")
    return proc.stdout + proc.stderr


needs_udevadm = pytest.mark.skipif(
    shutil.which("udevadm") is None or shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs root, udevadm (Debian package udev) and unshare to parse the rules "
    "with udev itself in a private mount namespace",
)


@needs_udevadm
def test_udev_parses_our_rules_without_complaint() -> None:
    out = _udevadm_parse_output(RULES)
    ours = [line for line in out.splitlines() if udev.RULES_NAME in line]
    assert ours, f"udevadm never read {udev.RULES_NAME}:\n{out[-3000:]}"
    bad = [line for line in ours
           if re.search(r"invalid|ignoring|error|unknown|failed", line, re.IGNORECASE)]
    assert not bad, "\n".join(bad)


@needs_udevadm
def test_the_udev_check_catches_a_broken_rule(tmp_path: Path) -> None:
    """The scan above would see a real mistake (so its silence means something)."""
    broken = tmp_path / udev.RULES_NAME
    broken.write_text(
        RULES.read_text()
        + 'SUBSYSTEM=="hidraw", ATTRS{idVendor}=="1a61", BOGUS="1", TAG+="uaccess"\n'
        + 'SUBSYSTEM=="usb", ATTRS{idProduct}=="3650, TAG+="uaccess""\n'
    )
    out = _udevadm_parse_output(broken)
    bad = [line for line in out.splitlines()
           if udev.RULES_NAME in line and re.search(r"invalid|ignoring", line, re.IGNORECASE)]
    assert len(bad) >= 2, out[-3000:]
