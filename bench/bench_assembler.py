"""Per-report cost of assembling a ``$history?`` reply, by reply size.

Our sans-I/O stack (HostConnection -> TextReplyAssembler -> multi-record trailer check) is run
side by side with freestyle-hid 1.1.1 (a measured baseline only; libre_usb never imports it)
on the very same report stream: real-sized Libre history replies of 100, 1,000 and 12,572
records (the size seen in glucometerutils issue #63), one record line per report as readers
send them.

Our cost per report must not grow with the reply size; freestyle-hid concatenates the
whole buffer and searches it again for every report, so its cost grows linearly per
report (quadratically per reply).

Run: python bench/bench_assembler.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from libre_usb.protocol.connection import HostConnection, State, TextResponse
from libre_usb.protocol.frames import build_report
from libre_usb.protocol.text.reply import build_multirecord, build_text_reply, parse_multirecord

SIZES = (100, 1000, 12572)


def reports_for(n: int) -> list[bytes]:
    lines = [
        f"{58012 - i},12,4,8,19,22,{i % 60},13,1,0,0,0,0,{80 + i % 150},{3765 + 15 * i},0".encode()
        for i in range(n)
    ]
    reply = build_text_reply(build_multirecord(lines))
    out: list[bytes] = []
    body, tail = reply[: reply.rfind(b"CKSM:")], reply[reply.rfind(b"CKSM:") :]
    for line in body.split(b"\r\n")[:-1]:
        out.append(build_report(0x60, line + b"\r\n"))
    out.append(build_report(0x60, tail))
    return out


def ours(reports: list[bytes]) -> int:
    conn = HostConnection()
    conn.state = State.READY
    conn.text_command("$history?")
    for report in reports:
        event = conn.receive(report)
        if isinstance(event, TextResponse):
            return len(parse_multirecord(event.reply).records)
    raise RuntimeError("incomplete")


def freestyle_hid_session(reports: list[bytes]) -> int:
    from freestyle_hid import _session

    class Fake:
        """Serves the report stream by index, so only the assembly is measured."""

        def __init__(self) -> None:
            self.index = 0

        def write(self, report: bytes) -> None:
            pass

        def read(self, size: int = 64) -> bytes:
            self.index += 1
            return reports[self.index - 1]

    session = _session.Session.__new__(_session.Session)
    session._handle = Fake()
    session._text_message_type = 0x60
    session._text_reply_message_type = 0x60
    session._encoding = "ascii"
    session._encrypted_protocol = False
    return sum(1 for row in session.query_multirecord(b"$history?") if row)


def per_report_us(func: Callable[[list[bytes]], int], reports: list[bytes], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        assert func(reports) == n
        best = min(best, time.perf_counter() - start)
    return best / len(reports) * 1e6


def main() -> None:
    try:
        import freestyle_hid  # noqa: F401

        baseline = True
    except ImportError:
        baseline = False
    print(f"{'records':>8} {'ours us/report':>15} {'freestyle-hid us/report':>24} {'ratio':>7}")
    results = []
    for n in SIZES:
        reports = reports_for(n)
        mine = per_report_us(ours, reports, n)
        theirs = per_report_us(freestyle_hid_session, reports, n) if baseline else float("nan")
        results.append((n, mine, theirs))
        print(f"{n:>8} {mine:>15.2f} {theirs:>24.2f} {theirs / mine:>7.1f}")
    growth = results[-1][1] / results[0][1]
    print(f"\nours: per-report cost at {SIZES[-1]} records is {growth:.2f}x the cost at "
          f"{SIZES[0]} (flat = linear total cost)")
    if baseline:
        print(f"freestyle-hid: {results[-1][2] / results[0][2]:.1f}x")


if __name__ == "__main__":
    main()
