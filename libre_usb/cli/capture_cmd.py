"""``capture``: show the reader conversation held in a USB capture, or convert it."""

from __future__ import annotations

import click

from ..devices import KNOWN_PRODUCT_IDS, MODELS
from ..output.atomic import atomic_write, check_distinct, check_output
from ..protocol.observer import Conversation, Step
from ..reader.passive import PassiveSession, setters
from ..transport.capture import FORMATS, read_capture
from ..transport.interfaces.capture import CaptureTransport


@click.command("capture")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--select", metavar="BUS.DEVICE",
              help="The device to decode when the capture holds several (they are listed).")
@click.option("--model", type=click.Choice(sorted(MODELS)),
              help="Reader model, when the capture has no USB device descriptor.")
@click.option("--transcript", "transcript_path", metavar="OUT.jsonl",
              type=click.Path(dir_okay=False),
              help="Also write the session in libre-dump's transcript format (JSON Lines).")
@click.option("--quiet", "-q", is_flag=True, help="Only the summary, not every step.")
def capture(path: str, select: str | None, model: str | None, transcript_path: str | None,
            quiet: bool) -> None:
    """Print the reader conversation in a USB capture of any client's session.

    FILE is a pcap or pcapng (Linux usbmon, Windows USBPcap), a UsbSnoop/SniffUSB log, a
    USBTrace HTML export or a libre-dump transcript; the format is recognised by content.
    Each command or binary request is shown with its reply status and checksum verdict,
    with keepalives, handshake steps and retransmissions. Use --device capture:FILE with
    dump, info and diff for the records the captured client read.
    """
    check_output(transcript_path, "--transcript")
    check_distinct([("--transcript", transcript_path)], [("FILE", path)])
    found = read_capture(path)
    click.echo(f"{path}: {FORMATS[found.format]}, {found.packets} entries")
    candidates = found.candidates()
    if len(found.devices) > 1 or select:
        click.echo("devices with HID traffic:" if candidates else "no device with HID traffic")
        for device in candidates:
            click.echo(f"  {device.describe()}{_model_name(device.product_id)}")
    transport = CaptureTransport(found, found.select(select))
    session = PassiveSession(transport, model, require_model=False)
    conv = session.conversation
    device = transport.device
    if session.known_model is not None:
        source = "--model" if model else (
            "the transcript" if found.format == "transcript" else "the USB product id")
        click.echo(f"device {device.address}: {session.known_model.title} (from {source})")
    else:
        click.echo(f"device {device.address}: model unknown (no device descriptor in the "
                   "capture; --model names it)")
    if not quiet:
        for line in _steps(conv.steps):
            click.echo(line)
    for line in _summary(conv, session):
        click.echo(line)
    if transcript_path:
        with atomic_write(transcript_path) as handle:
            handle.write("\n".join(session.transcript_lines()) + "\n")
        click.echo(f"transcript written to {transcript_path}")


def _model_name(product_id: int | None) -> str:
    name = KNOWN_PRODUCT_IDS.get(product_id) if product_id is not None else None
    return f" ({MODELS[name].title})" if name else ""


def _steps(steps: list[Step]) -> list[str]:
    """One line per step; a run of identical keepalives is one line with a count."""
    lines: list[str] = []
    run = 0
    for i, step in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if step.kind == "keepalive" and nxt is not None and nxt.kind == "keepalive" and (
                nxt.text == step.text):
            run += 1
            continue
        text = step.text + (f" x{run + 1}" if run else "")
        run = 0
        lines.append(f"{step.t:12.3f} {step.direction} {text}")
    return lines


def _summary(conv: Conversation, session: PassiveSession) -> list[str]:
    texts = conv.text_exchanges()
    statuses: dict[str, int] = {}
    for exchange in texts:
        statuses[exchange.status] = statuses.get(exchange.status, 0) + 1
    parts = [f"{len(texts)} text commands"
             + (" (" + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ")"
                if statuses else "")]
    retrans = sum(1 for e in texts if e.retransmission)
    if retrans:
        parts.append(f"{retrans} retransmitted")
    parts.append(f"{conv.keepalives} keepalives")
    frames = sum(conv.binary_frames.values())
    parts.append(f"{frames} binary reports" + (
        f" ({len(conv.binary_replies)} complete replies of the binary database protocol"
        + "".join(f", {n} {what}" for what, n in sorted(conv.binary_link.items()))
        + ")" if frames else ""))
    if conv.stray:
        parts.append(f"{conv.stray} stray reports")
    if conv.malformed:
        parts.append(f"{conv.malformed} malformed reports")
    lines = ["summary: " + "; ".join(parts)]
    if conv.encrypted:
        if conv.decrypted:
            lines.append("encryption: Libre 2/3 session; handshake captured, session keys "
                         "derived from the serial and both nonces, reports decrypted")
        else:
            reason = conv.handshake.problem or session.keys_problem or "keys unknown"
            lines.append(f"encryption: Libre 2/3 session, NOT decrypted ({conv.undecrypted} "
                         f"encrypted reports): {reason}")
    sent = setters(conv)
    if sent:
        lines.append("commands that change the reader: " + ", ".join(
            e.request + (f" (+{e.data_lines} data lines)" if e.data_lines else "")
            + ("" if e.status == "ok" else f" [{e.status}]") for e in sent))
    if conv.handshake.state == "none" and not conv.ready and not conv.encrypted and texts:
        lines.append("note: the capture starts after the init exchange (04/05/15/01)")
    return lines


commands = [capture]
