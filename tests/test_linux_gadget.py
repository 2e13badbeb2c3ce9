"""libre_usb.linux.gadget without a kernel: descriptor, uhid events, the bridge loop.

The real kernel paths (configfs gadget on dummy_hcd, /dev/uhid) are exercised by
the VM stage (tests/vm/run_stage.sh), which this machine's kernel cannot host.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.errors import InputError
from libre_usb.linux import gadget
from libre_usb.simulator import VirtualReader


def hid_items(desc: bytes) -> list[tuple[str, int, int]]:
    """(type, tag, value) of each short item of a HID report descriptor."""
    items = []
    i = 0
    while i < len(desc):
        prefix = desc[i]
        size = (0, 1, 2, 4)[prefix & 0x03]
        kind = ("main", "global", "local", "reserved")[(prefix >> 2) & 0x03]
        value = int.from_bytes(desc[i + 1 : i + 1 + size], "little")
        items.append((kind, prefix >> 4, value))
        i += 1 + size
    assert i == len(desc), "a truncated item"
    return items


def test_report_descriptor_is_the_readers_shape() -> None:
    items = hid_items(gadget.REPORT_DESCRIPTOR)
    assert items[0] == ("global", 0x0, 0xFFA7)  # Usage Page 0xFFA7 (vendor)
    assert items[1] == ("local", 0x0, 1)  # Usage 1
    assert items[2] == ("main", 0xA, 1)  # Collection (Application)
    assert items[-1] == ("main", 0xC, 0)  # End Collection
    report_size = [v for k, t, v in items if (k, t) == ("global", 0x7)]
    report_count = [v for k, t, v in items if (k, t) == ("global", 0x9)]
    inputs = [v for k, t, v in items if (k, t) == ("main", 0x8)]
    outputs = [v for k, t, v in items if (k, t) == ("main", 0x9)]
    assert report_size == [8] and report_count == [64, 64]
    assert len(inputs) == 1 and len(outputs) == 1  # one Input, one Output report
    assert not any((k, t) == ("global", 0x8) for k, t, _ in items)  # no Report ID
    assert gadget.GADGET_REPORT_LENGTH == 65


def test_model_product_ids() -> None:
    assert gadget.model_product_id("libre") == 0x3650
    assert gadget.model_product_id("libre2") == 0x3950
    assert gadget.model_product_id("libre3") == 0x3960
    with pytest.raises(InputError, match="unknown reader model"):
        gadget.model_product_id("nonesuch")


def test_uhid_create2_layout() -> None:
    event = gadget.uhid_create2("name", "phys", "SER1", 0x3650)
    assert len(event) == gadget.UHID_EVENT_SIZE == 4376
    (kind,) = struct.unpack_from("<I", event)
    name, phys, uniq, rd_size, bus, vendor, product, version, country = struct.unpack_from(
        "<128s64s64sHHIIII", event, 4)
    assert kind == gadget.UHID_CREATE2
    assert name.rstrip(b"\0") == b"name" and uniq.rstrip(b"\0") == b"SER1"
    assert phys.rstrip(b"\0") == b"phys" and (version, country) == (0x0100, 0)
    assert (rd_size, bus, vendor, product) == (len(gadget.REPORT_DESCRIPTOR), 3, 0x1A61, 0x3650)
    off = 4 + struct.calcsize("<128s64s64sHHIIII")
    assert event[off : off + rd_size] == gadget.REPORT_DESCRIPTOR


@pytest.fixture
def uhid_pair() -> tuple[gadget.UhidDevice, socket.socket]:
    """A UhidDevice whose /dev/uhid is one end of a socket pair (we play the kernel)."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dev = gadget.UhidDevice(0x3650, product="p", serial="s")
    dev.fd = os.dup(ours.fileno())
    ours.close()
    os.set_blocking(dev.fd, False)
    return dev, kernel


def test_uhid_output_events_become_reports(uhid_pair: tuple[gadget.UhidDevice, socket.socket]
                                           ) -> None:
    dev, kernel = uhid_pair
    report = bytes(range(64))
    # hidraw on uhid passes the report-ID byte 0 through: 65 bytes
    body = (b"\0" + report).ljust(gadget.UHID_DATA_MAX, b"\0") + struct.pack("<HB", 65, 1)
    kernel.send(struct.pack("<I", gadget.UHID_OUTPUT) + body)
    assert dev.receive() == [report]
    assert dev.receive() == []  # nothing pending: no block, no report
    assert dev.send(report)
    event = kernel.recv(8192)
    kind, size = struct.unpack_from("<IH", event)
    assert kind == gadget.UHID_INPUT2 and size == 64 and event[6:70] == report
    dev.close()
    (kind,) = struct.unpack_from("<I", kernel.recv(8192))
    assert kind == gadget.UHID_DESTROY


def test_uhid_get_report_is_refused_and_set_report_forwarded(
    uhid_pair: tuple[gadget.UhidDevice, socket.socket]
) -> None:
    dev, kernel = uhid_pair
    kernel.send(struct.pack("<IIBB", gadget.UHID_GET_REPORT, 77, 0, 1))
    assert dev.receive() == []
    kind, rid, err = struct.unpack_from("<IIH", kernel.recv(8192))
    assert (kind, rid, err) == (gadget.UHID_GET_REPORT_REPLY, 77, 5)  # EIO
    report = b"\x60\x07$sn?\r\n".ljust(64, b"\0")
    kernel.send(struct.pack("<IIBBH", gadget.UHID_SET_REPORT, 78, 0, 1, 64) + report)
    assert dev.receive() == [report]
    kind, rid, err = struct.unpack_from("<IIH", kernel.recv(8192))
    assert (kind, rid, err) == (gadget.UHID_SET_REPORT_REPLY, 78, 0)
    dev.close()


class FakeLink:
    """A host link that replays host reports and records what the device sends."""

    def __init__(self, reports: list[bytes], stop: list[int], busy: int = 0) -> None:
        self.r, self.w = os.pipe()
        self.reports = list(reports)
        self.sent: list[bytes] = []
        self.stop = stop
        self.busy = busy  # refuse this many sends first (EAGAIN on /dev/hidgN)
        os.write(self.w, b"x")

    def fileno(self) -> int:
        return self.r

    def receive(self) -> list[bytes]:
        if not self.reports:
            os.read(self.r, 1)
            return []
        return [self.reports.pop(0)]

    def send(self, report: bytes) -> bool:
        if self.busy:
            self.busy -= 1
            return False
        self.sent.append(report)
        if not self.reports:
            self.stop.append(0)
        return True

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_bridge_moves_reports_both_ways_like_the_in_process_reader() -> None:
    requests = [bytes([0x04, 0]).ljust(64, b"\0"), bytes([0x05, 0]).ljust(64, b"\0"),
                b"\x60\x08$swver?\r\n".ljust(64, b"\0")]
    stop: list[int] = []
    link = FakeLink(requests, stop, busy=2)
    handled = gadget.bridge(link, VirtualReader("libre", 0), stop, max_seconds=10)
    link.close()
    local = VirtualReader("libre", 0)
    expected = []
    for request in requests:
        local.write(request)
        while out := local.read(0):
            expected.append(out)
    assert handled == 3
    assert link.sent == expected and len(expected) >= 3


def test_echo_reader() -> None:
    reader = gadget.EchoReader()
    assert reader.read(0) == b""
    reader.write(b"a" * 64)
    assert reader.read(0) == b"a" * 64


def test_make_reader_takes_sim_uri_options() -> None:
    reader = gadget.make_reader("libre?keepalive=2", seed=3)
    assert isinstance(reader, VirtualReader)
    assert reader.seed == 3 and reader.options.keepalive == 2
    with pytest.raises(InputError):
        gadget.make_reader("libre?nonsense=1")


def test_simulate_needs_a_mode() -> None:
    result = CliRunner().invoke(main, ["simulate", "libre"])
    assert result.exit_code == 2
    assert "--gadget" in result.output and "--uhid" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the non-root message; running as root")
def test_simulate_gadget_as_non_root_is_refused() -> None:
    result = CliRunner().invoke(main, ["simulate", "--gadget", "libre"])
    assert result.exit_code == 3 and "needs root" in result.output
