"""What the decoding cases share: the IN reports of one reply of a virtual reader, as the
host received them (a helper module; it registers no case)."""

from __future__ import annotations

from libre_usb.reader.session import Session
from libre_usb.simulator.content import generate
from libre_usb.simulator.reader import VirtualReader
from libre_usb.transport.interface import Transport
from libre_usb.transport.interfaces.sim import SimTransport


class Tap(Transport):
    """A transport that passes everything through and keeps each report it reads."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.product_id = inner.product_id
        self.received: list[bytes] = []

    def write(self, report: bytes) -> None:
        self.inner.write(report)

    def read(self, timeout_ms: int) -> bytes | None:
        data = self.inner.read(timeout_ms)
        if data is not None:
            self.received.append(data)
        return data


def reply_reports(model: str, records: int, days: int, command: str, *, seed: int = 63,
                  reader_days: int | None = None) -> tuple[list[bytes], Session]:
    """The reports the host received for ``command`` from a virtual ``model`` reader
    holding the last ``records`` history records of ``days`` generated days, and the open
    session (its link keys, for an encrypted model)."""
    if reader_days is None:
        reader = VirtualReader(model, seed=seed)
    else:
        reader = VirtualReader(model, seed=seed, days=reader_days)
    history = generate(seed, days=days).history
    if len(history) < records:
        raise RuntimeError(f"the generator made only {len(history)} history records")
    reader.content.history[:] = history[-records:]
    tap = Tap(SimTransport(reader))
    session = Session(tap, model)
    session.open()
    start = len(tap.received)
    session.command(command)
    return tap.received[start:], session
