"""The ``sim:`` backend: the built-in virtual reader behind the transport interface.

``sim:<model>[?options]``, e.g. ``sim:libre?seed=3&keepalive=5``. The device itself lives in
:mod:`libre_usb.simulator`; this module only parses the URI options and moves reports.
"""

from __future__ import annotations

from ...devices import model_by_name
from ...errors import InputError
from ...simulator import SimDevice, VirtualReader, with_faults
from ...simulator.state import NO_STATE, default_state_path
from ..interface import DeviceURI, Transport, check_report

__all__ = ["OPTIONS", "SimTransport", "open_uri"]

_BOOL = {"1": True, "true": True, "yes": True, "on": True, "": True,
         "0": False, "false": False, "no": False, "off": False}


#: the range of each numeric option: a virtual reader is bounded like any input (a NaN
#: pace or a million days would hang or exhaust the machine, not test anything)
_BOUNDS: dict[str, tuple[float, float]] = {
    "seed": (-(2 ** 63), 2 ** 63 - 1), "days": (0, 3650), "pace_ms": (0, 60_000),
    "keepalive": (0, 1_000_000), "silent_after": (-1, 1_000_000),
}

#: every ``sim:`` option: its type and what it does (README "The virtual reader")
OPTIONS: dict[str, tuple[type, str]] = {
    "seed": (int, "an integer: which seeded content the reader holds (default 0)"),
    "days": (int, "an integer: how many days of records the reader holds (default 90)"),
    "pace_ms": (float, "milliseconds between two reports the reader sends (default 0)"),
    "keepalive": (int, "send a 22 01 xx keepalive after every N reports (default 0: never)"),
    "stale": (bool, "1/0: leave stale bytes of earlier reports in the padding"),
    "pre_stale": (bool, "1/0: a stray reply of an earlier session waits before the first"),
    "silent": (bool, "1/0: never answer anything (a hung reader)"),
    "silent_after": (int, "stop answering after N text commands"),
    "faults": (tuple, "comma-separated faults to inject, e.g. unplug@$history? "
                      "(docs/reliability.md)"),
    "state": (str, "the JSON file that keeps a clock set with 'clock --set' for the next run "
                   "(default: $XDG_STATE_HOME/libre-dump/sim/MODEL-seedN.json; none: keep "
                   "nothing)"),
    "record_base": (int, "an integer added to every record id (ids past 65535 make the "
                         "binary protocol's 16-bit record numbers wrap)"),
}


class SimTransport(Transport):
    """A transport whose device is a :class:`VirtualReader` in this process."""

    def __init__(self, reader: VirtualReader) -> None:
        self.reader = reader
        #: what reports go through: the reader, or a fault injector in front of it when
        #: its ``faults`` option names faults (simulator/faults.py)
        self.device: SimDevice = with_faults(reader)
        self.uri = f"sim:{reader.model.name}"
        self.product_id = reader.model.product_ids[0]

    @property
    def state_path(self) -> str | None:
        """The file that keeps the reader's clock from one run to the next, if any."""
        return self.reader.options.state or None

    @classmethod
    def from_uri(cls, uri: DeviceURI) -> SimTransport:
        model_by_name(uri.target)  # a clear error for an unknown model
        options: dict[str, object] = {}
        seed = 0
        for key, value in uri.options.items():
            if key not in OPTIONS:
                raise InputError(f"unknown sim option {key!r} in {uri}; valid options: "
                                 + ", ".join(OPTIONS))
            kind = OPTIONS[key][0]
            try:
                parsed: object
                if kind is bool:
                    parsed = _BOOL[value.lower()]
                elif kind is tuple:
                    parsed = tuple(v for v in value.split(",") if v)
                else:
                    parsed = kind(value)
                low, high = _BOUNDS.get(key, (None, None))
                if low is not None and not (
                        low <= parsed <= high):  # type: ignore[operator]
                    raise ValueError(value)
            except (ValueError, KeyError, OverflowError):
                raise InputError(f"bad value {str(value)[:40]!r} for sim option {key!r} "
                                 f"({OPTIONS[key][1]}"
                                 + (f"; {_BOUNDS[key][0]:g} to {_BOUNDS[key][1]:g}"
                                    if key in _BOUNDS else "") + ")") from None
            if key == "seed":
                seed = int(value)
            else:
                options[key] = parsed
        # the clock set by an earlier run (simulator/state.py): the per-user file of this
        # model and seed unless the URI names another, or none
        state = str(options.get("state", "")).strip()
        if "state" not in options:
            state = str(default_state_path(model_by_name(uri.target).name, seed))
        elif state.lower() == NO_STATE:
            state = ""
        options["state"] = state
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
