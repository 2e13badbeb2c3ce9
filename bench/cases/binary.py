"""The binary database protocol against the text protocol: IN reports of the record read.

The same virtual Libre is read with ``$history?``/``$arresult?`` (the baseline) and with the
binary protocol, without and with compression (``bench/bench_binary.py`` prints the full
table with OUT reports and link-bound times; docs/performance.md explains the numbers). The
report count is what the 2 ms interrupt endpoint paces, so the ratio is also the ratio of
link-bound times. Target (issue 12): binary with compression at most 0.4x the text reports.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..bench_binary import measure
from ..core import Context, Row, case


@case("binary")
def binary(ctx: Context) -> Iterator[Row]:
    days = 10 if ctx.quick else 90
    rows = {row["case"]: row for row in measure(days=days)}
    text = rows["text"]["in_reports"]
    size = f"{days} days"
    yield Row("binary protocol: IN reports vs text", size, rows["binary"]["in_reports"], text,
              "reports", note=f"link-bound {rows['binary']['link_bound_s']:.1f} s vs "
                              f"{rows['text']['link_bound_s']:.1f} s")
    packed = rows["binary + compression"]
    yield Row("binary + compression: IN reports vs text", size, packed["in_reports"], text,
              "reports", target=0.4,
              note="out of reach for a faithful reader: one record per 0x35 frame, and a "
                   "history record (real bytes: no zero word) grows by a block header and "
                   "a CRC32 (docs/performance.md)")
