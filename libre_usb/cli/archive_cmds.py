"""``sync``, ``archive`` and ``export``: the local archive beyond the reader's 90 days."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from .. import jsonsafe
from ..archive import Archive, SyncResult, default_path
from ..archive import export as archive_export
from ..model import Dump
from ..output import export, timeline
from ..output.atomic import atomic_write, check_distinct, check_output
from ..output.period import Period
from ..output.units import UNITS
from .device_cmds import (
    date_style_option,
    device_options,
    open_session,
    status_line,
    tz_option,
)

#: conflicts listed one by one in the sync summary; the rest are counted
_SHOWN_CONFLICTS = 10


def archive_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--archive", "archive_path", type=click.Path(dir_okay=False), metavar="PATH",
        help="The archive file. Default: $XDG_DATA_HOME/libre-dump/archive.sqlite "
             "(~/.local/share/libre-dump/archive.sqlite).")(func)


def period_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--since", metavar="DATE[THH:MM]",
                     help="First day (or time) on the reader's clock, inclusive."),
        click.option("--until", metavar="DATE[THH:MM]",
                     help="Last day, inclusive (or a time, exclusive), on the reader's clock."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def read_dump(device: str | None, model: str | None, timeout: float,
              record_path: str | None, quiet: bool, dump_path: str | None,
              tz: str | None, protocol: str | None = None) -> tuple[Dump, str]:
    """The dump to work on, placed in time, and where it came from: a saved dump file (its
    own placement kept unless ``--tz`` is given) or a reader."""
    if dump_path is not None:
        loaded = export.load_dump(dump_path)
        if loaded.timezone is None or tz is not None:
            loaded = timeline.place(loaded, timeline.resolve_zone(tz))
        return loaded, f"file:{dump_path}"
    zone = timeline.resolve_zone(tz)  # a bad zone fails before the reader is touched
    status = status_line(quiet)
    with open_session(device, model, timeout, record_path, status,
                      protocol=protocol) as session:
        result = session.dump()
        uri = session.transport.uri if hasattr(session, "transport") else (device or "")
    status.finish()
    return timeline.place(result, zone), uri or (device or "reader")


def _summary(result: SyncResult, archive: Archive) -> str:
    state = "archive unchanged" if result.dump_id is None else "archived"
    return (f"reader {result.serial}: {result.records} records in {result.lines} lines; "
            f"{result.added} new, {result.duplicates} already archived, "
            f"{len(result.conflicts)} conflicts; {state} in {archive.path}")


@click.command()
@device_options
@click.option("--dump", "dump_path", type=click.Path(dir_okay=False, exists=True),
              help="Archive a saved json or ndjson dump instead of reading a reader.")
@archive_option
@tz_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def sync(device: str | None, model: str | None, timeout: float, record_path: str | None,
         protocol: str | None, quiet: bool, dump_path: str | None,
         archive_path: str | None, tz: str | None,
         as_json: bool) -> None:
    """Read a reader (or a saved dump) into the local archive.

    Records already archived are skipped, so syncing again, or syncing overlapping dumps,
    never duplicates anything. A record id that comes back with other content (a reset
    reader counting again) is kept apart and reported, never overwritten. Exit 0 even with
    conflicts: they are data, listed here and by `libre-dump archive --conflicts`.
    """
    dump, origin = read_dump(device, model, timeout, record_path, quiet, dump_path, tz,
                             protocol)
    with Archive(archive_path or default_path(), create=True) as archive:
        result = archive.sync(dump, origin)
        if as_json:
            click.echo(jsonsafe.dumps({**result.to_dict(), "archive": str(archive.path)},
                                  ensure_ascii=False, indent=1))
        else:
            click.echo(_summary(result, archive))
    if result.conflicts and not quiet:
        click.echo(f"warning: {len(result.conflicts)} reader lines came back with other "
                   "content than archived (a reset reader reusing record ids?); kept apart:",
                   err=True)
        for conflict in result.conflicts[:_SHOWN_CONFLICTS]:
            click.echo(f"  {conflict.describe()}", err=True)
        if len(result.conflicts) > _SHOWN_CONFLICTS:
            click.echo(f"  ... and {len(result.conflicts) - _SHOWN_CONFLICTS} more "
                       "(libre-dump archive --conflicts)", err=True)


@click.command("archive")
@archive_option
@click.option("--conflicts", "show_conflicts", is_flag=True,
              help="Also list every record id archived with more than one content.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def archive_cmd(archive_path: str | None, show_conflicts: bool, as_json: bool) -> None:
    """List the archived readers: the span of their records, counts by kind, dumps and
    conflicts."""
    with Archive(archive_path or default_path()) as archive:
        readers = archive.readers()
        conflicts = {r.serial: archive.conflicts(r.serial) for r in readers
                     if show_conflicts and r.conflicts}
        stats = archive.stats()
    if as_json:
        doc = {"archive": stats, "readers": [r.to_dict() for r in readers]}
        if show_conflicts:
            doc["conflicts"] = {serial: [c.__dict__ for c in items]
                                for serial, items in conflicts.items()}
        click.echo(jsonsafe.dumps(doc, ensure_ascii=False, indent=1))
        return
    per = stats["bytes_per_record"]
    click.echo(f"{stats['path']}: {len(readers)} readers, {stats['records']} records, "
               f"{stats['bytes']} bytes" + (f" ({per} per record)" if per else ""))
    for reader in readers:
        click.echo(f"\n{reader.serial} ({reader.model})")
        click.echo(f"  records  {reader.total}, from {reader.first} to {reader.last} "
                   "(reader clock)")
        click.echo("  kinds    " + ", ".join(f"{k} {n}" for k, n in reader.counts.items()))
        click.echo(f"  dumps    {reader.dumps}, last synced {reader.last_sync}")
        click.echo(f"  conflicts {reader.conflicts}")
        for conflict in conflicts.get(reader.serial, []):
            click.echo(f"    {conflict.describe()}")


@click.command("export")
@archive_option
@click.option("--reader", "serial", metavar="SERIAL",
              help="The reader to export (needed when the archive holds several).")
@period_options
@click.option("--format", "-f", "fmt", type=click.Choice(export.FORMATS), default="json",
              show_default=True, help="Any format `dump` writes.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write here (atomically) instead of stdout.")
@click.option("--unit", type=click.Choice(UNITS), default=None,
              help="Glucose unit of the output (see `dump --unit`). Default: mg/dL; for "
                   "libreview-csv the reader's unit.")
@date_style_option
@click.option("--redact/--no-redact", default=None,
              help="Replace identifiers and free texts by placeholders (as `dump --redact`).")
def export_cmd(archive_path: str | None, serial: str | None, since: str | None,
               until: str | None, fmt: str, output: str | None, unit: str | None,
               date_style: str, redact: bool | None) -> None:
    """Write archived records in any `dump` format."""
    check_output(output)
    check_distinct([("--output", output)], [("--archive", archive_path)])
    period = Period.parse(since, until)
    redacting = redact is not False if fmt == "libreview" else bool(redact)
    with Archive(archive_path or default_path()) as archive:
        options: dict[str, Any] = {"fmt": fmt, "serial": serial, "period": period,
                                   "unit": unit, "redact": redacting, "date_style": date_style}
        if output and output != "-":
            with atomic_write(output) as handle:
                notes = archive_export.write(archive, handle, **options)
        else:
            notes = archive_export.write(archive, sys.stdout, **options)
    for note in notes:
        click.echo(f"note: {note}", err=True)


commands = [sync, archive_cmd, export_cmd]
