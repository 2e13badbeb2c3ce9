"""Build USB capture files for tests: pcap and pcapng with usbmon or USBPcap packets.

The link-layer headers are packed here with :mod:`struct`, from the published layouts
(Linux Documentation/usb/usbmon.rst; desowin.org/usbpcap/captureformat.html), not with
the construct definitions the decoder uses, so a mistake in one does not hide in the other.
The containers are written by the same libraries that read them (python-pcapng, dpkt);
tests/test_capture_files.py also has tshark (when installed) read what is written here.

The descriptors are the real FreeStyle InsuLinx ones from OpenGlucose's UsbSnoop capture.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterable

#: the real InsuLinx device and configuration descriptors (plug.usbsnoop.log, URBs 1 and 3)
INSULINX_DEVICE = bytes.fromhex("12011001000000406 11a50340001010200 01".replace(" ", ""))
INSULINX_CONFIG = bytes.fromhex(
    "09022200010103c032 090400000103000004 0921101000012223 00 0705810340 0002".replace(" ", ""))
SET_REPORT_SETUP = bytes.fromhex("2109000200004000")
#: the same configuration with an interrupt OUT endpoint 0x01 added (as the readers whose
#: hidraw writes go out as interrupt transfers have); wTotalLength and bNumEndpoints follow
INSULINX_CONFIG_WITH_OUT = (bytes([9, 2, 41, 0]) + INSULINX_CONFIG[4:9]
                            + INSULINX_CONFIG[9:13] + bytes([2]) + INSULINX_CONFIG[14:]
                            + bytes.fromhex("07050103400002"))


def device_descriptor(vendor: int, product: int) -> bytes:
    return (INSULINX_DEVICE[:8] + struct.pack("<HH", vendor, product) + INSULINX_DEVICE[12:])


def usbmon(event: str, transfer: int, endpoint: int, data: bytes = b"", *,
           setup: bytes | None = None, device: int = 5, bus: int = 1, t: float = 0.0,
           status: int = 0, urb_id: int = 0xFFFF8880DEAD0000, mmapped: bool = True,
           captured: int | None = None) -> bytes:
    """One usbmon record (``struct usbmon_packet``, 48 or 64 bytes, then the data)."""
    seconds = int(t)
    head = struct.pack(
        "<QBBBBHbbqiiII8s",
        urb_id, ord(event), transfer, endpoint, device, bus,
        0 if setup is not None else ord("-"),
        0 if data else (ord("<") if endpoint & 0x80 else ord(">")),
        seconds, round((t - seconds) * 1e6), status, len(data),
        len(data) if captured is None else captured, setup or bytes(8))
    if mmapped:
        head += struct.pack("<iiII", 0, 0, 0, 0)
    return head + data


def usbpcap(info: int, transfer: int, endpoint: int, data: bytes = b"", *,
            stage: int | None = None, device: int = 5, bus: int = 1, status: int = 0,
            irp: int = 0xFFFFA000BEEF0000, function: int = 0x0009) -> bytes:
    """One USBPcap record (USBPCAP_BUFFER_PACKET_HEADER, the stage byte for control
    transfers, then the data)."""
    extra = bytes([stage]) if stage is not None else b""
    head = struct.pack("<HQIHBHHBBI", 27 + len(extra), irp, status, function, info, bus,
                       device, endpoint, transfer, len(data))
    return head + extra + data


def usbmon_session(reports: Iterable[tuple[str, bytes, float]], *, device: int = 5,
                   bus: int = 1, descriptors: tuple[bytes, bytes] | None = None,
                   interrupt_out: bool = False, mmapped: bool = True,
                   ) -> list[tuple[float, bytes]]:
    """usbmon records of a reader session: the descriptors read at enumeration (when
    given), then each host report as a SET_REPORT control transfer (or an interrupt OUT
    transfer) and each reader report as a completed interrupt IN transfer."""
    out: list[tuple[float, bytes]] = []
    urb = 0xFFFF888000000000
    kw = {"device": device, "bus": bus, "mmapped": mmapped}
    if descriptors is not None:
        for index, descriptor in enumerate(descriptors):
            setup = bytes([0x80, 6, 0, 1 + index, 0, 0, len(descriptor), 0])
            urb += 0x100
            out.append((0.0, usbmon("S", 2, 0x80, setup=setup, urb_id=urb, status=-115, **kw)))
            out.append((0.0, usbmon("C", 2, 0x80, descriptor, urb_id=urb, **kw)))
    for direction, report, t in reports:
        urb += 0x100
        if direction == "out" and interrupt_out:
            out.append((t, usbmon("S", 1, 0x01, report, t=t, urb_id=urb, status=-115, **kw)))
            out.append((t, usbmon("C", 1, 0x01, t=t, urb_id=urb, **kw)))
        elif direction == "out":
            out.append((t, usbmon("S", 2, 0x00, report, setup=SET_REPORT_SETUP, t=t,
                                  urb_id=urb, status=-115, **kw)))
            out.append((t, usbmon("C", 2, 0x00, t=t, urb_id=urb, **kw)))
        else:
            out.append((t, usbmon("S", 1, 0x81, t=t, urb_id=urb, status=-115, **kw)))
            out.append((t, usbmon("C", 1, 0x81, report, t=t, urb_id=urb, **kw)))
    return out


def usbpcap_session(reports: Iterable[tuple[str, bytes, float]], *, device: int = 5,
                    bus: int = 1, descriptors: tuple[bytes, bytes] | None = None,
                    split_data_stage: bool = True) -> list[tuple[float, bytes]]:
    """USBPcap records of a reader session: descriptors (as USBPcap injects them), host
    reports as SET_REPORT (setup stage, then the data in a DATA-stage record when
    ``split_data_stage``, else after the setup packet), reader reports as interrupt IN
    completions."""
    out: list[tuple[float, bytes]] = []
    irp = 0xFFFFA00000000000
    kw = {"device": device, "bus": bus}
    if descriptors is not None:
        for index, descriptor in enumerate(descriptors):
            setup = bytes([0x80, 6, 0, 1 + index, 0, 0, len(descriptor), 0])
            irp += 0x10
            out.append((0.0, usbpcap(0, 2, 0x80, setup, stage=0, irp=irp, function=0x000B,
                                     **kw)))
            out.append((0.0, usbpcap(1, 2, 0x80, descriptor, stage=3, irp=irp,
                                     function=0x0008, **kw)))
    for direction, report, t in reports:
        irp += 0x10
        if direction == "out":
            if split_data_stage:
                out.append((t, usbpcap(0, 2, 0x00, SET_REPORT_SETUP, stage=0, irp=irp,
                                       function=0x001B, **kw)))
                out.append((t, usbpcap(0, 2, 0x00, report, stage=1, irp=irp,
                                       function=0x001B, **kw)))
            else:
                out.append((t, usbpcap(0, 2, 0x00, SET_REPORT_SETUP + report, stage=0,
                                       irp=irp, function=0x001B, **kw)))
            out.append((t, usbpcap(1, 2, 0x00, stage=3, irp=irp, function=0x0008, **kw)))
        else:
            out.append((t, usbpcap(0, 1, 0x81, irp=irp, **kw)))
            out.append((t, usbpcap(1, 1, 0x81, report, irp=irp, **kw)))
    return out


def pcapng_bytes(records: Iterable[tuple[float, bytes]], link_type: int, *,
                 extra_interfaces: Iterable[int] = ()) -> bytes:
    """A pcapng file (python-pcapng's writer): one USB interface, optionally more
    interfaces of other link types before it (so the USB one is not interface 0)."""
    from pcapng import FileWriter, blocks

    shb = blocks.SectionHeader()
    for other in extra_interfaces:
        shb.new_member(blocks.InterfaceDescription, link_type=other)
    index = len(shb.interfaces)
    shb.new_member(blocks.InterfaceDescription, link_type=link_type,
                   options={"if_tsresol": b"\x06"})
    handle = io.BytesIO()
    with warnings.catch_warnings():
        # python-pcapng 2.1 warns about its own default option types while writing
        warnings.simplefilter("ignore", DeprecationWarning)
        writer = FileWriter(handle, shb)
        for t, data in records:
            packet = shb.new_member(blocks.EnhancedPacket)
            stamp = round(t * 1e6)
            packet.interface_id = index
            packet.timestamp_high, packet.timestamp_low = stamp >> 32, stamp & 0xFFFFFFFF
            packet.packet_data = data
            writer.write_block(packet)
    return handle.getvalue()


def pcap_bytes(records: Iterable[tuple[float, bytes]], link_type: int) -> bytes:
    """A classic pcap file (dpkt's writer), as ``tcpdump -w`` writes."""
    import dpkt

    handle = io.BytesIO()
    writer = dpkt.pcap.Writer(handle, linktype=link_type, snaplen=262144)
    for t, data in records:
        writer.writepkt(data, ts=t)
    return handle.getvalue()
