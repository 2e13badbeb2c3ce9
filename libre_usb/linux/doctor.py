"""``libre-dump doctor``: why can (or can't) this user read a FreeStyle reader on Linux?

It never opens a reader. It looks at what the kernel exposes in sysfs (so it finds a
reader even when nobody may open it), at the device nodes' permissions, ACLs and
udev tags, at our udev rules, at which USB backends import, and at the optional
Libre 2/3 keys, and it gives the exact fix for every problem.

The report is a plain dict with a stable structure (``schema`` =
``libre-dump-doctor/1``), documented in ``docs/linux.md``; keys are only ever added.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pwd
import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..transport.interface import ABBOTT_VENDOR_ID
from . import udev

SCHEMA = "libre-dump-doctor/1"
#: product ids whose readers encrypt their reports and need freestyle-keys
ENCRYPTED_PIDS = frozenset({0x3950, 0x3960})
KEYS_FIX = "pip install 'libre-dump[libre2]'   (installs freestyle-keys)"

ACL_XATTR = "system.posix_acl_access"

#: os.access, replaceable in tests (root passes every os.access check)
_access = os.access


def reader_models() -> dict[int, str]:
    """Product id -> model name, from the shared device table where it has one."""
    table = dict(udev.READER_PRODUCT_IDS)
    try:
        from ..devices import KNOWN_PRODUCT_IDS
    except ImportError:
        return table
    table.update(KNOWN_PRODUCT_IDS)
    return table


# --------------------------------------------------------------------------- nodes


@dataclasses.dataclass
class NodeAccess:
    """A device node as this user sees it."""

    path: str
    exists: bool
    mode: str | None = None
    owner: str | None = None
    group: str | None = None
    readable: bool = False
    writable: bool = False
    #: ACL entries (``getfacl`` style, e.g. ``user:1000:rw-``); None when unknown
    acl: list[str] | None = None
    #: udev tags of the node (from /run/udev/data); None when udev has no record
    tags: list[str] | None = None

    @property
    def usable(self) -> bool:
        return self.exists and self.readable and self.writable

    def describe(self) -> str:
        if not self.exists:
            return f"{self.path} (missing)"
        acl = [a for a in (self.acl or []) if a.startswith(("user:", "group:")) and "::" not in a]
        extra = f", ACL {' '.join(acl)}" if acl else ", no ACL"
        return f"{self.path} (mode {self.mode} {self.owner}:{self.group}{extra})"


def _name(lookup: Callable[[int], Any], ident: int) -> str:
    try:
        return str(lookup(ident)[0])
    except (KeyError, OverflowError):
        return str(ident)


def inspect_node(path: str, *, udev_data: str = "/run/udev/data") -> NodeAccess:
    """Permissions, ACL and udev tags of one device node, for the current user."""
    import grp

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return NodeAccess(path, exists=False)
    except OSError:
        return NodeAccess(path, exists=True)
    node = NodeAccess(
        path,
        exists=True,
        mode=f"{st.st_mode & 0o7777:04o}",
        owner=_name(pwd.getpwuid, st.st_uid),
        group=_name(grp.getgrgid, st.st_gid),
        readable=_access(path, os.R_OK),
        writable=_access(path, os.W_OK),
        acl=read_acl(path),
    )
    if os.path.basename(path).startswith("hidraw") or "/bus/usb/" in path:
        node.tags = read_udev_tags(os.major(st.st_rdev), os.minor(st.st_rdev), udev_data)
    return node


def read_acl(path: str) -> list[str] | None:
    """The POSIX ACL of ``path``: ``getfacl`` when installed, else the raw xattr."""
    getfacl = shutil.which("getfacl")
    if getfacl:
        try:
            out = subprocess.run(  # noqa: S603 - fixed arguments
                [getfacl, "--omit-header", "--absolute-names", "--numeric", path],
                capture_output=True, text=True, timeout=10, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            return [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return _acl_from_xattr(path)


_ACL_TAGS = {0x01: "user::", 0x02: "user:", 0x04: "group::", 0x08: "group:",
             0x10: "mask::", 0x20: "other::"}


def _acl_from_xattr(path: str) -> list[str] | None:
    """Decode ``system.posix_acl_access`` (version 2: u32 version, then u16 tag,
    u16 perm, u32 id entries). Returns None when the node has no extended ACL."""
    try:
        raw = os.getxattr(path, ACL_XATTR)
    except OSError:
        return None
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != 2:
        return None
    entries = []
    for off in range(4, len(raw) - 7, 8):
        tag, perm, ident = struct.unpack_from("<HHI", raw, off)
        prefix = _ACL_TAGS.get(tag, f"tag{tag}:")
        perms = "".join(c if perm & bit else "-" for c, bit in (("r", 4), ("w", 2), ("x", 1)))
        who = f"{ident}:" if tag in (0x02, 0x08) else ""
        entries.append(f"{prefix}{who}{perms}")
    return entries


def read_udev_tags(major: int, minor: int, udev_data: str = "/run/udev/data") -> list[str] | None:
    """Tags udev put on the character device major:minor (``G:``/``Q:`` lines)."""
    try:
        text = Path(udev_data, f"c{major}:{minor}").read_text(errors="replace")
    except OSError:
        return None
    tags: list[str] = []
    for line in text.splitlines():
        if line[:2] in ("G:", "Q:") and line[2:] not in tags:
            tags.append(line[2:])
    return tags


# ---------------------------------------------------------------------------- sysfs


@dataclasses.dataclass
class SysReader:
    """An Abbott device the kernel sees, whether or not we may open it."""

    vendor_id: int
    product_id: int
    model: str | None
    product: str = ""
    manufacturer: str = ""
    serial: str = ""
    #: the USB device in sysfs (None for a uhid/virtual HID device)
    usb_sysfs: str | None = None
    bus: int | None = None
    address: int | None = None
    #: names of its HID interfaces, which are also hidapi's libusb paths (``1-1:1.0``)
    hid_interfaces: list[str] = dataclasses.field(default_factory=list)
    #: (sysfs path, /dev node) of its hidraw nodes
    hidraw: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    dev: str = "/dev"

    @property
    def usb_node(self) -> str | None:
        """The usbfs node libusb opens, ``/dev/bus/usb/BBB/DDD``."""
        if self.bus is None or self.address is None:
            return None
        return os.path.join(self.dev, "bus", "usb", f"{self.bus:03d}", f"{self.address:03d}")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def scan_sysfs(sysfs: str = "/sys", dev: str = "/dev") -> list[SysReader]:
    """Every USB and HID device with vendor 1a61, from sysfs alone."""
    models = reader_models()
    readers: list[SysReader] = []
    by_path: dict[str, SysReader] = {}
    usb_root = Path(sysfs, "bus", "usb", "devices")
    for entry in sorted(usb_root.glob("*")) if usb_root.is_dir() else []:
        vid = _read(entry / "idVendor")
        if not vid or int(vid, 16) != ABBOTT_VENDOR_ID:
            continue
        pid = int(_read(entry / "idProduct") or "0", 16)
        busnum, devnum = _read(entry / "busnum"), _read(entry / "devnum")
        reader = SysReader(
            vendor_id=ABBOTT_VENDOR_ID,
            product_id=pid,
            model=models.get(pid),
            product=_read(entry / "product"),
            manufacturer=_read(entry / "manufacturer"),
            serial=_read(entry / "serial"),
            usb_sysfs=str(entry),
            bus=int(busnum) if busnum.isdigit() else None,
            address=int(devnum) if devnum.isdigit() else None,
            dev=dev,
        )
        for iface in sorted(entry.glob(f"{entry.name}:*")):
            if _read(iface / "bInterfaceClass") == "03":
                reader.hid_interfaces.append(iface.name)
        readers.append(reader)
        by_path[os.path.realpath(entry)] = reader
    hidraw_root = Path(sysfs, "class", "hidraw")
    for entry in sorted(hidraw_root.glob("hidraw*")) if hidraw_root.is_dir() else []:
        fields = udev._uevent(entry / "device" / "uevent")
        parts = fields.get("HID_ID", "").split(":")
        if len(parts) != 3:
            continue
        try:
            hid_vid, pid = int(parts[1], 16), int(parts[2], 16)
        except ValueError:
            continue
        if hid_vid != ABBOTT_VENDOR_ID:
            continue
        node = str(Path(dev, entry.name))
        hid_dev = os.path.realpath(entry / "device")
        owner = next((r for p, r in by_path.items() if hid_dev.startswith(p + os.sep)), None)
        if owner is None:
            owner = SysReader(
                vendor_id=hid_vid, product_id=pid, model=models.get(pid),
                product=fields.get("HID_NAME", ""), serial=fields.get("HID_UNIQ", ""), dev=dev,
            )
            readers.append(owner)
        owner.hidraw.append((str(entry), node))
    return readers


# ------------------------------------------------------------------------- backends


@dataclasses.dataclass
class Backend:
    name: str
    uri: str
    #: which device node this backend opens
    node: str
    available: bool
    detail: str
    fix: str | None = None


def _try_import(name: str) -> tuple[Any, str | None]:
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # a broken install is reported, not fatal
        return None, f"{type(exc).__name__}: {exc}"


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def probe_backends(sysfs: str = "/sys") -> list[Backend]:
    """Which of our transports can work here (imports only; no device is opened)."""
    backends = []
    kernel_hidraw = Path(sysfs, "class", "hidraw").is_dir()
    hidraw_mod, err = _try_import("hidraw")
    if not kernel_hidraw:
        detail, fix = (
            "the kernel has no hidraw support loaded (/sys/class/hidraw is missing)",
            "sudo modprobe hidraw  (or use a kernel with CONFIG_HIDRAW)",
        )
    elif hidraw_mod is not None:
        detail, fix = f"kernel hidraw + hidapi {_dist_version('hidapi')} 'hidraw' module", None
    else:
        detail, fix = f"kernel hidraw, plain file I/O (hidapi 'hidraw' module: {err})", None
    backends.append(Backend("hidraw", "hidraw:/dev/hidrawN", "/dev/hidrawN",
                            kernel_hidraw, detail, fix))
    hid_mod, err = _try_import("hid")
    if hid_mod is not None and hasattr(hid_mod, "enumerate"):
        backends.append(Backend("hidapi", "hidapi:<path>", "/dev/bus/usb/BBB/DDD", True,
                                f"hidapi {_dist_version('hidapi')} 'hid' module (libusb)"))
    else:
        why = err or "the 'hid' module is not cython-hidapi (another package named 'hid'?)"
        backends.append(Backend("hidapi", "hidapi:<path>", "/dev/bus/usb/BBB/DDD", False,
                                why, "pip install 'hidapi>=0.14'"))
    backends.append(_probe_pyusb())
    return backends


def _probe_pyusb() -> Backend:
    uri, node = "usb:<bus>:<address>", "/dev/bus/usb/BBB/DDD"
    usb_core, err = _try_import("usb.core")
    if usb_core is None:
        return Backend("pyusb", uri, node, False, f"pyusb: {err}", "pip install 'pyusb>=1.2.1'")
    libusb1, err = _try_import("usb.backend.libusb1")
    sources = []
    if libusb1 is not None:
        try:
            backend = libusb1.get_backend()
        except Exception:  # pyusb raises many types for a broken lib
            backend = None
        if backend is not None:
            lib = getattr(getattr(backend, "lib", None), "_name", "libusb-1.0")
            sources.append(f"system {lib}")
    pkg, _ = _try_import("libusb_package")
    if pkg is not None:
        try:
            path = pkg.get_library_path()
        except Exception:
            path = None
        if path:
            sources.append(f"libusb-package {path}")
    version = _dist_version("pyusb")
    if not sources:
        return Backend(
            "pyusb", uri, node, False,
            f"pyusb {version}, but no libusb-1.0 library was found",
            "pip install libusb-package   (or: sudo apt install libusb-1.0-0)",
        )
    return Backend("pyusb", uri, node, True, f"pyusb {version} + {'; '.join(sources)}")


# --------------------------------------------------------------------------- report


@dataclasses.dataclass
class Problem:
    severity: str  # "error" (blocks reading) or "warning"
    message: str
    fix: str


def _user() -> dict[str, Any]:
    import grp

    uid = os.geteuid()
    return {
        "uid": uid,
        "name": _name(pwd.getpwuid, uid),
        "groups": sorted({_name(grp.getgrgid, g) for g in os.getgroups()}),
        "root": uid == 0,
    }


def _keys_available() -> tuple[bool, str | None]:
    mod, err = _try_import("freestyle_keys")
    return mod is not None, err


def diagnose(
    *,
    sysfs: str = "/sys",
    dev: str = "/dev",
    udev_data: str = "/run/udev/data",
    rules_dirs: Sequence[str] = udev.RULES_DIRS,
    keys: Callable[[], tuple[bool, str | None]] = _keys_available,
) -> dict[str, Any]:
    """Collect everything; return the JSON-ready report (see ``docs/linux.md``)."""
    user = _user()
    backends = probe_backends(sysfs)
    rules = udev.check(rules_dirs)
    keys_ok, keys_err = keys()
    have = {b.name for b in backends if b.available}
    problems: list[Problem] = []
    devices = []
    for reader in scan_sysfs(sysfs, dev):
        devices.append(_device_report(reader, have, rules, user, udev_data, problems))
        if reader.product_id in ENCRYPTED_PIDS and not keys_ok:
            problems.append(Problem(
                "error",
                f"{_title(reader)} encrypts its reports, and the freestyle-keys package is "
                f"not installed ({keys_err})",
                KEYS_FIX,
            ))
    fix = rules.fix()
    if fix and not rules.ok:
        # not an error by itself (root, or a group rule of the admin's, may still work);
        # a reader this user cannot open is reported above, with the same fix
        problems.append(Problem("warning", rules.summary(), fix))
    for late in rules.late_files:
        problems.append(Problem(
            "warning",
            f"{late} tags Abbott devices with uaccess but sorts after {udev.SEAT_LATE}, "
            "so no ACL is applied from it",
            f"rename it to a number below 73 (e.g. 70-...), or remove it and run: "
            f"{udev.install_hint()}",
        ))
    for backend in backends:
        if not backend.available and backend.fix:
            problems.append(Problem(
                "warning", f"backend {backend.name} unavailable: {backend.detail}", backend.fix))
    blocked = any(p.severity == "error" for p in problems)
    if not devices:
        summary = ("No FreeStyle reader is attached: the kernel sees no USB or HID device with "
                   "vendor id 1a61. Plug the reader in and switch it on, or try the built-in "
                   "virtual reader with --device sim:libre.")
    elif blocked:
        summary = "A FreeStyle reader is attached, but something stops this user reading it."
    else:
        summary = "A FreeStyle reader is attached and this user can read it."
    return {
        "schema": SCHEMA,
        "user": user,
        "backends": [dataclasses.asdict(b) for b in backends],
        "devices": devices,
        "rules": {
            "state": rules.state,
            "path": rules.path,
            "installed_version": rules.installed_version,
            "packaged_version": rules.packaged_version,
            "shadowed": list(rules.shadowed),
            "late_files": list(rules.late_files),
            "summary": rules.summary(),
        },
        "keys": {
            "freestyle_keys": keys_ok,
            "needed": any(d["product_id"] in ENCRYPTED_PIDS for d in devices),
            "error": keys_err,
        },
        "problems": [dataclasses.asdict(p) for p in problems],
        "ok": not blocked,
        "summary": summary,
    }


def _title(reader: SysReader) -> str:
    where = f" on USB {reader.bus}:{reader.address}" if reader.bus is not None else ""
    name = reader.model or "unknown Abbott device"
    return f"{name} (1a61:{reader.product_id:04x}){where}"


def _device_report(
    reader: SysReader,
    have: set[str],
    rules: udev.RulesStatus,
    user: dict[str, Any],
    udev_data: str,
    problems: list[Problem],
) -> dict[str, Any]:
    hidraw_nodes = [inspect_node(node, udev_data=udev_data) for _, node in reader.hidraw]
    usb_node = inspect_node(reader.usb_node, udev_data=udev_data) if reader.usb_node else None
    uris: list[str] = []
    usable: list[str] = []
    for node in hidraw_nodes:
        uris.append(f"hidraw:{node.path}")
        if "hidraw" in have and node.usable:
            usable.append(f"hidraw:{node.path}")
    if usb_node is not None and reader.bus is not None:
        libusb_uris = [f"hidapi:{iface}" for iface in reader.hid_interfaces] if "hidapi" in have \
            else []
        if "pyusb" in have:
            libusb_uris.append(f"usb:{reader.bus}:{reader.address}")
        uris.extend(libusb_uris)
        if usb_node.usable:
            usable.extend(libusb_uris)
    title = _title(reader)
    if reader.model is None:
        problems.append(Problem(
            "warning", f"{title}: product id {reader.product_id:04x} is not a known FreeStyle "
            "reader", "please report it, with the output of 'lsusb -v -d 1a61:'"))
    if reader.usb_sysfs and not reader.hidraw and reader.hid_interfaces:
        problems.append(Problem(
            "warning",
            f"{title} has no /dev/hidraw node: its HID interface is not bound to usbhid "
            "(a libusb program may have detached it, or hidraw is not in the kernel)",
            "close other programs using the reader, then unplug and replug it",
        ))
    if reader.usb_sysfs is None:
        problems.append(Problem(
            "warning",
            f"{title} is not a USB device (a uhid/virtual HID device): our udev rules, which "
            "match USB attributes, do not apply to it",
            "open it as root, or add a rule matching KERNELS==\"0003:1A61:*\" for it",
        ))
    if not usable and (hidraw_nodes or usb_node):
        nodes = [n for n in [*hidraw_nodes, usb_node] if n is not None]
        problems.append(Problem(
            "error",
            f"{title}: user {user['name']} cannot open "
            + " or ".join(n.describe() for n in nodes),
            _access_fix(nodes, rules, user),
        ))
    return {
        "model": reader.model,
        "vendor_id": reader.vendor_id,
        "product_id": reader.product_id,
        "usb_id": f"{reader.vendor_id:04x}:{reader.product_id:04x}",
        "product": reader.product,
        "manufacturer": reader.manufacturer,
        "serial": reader.serial,
        "usb": None if reader.usb_sysfs is None else {
            "sysfs": reader.usb_sysfs,
            "bus": reader.bus,
            "address": reader.address,
            "node": dataclasses.asdict(usb_node) if usb_node else None,
        },
        "hidraw": [
            {"sysfs": sys_path, "node": dataclasses.asdict(node)}
            for (sys_path, _), node in zip(reader.hidraw, hidraw_nodes, strict=True)
        ],
        "uris": uris,
        "usable": usable,
    }


def _access_fix(nodes: list[NodeAccess], rules: udev.RulesStatus, user: dict[str, Any]) -> str:
    if rules.state in ("missing", "outdated"):
        return udev.install_hint()
    tagged = [n for n in nodes if n.tags is not None and "uaccess" in n.tags]
    if not tagged:
        return ("the rules are installed but were not applied to this reader: unplug and replug "
                f"it, or run: sudo {' '.join(udev.TRIGGER_COMMAND)}")
    return (f"udev tagged the reader 'uaccess', which gives access only to the user logged in "
            f"at this computer's screen (a local seat session); {user['name']} has no such "
            "session (SSH, cron, a service?). Log in locally, or add a group rule: see "
            "docs/linux.md, 'Headless and SSH'")
