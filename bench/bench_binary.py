"""IN reports and link-bound time of a 90-day Libre read: text vs binary vs binary+compression.

The same virtual reader content (``sim:libre``, seed 0, 90 days) is read three ways in one
run: the text protocol (``$history?`` + ``$arresult?``), the binary database protocol
without compression, and with compression (SET_COMPRESSION 1, as Abbott's software does on
the Libre). For each we count the reports the reader sends (IN reports; what the 2 ms
interrupt endpoint paces) for the record read alone and for the whole dump, the reports the
host sends (OUT: commands and ACKs), the link-bound minimum (IN reports x 2 ms) and our wall
time in this process, with ratios against the text protocol.

Run: python bench/bench_binary.py [--days N] [--seed N]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from libre_usb.reader.binary import BinaryReader
from libre_usb.reader.session import Session
from libre_usb.simulator.reader import VirtualReader
from libre_usb.transport.interfaces.sim import SimTransport

#: the interrupt endpoint's interval: one IN report per 2 ms at best
INTERVAL_MS = 2.0
CASES = (("text", "text", True), ("binary", "binary", False),
         ("binary + compression", "binary", True))


def measure(days: int = 90, seed: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, protocol, compression in CASES:
        reader = VirtualReader("libre", seed=seed, days=days)
        transport = SimTransport(reader)
        with Session(transport, timeout_ms=3000, protocol=protocol,
                     compression=compression) as session:
            out_before = len(reader.received)
            info = session.read_info()
            start_in, start_out = reader._sent, len(reader.received)
            started = time.perf_counter()
            if protocol == "binary":
                records = len(BinaryReader(session).read(info.record_count).records)
            else:
                records = len(session.read_records())
            wall = time.perf_counter() - started
            rows.append({
                "case": name, "records": records,
                "in_reports": reader._sent - start_in,
                "out_reports": len(reader.received) - start_out,
                "in_reports_whole_dump": reader._sent,
                "out_reports_whole_dump": len(reader.received) - out_before,
                "link_bound_s": (reader._sent - start_in) * INTERVAL_MS / 1000,
                "wall_s": wall,
            })
    base = rows[0]["in_reports"]
    for row in rows:
        row["ratio_vs_text"] = row["in_reports"] / base
    return rows


def table(rows: list[dict[str, Any]], days: int) -> str:
    lines = [f"Libre, {days} days (virtual reader, seed 0): record read only; whole dump "
             "in brackets",
             "",
             "| protocol | records | IN reports | vs text | link-bound (x 2 ms) | OUT reports "
             "| wall time here |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['records']} | {row['in_reports']} "
            f"({row['in_reports_whole_dump']}) | {row['ratio_vs_text']:.2f}x | "
            f"{row['link_bound_s']:.1f} s | {row['out_reports']} | {row['wall_s']:.1f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(table(measure(args.days, args.seed), args.days))


if __name__ == "__main__":
    main()
