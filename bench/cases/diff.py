"""``libre-dump diff`` of an upload against a saved dump: 90 days and 1 year.

The upload is our own ``dump -f libreview`` of the same recorded session (what a vendor
upload of the reader would hold), the dump its ``json``; ``diff UPLOAD --dump DUMP`` then
matches every record. The baseline is our own cost per record at 90 days: the 1-year diff
must cost no more per record (linear, target <= 1.5x), and the rows show both in full.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..core import Context, Row, case, records_in, run_ours


def _diff_cpu(ctx: Context, size: int) -> tuple[float, int]:
    session, _ = ctx.transcript(size)
    upload, dump = ctx.workdir / f"upload-{size}.json", ctx.workdir / f"dump-{size}.json"
    for fmt, out in (("libreview", upload), ("json", dump)):
        done = run_ours(["dump", "--device", f"replay:{session}", "-f", fmt, "-o", str(out),
                         "-q", "--tz", "UTC"])
        if done.returncode != 0:
            raise RuntimeError(f"dump -f {fmt} failed: {done.stderr.strip()}")
    best = float("inf")
    for _ in range(1 if ctx.quick else 2):
        done = run_ours(["diff", str(upload), "--dump", str(dump), "--tz", "UTC", "-o",
                         str(ctx.workdir / "diff.txt")])
        if done.returncode not in (0, 1):
            raise RuntimeError(f"diff failed: {done.stderr.strip()}")
        best = min(best, done.cpu)
    return best, records_in(dump)


@case("diff")
def diff(ctx: Context) -> Iterator[Row]:
    quarter, year = (100, 1000) if ctx.quick else (8640, 35000)
    cpu_q, records_q = _diff_cpu(ctx, quarter)
    cpu_y, records_y = _diff_cpu(ctx, year)
    yield Row("diff: CPU", "90 days" if not ctx.quick else f"{quarter:,}", cpu_q * 1000,
              float("nan"), "ms CPU", note=f"{records_q} records")
    yield Row("diff: CPU", "1 year" if not ctx.quick else f"{year:,}", cpu_y * 1000,
              float("nan"), "ms CPU", note=f"{records_y} records")
    yield Row("diff: per record, 1 year vs 90 days", "-", cpu_y / records_y * 1e6,
              cpu_q / records_q * 1e6, "us/record", target=1.5)
