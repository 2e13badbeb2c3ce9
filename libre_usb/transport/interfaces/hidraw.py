"""Linux hidraw: hidapi's ``hidraw`` module, or plain ``/dev/hidrawN`` file I/O without it.

hidraw nodes take a write of the report-number byte (0, these readers use no report ids)
followed by the 64-byte report, and return reads of the 64 bytes alone.
"""

from __future__ import annotations

import errno
import os
import re
import select
import time
from pathlib import Path
from typing import Any

from ...devices import KNOWN_PRODUCT_IDS
from ...errors import AccessDenied, DeviceNotFound, Disconnected
from ..interface import (
    ABBOTT_VENDOR_ID,
    REPORT_SIZE,
    AttachedReader,
    DeviceURI,
    Transport,
    check_report,
)
from .hidapi import HidapiDevice

SYS_HIDRAW = Path("/sys/class/hidraw")
_HID_ID = re.compile(r"^HID_ID=([0-9A-Fa-f]+):([0-9A-Fa-f]+):([0-9A-Fa-f]+)$", re.MULTILINE)


def hid_ids(node: str, sys_root: Path = SYS_HIDRAW) -> tuple[int, int] | None:
    """(vendor, product) of a hidraw node from sysfs, or None."""
    name = os.path.basename(node)
    try:
        uevent = (sys_root / name / "device" / "uevent").read_text()
    except OSError:
        return None
    match = _HID_ID.search(uevent)
    if match is None:
        return None
    return int(match.group(2), 16), int(match.group(3), 16)


def _open_error(path: str, exc: OSError) -> Exception:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return AccessDenied(
            f"permission denied opening {path}: install the udev rules "
            "('sudo libre-dump udev install') or see 'libre-dump doctor'"
        )
    if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return DeviceNotFound(f"{path}: no such device (unplugged?)")
    return DeviceNotFound(f"cannot open {path}: {exc.strerror or exc}")


class HidrawTransport(Transport):
    """Plain file I/O on a hidraw node, with poll() for the read timeout."""

    def __init__(self, path: str, fd: int | None = None) -> None:
        """Open ``path``; or take an already open descriptor ``fd`` (tests pass one end of
        a SOCK_SEQPACKET pair, which keeps report boundaries as hidraw does)."""
        self.uri = f"hidraw:{path}"
        self.path = path
        ids = hid_ids(path)
        self.product_id = ids[1] if ids else None
        if fd is None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                raise _open_error(path, exc) from None
        self._fd: int | None = fd
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def _fileno(self) -> int:
        if self._fd is None:
            raise Disconnected(f"{self.path} is closed")
        return self._fd

    def write(self, report: bytes) -> None:
        try:
            os.write(self._fileno(), b"\x00" + check_report(report))
        except OSError as exc:
            raise Disconnected(f"{self.path}: write failed: {exc.strerror or exc}") from None

    def read(self, timeout_ms: int) -> bytes | None:
        fd = self._fileno()
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            events = self._poll.poll(remaining)
            for _, flags in events:
                if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    raise Disconnected(f"{self.path}: the reader went away")
            if events:
                try:
                    data = os.read(fd, REPORT_SIZE + 1)
                except BlockingIOError:
                    data = b""
                except OSError as exc:
                    raise Disconnected(f"{self.path}: {exc.strerror or exc}") from None
                if data:
                    return data[1:] if len(data) == REPORT_SIZE + 1 else data
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class HidapiHidrawTransport(HidapiDevice):
    """hidapi's ``hidraw`` module (the hidraw backend of cython-hidapi)."""

    def __init__(self, module: Any, path: str) -> None:
        self.uri = f"hidraw:{path}"
        self.path = path
        ids = hid_ids(path)
        self.product_id = ids[1] if ids else None
        if not os.path.exists(path):
            raise DeviceNotFound(f"{path}: no such device (unplugged?)")
        if not os.access(path, os.R_OK | os.W_OK):
            raise _open_error(path, PermissionError(errno.EACCES, "Permission denied"))
        self._dev = module.device()
        try:
            self._dev.open_path(path.encode())
        except OSError as exc:
            raise DeviceNotFound(f"cannot open {path}: {exc}") from None


def open_hidraw(path: str) -> Transport:
    try:
        import hidraw
    except ImportError:
        return HidrawTransport(path)
    return HidapiHidrawTransport(hidraw, path)


def enumerate_hidraw(sys_root: Path = SYS_HIDRAW) -> list[AttachedReader]:
    found: list[AttachedReader] = []
    if not sys_root.is_dir():
        return found
    for entry in sorted(sys_root.iterdir()):
        ids = hid_ids(entry.name, sys_root)
        if ids is None or ids[0] != ABBOTT_VENDOR_ID or ids[1] not in KNOWN_PRODUCT_IDS:
            continue
        found.append(AttachedReader(
            uri=f"hidraw:/dev/{entry.name}", backend="hidraw", vendor_id=ids[0],
            product_id=ids[1], model=KNOWN_PRODUCT_IDS[ids[1]],
        ))
    return found


def open_uri(uri: DeviceURI) -> Transport:
    """The ``hidraw:`` entry of the backend table (transport/interface.py)."""
    return open_hidraw(uri.target)


def enumerate_readers() -> list[AttachedReader]:
    """The readers this backend sees, for ``libre-dump list``."""
    return enumerate_hidraw()
