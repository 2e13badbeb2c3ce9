"""Helpers to read the real data in tests/data/ (each source's SOURCE.md says where it
comes from and under which licence)."""

from __future__ import annotations

import json
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
INSULINX = DATA / "openglucose-insulinx"
TIDEPOOL = DATA / "tidepool"
UPLOAD_EXAMPLE = DATA / "juggluco-upload-example" / "upload-example.json"

_URB = re.compile(r">>>\s+URB \d+ going down|<<<\s+URB \d+ coming back")
_HEX = re.compile(r"^\s+[0-9a-f]{8}: ((?:[0-9a-f]{2} ?)+)$")


def need(path: Path) -> Path:
    """The path of a file in tests/data; a missing one is a broken checkout, not a skip."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: tests/data is part of the repository")
    return path


def usbsnoop_reports(path: Path) -> list[tuple[str, bytes]]:
    """The 64-byte HID reports of a UsbSnoop log, in order: ("out"|"in", report).

    Host->device reports are the 64-byte buffers of URB_FUNCTION_CLASS_INTERFACE requests
    going down (SET_REPORT); device->host reports are the 64-byte buffers of
    URB_FUNCTION_BULK_OR_INTERRUPT_TRANSFER completions coming back on endpoint 0x81.
    """
    reports: list[tuple[str, bytes]] = []
    block: list[str] = []

    def flush() -> None:
        if len(block) < 2:
            return
        head, function = block[0], block[1]
        data = bytearray()
        for line in block[2:]:
            match = _HEX.match(line)
            if match:
                data += bytes.fromhex(match.group(1).replace(" ", ""))
        if len(data) != 64:
            return
        if "going down" in head and "URB_FUNCTION_CLASS_INTERFACE" in function:
            reports.append(("out", bytes(data)))
        elif "coming back" in head and "BULK_OR_INTERRUPT_TRANSFER" in function:
            reports.append(("in", bytes(data)))

    with path.open(encoding="latin-1") as handle:
        for line in handle:
            if _URB.search(line):
                flush()
                block = [line]
            elif block:
                block.append(line.rstrip("\n"))
    flush()
    return reports


_REPLY_TO = {0x34: 0x04, 0x06: 0x05, 0x35: 0x15, 0x71: 0x01}


def transcript_from_capture(reports: list[tuple[str, bytes]]) -> list[str]:
    """Our JSONL transcript from a capture, each reply placed after the request it answers.

    Abbott's software sends 04, 05, 15 back to back and reads the replies afterwards; a
    transcript pairs each reply with its request (by the reply's message type; text and
    keepalive reports go with the last text command).
    """
    exchanges: list[tuple[bytes, list[bytes]]] = []
    last_text: list[bytes] | None = None
    initial: list[bytes] = []
    for direction, data in reports:
        if direction == "out":
            exchanges.append((data, []))
            if data[0] in (0x60, 0x21):
                last_text = exchanges[-1][1]
            continue
        wanted = _REPLY_TO.get(data[0])
        target: list[bytes] | None = None
        if wanted is not None:
            target = next((r for o, r in reversed(exchanges) if o[0] == wanted), None)
        elif last_text is not None:
            target = last_text
        (target if target is not None else initial).append(data)
    lines = [json.dumps({"dir": "in", "data": d.hex(), "t": 0}) for d in initial]
    for out, replies in exchanges:
        lines.append(json.dumps({"dir": "out", "data": out.hex(), "t": 0}))
        lines.extend(json.dumps({"dir": "in", "data": d.hex(), "t": 0}) for d in replies)
    return lines
