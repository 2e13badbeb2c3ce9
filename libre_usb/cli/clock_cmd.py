"""``clock``: show the reader's clock, the host's and the drift; ``clock --set`` sets it.

Setting the clock is the only write libre-dump ever sends to a reader: two text setters,
``$date,M,D,YY`` then ``$time,H,M`` (docs/protocol.md 3.1), or with ``--protocol binary`` the
binary SET_DATE_TIME (docs/binary-protocol.md), after a confirmation.
"""

from __future__ import annotations

import datetime as dt
import sys

import click

from .. import jsonsafe
from ..errors import InputError
from ..output import timeline
from ..output.atomic import check_output
from .device_cmds import device_options, open_session

#: device schemes that are recordings, not readers: there is no clock to set
RECORDINGS = ("replay", "capture")


def parse_target(value: str, zone: dt.tzinfo) -> dt.datetime | None:
    """``now`` -> None (the host's time when the setters go out); an ISO time -> the naive
    wall time to set. A time with a UTC offset (or ``Z``) is converted to ``zone``."""
    if value.strip().lower() == "now":
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--set takes 'now' or an ISO time such as 2026-03-29T14:05, "
                         f"not {value!r}") from None
    if when.tzinfo is not None:
        when = when.astimezone(zone).replace(tzinfo=None)
    if not 2000 <= when.year <= 2099:
        raise InputError(f"a reader's clock holds years 2000 to 2099, not {when.year}")
    return when.replace(second=0, microsecond=0)


def drift_text(seconds: float) -> str:
    """``reader is 3 days 01:02:03 behind the host`` and the like."""
    whole = round(seconds)
    if whole == 0:
        return "none (reader and host agree to the second)"
    days, rest = divmod(abs(whole), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    span = (f"{days} day{'s' if days != 1 else ''} " if days else "") + (
        f"{hours:02d}:{minutes:02d}:{secs:02d}")
    return f"reader is {span} {'ahead of' if whole > 0 else 'behind'} the host"


def interactive() -> bool:
    """Whether a person can answer the confirmation (stdin is a terminal)."""
    return sys.stdin.isatty()


def _show(label: str, value: str) -> None:
    click.echo(f"{label + ':':14}{value}")


@click.command()
@device_options
@click.option("--set", "set_to", metavar="now|ISO-TIME", is_flag=False, flag_value="now",
              default=None,
              help="Set the reader's clock: to the host's time (now, the default) or to a "
                   "time such as 2026-03-29T14:05. Asks first. To the minute: readers take no "
                   "seconds.")
@click.option("--tz", "tz", metavar="ZONE",
              help="IANA time zone the reader's clock runs in (e.g. Europe/Berlin). Default: "
                   "this machine's zone. 'now' and times given with a UTC offset are turned "
                   "into this zone's wall time.")
@click.option("--yes", "-y", is_flag=True, help="Set without asking.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clock(device: str | None, model: str | None, timeout: float, record_path: str | None,
          protocol: str | None, quiet: bool, set_to: str | None, tz: str | None, yes: bool,
          as_json: bool) -> None:
    """Show the reader's clock, the host's clock and the drift between them; with --set,
    set the reader's clock (the only command that writes to a reader).

    A reader's records carry its clock's time, so a wrong clock misplaces every new record.
    A reader that refused every read has been known to work again once its clock was set
    (glucometerutils pull request #131).
    """
    placed = timeline.zone_for(tz)  # the one zone rule (docs/formats.md, "Time")
    zone = placed.tzinfo
    zone_name = f"{placed.name or 'the zone in /etc/localtime'}, from {placed.origin}"
    target: dt.datetime | None = None
    if set_to is not None:
        if device and device.partition(":")[0].lower() in RECORDINGS:
            raise InputError(f"{device} is a recording, not a reader: its clock cannot be set")
        target = parse_target(set_to, zone)
    check_output(record_path, "--record")
    kept_in: str | None = None
    with open_session(device, model, timeout, record_path, protocol=protocol) as session:
        reader = session.read_clock()
        host = dt.datetime.now(zone).replace(tzinfo=None, microsecond=0)
        result: dict[str, object] = {
            "reader": reader.isoformat() if reader else None,
            "host": host.isoformat(), "zone": placed.name, "zone_source": placed.origin,
            "drift_s": (reader - host).total_seconds() if reader else None,
        }
        if not as_json:
            _show("Reader clock", reader.isoformat(sep=" ") if reader
                  else "invalid or not set")
            _show("Host clock", f"{host.isoformat(sep=' ')} ({zone_name})")
            _show("Drift", drift_text((reader - host).total_seconds()) if reader
                  else "unknown (the reader's clock is not set)")
        if set_to is not None:
            shown = (target.isoformat(sep=" ", timespec="minutes") if target
                     else f"the host's time ({zone_name})")
            if not yes:
                if not interactive():
                    raise InputError("the reader's clock was not changed: confirm on a "
                                     "terminal, or give --yes to set it without asking")
                try:
                    agreed = click.confirm(f"Set the reader's clock to {shown}?", err=True)
                except click.Abort:
                    agreed = False
                if not agreed:
                    raise InputError("the reader's clock was not changed (not confirmed; "
                                     "--yes sets it without asking)")
            when = target or dt.datetime.now(zone).replace(tzinfo=None)
            session.set_clock(when)
            kept_in = sim_state(session.transport)
            after = session.read_clock()
            host = dt.datetime.now(zone).replace(tzinfo=None, microsecond=0)
            result.update({
                "set_to": when.replace(second=0, microsecond=0).isoformat(),
                "reader_after": after.isoformat() if after else None,
                "drift_after_s": (after - host).total_seconds() if after else None,
            })
            if not as_json:
                _show("Set to", when.isoformat(sep=" ", timespec="minutes"))
                _show("Reader now", after.isoformat(sep=" ") if after else "invalid or not set")
                _show("Drift now", drift_text((after - host).total_seconds()) if after
                      else "unknown")
    if as_json:
        click.echo(jsonsafe.dumps(result, indent=1))
    if set_to is not None and not quiet and device and device.startswith("sim:"):
        click.echo(f"note: the virtual reader keeps this clock in {kept_in} for the next runs "
                   "(delete the file to reset it)" if kept_in else
                   "note: the virtual reader forgets this clock when the command ends "
                   "(state=none)", err=True)


def sim_state(transport: object) -> str | None:
    """The file a ``sim:`` device keeps its clock in (README "The virtual reader"), through
    a --record wrapper; None for other devices and ``state=none``."""
    inner = getattr(transport, "inner", transport)
    path = getattr(inner, "state_path", None)
    return path if isinstance(path, str) else None


commands = [clock]
