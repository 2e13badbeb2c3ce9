"""Put the virtual reader on the machine as a real HID device (``libre-dump simulate``).

Two ways, both Linux-only and both needing root:

``--gadget``  a USB gadget through configfs: the ``hid`` function (usb_f_hid) bound to a
              USB device controller (UDC). With ``dummy_hcd`` the controller is looped
              back to a virtual host controller on the same machine, so the kernel
              enumerates a real USB device: usbcore, usbhid, ``/dev/hidrawN`` **and**
              ``/dev/bus/usb/BBB/DDD``. Every backend (hidraw, hidapi's libusb ``hid``
              module, pyusb) and USB-attribute udev rules see it as they would see a
              reader. On a board with a real UDC (e.g. a Raspberry Pi Zero) the same code
              presents the virtual reader to another computer over a cable.
``--uhid``    a HID device through ``/dev/uhid``: only ``/dev/hidrawN``, no USB device
              (so no libusb and no USB-attribute udev rules), but needs only the uhid
              module.

The bridge moves each host->device report to :class:`~libre_usb.simulator.VirtualReader`
and every report it produces back to the host, until SIGTERM/SIGINT, then removes the
device again (and a gadget left behind by a killed earlier run).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import select
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Protocol

from ..errors import AccessDenied, DeviceError, InputError, LibreDumpError
from ..transport.interface import ABBOTT_VENDOR_ID, REPORT_SIZE

#: HID report descriptor of the readers (protocol.md 1.1): vendor usage page 0xFFA7,
#: usage 1, one 64-byte Input and one 64-byte Output report, no report IDs.
REPORT_DESCRIPTOR = bytes(
    [
        0x06, 0xA7, 0xFF,  # Usage Page (Vendor 0xFFA7)
        0x09, 0x01,        # Usage (1)
        0xA1, 0x01,        # Collection (Application)
        0x15, 0x00,        #   Logical Minimum (0)
        0x26, 0xFF, 0x00,  #   Logical Maximum (255)
        0x75, 0x08,        #   Report Size (8)
        0x95, REPORT_SIZE,  #  Report Count (64)
        0x09, 0x01,        #   Usage (1)
        0x81, 0x02,        #   Input (Data, Variable, Absolute)
        0x95, REPORT_SIZE,  #  Report Count (64)
        0x09, 0x01,        #   Usage (1)
        0x91, 0x02,        #   Output (Data, Variable, Absolute)
        0xC0,              # End Collection
    ]
)

#: configfs ``report_length`` (also the interrupt endpoints' wMaxPacketSize). With 64,
#: each 64-byte IN report ends on a packet boundary and is followed by a zero-length
#: packet, which hidapi's libusb backend returns as an empty read; 65 avoids that.
GADGET_REPORT_LENGTH = REPORT_SIZE + 1

CONFIGFS = "/sys/kernel/config"
GADGET_PREFIX = "libre-dump-"

#: model name -> product id, until/unless libre_usb.devices knows the model
_LOCAL_MODEL_PIDS = {
    "libre": 0x3650,
    "libre-pro": 0x3670,
    "libre2": 0x3950,
    "libre3": 0x3960,
    "precision-neo": 0x3850,
    "insulinx": 0x3460,
}


class Reader(Protocol):
    """What the bridge needs of a device: VirtualReader's interface."""

    def write(self, report: bytes) -> None: ...

    def read(self, timeout_ms: int) -> bytes: ...


class EchoReader:
    """A transport self-test device: answers every report with the same 64 bytes."""

    def __init__(self) -> None:
        self._queue: collections.deque[bytes] = collections.deque()

    def write(self, report: bytes) -> None:
        self._queue.append(bytes(report))

    def read(self, timeout_ms: int) -> bytes:
        return self._queue.popleft() if self._queue else b""


def model_product_id(model: str) -> int:
    """The USB product id of a model name, from :mod:`libre_usb.devices` when it knows it."""
    try:
        from ..devices import model_by_name
    except ImportError:
        model_by_name = None  # type: ignore[assignment]
    if model_by_name is not None:
        try:
            return model_by_name(model).product_ids[0]
        except InputError:
            if model not in _LOCAL_MODEL_PIDS:
                raise
    try:
        return _LOCAL_MODEL_PIDS[model]
    except KeyError:
        raise InputError(
            f"unknown reader model {model!r}; known: {', '.join(sorted(_LOCAL_MODEL_PIDS))}"
        ) from None


def split_model(spec: str) -> tuple[str, str]:
    """``libre?keepalive=5`` -> (``libre``, ``keepalive=5``)."""
    model, _, options = spec.partition("?")
    return model, options


def make_reader(spec: str, seed: int = 0, *, echo: bool = False) -> Reader:
    """The device behind the bridge.

    ``spec`` is a model name, optionally with the options of a ``sim:`` URI
    (``libre?keepalive=5``), so that ``simulate`` and ``--device sim:...`` build
    exactly the same virtual reader.
    """
    if echo:
        return EchoReader()
    from ..simulator import VirtualReader
    from ..transport.interface import parse_uri
    from ..transport.interfaces.sim import SimTransport

    model, options = split_model(spec)
    if not options:
        return VirtualReader(model=model, seed=seed)
    uri = parse_uri(f"sim:{model}?seed={seed}&{options}")
    reader: Reader = SimTransport.from_uri(uri).reader
    return reader


# ---------------------------------------------------------------------- host links


class HostLink(Protocol):
    """The kernel side of a virtual device: reports from and to the host."""

    def fileno(self) -> int: ...

    def receive(self) -> list[bytes]: ...

    def send(self, report: bytes) -> bool: ...

    def close(self) -> None: ...


def _normalise(data: bytes) -> bytes:
    """One 64-byte report from what the kernel handed us (drop a report-ID 0 byte)."""
    if len(data) == REPORT_SIZE + 1 and data[0] == 0:
        data = data[1:]
    return data[:REPORT_SIZE].ljust(REPORT_SIZE, b"\0")


def _write(path: Path, value: str | bytes) -> None:
    mode = "wb" if isinstance(value, bytes) else "w"
    with open(path, mode) as f:
        f.write(value)


def _modprobe(*modules: str) -> None:
    for module in modules:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(  # noqa: S603 - fixed module names
                ["modprobe", "-q", module],  # noqa: S607 - found on PATH like a shell would
                capture_output=True, timeout=30, check=False,
            )


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise AccessDenied(f"{what} needs root; run: sudo libre-dump simulate ...")


class Gadget:
    """A configfs USB HID gadget bound to a UDC; ``/dev/hidgN`` is its host link."""

    def __init__(
        self,
        product_id: int,
        *,
        product: str,
        serial: str,
        udc: str | None = None,
        configfs: str = CONFIGFS,
    ) -> None:
        self.product_id = product_id
        self.product = product
        self.serial = serial
        self.configfs = Path(configfs)
        self.path = self.configfs / "usb_gadget" / f"{GADGET_PREFIX}{product_id:04x}"
        self.udc = udc
        self.node: str | None = None
        self.fd = -1

    # -- life cycle -------------------------------------------------------------

    def create(self) -> None:
        _need_root("creating a USB gadget (configfs)")
        gadgets = self.configfs / "usb_gadget"
        if not gadgets.is_dir():
            _modprobe("libcomposite", "usb_f_hid")
            if not self.configfs.is_dir() or not os.path.ismount(self.configfs):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(  # noqa: S603
                        ["mount", "-t", "configfs", "none", str(self.configfs)],  # noqa: S607
                        capture_output=True, timeout=30, check=False,
                    )
        if not gadgets.is_dir():
            raise DeviceError(
                f"no USB gadget support ({gadgets} is missing): load libcomposite and "
                "usb_f_hid (sudo modprobe libcomposite usb_f_hid), or use --uhid"
            )
        udc = self.udc or self._pick_udc()
        if self.path.exists():
            self.remove()  # left behind by a run that was killed
        g = self.path
        func = g / "functions" / "hid.reader"
        config = g / "configs" / "c.1"
        try:
            (g / "strings" / "0x409").mkdir(parents=True)
            _write(g / "idVendor", f"0x{ABBOTT_VENDOR_ID:04x}")
            _write(g / "idProduct", f"0x{self.product_id:04x}")
            _write(g / "bcdDevice", "0x0100")
            _write(g / "bcdUSB", "0x0200")
            _write(g / "strings" / "0x409" / "manufacturer", "libre-dump")
            _write(g / "strings" / "0x409" / "product", self.product)
            _write(g / "strings" / "0x409" / "serialnumber", self.serial)
            func.mkdir(parents=True)
            _write(func / "protocol", "0")
            _write(func / "subclass", "0")
            _write(func / "report_length", str(GADGET_REPORT_LENGTH))
            if (func / "no_out_endpoint").exists():
                # like the readers: one interrupt IN endpoint, output by SET_REPORT
                _write(func / "no_out_endpoint", "1")
            _write(func / "report_desc", REPORT_DESCRIPTOR)
            (config / "strings" / "0x409").mkdir(parents=True)
            _write(config / "strings" / "0x409" / "configuration", "reader")
            _write(config / "MaxPower", "100")
            os.symlink(func, config / "hid.reader")
            _write(g / "UDC", udc)
        except OSError as exc:
            self.remove()
            raise DeviceError(f"cannot set up the USB gadget: {exc}") from None
        self.udc = udc
        self.node = self._wait_node(func)
        self.fd = os.open(self.node, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def _pick_udc(self) -> str:
        udcs = sorted(os.listdir("/sys/class/udc")) if os.path.isdir("/sys/class/udc") else []
        if not udcs:
            _modprobe("dummy_hcd")
            for _ in range(50):
                if os.path.isdir("/sys/class/udc") and os.listdir("/sys/class/udc"):
                    break
                time.sleep(0.05)
            udcs = sorted(os.listdir("/sys/class/udc")) if os.path.isdir("/sys/class/udc") else []
        if not udcs:
            raise DeviceError(
                "no USB device controller (UDC): load the loopback one with "
                "'sudo modprobe dummy_hcd' (kernel option USB_DUMMY_HCD), or use --uhid"
            )
        dummy = [u for u in udcs if u.startswith("dummy_udc")]
        return (dummy or udcs)[0]

    def _wait_node(self, func: Path, timeout: float = 10.0) -> str:
        """The /dev/hidgN of our function (matched by device number, not by guess)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                wanted = (func / "dev").read_text().strip()
                for entry in Path("/sys/class/hidg").glob("hidg*"):
                    if (entry / "dev").read_text().strip() == wanted:
                        node = f"/dev/{entry.name}"
                        if os.path.exists(node):
                            return node
            if time.monotonic() > deadline:
                self.remove()
                raise DeviceError("the USB gadget was bound but no /dev/hidgN node appeared")
            time.sleep(0.05)

    def remove(self) -> None:
        """Unbind and delete the gadget. Safe to call twice and on a half-built one."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        g = self.path
        if not g.exists():
            return
        with contextlib.suppress(OSError):
            if (g / "UDC").read_text().strip():
                _write(g / "UDC", "\n")
        for link in (g / "configs").glob("*/*"):
            if link.is_symlink():
                with contextlib.suppress(OSError):
                    link.unlink()
        for sub in ("configs/*/strings/*", "configs/*", "functions/*", "strings/*"):
            for d in g.glob(sub):
                with contextlib.suppress(OSError):
                    d.rmdir()
        with contextlib.suppress(OSError):
            g.rmdir()

    # -- HostLink -----------------------------------------------------------------

    def fileno(self) -> int:
        return self.fd

    def receive(self) -> list[bytes]:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return []
        return [_normalise(data)] if data else []

    def send(self, report: bytes) -> bool:
        try:
            os.write(self.fd, report)
        except BlockingIOError:
            return False
        except OSError as exc:
            # the host side is not configured yet (no SET_CONFIGURATION): drop the report
            if exc.errno in (errno.ESHUTDOWN, errno.ENODEV):
                return True
            raise
        return True

    def close(self) -> None:
        self.remove()


# uhid, <linux/uhid.h>: struct uhid_event is a u32 type and a packed union whose
# largest member (uhid_create2_req) makes it 4376 bytes.
UHID_DESTROY = 1
UHID_START = 2
UHID_STOP = 3
UHID_OPEN = 4
UHID_CLOSE = 5
UHID_OUTPUT = 6
UHID_GET_REPORT = 9
UHID_GET_REPORT_REPLY = 10
UHID_CREATE2 = 11
UHID_INPUT2 = 12
UHID_SET_REPORT = 13
UHID_SET_REPORT_REPLY = 14
UHID_DATA_MAX = 4096
UHID_EVENT_SIZE = 4376
UHID_OUTPUT_REPORT = 1
BUS_USB = 0x03


def _uhid_event(kind: int, body: bytes) -> bytes:
    return (struct.pack("<I", kind) + body).ljust(UHID_EVENT_SIZE, b"\0")


def uhid_create2(name: str, phys: str, uniq: str, product_id: int) -> bytes:
    body = struct.pack(
        "<128s64s64sHHIIII",
        name.encode()[:127], phys.encode()[:63], uniq.encode()[:63],
        len(REPORT_DESCRIPTOR), BUS_USB, ABBOTT_VENDOR_ID, product_id, 0x0100, 0,
    )
    return _uhid_event(UHID_CREATE2, body + REPORT_DESCRIPTOR)


class UhidDevice:
    """A HID device created through /dev/uhid; the /dev/uhid fd is its host link."""

    def __init__(self, product_id: int, *, product: str, serial: str,
                 path: str = "/dev/uhid") -> None:
        self.product_id = product_id
        self.product = product
        self.serial = serial
        self.path = path
        self.fd = -1

    def create(self) -> None:
        if not os.path.exists(self.path):
            _modprobe("uhid")
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise DeviceError(
                f"{self.path} is missing: load the uhid module (sudo modprobe uhid)"
            ) from None
        except PermissionError:
            raise AccessDenied(
                f"cannot open {self.path}: creating a uhid device needs root; "
                "run: sudo libre-dump simulate --uhid ..."
            ) from None
        os.write(self.fd, uhid_create2(self.product, "libre-dump-sim", self.serial,
                                       self.product_id))

    def fileno(self) -> int:
        return self.fd

    def receive(self) -> list[bytes]:
        try:
            event = os.read(self.fd, UHID_EVENT_SIZE)
        except BlockingIOError:
            return []
        if len(event) < 4:
            return []
        (kind,) = struct.unpack_from("<I", event)
        if kind == UHID_OUTPUT:
            size, _rtype = struct.unpack_from("<HB", event, 4 + UHID_DATA_MAX)
            return [_normalise(event[4 : 4 + size])]
        if kind == UHID_GET_REPORT:
            # the readers have no GET_REPORT: refuse, as they would with a STALL
            (request_id,) = struct.unpack_from("<I", event, 4)
            os.write(self.fd, _uhid_event(UHID_GET_REPORT_REPLY,
                                          struct.pack("<IHH", request_id, errno.EIO, 0)))
        elif kind == UHID_SET_REPORT:
            request_id, _rnum, rtype, size = struct.unpack_from("<IBBH", event, 4)
            os.write(self.fd, _uhid_event(UHID_SET_REPORT_REPLY,
                                          struct.pack("<IH", request_id, 0)))
            if rtype == UHID_OUTPUT_REPORT:
                return [_normalise(event[12 : 12 + size])]
        return []

    def send(self, report: bytes) -> bool:
        os.write(self.fd, _uhid_event(UHID_INPUT2, struct.pack("<H", len(report)) + report))
        return True

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.fd, _uhid_event(UHID_DESTROY, b""))
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


# ----------------------------------------------------------------------- the bridge


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Record SIGTERM/SIGINT/SIGHUP in the yielded list instead of dying mid-teardown."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT,
                                                        signal.SIGHUP)}
    try:
        yield received
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def bridge(
    link: HostLink,
    reader: Reader,
    stop: list[int],
    *,
    log: Callable[[str], None] = lambda _msg: None,
    max_seconds: float | None = None,
    pace_ms: float = 0.0,
) -> int:
    """Move reports between ``link`` and ``reader`` until ``stop`` is non-empty.

    ``pace_ms`` spaces the device->host reports at least that far apart (a real
    reader's interrupt endpoint has a 2 ms interval; a slow host loses reports
    when its hidraw buffer of 64 reports overflows). Returns the number of
    host->device reports handled.
    """
    pending: collections.deque[bytes] = collections.deque()
    handled = 0
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    next_send = 0.0
    fd = link.fileno()
    while not stop:
        now = time.monotonic()
        if deadline is not None and now > deadline:
            break
        wait = 0.02
        want_write = bool(pending)
        if pending and pace_ms and now < next_send:
            wait, want_write = min(wait, next_send - now), False
        try:
            readable, _, _ = select.select([fd], [fd] if want_write else [], [], wait)
        except InterruptedError:
            continue
        if readable:
            for report in link.receive():
                handled += 1
                try:
                    reader.write(report)
                except (LibreDumpError, ValueError) as exc:
                    log(f"simulate: the virtual reader rejected a report: {exc}")
        while True:
            out = reader.read(0)
            if not out:
                break
            pending.append(_normalise(out))
        while pending and (not pace_ms or time.monotonic() >= next_send):
            if not link.send(pending[0]):
                break
            pending.popleft()
            next_send = time.monotonic() + pace_ms / 1000
    return handled


def find_host_nodes(product_id: int, serial: str, sysfs: str = "/sys",
                    timeout: float = 10.0) -> tuple[str | None, list[str]]:
    """Wait for the host side of our device; return its USB node and hidraw nodes."""
    from .doctor import scan_sysfs

    deadline = time.monotonic() + timeout
    while True:
        for found in scan_sysfs(sysfs):
            if found.product_id == product_id and found.serial == serial and found.hidraw:
                return found.usb_node, [node for _, node in found.hidraw]
        if time.monotonic() > deadline:
            return None, []
        time.sleep(0.05)


def run(
    mode: str,
    model: str,
    *,
    seed: int = 0,
    echo: bool = False,
    log: Callable[[str], None] = print,
    ready: Callable[[str | None, list[str]], None] | None = None,
    max_seconds: float | None = None,
    pace_ms: float = 0.0,
) -> int:
    """Create the device (``mode`` "gadget" or "uhid"), bridge it, remove it. Returns
    the number of reports handled."""
    product_id = model_product_id(split_model(model)[0])
    reader = make_reader(model, seed, echo=echo)
    model = split_model(model)[0]
    what = "echo self-test device" if echo else f"virtual {model} reader"
    product = f"libre-dump {what}"
    serial = f"LDSIM{product_id:04X}{os.getpid()}"
    link: Gadget | UhidDevice
    if mode == "gadget":
        link = Gadget(product_id, product=product, serial=serial)
    elif mode == "uhid":
        link = UhidDevice(product_id, product=product, serial=serial)
    else:
        raise InputError(f"unknown simulate mode {mode!r}: use --gadget or --uhid")
    with stop_on_signals() as stop:
        link.create()
        try:
            via = f"USB gadget on {link.udc}" if isinstance(link, Gadget) else "uhid"
            usb_node, hidraw = find_host_nodes(product_id, serial, timeout=15.0)
            nodes = ", ".join([*hidraw, *([usb_node] if usb_node else [])]) or (
                "no host-side node seen (a real UDC exposes it to another computer)")
            log(f"simulate: {what} 1a61:{product_id:04x} ({via}) is up: {nodes}; "
                "stop with Ctrl-C or SIGTERM")
            if ready is not None:
                ready(usb_node, hidraw)
            handled = bridge(link, reader, stop, log=log, max_seconds=max_seconds,
                             pace_ms=pace_ms)
        finally:
            link.close()
    log(f"simulate: device removed after {handled} reports from the host")
    return handled
