"""The ``sim:`` backend: the built-in virtual reader behind the transport interface.

``sim:<model>[?options]``, e.g. ``sim:libre?seed=3&keepalive=5``. The device itself lives in
:mod:`libre_usb.simulator`; this module only parses the URI options and moves reports.
"""

from __future__ import annotations

from ...devices import model_by_name
from ...errors import InputError
from ...simulator import SimDevice, VirtualReader, with_faults
from ..interface import DeviceURI, Transport, check_report

__all__ = ["SimTransport", "open_uri"]

_BOOL = {"1": True, "true": True, "yes": True, "on": True, "": True,
         "0": False, "false": False, "no": False, "off": False}


class SimTransport(Transport):
    """A transport whose device is a :class:`VirtualReader` in this process."""

    def __init__(self, reader: VirtualReader) -> None:
        self.reader = reader
        #: what reports go through: the reader, or a fault injector in front of it when
        #: its ``faults`` option names faults (simulator/faults.py)
        self.device: SimDevice = with_faults(reader)
        self.uri = f"sim:{reader.model.name}"
        self.product_id = reader.model.product_ids[0]

    @classmethod
    def from_uri(cls, uri: DeviceURI) -> SimTransport:
        model_by_name(uri.target)  # a clear error for an unknown model
        options: dict[str, object] = {}
        seed = 0
        for key, value in uri.options.items():
            try:
                if key == "seed":
                    seed = int(value)
                elif key in ("pace_ms",):
                    options[key] = float(value)
                elif key in ("keepalive", "silent_after", "days"):
                    options[key] = int(value)
                elif key in ("stale", "silent", "pre_stale"):
                    options[key] = _BOOL[value.lower()]
                elif key == "faults":
                    options[key] = tuple(v for v in value.split(",") if v)
                else:
                    raise InputError(f"unknown sim option {key!r} in {uri}")
            except (ValueError, KeyError):
                raise InputError(f"bad value {value!r} for sim option {key!r}") from None
        return cls(VirtualReader(uri.target, seed, **options))

    def write(self, report: bytes) -> None:
        self.device.write(check_report(report))

    def read(self, timeout_ms: int) -> bytes | None:
        data = self.device.read(timeout_ms)
        return data or None

    def close(self) -> None:
        self.device.close()


def open_uri(uri: DeviceURI) -> Transport:
    """The ``sim:`` entry of the backend table (transport/interface.py)."""
    return SimTransport.from_uri(uri)
