"""``report``: an AGP page (or its metrics as JSON) from a reader, a saved dump or the
archive."""

from __future__ import annotations

import click

from .. import report as agp_report
from ..archive import Archive, default_path
from ..output.atomic import check_distinct, check_output
from ..output.period import Period
from ..output.units import MG_DL, UNITS
from ..report import data as report_data
from .archive_cmds import period_options, read_dump
from .device_cmds import _emit, device_options, tz_option


@click.command()
@device_options
@click.option("--dump", "dump_path", type=click.Path(dir_okay=False, exists=True),
              help="Report on a saved json or ndjson dump instead of a reader.")
@click.option("--archive", "archive_path", is_flag=False, flag_value="", default=None,
              metavar="[PATH]",
              help="Report from the archive (the default one when no PATH is given).")
@click.option("--reader", "serial", metavar="SERIAL",
              help="With --archive: the reader (needed when the archive holds several).")
@period_options
@click.option("--unit", type=click.Choice(UNITS), default=None,
              help="Glucose unit of the report. Default: the reader's display unit.")
@click.option("--format", "-f", "fmt", type=click.Choice(agp_report.FORMATS), default="html",
              show_default=True, help="html: the AGP page; json: its metrics.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write here (atomically) instead of stdout.")
@tz_option
def report(device: str | None, model: str | None, timeout: float, record_path: str | None,
           protocol: str | None, quiet: bool, dump_path: str | None,
           archive_path: str | None, serial: str | None,
           since: str | None, until: str | None, unit: str | None, fmt: str,
           output: str | None, tz: str | None) -> None:
    """Write an Ambulatory Glucose Profile (AGP) page, or its metrics as JSON.

    Time in ranges, mean, GMI, CV, sensor time captured, the modal day's percentile bands
    and daily profiles with insulin, food, notes and alerts, from a reader, a saved dump or
    the archive. One self-contained HTML page (no script, nothing loaded from the network)
    that prints on A4.
    """
    period = Period.parse(since, until)
    check_output(output)
    check_output(record_path, "--record")
    check_distinct([("--output", output), ("--record", record_path)],
                   [("--dump", dump_path), ("--archive", archive_path)])
    if archive_path is not None:
        if dump_path is not None or device is not None:
            raise click.UsageError("give one source: a reader, --dump or --archive")
        with Archive(archive_path or default_path()) as archive:
            data = report_data.from_archive(archive, serial, period)
    else:
        if serial is not None:
            raise click.UsageError("--reader chooses a reader in the archive: use it with "
                                   "--archive")
        dump, _ = read_dump(device, model, timeout, record_path, quiet, dump_path, tz,
                            protocol)
        data = report_data.from_dump(dump, period)
    chosen = unit or (data.device.unit if data.device.unit in UNITS else MG_DL)
    text = agp_report.render(data, unit=chosen, fmt=fmt)
    _emit(text, output)


commands = [report]
