"""Memory: peak RSS per record of a whole ``dump``, per format; the output stage's own peak.

* whole process: ``libre-dump dump --device replay:SESSION -f FMT`` at the smallest and
  the largest size, its own peak (VmHWM, see bench/peak.py); (peak at the largest - at the
  smallest) / (records more) is what each further record costs at the peak, everything
  included (the reply, the typed records, their placement in time, the output). Target:
  under 1 KiB a record; the baseline column is that 1 KiB.
* the output stage alone: the peak of Python allocations (tracemalloc) while one format
  writes an already-read dump (placed and sorted as the ``dump`` command hands it over) to a
  file, at the largest size against 1,000 records. A streaming writer holds about
  export.FLUSH_BYTES (64 KiB) of text at a time: the same peak whatever the size (target
  <= 1.5x).
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Iterator

from libre_usb.model import Dump
from libre_usb.output import export, timeline
from libre_usb.reader.session import Session
from libre_usb.transport.transcript import ReplayTransport

from ..core import Context, Row, case, peak_rss_of_ours, records_in

FORMATS = ("json", "ndjson", "csv")


def _dump_of(path: os.PathLike[str] | str) -> Dump:
    """A dump read, placed and sorted as the ``dump`` command hands it to a writer."""
    session = Session(ReplayTransport.from_file(path), "libre")
    return timeline.place_dump_owned(session.dump(), "UTC")


def _render_peak(dump: Dump, fmt: str, out: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        with open(out, "w", encoding="utf-8") as handle:
            export.WRITERS[fmt](dump, handle)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@case("memory")
def memory(ctx: Context) -> Iterator[Row]:
    small, large = ctx.sizes[0], ctx.sizes[-1]
    sessions = {size: ctx.transcript(size)[0] for size in (small, large)}
    out = ctx.workdir / "memory.out"
    counts: dict[int, int] = {}
    for fmt in FORMATS:
        rss: dict[int, int] = {}
        for size, session in sessions.items():
            done, rss[size] = peak_rss_of_ours(["dump", "--device", f"replay:{session}", "-f",
                                                fmt, "-o", str(out), "-q"], ctx.workdir)
            if done.returncode != 0:
                raise RuntimeError(f"dump -f {fmt} failed: {done.stderr.strip()}")
            if fmt == "json":  # first: the record counts the other formats divide by
                counts[size] = records_in(out)
        per_record = (rss[large] - rss[small]) / (counts[large] - counts[small])
        yield Row(f"peak RSS per record, dump -f {fmt}", f"{small:,}->{large:,}", per_record,
                  1024, "bytes", target=1.0,
                  note=f"peak {rss[large] / 2**20:.0f} MiB at {counts[large]} records")
    base = ctx.sizes[1] if len(ctx.sizes) > 1 else small
    dumps = {size: _dump_of(ctx.transcript(size)[0]) for size in (base, large)}
    for fmt in FORMATS:
        peaks = {size: _render_peak(dump, fmt, str(out)) for size, dump in dumps.items()}
        yield Row(f"output stage peak, -f {fmt}", f"{large:,} vs {base:,}",
                  peaks[large] / 1024, peaks[base] / 1024, "KiB traced", target=1.5)
