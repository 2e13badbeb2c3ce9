"""The device layer's one interface: 64-byte HID reports to and from a reader.

- :mod:`.interface`: the :class:`Transport` base class, device URIs, and the table naming
  the backend module of each URI scheme (imported only when that scheme is used);
- :mod:`.interfaces`: the backends (``hidraw``, ``hidapi``, ``pyusb`` for ``usb:``, ``sim``);
- :mod:`.transcript`: the logger (``--record``) and the player (``replay:``).
"""

from __future__ import annotations

from .interface import (
    ABBOTT_VENDOR_ID,
    BACKENDS,
    REPORT_SIZE,
    AttachedReader,
    DeviceURI,
    Transport,
    check_report,
    list_attached,
    open_transport,
    parse_uri,
)

__all__ = [
    "ABBOTT_VENDOR_ID",
    "BACKENDS",
    "REPORT_SIZE",
    "AttachedReader",
    "DeviceURI",
    "Transport",
    "check_report",
    "list_attached",
    "open_transport",
    "parse_uri",
]
