"""libre_usb.linux.doctor against fake sysfs / dev / udev trees built in tmp_path."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.linux import doctor, udev

TOP_KEYS = {"schema", "user", "backends", "devices", "rules", "keys", "problems", "ok", "summary"}


class Tree:
    """A minimal /sys + /dev + /run/udev/data + rules dir, as the kernel lays them out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sys = root / "sys"
        self.dev = root / "dev"
        self.udev_data = root / "run" / "udev" / "data"
        self.rules = root / "rules.d"
        for d in (self.sys / "bus" / "usb" / "devices", self.sys / "class" / "hidraw",
                  self.dev, self.udev_data, self.rules):
            d.mkdir(parents=True)

    def add_usb_reader(self, pid: int, bus: int = 1, addr: int = 5, hidraw: int | None = 3,
                       port: str = "1-2") -> None:
        real = self.sys / "devices" / "pci0000:00" / f"usb{bus}" / port
        real.mkdir(parents=True)
        for name, value in {"idVendor": "1a61", "idProduct": f"{pid:04x}", "busnum": str(bus),
                            "devnum": str(addr), "product": "ADC Reader",
                            "manufacturer": "Abbott Diabetes Care"}.items():
            (real / name).write_text(value + "\n")
        iface = real / f"{port}:1.0"
        iface.mkdir()
        (iface / "bInterfaceClass").write_text("03\n")
        (self.sys / "bus" / "usb" / "devices" / port).symlink_to(real)
        node = self.dev / "bus" / "usb" / f"{bus:03d}" / f"{addr:03d}"
        node.parent.mkdir(parents=True, exist_ok=True)
        node.write_bytes(b"")
        node.chmod(0o664)
        if hidraw is not None:
            hid = iface / f"0003:1A61:{pid:04X}.0001"
            (hid / "hidraw" / f"hidraw{hidraw}").mkdir(parents=True)
            (hid / "uevent").write_text(
                f"DRIVER=hid-generic\nHID_ID=0003:00001A61:0000{pid:04X}\nHID_NAME=ADC Reader\n")
            entry = self.sys / "class" / "hidraw" / f"hidraw{hidraw}"
            entry.mkdir()
            (entry / "device").symlink_to(hid)
            hnode = self.dev / f"hidraw{hidraw}"
            hnode.write_bytes(b"")
            hnode.chmod(0o600)

    def add_uhid_reader(self, pid: int, hidraw: int = 7) -> None:
        hid = self.sys / "devices" / "virtual" / "misc" / "uhid" / f"0003:1A61:{pid:04X}.0002"
        hid.mkdir(parents=True)
        (hid / "uevent").write_text(
            f"HID_ID=0003:00001A61:0000{pid:04X}\nHID_NAME=libre-dump sim\nHID_UNIQ=SIM1\n")
        entry = self.sys / "class" / "hidraw" / f"hidraw{hidraw}"
        entry.mkdir()
        (entry / "device").symlink_to(hid)
        (self.dev / f"hidraw{hidraw}").write_bytes(b"")

    def add_other_device(self) -> None:
        real = self.sys / "devices" / "pci0000:00" / "usb1" / "1-1"
        real.mkdir(parents=True)
        (real / "idVendor").write_text("046d\n")
        (real / "idProduct").write_text("c52b\n")
        (self.sys / "bus" / "usb" / "devices" / "1-1").symlink_to(real)

    def tag_all(self, *tags: str) -> None:
        # regular files stand in for the nodes, so their device number is 0:0
        (self.udev_data / "c0:0").write_text("".join(f"G:{t}\nQ:{t}\n" for t in tags))

    def diagnose(self, keys: bool = True) -> dict[str, object]:
        return doctor.diagnose(
            sysfs=str(self.sys), dev=str(self.dev), udev_data=str(self.udev_data),
            rules_dirs=[str(self.rules)],
            keys=lambda: (keys, None if keys else "ModuleNotFoundError: freestyle_keys"),
        )


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@pytest.fixture
def no_access(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave like an ordinary user: only world-accessible bits count (root passes all)."""

    def access(path: str, mode: int) -> bool:
        perms = os.stat(path).st_mode
        return not (mode & os.R_OK and not perms & 0o004) and not (
            mode & os.W_OK and not perms & 0o002)

    monkeypatch.setattr(doctor, "_access", access)


def problems(report: dict[str, object]) -> list[dict[str, str]]:
    return report["problems"]  # type: ignore[return-value]


def test_no_reader_is_plain_words_and_ok(tree: Tree) -> None:
    tree.add_other_device()
    report = tree.diagnose()
    assert set(report) == TOP_KEYS
    assert report["schema"] == "libre-dump-doctor/1"
    assert report["devices"] == [] and report["ok"] is True
    assert "No FreeStyle reader is attached" in str(report["summary"])
    json.dumps(report)  # JSON-ready


def test_reader_without_rules_names_the_install_fix(tree: Tree, no_access: None) -> None:
    tree.add_usb_reader(0x3650)
    report = tree.diagnose()
    assert report["ok"] is False
    (device,) = report["devices"]  # type: ignore[misc]
    assert device["model"] == "libre" and device["usb_id"] == "1a61:3650"
    assert device["usb"]["bus"] == 1 and device["usb"]["address"] == 5
    assert device["usb"]["node"]["path"] == str(tree.dev / "bus" / "usb" / "001" / "005")
    assert device["usb"]["node"]["readable"] and not device["usb"]["node"]["writable"]
    assert device["hidraw"][0]["node"]["path"] == str(tree.dev / "hidraw3")
    assert device["hidraw"][0]["node"]["mode"] == "0600"
    assert "hidraw:" + str(tree.dev / "hidraw3") in device["uris"]
    assert "usb:1:5" in device["uris"]
    assert device["usable"] == []
    (error,) = [p for p in problems(report) if p["severity"] == "error"]
    assert "cannot open" in error["message"] and "hidraw3" in error["message"]
    assert error["fix"] == udev.install_hint()
    assert any(p["message"].startswith("udev rules not installed") for p in problems(report))


def test_reader_with_rules_and_access_is_usable(tree: Tree) -> None:
    tree.add_usb_reader(0x3650)
    (tree.rules / udev.RULES_NAME).write_bytes(udev.rules_bytes())
    tree.tag_all("seat", "uaccess")
    report = tree.diagnose()
    assert report["ok"] is True and problems(report) == []
    (device,) = report["devices"]  # type: ignore[misc]
    assert device["hidraw"][0]["node"]["tags"] == ["seat", "uaccess"]
    assert "hidraw:" + str(tree.dev / "hidraw3") in device["usable"]
    assert "usb:1:5" in device["usable"]
    assert report["rules"]["state"] == "current"  # type: ignore[index]
    assert "reader is attached and this user can read it" in str(report["summary"])


def test_tagged_but_no_acl_explains_the_seat(tree: Tree, no_access: None) -> None:
    tree.add_usb_reader(0x3650)
    (tree.rules / udev.RULES_NAME).write_bytes(udev.rules_bytes())
    tree.tag_all("uaccess")
    (error,) = [p for p in problems(tree.diagnose()) if p["severity"] == "error"]
    assert "local seat session" in error["fix"] and "Headless" in error["fix"]


def test_rules_installed_after_plugging_in_says_replug(tree: Tree, no_access: None) -> None:
    tree.add_usb_reader(0x3650)
    (tree.rules / udev.RULES_NAME).write_bytes(udev.rules_bytes())
    (error,) = [p for p in problems(tree.diagnose()) if p["severity"] == "error"]
    assert "replug" in error["fix"] and "udevadm trigger" in error["fix"]


def test_libre2_without_keys_is_an_error_with_the_extra(tree: Tree) -> None:
    tree.add_usb_reader(0x3950)
    report = tree.diagnose(keys=False)
    assert report["keys"] == {"freestyle_keys": False, "needed": True,
                              "error": "ModuleNotFoundError: freestyle_keys"}
    (error,) = [p for p in problems(report) if p["severity"] == "error"]
    assert "freestyle-keys" in error["message"] and error["fix"] == doctor.KEYS_FIX
    assert tree.diagnose(keys=True)["keys"]["needed"] is True  # type: ignore[index]


def test_usb_reader_without_hidraw_is_explained(tree: Tree) -> None:
    tree.add_usb_reader(0x3850, hidraw=None)
    report = tree.diagnose()
    (device,) = report["devices"]  # type: ignore[misc]
    assert device["model"] in ("precision-neo", "neo") and device["hidraw"] == []
    assert any("no /dev/hidraw node" in p["message"] for p in problems(report))


def test_uhid_reader_is_listed_without_usb(tree: Tree) -> None:
    tree.add_uhid_reader(0x3650)
    report = tree.diagnose()
    (device,) = report["devices"]  # type: ignore[misc]
    assert device["usb"] is None and device["serial"] == "SIM1"
    assert device["uris"] == ["hidraw:" + str(tree.dev / "hidraw7")]
    assert any("not a USB device" in p["message"] for p in problems(report))


def test_unknown_abbott_product_is_reported(tree: Tree) -> None:
    tree.add_usb_reader(0x3410)
    report = tree.diagnose()
    assert report["devices"][0]["model"] is None  # type: ignore[index]
    assert any("not a known FreeStyle reader" in p["message"] for p in problems(report))


def test_acl_is_decoded_from_the_xattr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, ident)
        for tag, perm, ident in ((0x01, 6, 0xFFFFFFFF), (0x02, 6, 1000), (0x04, 0, 0xFFFFFFFF),
                                 (0x10, 6, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)))
    monkeypatch.setattr(doctor.os, "getxattr", lambda path, name: raw)
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    assert doctor.read_acl(str(tmp_path)) == [
        "user::rw-", "user:1000:rw-", "group::---", "mask::rw-", "other::---"]


def test_backends_are_probed(tree: Tree) -> None:
    names = {b.name: b for b in doctor.probe_backends(str(tree.sys))}
    assert set(names) == {"hidraw", "hidapi", "pyusb"}
    assert names["hidraw"].available  # /sys/class/hidraw exists in the tree
    assert names["hidraw"].node == "/dev/hidrawN"
    assert names["pyusb"].node == "/dev/bus/usb/BBB/DDD"
    missing = {b.name: b for b in doctor.probe_backends(str(tree.root / "nosys"))}
    assert not missing["hidraw"].available and "modprobe hidraw" in (missing["hidraw"].fix or "")


def test_cli_doctor_on_this_machine() -> None:
    """Whatever this machine has, doctor explains it and --json is the documented shape."""
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code in (0, 3), result.output
    report = json.loads(result.output)
    assert set(report) == TOP_KEYS and report["schema"] == "libre-dump-doctor/1"
    text = CliRunner().invoke(main, ["doctor"])
    assert text.exit_code == result.exit_code
    if not report["devices"]:
        assert result.exit_code == 0
        assert "No FreeStyle reader is attached" in text.output
