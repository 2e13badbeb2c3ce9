"""The plain-file hidraw backend, against a device end made of a SOCK_SEQPACKET pair.

A seqpacket socket keeps message boundaries like a hidraw node: one write of the report-id
byte plus 64 bytes is one OUT report, one read returns one IN report.
"""

from __future__ import annotations

import select
import socket
import threading
from pathlib import Path

import pytest

from libre_usb.errors import Disconnected
from libre_usb.output.export import render
from libre_usb.reader.session import Session
from libre_usb.simulator import VirtualReader
from libre_usb.transport.interfaces.hidraw import HidrawTransport, enumerate_hidraw, hid_ids


def _serve(device: socket.socket, reader: VirtualReader, stop: threading.Event) -> None:
    # blocking sends (a full socket buffer waits for the host), polled receives
    while not stop.is_set():
        ready, _, _ = select.select([device], [], [], 0.01)
        data = None
        if ready:
            try:
                data = device.recv(128)
            except OSError:
                return
        if data == b"":
            return
        if data:
            assert len(data) == 65 and data[0] == 0  # report id 0, then the report
            reader.write(data[1:])
        while True:
            report = reader.read(0)
            if not report:
                break
            device.send(report)


def test_dump_over_the_hidraw_file_backend_equals_in_process() -> None:
    host, device = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    host.setblocking(False)
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(device, VirtualReader("libre", 4), stop))
    thread.start()
    try:
        transport = HidrawTransport("/dev/hidraw-test", fd=host.detach())
        with Session(transport, "libre") as session:
            over_hidraw = render(session.dump(), "json")
    finally:
        stop.set()
        thread.join()
        device.close()
    from libre_usb.transport.interfaces.sim import SimTransport

    with Session(SimTransport(VirtualReader("libre", 4))) as session:
        in_process = render(session.dump(), "json")
    assert over_hidraw == in_process


def test_unplug_while_reading_is_a_disconnect() -> None:
    host, device = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    host.setblocking(False)
    transport = HidrawTransport("/dev/hidraw-test", fd=host.detach())
    device.close()
    with pytest.raises(Disconnected, match="went away"):
        transport.read(500)
    transport.close()


def test_silence_is_a_timeout_not_a_hang() -> None:
    host, device = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    host.setblocking(False)
    transport = HidrawTransport("/dev/hidraw-test", fd=host.detach())
    assert transport.read(50) is None
    transport.close()
    device.close()


def test_sysfs_enumeration(tmp_path: Path) -> None:
    root = tmp_path
    nodes = (("hidraw0", "0003:0000046D:0000C52B"), ("hidraw3", "0003:00001A61:00003650"),
             ("hidraw4", "0003:00001A61:00009999"))
    for name, hid_id in nodes:
        (root / name / "device").mkdir(parents=True)
        (root / name / "device" / "uevent").write_text(f"DRIVER=hid-generic\nHID_ID={hid_id}\n")
    assert hid_ids("/dev/hidraw3", root) == (0x1A61, 0x3650)
    found = enumerate_hidraw(root)
    assert [(r.uri, r.model) for r in found] == [("hidraw:/dev/hidraw3", "libre")]
