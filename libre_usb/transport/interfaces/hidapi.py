"""hidapi's ``hid`` module: on Linux the libusb backend of cython-hidapi.

It needs access to the USB device node (/dev/bus/usb/BBB/DDD) and detaches the kernel's
usbhid driver while the device is open. Paths look like ``1-2:1.0``.
"""

from __future__ import annotations

import time
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


def _module() -> Any:
    try:
        import hid
    except ImportError:
        raise DeviceNotFound("the hidapi package is not installed (pip install hidapi)") from None
    return hid


class HidapiDevice(Transport):
    """Reads and writes through an open cython-hidapi device (``hid`` or ``hidraw`` module).

    cython-hidapi's ``read(n, timeout_ms)`` *blocks forever* when ``timeout_ms`` is 0, so a
    read is never issued with less than 1 ms left; the libusb backend also returns a
    zero-length packet as an immediate empty read, which is not an answer.
    """

    _dev: Any = None

    def write(self, report: bytes) -> None:
        try:
            written = self._dev.write(b"\x00" + check_report(report))
        except (OSError, ValueError) as exc:
            raise Disconnected(f"{self.uri}: write failed: {exc}") from None
        if written < 0:
            raise Disconnected(f"{self.uri}: write failed")

    def read(self, timeout_ms: int) -> bytes | None:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            remaining = int((deadline - time.monotonic()) * 1000)
            if remaining < 1:
                return None
            try:
                data = self._dev.read(REPORT_SIZE + 1, remaining)
            except (OSError, ValueError) as exc:
                raise Disconnected(f"{self.uri}: {exc}") from None
            if data:
                raw = bytes(data)
                return raw[1:] if len(raw) == REPORT_SIZE + 1 else raw

    def close(self) -> None:
        if self._dev is not None:
            self._dev.close()
            self._dev = None


class HidapiTransport(HidapiDevice):
    def __init__(self, path: str) -> None:
        hid = _module()
        self.uri = f"hidapi:{path}"
        self.path = path
        info = next((d for d in hid.enumerate(ABBOTT_VENDOR_ID)
                     if d["path"] == path.encode()), None)
        if info is None:
            raise DeviceNotFound(f"hidapi sees no FreeStyle reader at {path!r} "
                                 "('libre-dump list' shows the paths)")
        self.product_id = int(info["product_id"])
        self._dev = hid.device()
        try:
            self._dev.open_path(path.encode())
        except OSError:
            raise AccessDenied(
                f"hidapi could not open {path} (usually a permission problem on the USB "
                "device node: 'sudo libre-dump udev install', or see 'libre-dump doctor')"
            ) from None


def open_hidapi(path: str) -> Transport:
    return HidapiTransport(path)


def enumerate_hidapi() -> list[AttachedReader]:
    try:
        import hid
    except ImportError:
        return []
    found = []
    for info in hid.enumerate(ABBOTT_VENDOR_ID):
        pid = int(info["product_id"])
        if pid not in KNOWN_PRODUCT_IDS:
            continue
        path = info["path"].decode(errors="replace")
        found.append(AttachedReader(
            uri=f"hidapi:{path}", backend="hidapi", vendor_id=ABBOTT_VENDOR_ID,
            product_id=pid, model=KNOWN_PRODUCT_IDS[pid],
            product_string=info.get("product_string") or "",
            serial_number=info.get("serial_number") or "",
        ))
    return found


def open_uri(uri: DeviceURI) -> Transport:
    """The ``hidapi:`` entry of the backend table (transport/interface.py)."""
    return open_hidapi(uri.target)


def enumerate_readers() -> list[AttachedReader]:
    """The readers this backend sees, for ``libre-dump list``."""
    return enumerate_hidapi()
