"""``list``, ``info`` and ``dump``: the commands that read a reader."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from .. import jsonsafe
from ..devices import MODELS
from ..errors import DeviceTimeout, InputError, ProtocolError
from ..model import Dump
from ..output import export, timeline
from ..output.atomic import atomic_write, check_distinct, check_output
from ..output.terminal import escape_controls
from ..output.units import UNITS
from ..protocol.text.records import LineStats
from ..reader.session import (
    DEFAULT_TIMEOUT_MS,
    INFO_DEADLINE_S,
    PROTOCOLS,
    RECORDS_DEADLINE_S,
    Session,
)
from ..transport.interface import Transport, list_attached, open_transport
from ..transport.transcript import RecordingTransport
from ._base import Finite
from .status import StatusLine, dump_summary

if TYPE_CHECKING:
    from ..reader.passive import PassiveSession


def device_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command that talks to a reader takes."""
    options = [
        click.option("--device", "-d", metavar="URI",
                     help="hidraw:/dev/hidrawN, hidapi:<path>, usb:<bus>:<addr>, "
                          "sim:<model>[?opts], replay:<file> or capture:<file> (a USB "
                          "capture of another client's session, read passively). Default: "
                          "the first attached reader."),
        click.option("--model", type=click.Choice(sorted(MODELS)),
                     help="Reader model, when the device does not say (replay files)."),
        click.option("--timeout", type=Finite(min=0.05, max=600),
                     default=DEFAULT_TIMEOUT_MS / 1000, show_default=True,
                     help="Seconds to wait for each report before giving up."),
        click.option("--deadline", type=Finite(min=0.1, max=86400), metavar="SECONDS",
                     expose_value=False, callback=_keep_deadline,
                     help="Longest time one reply may take in all (a reader that keeps "
                          "sending a little and never finishes). Default: "
                          f"{INFO_DEADLINE_S:g} s for a reply of device information, "
                          f"{RECORDS_DEADLINE_S:g} s for a record list."),
        click.option("--record", "record_path", type=click.Path(dir_okay=False),
                     help="Write every report exchanged to this transcript (JSON Lines)."),
        click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
                     help="text: $history?/$arresult?; binary: the database protocol Abbott's "
                          "software uses (Libre, Libre Pro; adds alerts, events and config "
                          "settings); auto: binary where the model speaks it. Default: binary "
                          "on the Libre Pro, text elsewhere."),
        click.option("--quiet", "-q", is_flag=True, help="No progress or notes on stderr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def status_line(quiet: bool) -> StatusLine:
    """The progress line: shown only when stderr is a terminal and --quiet is not given."""
    return StatusLine(enabled=not quiet and sys.stderr.isatty())


def _keep_deadline(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    ctx.meta["libre_dump.deadline"] = value


@contextlib.contextmanager
def open_session(device: str | None, model: str | None, timeout: float,
                 record_path: str | None, status: StatusLine | None = None, *,
                 shareable: bool = False, protocol: str | None = None
                 ) -> Iterator[Session | PassiveSession]:
    """Open the transport (recording it if asked, as a shareable transcript when
    ``shareable``: docs/sharing.md) and a session on it. ``status`` shows the progress of
    long replies; its line is erased when the session ends, however. A ``capture:`` device
    gives the passive session of the captured client instead."""
    transport: Transport = open_transport(device)
    if device is not None and device.startswith("capture:"):
        # imported here: the passive decoder (and its crypto) only when a capture is read
        from ..reader.passive import PassiveSession
        from ..transport.interfaces.capture import CaptureTransport

        assert isinstance(transport, CaptureTransport)
        with transport:
            if record_path:
                raise InputError("--record: a capture is already a recording; convert it "
                                 "with 'libre-dump capture FILE --transcript OUT.jsonl'")
            yield PassiveSession(transport, model)
        return
    recorder: RecordingTransport | None = None
    if record_path:
        recorder = RecordingTransport(transport, record_path, model=model)
        transport = recorder
    failure: BaseException | None = None
    session: Session | None = None
    try:
        context = click.get_current_context(silent=True)
        deadline = context.meta.get("libre_dump.deadline") if context is not None else None
        recorded = getattr(recorder.inner if recorder is not None else transport,
                           "recorded_protocol", None)
        if protocol is None and recorded is not None:
            protocol = recorded  # a replay reads the way the recording did
        elif shareable and protocol is None:
            protocol = "text"  # the protocol whose transcripts can be made shareable
        session = Session(transport, model, timeout_ms=int(timeout * 1000),
                          # no callback where no line is shown (-q, not a terminal): the
                          # session then takes the reports waiting in bigger batches
                          progress=(status.update if status is not None and status.enabled
                                    else None),
                          deadline_s=deadline, protocol=protocol)
        if recorder is not None and shareable and session.protocol == "binary":
            raise InputError("--record with --redact: a shareable transcript of the binary "
                             "protocol is not made yet (its frames would keep names and "
                             "notes); record it with --protocol text, or without --redact")
        if recorder is not None and shareable:
            from ..output.redact import TranscriptPolicy
            from ..transport.shareable import TranscriptRules

            recorder.share = TranscriptRules(session.model, TranscriptPolicy())
            recorder.encrypted = session.model.encrypted
        session.open()
        yield session
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if status is not None:
            status.finish()
        transport.close()
        if recorder is not None:
            if session is not None:
                recorder.link_opened(session.conn.cipher)
            _save_transcript(recorder, failure)


def _save_transcript(recorder: RecordingTransport, failure: BaseException | None) -> None:
    """Write the transcript of a session that ended, well or with a protocol error or a
    timeout (marked at its end: the exchange that shows the fault is the point of it). A
    run that was cut off (Ctrl-C, SIGTERM, an unplug, any other error) writes nothing."""
    if failure is None:
        recorder.save()
    elif isinstance(failure, (ProtocolError, DeviceTimeout)):
        recorder.save(error=f"{type(failure).__name__}: {failure}")


def _say(text: str) -> None:
    """A line for the terminal: the reader's texts are shown, their control characters are
    not obeyed."""
    click.echo(escape_controls(text))


def report_unrecognised(stats: LineStats) -> None:
    """Say once on stderr how many record lines fit no known layout and were kept raw as
    ``unknown`` records (docs/records.md): never silent, since such a line may hold a dose."""
    count = stats.unrecognised
    if count:
        click.echo(f"libre-dump: warning: {count} record line{'s' if count != 1 else ''} of "
                   f"an unrecognised layout {'were' if count != 1 else 'was'} kept raw "
                   "(kind 'unknown', every field kept; docs/records.md)", err=True)


def _emit(text: str, output: str | None) -> None:
    if output and output != "-":
        with atomic_write(output) as handle:
            handle.write(text)
    else:
        click.echo(text, nl=False)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """List attached FreeStyle readers and the URI to reach each."""
    readers = list_attached()
    if as_json:
        click.echo(jsonsafe.dumps([msgspec.structs.asdict(r) for r in readers], indent=1))
        return
    if not readers:
        click.echo("no FreeStyle reader attached ('libre-dump doctor' explains what the "
                   "system sees; 'sim:libre' is the built-in virtual reader)")
        return
    for reader in readers:
        click.echo(f"{reader.uri}\t{MODELS[reader.model].title}\t"
                   f"1a61:{reader.product_id:04x}\t{reader.backend}")


def tz_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--tz", "tz", metavar="ZONE",
        help="IANA time zone the reader's clock runs in (e.g. Europe/Berlin), used to place "
             "every record in UTC. Default: this machine's zone ($TZ, else the /etc/localtime "
             "link, else the system's setting as tzlocal finds it, else UTC); the output "
             "says which was used.")(func)


@click.command()
@device_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--redact", is_flag=True,
              help="Replace the serial, patient name and id and free texts by placeholders.")
@tz_option
def info(device: str | None, model: str | None, timeout: float, record_path: str | None,
         protocol: str | None, quiet: bool, as_json: bool, redact: bool,
         tz: str | None) -> None:
    """Show the reader's model, serial, software, unit, clock, patient, record count and
    settings.

    Also says which time zone its records are placed in (--tz, else this machine's zone)
    and where that zone came from."""
    zone = timeline.zone_for(tz)  # a bad zone fails before the reader is touched
    check_output(record_path, "--record")
    with open_session(device, model, timeout, record_path, shareable=redact,
                      protocol=protocol) as session:
        device_info = (session.read_device() if isinstance(session, Session)
                       else session.read_info())
    if redact:
        from ..output.redact import redact as redact_dump

        device_info = redact_dump(Dump(device=device_info, records=())).device
    data = device_info.to_dict()
    if as_json:
        data["timezone"] = {"name": zone.name, "source": zone.origin}
        click.echo(jsonsafe.dumps(data, ensure_ascii=False, indent=1))
        return
    labels = (("model", "Model"), ("serial", "Serial"), ("software_version", "Software"),
              ("unit", "Unit"), ("clock", "Clock"), ("patient_name", "Patient name"),
              ("patient_id", "Patient id"), ("record_count", "Record counter"))
    for key, label in labels:
        value = data.get(key)
        if key == "model":
            value = f"{MODELS[str(value)].title} (1a61:{device_info.product_id:04x})"
        if key == "clock" and value is None:
            value = "invalid or not set"
        if key in ("record_count", "unit", "software_version", "serial") and value is None:
            value = "not reported"  # the reader has no such command, or refused it
        _say(f"{label + ':':16}{'' if value is None else value}")
    _say(f"{'Time zone:':16}{zone.describe()}")
    settings = device_info.settings
    if "language_code" in settings:
        name = settings.get("language")
        _say(f"{'Language:':16}{settings['language_code']}" + (f" ({name})" if name else ""))
    for key, label in (("brand", "Brand"), ("clock_format", "Clock format")):
        if key in settings:
            _say(f"{label + ':':16}{settings[key]}")
    reminders = [r for r in settings.get("reminders", []) if r.get("repeat") != "off"]
    for reminder in reminders:
        state = "on" if reminder.get("enabled") else "off"
        _say(f"{'Reminder:':16}{reminder['action']} {reminder['repeat']} "
                   f"{reminder['hour']:02d}:{reminder['minute']:02d} ({state})")


def date_style_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--date-style", type=click.Choice(export.LIBREVIEW_DATE_STYLES),
        default=export.LIBREVIEW_DEFAULT_DATE_STYLE, show_default=True,
        help="How libreview-csv writes the reader's local times: dmy 31-12-2026 23:59 "
             "(LibreView day-first; Tidepool and cgm-format read it), dmy-slash "
             "31/12/2026 23:59, mdy 12-31-2026 11:59 PM (LibreView US), mdy-24h, iso."
    )(func)


@click.command()
@device_options
@click.option("--format", "-f", "fmt", type=click.Choice(export.FORMATS),
              default="json", show_default=True,
              help="Output format; libreview is the JSON a vendor upload of this reader "
                   "would hold (identifiers redacted unless --no-redact).")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write here (atomically). Default: stdout; when stdout is a terminal, a new "
                   "file <model>-<date>-<time>.<format> in the current directory.")
@tz_option
@click.option("--unit", type=click.Choice(UNITS, case_sensitive=False), default=None,
              help="Also write glucose in this unit (values are stored in mg/dL; mmol/L adds "
                   "glucose_mmol_l, one decimal). Default: mg/dL; for libreview-csv the "
                   "reader's unit.")
@date_style_option
@click.option("--redact/--no-redact", default=None,
              help="Replace the serial, patient name and id, note and comment texts by "
                   "placeholders (docs/formats.md). Default: off, except for libreview.")
def dump(device: str | None, model: str | None, timeout: float, record_path: str | None,
         protocol: str | None, quiet: bool, fmt: str, output: str | None, tz: str | None,
         unit: str | None, date_style: str, redact: bool | None) -> None:
    """Read everything the reader stores.

    On a terminal a progress line shows while the reader sends its records, and a
    one-line summary (records per kind, where they went) ends the run; --quiet, or
    stderr not being a terminal, shows neither.
    """
    zone = timeline.zone_for(tz)  # a bad zone fails before the reader is touched
    check_output(output)
    check_output(record_path, "--record")
    check_distinct([("--output", output), ("--record", record_path)])
    status = status_line(quiet)
    with open_session(device, model, timeout, record_path, status,
                      shareable=redact is True, protocol=protocol) as session:
        read = [session.dump()]
        retried = list(session.retried)
        recovered = dict(getattr(session, "recovered", {}))
        model_name = session.model.name
    report_unrecognised(session.line_stats)
    if retried and not quiet:
        click.echo(f"note: retried {', '.join(retried)} after a broken reply", err=True)
    if recovered and not quiet:
        click.echo("note: the binary link recovered from "
                   + ", ".join(f"{count} x {what}" for what, count in sorted(recovered.items())),
                   err=True)
    # handed over, not kept: placing holds each record once, and sorts them as every
    # format writes them, so the writers stream without a copy (peak memory)
    result: Dump = timeline.place_dump_owned(read.pop(), zone)
    if output is None and sys.stdout.isatty():
        # megabytes of JSON are no use on a screen: keep them in a file and say where
        output = default_output_name(model_name, fmt)
    if fmt == "libreview":
        _emit(export.render_libreview(result, zone.tzinfo, redact=redact is not False,
                                      zone_source=zone.origin), output)
    else:
        shown = result
        if redact:
            from ..output.redact import redact as redact_dump

            shown = redact_dump(result)
        shown_unit = unit or export.default_unit(shown, fmt)
        if output and output != "-":
            with atomic_write(output) as handle:
                export.write(shown, fmt, handle, unit=shown_unit, date_style=date_style)
        else:
            export.write(shown, fmt, sys.stdout, unit=shown_unit, date_style=date_style)
        if not quiet:
            for note in export.format_notes(shown, fmt):
                click.echo(f"note: {note}", err=True)
    status.finish(dump_summary(result, output if output and output != "-" else "stdout",
                               status.clock() - status.started))


#: file name endings of the formats
EXTENSIONS = {"json": ".json", "ndjson": ".ndjson", "csv": ".csv",
              "libreview": ".libreview.json", "libreview-csv": ".libreview.csv",
              "nightscout": ".nightscout.json",
              "nightscout-entries": ".entries.json",
              "nightscout-treatments": ".treatments.json"}


def default_output_name(model_name: str, fmt: str, now: dt.datetime | None = None) -> str:
    """``libre-20261206-081500.json`` in the current directory, never an existing file."""
    stem = f"{model_name}-{(now or dt.datetime.now()):%Y%m%d-%H%M%S}"
    ext = EXTENSIONS.get(fmt, f".{fmt}")
    name, n = stem + ext, 1
    while Path(name).exists():
        n += 1
        name = f"{stem}-{n}{ext}"
    return name


commands = [list_cmd, info, dump]
