"""libusb through pyusb: SET_REPORT on the control endpoint out, interrupt IN on 0x81.

The kernel's usbhid driver is detached while we hold the interface and re-attached when
we close. libusb-1.0 comes from the system or, when it has none, from the
``libusb-package`` wheel.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ...devices import KNOWN_PRODUCT_IDS
from ...errors import AccessDenied, DeviceNotFound, Disconnected, InputError
from ..interface import ABBOTT_VENDOR_ID, AttachedReader, DeviceURI, Transport, check_report

_EP_IN = 0x81
_INTERFACE = 0


def backend() -> Any:
    """A libusb-1.0 backend for pyusb: the system library, else libusb-package's."""
    try:
        import usb.backend.libusb1 as libusb1
    except ImportError:
        raise DeviceNotFound("pyusb is not installed (pip install pyusb)") from None
    found = libusb1.get_backend()
    if found is None:
        with contextlib.suppress(ImportError):
            import libusb_package

            found = libusb1.get_backend(find_library=libusb_package.find_library)
    if found is None:
        raise DeviceNotFound("no libusb-1.0 library found (pip install libusb-package, "
                             "or apt install libusb-1.0-0)")
    return found


class PyusbTransport(Transport):
    def __init__(self, bus: int, address: int) -> None:
        import usb.core

        self.uri = f"usb:{bus}:{address}"
        self._usb = usb
        dev = usb.core.find(backend=backend(), idVendor=ABBOTT_VENDOR_ID,
                            custom_match=lambda d: d.bus == bus and d.address == address)
        if dev is None:
            raise DeviceNotFound(f"no FreeStyle reader at USB bus {bus} address {address}")
        self._dev: Any = dev
        self.product_id = int(dev.idProduct)
        self._reattach = False
        try:
            if dev.is_kernel_driver_active(_INTERFACE):
                dev.detach_kernel_driver(_INTERFACE)
                self._reattach = True
            usb.util.claim_interface(dev, _INTERFACE)
        except usb.core.USBError as exc:
            if exc.errno == 13:
                raise AccessDenied(
                    f"permission denied on USB device {bus}:{address}: install the udev rules "
                    "('sudo libre-dump udev install') or see 'libre-dump doctor'"
                ) from None
            raise DeviceNotFound(f"cannot open USB device {bus}:{address}: {exc}") from None

    def write(self, report: bytes) -> None:
        try:
            self._dev.ctrl_transfer(0x21, 0x09, 0x0200, _INTERFACE, check_report(report), 5000)
        except self._usb.core.USBError as exc:
            raise Disconnected(f"{self.uri}: write failed: {exc}") from None

    def read(self, timeout_ms: int) -> bytes | None:
        import time

        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            remaining = max(1, int((deadline - time.monotonic()) * 1000))
            try:
                data = bytes(self._dev.read(_EP_IN, 64, remaining))
            except self._usb.core.USBTimeoutError:
                return None
            except self._usb.core.USBError as exc:
                raise Disconnected(f"{self.uri}: {exc}") from None
            if data:
                return data
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        with contextlib.suppress(Exception):
            self._usb.util.release_interface(dev, _INTERFACE)
        if self._reattach:
            with contextlib.suppress(Exception):
                dev.attach_kernel_driver(_INTERFACE)
        with contextlib.suppress(Exception):
            self._usb.util.dispose_resources(dev)


def open_pyusb(target: str) -> Transport:
    try:
        bus_text, address_text = target.split(":")
        bus, address = int(bus_text), int(address_text)
    except ValueError:
        raise InputError(f"bad USB address {target!r}: expected usb:<bus>:<address>, "
                         "e.g. usb:1:7 (see 'libre-dump list')") from None
    return PyusbTransport(bus, address)


def enumerate_pyusb() -> list[AttachedReader]:
    try:
        import usb.core
    except ImportError:
        return []
    found = []
    for dev in usb.core.find(find_all=True, backend=backend(), idVendor=ABBOTT_VENDOR_ID):
        pid = int(dev.idProduct)
        if pid not in KNOWN_PRODUCT_IDS:
            continue
        found.append(AttachedReader(
            uri=f"usb:{dev.bus}:{dev.address}", backend="pyusb", vendor_id=ABBOTT_VENDOR_ID,
            product_id=pid, model=KNOWN_PRODUCT_IDS[pid],
        ))
    return found


def open_uri(uri: DeviceURI) -> Transport:
    """The ``usb:`` entry of the backend table (transport/interface.py)."""
    return open_pyusb(uri.target)


def enumerate_readers() -> list[AttachedReader]:
    """The readers this backend sees, for ``libre-dump list``."""
    return enumerate_pyusb()
