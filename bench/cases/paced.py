"""A dump at the link's pace: wall time against the link minimum, host CPU against link time.

The 90-day session is replayed at the real endpoint's pace (``replay:SESSION?pace_ms=2``:
the answer to each request comes one report every 2 ms from the request, as the reader's
interrupt endpoint delivers it). No host can finish before ``IN reports x 2 ms``, the link
minimum; the case shows how close the whole ``libre-dump dump`` process (start-up, the
reading, placing and writing) comes to it, and how much of the host's CPU the reading takes
while the link is busy.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..core import Context, Row, case, run_ours

PACE_MS = 2.0


@case("paced")
def paced(ctx: Context) -> Iterator[Row]:
    size = 1000 if ctx.quick else 8640
    session, reports = ctx.transcript(size)
    link = reports * PACE_MS / 1000
    best_wall = best_cpu = float("inf")
    for _ in range(1 if ctx.quick else 2):
        done = run_ours(["dump", "--device", f"replay:{session}?pace_ms={PACE_MS:g}",
                         "-o", str(ctx.workdir / "paced.json"), "-q"])
        if done.returncode != 0:
            raise RuntimeError(f"paced dump failed: {done.stderr.strip()}")
        best_wall, best_cpu = min(best_wall, done.wall), min(best_cpu, done.cpu)
    yield Row("paced dump: wall vs link minimum (reports x 2 ms)", f"{size:,}", best_wall,
              link, "s", target=1.05, note=f"{reports} IN reports")
    yield Row("paced dump: host CPU vs link time", f"{size:,}", best_cpu, link, "s",
              target=0.05, note=f"{best_cpu / reports * 1e6:.0f} us CPU per report")
