"""One transport interface for every way of reaching a reader.

Modelled on python-can's bus: a single small interface (:class:`Transport`), backends
chosen by a device URI, a virtual backend (``sim:``), a recorder (``--record``) and a
player (``replay:``).

A transport moves whole 64-byte HID reports, nothing more: it knows nothing of message
types, text commands or encryption. That is the protocol layer's job.

Device URIs::

    hidraw:/dev/hidraw3        Linux hidraw node (hidapi's ``hidraw`` module, or plain file I/O)
    hidapi:<path>              hidapi's ``hid`` module (libusb backend on Linux), path as listed
    usb:<bus>:<address>        libusb via pyusb (SET_REPORT out, interrupt IN 0x81)
    sim:<model>[?options]      the built-in virtual reader, e.g. ``sim:libre?seed=3&keepalive=5``
    replay:<file>              answer from a transcript recorded with ``--record``
    capture:<file>[?select=B.D] a reader session in a USB capture (pcap/pcapng, UsbSnoop,
                               USBTrace, transcript), decoded passively: read-only

With no URI, the first attached Abbott reader is opened on the best available backend.
"""

from __future__ import annotations

import abc
import importlib
import urllib.parse
from types import TracebackType
from typing import Any

import msgspec

from ..errors import DeviceNotFound, InputError

REPORT_SIZE = 64
ABBOTT_VENDOR_ID = 0x1A61


class Transport(abc.ABC):
    """Moves 64-byte HID reports to and from one reader.

    ``write`` sends one report (exactly 64 bytes, no report-ID byte: backends add it
    where their API wants one). ``read`` returns one 64-byte report, or ``None`` when
    nothing arrived within ``timeout_ms``. A device that vanishes raises
    :class:`~libre_usb.errors.Disconnected`.
    """

    #: a short description for messages and ``list``, e.g. ``hidraw:/dev/hidraw3``
    uri: str = ""
    #: USB product id when known (it chooses the device model)
    product_id: int | None = None
    #: True when the reports are the clear reports of an encrypted (Libre 2/3) link, as a
    #: shareable transcript stores them: the session then skips the encryption handshake
    decrypted: bool = False

    @abc.abstractmethod
    def write(self, report: bytes) -> None: ...

    @abc.abstractmethod
    def read(self, timeout_ms: int) -> bytes | None: ...

    def read_queued(self, timeout_ms: int, limit: int) -> list[bytes]:
        """Up to ``limit`` reports in a row: the first as :meth:`read` returns it (waiting
        up to ``timeout_ms``), then those already waiting behind it, without waiting; an
        empty list when nothing arrived. A backend that can hand over several reports at
        once overrides this and :meth:`unread`; this default hands over one."""
        report = self.read(timeout_ms)
        return [] if report is None else [report]

    def unread(self, reports: list[bytes]) -> None:
        """Give back reports of the last :meth:`read_queued` that the caller did not use
        (never its first): the next reads return them first, in order."""
        raise NotImplementedError(f"{type(self).__name__} hands over one report at a time")

    def close(self) -> None:  # noqa: B027 - optional for backends with nothing to free
        """Release the device. Safe to call twice."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_report(report: bytes) -> bytes:
    """Return ``report`` if it is exactly one HID report, else raise ValueError."""
    if len(report) != REPORT_SIZE:
        raise ValueError(f"a HID report is {REPORT_SIZE} bytes, got {len(report)}")
    return bytes(report)


class DeviceURI(msgspec.Struct, frozen=True):
    """A parsed ``--device`` value."""

    scheme: str
    target: str
    options: dict[str, str] = msgspec.field(default_factory=dict)

    def __str__(self) -> str:
        query = urllib.parse.urlencode(self.options)
        return f"{self.scheme}:{self.target}" + (f"?{query}" if query else "")


SCHEMES = ("hidraw", "hidapi", "usb", "sim", "replay", "capture")  # the keys of BACKENDS, below


def parse_uri(text: str) -> DeviceURI:
    """Parse a device URI; raise :class:`InputError` with a helpful message if it is bad."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES:
        hint = ""
        if text.startswith("/dev/hidraw"):
            hint = f" (did you mean hidraw:{text}?)"
        elif text.startswith("/dev/bus/usb/"):
            parts = text.rstrip("/").split("/")
            if len(parts) >= 2:
                hint = f" (did you mean usb:{parts[-2]}:{parts[-1]}?)"
        raise InputError(
            f"bad device {text!r}: expected one of "
            "hidraw:/dev/hidrawN, hidapi:<path>, usb:<bus>:<address>, sim:<model>, replay:<file>, "
            "capture:<file>"
            + hint
        )
    target, _, query = rest.partition("?") if scheme == "sim" else (rest, "", "")
    if scheme == "capture" and "?select=" in rest:
        target, _, query = rest.rpartition("?")
    options: dict[str, str] = {}
    if query:
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            options[key] = value
    if not target:
        raise InputError(f"bad device {text!r}: nothing after {scheme}:")
    return DeviceURI(scheme, target, options)


class AttachedReader(msgspec.Struct, frozen=True):
    """One reader found on the system (``libre-dump list``)."""

    uri: str
    backend: str
    vendor_id: int
    product_id: int
    model: str
    product_string: str = ""
    serial_number: str = ""


#: URI scheme -> the backend module that opens it, imported only when that scheme is used
#: (python-can's ``can/interfaces`` table). Each module has ``open_uri(uri: DeviceURI) ->
#: Transport``; those that can list attached readers also have ``enumerate_readers() ->
#: list[AttachedReader]``. No backend is imported by this module at import time, so a
#: backend may import this module for the base class without an import circle.
BACKENDS: dict[str, str] = {
    "hidraw": "libre_usb.transport.interfaces.hidraw",
    "hidapi": "libre_usb.transport.interfaces.hidapi",
    "usb": "libre_usb.transport.interfaces.pyusb",
    "sim": "libre_usb.transport.interfaces.sim",
    "replay": "libre_usb.transport.transcript",
    "capture": "libre_usb.transport.interfaces.capture",
}

#: the backends that can list attached readers, in the order they are tried
ENUMERATORS = ("hidraw", "hidapi", "usb")


def backend(scheme: str) -> Any:
    """The backend module for ``scheme``, imported now."""
    return importlib.import_module(BACKENDS[scheme])


def open_transport(uri: str | None, *, product_id: int | None = None) -> Transport:
    """Open the transport a device URI names (or the first attached reader)."""
    if uri is None:
        return _open_first_attached()
    parsed = parse_uri(uri)
    transport: Transport = backend(parsed.scheme).open_uri(parsed)
    return transport


def list_attached() -> list[AttachedReader]:
    """Every Abbott reader the available backends can see, hidraw first."""
    found: list[AttachedReader] = []
    for scheme in ENUMERATORS:
        try:
            found.extend(backend(scheme).enumerate_readers())
        except Exception:  # noqa: S112 - a broken backend must not hide the others
            continue
    return found


def _open_first_attached() -> Transport:
    readers = list_attached()
    if not readers:
        raise DeviceNotFound(
            "no FreeStyle reader found (is it plugged in and switched on? "
            "'libre-dump doctor' explains what the system sees; "
            "use --device sim:libre for the built-in virtual reader)"
        )
    return open_transport(readers[0].uri)
