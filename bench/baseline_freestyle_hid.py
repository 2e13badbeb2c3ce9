"""The baseline process for the whole-dump case: freestyle-hid reading a recorded session.

    python -m bench.baseline_freestyle_hid TRANSCRIPT OUT.json

It plays the device side of a ``--record`` transcript to freestyle-hid 1.1.1's own
``Session`` (a stand-in HID handle serves, for each report freestyle-hid writes, the reports
the reader answered that request with in the recording), sends the text commands the
recording holds in the same order (``query_multirecord`` for the record commands,
``send_text_command`` for the rest) and writes what it got as one JSON document with the
standard library's fastest path (``json.dump`` without indentation). It imports nothing of
libre_usb: this is what a user of freestyle-hid alone would run.
"""

from __future__ import annotations

import collections
import json
import sys
from typing import Any

TEXT_TYPES = (0x20, 0x21, 0x60)
MULTIRECORD = ("$history?", "$arresult?", "$result?")


def _key(report: bytes) -> tuple[str, bytes]:
    payload = report[2 : 2 + min(report[1], 62)]
    if report[0] in TEXT_TYPES:
        return ("text", payload.rstrip(b"\r\n"))
    return (f"{report[0]:02x}", payload)


class Player:
    """freestyle-hid's HID handle, answering from the transcript."""

    def __init__(self, path: str) -> None:
        self.exchanges: list[tuple[tuple[str, bytes], list[bytes]]] = []
        self.used: set[int] = set()
        self.queue: collections.deque[bytes] = collections.deque()
        self.commands: list[str] = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                item = json.loads(line)
                if item.get("dir") == "out":
                    data = bytes.fromhex(item["data"])
                    self.exchanges.append((_key(data), []))
                    if data[0] in TEXT_TYPES:
                        self.commands.append(_key(data)[1].decode())
                elif item.get("dir") == "in" and self.exchanges:
                    self.exchanges[-1][1].append(bytes.fromhex(item["data"]))

    def write(self, report: bytes) -> int:
        data = report[1:] if len(report) == 65 else report
        key = _key(data)
        for index, (other, replies) in enumerate(self.exchanges):
            if index not in self.used and other == key:
                self.used.add(index)
                self.queue.extend(replies)
                return len(report)
        raise RuntimeError(f"no recorded answer for {data[:8].hex()}")

    def read(self, size: int = 64) -> bytes:
        return self.queue.popleft()


def main(transcript: str, output: str) -> int:
    from freestyle_hid import _session

    player = Player(transcript)
    session: Any = object.__new__(_session.Session)
    session._handle = player
    session._text_message_type = 0x60
    session._text_reply_message_type = 0x60
    session._encoding = "utf-8"
    session._encrypted_protocol = False
    session.connect()
    doc: dict[str, Any] = {"replies": {}, "records": {}}
    for command in player.commands:
        if command in MULTIRECORD:
            doc["records"][command] = [row for row in
                                       session.query_multirecord(command.encode()) if row]
        else:
            try:
                doc["replies"][command] = session.send_text_command(command.encode())
            except _session.CommandError:
                doc["replies"][command] = None
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
