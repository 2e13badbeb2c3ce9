"""``diff``: compare captured vendor uploads with what the reader really holds."""

from __future__ import annotations

import click

from ..output import timeline
from ..output.atomic import atomic_write, check_distinct, check_output
from ..output.export import load_dump
from ..output.terminal import escape_controls
from ..upload.diff import DEFAULT_TIME_TOLERANCE, diff_uploads
from ..upload.load import DEFAULT_MAX_BYTES, load_uploads
from ..upload.report import FORMATS, render
from ._base import Finite
from .device_cmds import device_options, open_session, report_unrecognised, status_line


@click.command("diff")
@click.argument("uploads", nargs=-1, required=True, metavar="UPLOAD...")
@device_options
@click.option("--dump", "dump_path", metavar="FILE",
              help="Compare with a saved 'libre-dump dump --format json' file instead of a "
                   "reader.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="Report format.")
@click.option("--output", "-o", metavar="FILE",
              help="Write the report here (atomically) instead of stdout.")
@click.option("--time-tolerance", type=Finite(min=0, max=7 * 86400), default=DEFAULT_TIME_TOLERANCE,
              show_default=True, metavar="SECONDS",
              help="Reader and upload times this close are the same time.")
@click.option("--max-bytes", type=click.IntRange(min=1, max=1 << 40), default=DEFAULT_MAX_BYTES,
              show_default=True, metavar="N",
              help="Refuse files and bodies that are (or decompress to) more than N bytes.")
@click.option("--tz", metavar="ZONE",
              help="IANA time zone of the reader's clock (e.g. Europe/Berlin), used to place "
                   "the reader's records in UTC as dump does and upload entries that carry UTC "
                   "times only. Default: this machine's zone, as for dump; the report says "
                   "which was used.")
@click.pass_context
def diff(ctx: click.Context, uploads: tuple[str, ...], device: str | None, model: str | None,
         timeout: float, record_path: str | None, protocol: str | None, quiet: bool,
         dump_path: str | None,
         fmt: str, output: str | None, time_tolerance: float, max_bytes: int,
         tz: str | None) -> None:
    """Diff captured uploads (raw bodies, HAR files, mitmproxy flow files) against a reader.

    Shows, per kind of record, what was uploaded unchanged, what was left out, what was
    added or altered, and every identifier the uploads sent.

    Exit codes: 0 the uploads hold exactly the reader's records, 1 they differ,
    2 bad input (unreadable, hostile or not an upload), 3+ device errors.
    """
    if device and dump_path:
        raise click.UsageError("give --device or --dump, not both")
    zone = timeline.zone_for(tz)  # one zone rule for every command (docs/formats.md, "Time")
    check_output(output)
    check_output(record_path, "--record")
    check_distinct([("--output", output), ("--record", record_path)],
                   [*(("UPLOAD", upload) for upload in uploads), ("--dump", dump_path)])
    loaded = load_uploads(uploads, max_bytes=max_bytes)
    if dump_path:
        dump = load_dump(dump_path)
        if dump.timezone and not tz:
            # a saved dump placed when it was made keeps its placement and zone
            zone = timeline.Zone(timeline.resolve_zone(dump.timezone), dump.timezone,
                                 f"the saved dump {dump_path}")
    else:
        with open_session(device, model, timeout, record_path, status_line(quiet),
                          protocol=protocol) as session:
            dump = session.dump()
        report_unrecognised(session.line_stats)
    if tz or not dump.timezone or dump_path is None:
        # the reader's records are placed in UTC exactly as `dump` places them, so an
        # upload made by `dump --format libreview` matches whatever the machine's zone
        dump = timeline.place(dump, zone)
    result = diff_uploads(dump, loaded, tz=zone.tzinfo, time_tolerance=time_tolerance,
                          zone_source=zone.origin)
    text = render(result, fmt)
    if fmt == "text":  # read on a terminal: texts from the upload or reader are shown, not obeyed
        text = escape_controls(text)
    if output and output != "-":
        with atomic_write(output) as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)
    ctx.exit(0 if result.identical else 1)


commands = [diff]
