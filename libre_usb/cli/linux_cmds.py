"""Linux commands: ``udev show|install|check``, ``doctor``, ``simulate``."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import jsonsafe
from ..errors import EXIT_DEVICE, DeviceError
from ..linux import doctor as doctor_mod
from ..linux import udev as udev_mod
from ._base import Finite


@click.group("udev")
def udev() -> None:
    """The udev rules that let a normal user open FreeStyle readers."""


@udev.command("show")
def udev_show() -> None:
    """Print the rules file this libre-dump ships (for `| sudo tee ...`)."""
    sys.stdout.write(udev_mod.rules_text())


@udev.command("install")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option(
    "--prefix",
    default=udev_mod.DEFAULT_PREFIX,
    show_default=True,
    metavar="DIR",
    help="udev rules directory to write into.",
)
def udev_install(dry_run: bool, prefix: str) -> None:
    """Install the rules (as root), reload udev and re-apply them to attached readers."""
    result = udev_mod.install(prefix=prefix, dry_run=dry_run)
    if dry_run:
        verb = "would write" if result.changed else "would leave unchanged"
        click.echo(f"{verb} {result.path}")
        for cmd in result.commands:
            click.echo(f"would run: {' '.join(cmd)}")
    else:
        click.echo(f"{'wrote' if result.changed else 'already current:'} {result.path}")
        for cmd in result.commands:
            click.echo(f"ran: {' '.join(cmd)}")
    for note in result.notes:
        click.echo(f"note: {note}")


@udev.command("check")
def udev_check() -> None:
    """Are the rules installed and current? Exit 0 if so, 3 if not."""
    status = udev_mod.check()
    click.echo(status.summary())
    for path in status.shadowed:
        click.echo(f"note: {path} is hidden by {status.path}")
    for path in status.late_files:
        click.echo(f"warning: {path} sorts after {udev_mod.SEAT_LATE}; its uaccess tags do nothing")
    if not status.ok:
        fix = status.fix()
        if fix:
            click.echo(f"fix: {fix}")
        sys.exit(EXIT_DEVICE)


def _mark(ok: bool) -> str:
    return "ok  " if ok else "FAIL"


def render_doctor(report: dict[str, Any]) -> str:
    user = report["user"]
    out = [f"libre-dump doctor: user {user['name']} (uid {user['uid']})", "", "Backends"]
    for b in report["backends"]:
        out.append(f"  {_mark(b['available'])} {b['name']:<7} {b['uri']:<22} {b['detail']}")
    out += ["", "Readers"]
    if not report["devices"]:
        out.append("  none attached")
    for d in report["devices"]:
        where = f"USB {d['usb']['bus']}:{d['usb']['address']}" if d["usb"] else "not on USB"
        name = d["model"] or "unknown model"
        out.append(f"  {name} ({d['usb_id']}) {where} {d['product']!r}")
        nodes = [h["node"] for h in d["hidraw"]]
        if d["usb"] and d["usb"]["node"]:
            nodes.append(d["usb"]["node"])
        for n in nodes:
            access = "read+write" if n["readable"] and n["writable"] else (
                "read only" if n["readable"] else "no access")
            tags = ",".join(n["tags"]) if n["tags"] else "-"
            acl = " ".join(n["acl"]) if n["acl"] else "-"
            state = f"mode {n['mode']} {n['owner']}:{n['group']}" if n["exists"] else "missing"
            out.append(f"    {n['path']}: {access} ({state}; udev tags {tags}; ACL {acl})")
        usable = ", ".join(d["usable"]) or "none"
        out.append(f"    usable by you: {usable}")
    out += ["", "udev rules", f"  {report['rules']['summary']}"]
    keys = report["keys"]
    out += ["", "Libre 2/3 keys"]
    out.append("  freestyle-keys is installed" if keys["freestyle_keys"] else
               f"  freestyle-keys is not installed{' (needed now)' if keys['needed'] else ''}"
               " (needed only for Libre 2/3 readers)")
    out += ["", "Problems"]
    if not report["problems"]:
        out.append("  none")
    for p in report["problems"]:
        out.append(f"  {p['severity']}: {p['message']}")
        out.append(f"    fix: {p['fix']}")
    out += ["", report["summary"]]
    return "\n".join(out)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable report (schema libre-dump-doctor/1, see docs/linux.md).")
def doctor(as_json: bool) -> None:
    """Explain what the system sees of FreeStyle readers and how to fix access.

    Exit 0 when nothing stops this user reading (also when no reader is attached),
    3 when an attached reader cannot be opened by this user.
    """
    report = doctor_mod.diagnose()
    if as_json:
        click.echo(jsonsafe.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(render_doctor(report))
    if not report["ok"]:
        sys.exit(EXIT_DEVICE)


@click.command("simulate")
@click.option("--gadget", "mode", flag_value="gadget",
              help="A real USB device through configfs + a UDC (dummy_hcd): hidraw and libusb.")
@click.option("--uhid", "mode", flag_value="uhid",
              help="A HID device through /dev/uhid: hidraw only.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the virtual reader's content.")
@click.option("--echo", is_flag=True, hidden=True,
              help="Answer every report with itself (transport self-test).")
@click.option("--max-seconds", type=Finite(min=0), default=None, hidden=True)
@click.option("--pace-ms", type=Finite(min=0, max=60_000), default=0.0, show_default=True,
              help="Space the reports to the host at least this far apart (a reader: 2).")
@click.argument("model")
def simulate(mode: str | None, seed: int, echo: bool, max_seconds: float | None,
             pace_ms: float, model: str) -> None:
    """Expose the virtual reader MODEL (e.g. libre) as a device on this machine (root).

    MODEL may carry the options of a sim: device URI, e.g. 'libre?keepalive=5', so
    that the device matches --device 'sim:libre?keepalive=5' exactly.

    Runs until Ctrl-C or SIGTERM, then removes the device. Other programs, or
    libre-dump with --device hidraw:/dev/hidrawN, hidapi:<path> or usb:<bus>:<address>,
    can then read it like a real reader.
    """
    if sys.platform != "linux":
        raise DeviceError("simulate needs Linux (configfs USB gadgets or uhid)")
    if mode is None:
        raise click.UsageError(
            "choose --gadget (a USB device, via dummy_hcd) or --uhid (a hidraw device); "
            "without the kernel, use --device sim:" + model + " with any command")
    from ..linux import gadget

    gadget.run(mode, model, seed=seed, echo=echo, max_seconds=max_seconds, pace_ms=pace_ms,
               log=lambda msg: click.echo(msg, err=True))


commands = [udev, doctor, simulate]
