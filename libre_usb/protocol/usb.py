"""USB captures, sans-I/O: link-layer headers, descriptors and the HID reports in them.

A USB capture file (pcap/pcapng from Linux usbmon or Windows USBPcap, or a text log) holds
one record per URB event: a submission or a completion, on some device and endpoint. This
module turns those records into :class:`UsbPacket` values (:func:`parse_usbmon`,
:func:`parse_usbpcap`) and then, per device, into the 64-byte HID reports a reader
exchanged with its host (:class:`HidExtractor`). It opens nothing: bytes in, values out.

Only the reader's HID interface is taken:

* device -> host: completed interrupt IN transfers (endpoint 0x81 on every FreeStyle);
* host -> device: submitted interrupt OUT transfers, and SET_REPORT control transfers
  (``bmRequestType 0x21, bRequest 0x09``, output report) -- Windows' HID driver and
  Abbott's software write reports that way (the InsuLinx capture: setup packet
  ``21 09 00 02 00 00 40 00``), Linux hidraw uses an interrupt OUT endpoint when the
  device has one.

When the capture holds the device's descriptors (a capture started before the reader was
plugged in, or USBPcap's injected descriptors), the device descriptor gives the vendor
and product id and the configuration descriptor names the HID interface and its endpoints;
then traffic on any other interface is ignored.

Layouts (little-endian, as written by x86 and ARM hosts):

* usbmon, link types 189 (48-byte header) and 220 (64-byte "mmapped" header): Linux
  ``Documentation/usb/usbmon.rst`` and tcpdump's ``LINKTYPE_USB_LINUX(_MMAPPED)``;
* USBPcap, link type 249: ``USBPCAP_BUFFER_PACKET_HEADER`` as published at
  desowin.org/usbpcap/captureformat.html (27 bytes, then a transfer-specific part whose
  size ``headerLen`` gives; for control transfers one stage byte).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import construct as cs

from ..errors import InputError

__all__ = [
    "LINKTYPE_USBPCAP",
    "LINKTYPE_USB_LINUX",
    "LINKTYPE_USB_LINUX_MMAPPED",
    "LINK_TYPES",
    "CapturedDevice",
    "HidExtractor",
    "UsbPacket",
    "parse_link",
    "parse_usbmon",
    "parse_usbpcap",
]

LINKTYPE_USB_LINUX = 189
LINKTYPE_USB_LINUX_MMAPPED = 220
LINKTYPE_USBPCAP = 249
#: the link types we read, with a name for messages
LINK_TYPES = {
    LINKTYPE_USB_LINUX: "Linux usbmon (48-byte header)",
    LINKTYPE_USB_LINUX_MMAPPED: "Linux usbmon (64-byte header)",
    LINKTYPE_USBPCAP: "USBPcap",
}

ISOCHRONOUS, INTERRUPT, CONTROL, BULK = 0, 1, 2, 3
SUBMIT, COMPLETE = "submit", "complete"

#: struct usbmon_packet (Documentation/usb/usbmon.rst, "binary interface")
USBMON_HEADER = cs.Struct(
    "urb_id" / cs.Int64ul,
    "event" / cs.Int8ul,  # 'S' submission, 'C' completion, 'E' error
    "transfer" / cs.Int8ul,  # 0 iso, 1 interrupt, 2 control, 3 bulk
    "endpoint" / cs.Int8ul,  # with 0x80 for IN
    "device" / cs.Int8ul,
    "bus" / cs.Int16ul,
    "flag_setup" / cs.Int8ul,  # 0: the setup packet is present
    "flag_data" / cs.Int8ul,  # 0: data is present
    "ts_sec" / cs.Int64sl,
    "ts_usec" / cs.Int32sl,
    "status" / cs.Int32sl,
    "length" / cs.Int32ul,  # URB transfer length
    "captured" / cs.Int32ul,  # bytes of data that follow the header
    "setup" / cs.Bytes(8),
)
USBMON_SIZE = 48
USBMON_MMAPPED_SIZE = 64

#: USBPCAP_BUFFER_PACKET_HEADER (packed)
USBPCAP_HEADER = cs.Struct(
    "header_length" / cs.Int16ul,
    "irp_id" / cs.Int64ul,
    "status" / cs.Int32ul,  # USBD_STATUS, 0 = success
    "function" / cs.Int16ul,  # URB function
    "info" / cs.Int8ul,  # bit 0: 1 = PDO -> FDO (completion, from the device side)
    "bus" / cs.Int16ul,
    "device" / cs.Int16ul,
    "endpoint" / cs.Int8ul,
    "transfer" / cs.Int8ul,
    "data_length" / cs.Int32ul,
)
USBPCAP_SIZE = 27
#: control transfer stages (the byte after the base header)
STAGE_SETUP, STAGE_DATA, STAGE_STATUS, STAGE_COMPLETE = 0, 1, 2, 3

_USBMON = USBMON_HEADER.compile()
_USBPCAP = USBPCAP_HEADER.compile()

#: HID class request SET_REPORT, host to interface
_SET_REPORT = (0x21, 0x09)
_HID_OUTPUT_REPORT = 2
_DEVICE_DESCRIPTOR = 1
_CONFIG_DESCRIPTOR = 2
_INTERFACE_DESCRIPTOR = 4
_ENDPOINT_DESCRIPTOR = 5
_HID_CLASS = 3


@dataclasses.dataclass(frozen=True, slots=True)
class UsbPacket:
    """One URB event of a capture, whatever the capture format."""

    t: float
    bus: int
    device: int
    #: endpoint address, 0x80 set for IN
    endpoint: int
    transfer: int
    #: "submit" (host hands the URB down) or "complete" (it comes back)
    event: str
    status: int = 0
    setup: bytes | None = None
    data: bytes = b""
    #: identifies the URB across its submission and completion
    urb_id: int = 0
    #: a USBPcap control transfer's stage (None elsewhere)
    stage: int | None = None

    @property
    def address(self) -> str:
        return f"{self.bus}.{self.device}"


def parse_usbmon(packet: bytes, t: float | None = None, *, mmapped: bool) -> UsbPacket:
    """One usbmon record (link type 220 if ``mmapped`` else 189). ``t`` overrides the
    header's time stamp (pcap records carry their own). Raises :class:`InputError` for a
    record shorter than its header or claiming more data than it holds."""
    size = USBMON_MMAPPED_SIZE if mmapped else USBMON_SIZE
    if len(packet) < size:
        raise InputError(f"a usbmon record of {len(packet)} bytes is shorter than its "
                         f"{size}-byte header")
    head: Any = _USBMON.parse(packet[:USBMON_SIZE])
    event = {0x53: SUBMIT, 0x43: COMPLETE}.get(head.event)
    if head.flag_data == 0 and len(packet) < size + head.captured:
        raise InputError(f"a usbmon record claims {head.captured} bytes of data but holds "
                         f"{len(packet) - size} (truncated)")
    data = bytes(packet[size : size + head.captured]) if head.flag_data == 0 else b""
    return UsbPacket(
        t=float(head.ts_sec) + head.ts_usec / 1e6 if t is None else t,
        bus=head.bus,
        device=head.device,
        endpoint=head.endpoint,
        transfer=head.transfer,
        event=event or f"error:{chr(head.event) if 32 <= head.event < 127 else head.event}",
        status=head.status,
        setup=bytes(head.setup) if head.flag_setup == 0 else None,
        data=data,
        urb_id=head.urb_id,
    )


def parse_usbpcap(packet: bytes, t: float = 0.0) -> UsbPacket:
    """One USBPcap record (link type 249). Raises :class:`InputError` for a record
    shorter than its header or whose header length is impossible."""
    if len(packet) < USBPCAP_SIZE:
        raise InputError(f"a USBPcap record of {len(packet)} bytes is shorter than its "
                         f"{USBPCAP_SIZE}-byte header")
    head: Any = _USBPCAP.parse(packet[:USBPCAP_SIZE])
    if not USBPCAP_SIZE <= head.header_length <= len(packet):
        raise InputError(f"a USBPcap record says its header is {head.header_length} bytes "
                         f"(the record has {len(packet)})")
    stage = None
    if head.transfer == CONTROL and head.header_length > USBPCAP_SIZE:
        stage = packet[USBPCAP_SIZE]
    if len(packet) < head.header_length + head.data_length:
        raise InputError(f"a USBPcap record claims {head.data_length} bytes of data but "
                         f"holds {len(packet) - head.header_length} (truncated)")
    data = bytes(packet[head.header_length : head.header_length + head.data_length])
    completion = bool(head.info & 1)
    setup = None
    if stage == STAGE_SETUP and not completion and len(data) >= 8:
        setup, data = data[:8], data[8:]
    return UsbPacket(
        t=t,
        bus=head.bus,
        device=head.device,
        endpoint=head.endpoint,
        transfer=head.transfer,
        event=COMPLETE if completion else SUBMIT,
        status=head.status,
        setup=setup,
        data=data,
        urb_id=head.irp_id,
        stage=stage,
    )


def parse_link(link_type: int, packet: bytes, t: float) -> UsbPacket:
    """A record of one of :data:`LINK_TYPES`."""
    if link_type == LINKTYPE_USBPCAP:
        return parse_usbpcap(packet, t)
    if link_type in (LINKTYPE_USB_LINUX, LINKTYPE_USB_LINUX_MMAPPED):
        return parse_usbmon(packet, t, mmapped=link_type == LINKTYPE_USB_LINUX_MMAPPED)
    raise InputError(f"link type {link_type} is not a USB capture (expected "
                     + ", ".join(f"{k} {v}" for k, v in LINK_TYPES.items()) + ")")


@dataclasses.dataclass
class CapturedDevice:
    """One USB device seen in a capture, and the HID reports it exchanged."""

    address: str
    vendor_id: int | None = None
    product_id: int | None = None
    #: HID interface number -> its endpoint addresses (from the configuration descriptor)
    hid_interfaces: dict[int, set[int]] = dataclasses.field(default_factory=dict)
    #: ("out" | "in", report, seconds) in capture order
    reports: list[tuple[str, bytes, float]] = dataclasses.field(default_factory=list)
    #: URB events seen for this device (all endpoints)
    packets: int = 0
    #: transfers left out: failed, on another interface, or not HID at all
    ignored: int = 0

    @property
    def has_descriptors(self) -> bool:
        return self.vendor_id is not None

    @property
    def hid_endpoints(self) -> set[int]:
        return set().union(*self.hid_interfaces.values()) if self.hid_interfaces else set()

    def describe(self) -> str:
        ids = (f"{self.vendor_id:04x}:{self.product_id:04x}" if self.vendor_id is not None
               and self.product_id is not None else "no descriptors in the capture")
        outs = sum(1 for d, _, _ in self.reports if d == "out")
        return (f"{self.address}  {ids}  {outs} reports out, "
                f"{len(self.reports) - outs} reports in")


class HidExtractor:
    """Sorts :class:`UsbPacket` values by device and keeps each device's HID reports.

    ``max_reports`` bounds memory on a hostile or huge capture: past it an
    :class:`InputError` says so.
    """

    def __init__(self, *, max_reports: int = 2_000_000) -> None:
        self.devices: dict[str, CapturedDevice] = {}
        self.max_reports = max_reports
        self._count = 0
        #: setup packets of submitted control URBs, by URB id (to name their completions)
        self._setups: dict[tuple[str, int], bytes] = {}
        #: USBPcap SET_REPORT submissions whose data comes in a later DATA-stage record
        self._awaiting_data: dict[tuple[str, int], bytes] = {}

    def _device(self, address: str) -> CapturedDevice:
        device = self.devices.get(address)
        if device is None:
            device = self.devices[address] = CapturedDevice(address)
        return device

    def _report(self, device: CapturedDevice, direction: str, data: bytes, t: float) -> None:
        if len(data) == 65 and data[0] == 0:
            data = data[1:]  # a report-ID byte of 0 (the readers use no report IDs)
        self._count += 1
        if self._count > self.max_reports:
            raise InputError(f"more than {self.max_reports} HID reports in the capture: "
                             "refusing to hold them all (not a reader session?)")
        device.reports.append((direction, data, t))

    def feed(self, packet: UsbPacket) -> None:
        device = self._device(packet.address)
        device.packets += 1
        key = (packet.address, packet.urb_id)
        if packet.transfer == CONTROL:
            self._control(device, packet, key)
        elif packet.transfer == INTERRUPT:
            self._interrupt(device, packet)
        else:
            device.ignored += 1

    def _interrupt(self, device: CapturedDevice, packet: UsbPacket) -> None:
        inbound = bool(packet.endpoint & 0x80)
        endpoints = device.hid_endpoints
        if endpoints and packet.endpoint not in endpoints:
            device.ignored += 1
            return
        if inbound and packet.event == COMPLETE and packet.status == 0 and packet.data:
            self._report(device, "in", packet.data, packet.t)
        elif not inbound and packet.event == SUBMIT and packet.data:
            self._report(device, "out", packet.data, packet.t)

    def _control(self, device: CapturedDevice, packet: UsbPacket, key: tuple[str, int]) -> None:
        setup = packet.setup
        if packet.event == SUBMIT and setup is not None:
            self._setups[key] = setup
            if tuple(setup[:2]) == _SET_REPORT:
                if not self._wanted_set_report(device, setup):
                    device.ignored += 1
                elif packet.data:
                    self._report(device, "out", packet.data, packet.t)
                elif packet.stage == STAGE_SETUP:
                    self._awaiting_data[key] = setup
            return
        if packet.event == SUBMIT and packet.stage == STAGE_DATA:
            if self._awaiting_data.pop(key, None) is not None and packet.data:
                self._report(device, "out", packet.data, packet.t)
            return
        if packet.event != COMPLETE or packet.status != 0 or not (packet.endpoint & 0x80):
            return
        setup = self._setups.pop(key, setup)
        data = packet.data
        if len(data) < 2:
            return
        requested = setup[3] if setup is not None and setup[1] == 6 else None
        if data[1] == _DEVICE_DESCRIPTOR and requested in (None, _DEVICE_DESCRIPTOR):
            if data[0] == 18 and len(data) >= 12:
                device.vendor_id = int.from_bytes(data[8:10], "little")
                device.product_id = int.from_bytes(data[10:12], "little")
        elif data[1] == _CONFIG_DESCRIPTOR and requested in (None, _CONFIG_DESCRIPTOR):
            interfaces = _hid_interfaces(data)
            if interfaces:
                device.hid_interfaces = interfaces

    def _wanted_set_report(self, device: CapturedDevice, setup: bytes) -> bool:
        """An output report to the HID interface (when the descriptors say which)."""
        if setup[3] != _HID_OUTPUT_REPORT:
            return False
        interface = setup[4]
        return not device.hid_interfaces or interface in device.hid_interfaces


def _hid_interfaces(config: bytes) -> dict[int, set[int]]:
    """HID interface numbers and their endpoints, from a configuration descriptor."""
    found: dict[int, set[int]] = {}
    current: int | None = None
    at = 0
    while at + 2 <= len(config):
        length, kind = config[at], config[at + 1]
        if length < 2:
            break
        body = config[at : at + length]
        if kind == _INTERFACE_DESCRIPTOR and len(body) >= 6:
            current = body[2] if body[5] == _HID_CLASS else None
            if current is not None:
                found.setdefault(current, set())
        elif kind == _ENDPOINT_DESCRIPTOR and len(body) >= 3 and current is not None:
            found[current].add(body[2])
        at += length
    return found
