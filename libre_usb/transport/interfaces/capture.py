"""``capture:FILE``: a reader session held in a USB capture, as a read-only device.

The captured client (Abbott's software, another tool, another version of libre-dump)
already drove the reader; nothing can be sent to a capture. So this transport refuses
every write and reads nothing: what it offers is the captured conversation
(:attr:`CaptureTransport.reports`), which :mod:`libre_usb.reader.passive` decodes
passively into the records the client read. Formats: see :mod:`libre_usb.transport.capture`.

URI: ``capture:FILE`` or ``capture:FILE?select=BUS.DEVICE`` when the capture holds
several devices with HID traffic (``libre-dump capture FILE`` lists them).
"""

from __future__ import annotations

from ...errors import InputError
from ...protocol.usb import CapturedDevice
from ..capture import CaptureFile, read_capture
from ..interface import DeviceURI, Transport

__all__ = ["CaptureTransport", "open_uri"]


class CaptureTransport(Transport):
    """One device of a capture file; passive (see the module docstring)."""

    def __init__(self, capture: CaptureFile, device: CapturedDevice) -> None:
        self.capture = capture
        self.device = device
        self.uri = f"capture:{capture.name}"
        if len(capture.devices) > 1:
            self.uri += f"?select={device.address}"
        self.product_id = device.product_id if device.vendor_id == 0x1A61 else None

    @classmethod
    def open(cls, path: str, select: str | None = None) -> CaptureTransport:
        capture = read_capture(path)
        return cls(capture, capture.select(select))

    @property
    def reports(self) -> list[tuple[str, bytes, float]]:
        """The captured HID reports of the device: ("out" | "in", report, seconds)."""
        return self.device.reports

    def write(self, report: bytes) -> None:
        raise InputError(f"{self.uri} is a capture of another client's session: it is read "
                         "passively and nothing can be sent to it")

    def read(self, timeout_ms: int) -> bytes | None:
        return None


def open_uri(uri: DeviceURI) -> Transport:
    """The ``capture:`` entry of the backend table (transport/interface.py)."""
    unknown = set(uri.options) - {"select"}
    if unknown:
        raise InputError(f"capture: takes only the option select=BUS.DEVICE, not "
                         f"{', '.join(sorted(unknown))}")
    return CaptureTransport.open(uri.target, uri.options.get("select"))
