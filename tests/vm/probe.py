#!/usr/bin/env python3
"""Guest-side probe: talk to the attached (virtual) reader through each backend.

    probe.py echo [--expect-denied] [--count N] BACKEND...
    probe.py sim MODEL [--seed N] BACKEND...
    probe.py uris                     print hidraw:, hidapi: and usb: URIs of the device
    probe.py serve [--uhid] MODEL     run the echo device (gadget.run(echo=True))

BACKEND is one of
    hidraw-file   plain os.open/os.read on /dev/hidrawN           (hidraw:/dev/hidrawN)
    hidraw        hidapi's ``hidraw`` module, open_path             (hidraw:/dev/hidrawN)
    hidapi        hidapi's ``hid`` module = libusb, path from hid.enumerate  (hidapi:<path>)
    pyusb         pyusb + libusb: SET_REPORT out, interrupt IN 0x81          (usb:<bus>:<addr>)

``echo`` expects a ``simulate --echo`` device and checks that N random 64-byte
reports come back byte-identical. With ``--expect-denied`` every backend must
instead fail to open the device (a permission error), which is what a user
without our udev rules gets.

``sim`` sends the same fixed request reports to the device and to an in-process
``VirtualReader(MODEL, seed)``, and checks that the device's replies are
byte-identical to the in-process ones.

The nodes are found in sysfs with libre_usb.linux.doctor.scan_sysfs. One line per backend:
    PROBE <backend> <uri> OK|FAIL|DENIED <detail>
Exit status 0 when every backend behaved as expected.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import sys
import time
from collections.abc import Callable
from typing import Any

from libre_usb.linux.doctor import SysReader, scan_sysfs

VID = 0x1A61
REPORT = 64


def wait_reader(timeout: float = 20.0, usb: bool = True) -> SysReader:
    """The Abbott device, once it has a hidraw node again (libusb detaches usbhid)."""
    deadline = time.monotonic() + timeout
    while True:
        for reader in scan_sysfs():
            if (reader.usb_sysfs or not usb) and reader.hidraw and all(
                os.path.exists(node) for _, node in reader.hidraw
            ):
                return reader
        if time.monotonic() > deadline:
            raise SystemExit("probe: no Abbott USB device with a hidraw node appeared")
        time.sleep(0.05)


class Link:
    uri = ""

    def write(self, report: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout_ms: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        pass


class HidrawFile(Link):
    def __init__(self, reader: SysReader) -> None:
        self.node = reader.hidraw[0][1]
        self.uri = f"hidraw:{self.node}"
        self.fd = os.open(self.node, os.O_RDWR | os.O_CLOEXEC)

    def write(self, report: bytes) -> None:
        os.write(self.fd, b"\0" + report)

    def read(self, timeout_ms: int) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout_ms / 1000)
        return os.read(self.fd, REPORT) if ready else b""

    def close(self) -> None:
        os.close(self.fd)


class Hidapi(Link):
    """hidapi's ``hidraw`` or ``hid`` (libusb) module."""

    def __init__(self, reader: SysReader, module: str) -> None:
        import importlib

        mod: Any = importlib.import_module(module)
        if module == "hidraw":
            path = reader.hidraw[0][1].encode()
        else:
            found = [d for d in mod.enumerate(VID, reader.product_id)]
            if not found:
                raise OSError(f"{module}.enumerate(0x1a61, 0x{reader.product_id:04x}) is empty")
            path = found[0]["path"]
        self.uri = f"{'hidraw' if module == 'hidraw' else 'hidapi'}:{path.decode()}"
        self.dev = mod.device()
        self.dev.open_path(path)

    def write(self, report: bytes) -> None:
        n = self.dev.write(b"\0" + report)
        if n < 0:
            raise OSError("hid write failed")

    def read(self, timeout_ms: int) -> bytes:
        return bytes(self.dev.read(REPORT, timeout_ms))

    def close(self) -> None:
        self.dev.close()


class Pyusb(Link):
    def __init__(self, reader: SysReader) -> None:
        import usb.backend.libusb1
        import usb.core
        import usb.util

        backend = usb.backend.libusb1.get_backend()
        if backend is None:
            import libusb_package

            backend = libusb_package.get_libusb1_backend()
        self.uri = f"usb:{reader.bus}:{reader.address}"
        self.dev = usb.core.find(
            idVendor=VID, backend=backend,
            custom_match=lambda d: d.bus == reader.bus and d.address == reader.address,
        )
        if self.dev is None:
            raise OSError(f"pyusb cannot find {self.uri}")
        self.usb_util = usb.util
        self.detached = False
        if self.dev.is_kernel_driver_active(0):
            self.dev.detach_kernel_driver(0)
            self.detached = True
        usb.util.claim_interface(self.dev, 0)

    def write(self, report: bytes) -> None:
        # SET_REPORT(Output, ID 0) on the control endpoint, as the readers expect
        self.dev.ctrl_transfer(0x21, 0x09, 0x0200, 0, report, 2000)

    def read(self, timeout_ms: int) -> bytes:
        import usb.core

        try:
            return bytes(self.dev.read(0x81, 128, timeout_ms))
        except usb.core.USBTimeoutError:
            return b""

    def close(self) -> None:
        self.usb_util.release_interface(self.dev, 0)
        if self.detached:
            self.dev.attach_kernel_driver(0)
        self.usb_util.dispose_resources(self.dev)


OPENERS: dict[str, Callable[[SysReader], Link]] = {
    "hidraw-file": HidrawFile,
    "hidraw": lambda r: Hidapi(r, "hidraw"),
    "hidapi": lambda r: Hidapi(r, "hid"),
    "pyusb": Pyusb,
}


def exchange_echo(link: Link, count: int, rng: random.Random) -> str:
    for i in range(count):
        report = bytes(rng.randrange(256) for _ in range(REPORT))
        link.write(report)
        reply = link.read(3000)
        if reply != report:
            raise AssertionError(f"report {i}: sent {report.hex()}, got {reply.hex() or 'nothing'}")
    return f"{count} x 64-byte echo round trips, every reply byte-identical"


def sim_requests() -> list[bytes]:
    def report(kind: int, payload: bytes = b"") -> bytes:
        return (bytes([kind, len(payload)]) + payload).ljust(REPORT, b"\0")

    return [
        report(0x04),  # pre-init
        report(0x05),  # serial number
        report(0x15),  # software version
        report(0x01),  # init
        report(0x60, b"$swver?\r\n"),
        report(0x60, b"$sn?\r\n"),
        report(0x60, b"$ptname?\r\n"),
    ]


def collect(link_read: Callable[[int], bytes], quiet_ms: int) -> list[bytes]:
    replies = []
    while True:
        data = link_read(quiet_ms)
        if not data:
            return replies
        replies.append(data)


_FRESH: dict[tuple[str, int], Any] = {}


def exchange_sim(link: Link, model: str, seed: int) -> str:
    import copy

    from libre_usb.linux.gadget import make_reader

    key = (model, seed)
    if key not in _FRESH:  # generating the content is slow under TCG: do it once
        # the same construction as `libre-dump simulate MODEL[?options] --seed N`
        _FRESH[key] = make_reader(model, seed)
    local = copy.deepcopy(_FRESH[key])
    total = 0
    for request in sim_requests():
        local.write(request)
        expected = collect(local.read, 0)
        link.write(request)
        got = collect(link.read, 1500)
        if got != expected:
            raise AssertionError(
                f"request {request[:12].hex()}: device sent {[g.hex() for g in got]}, "
                f"in-process reader {[e.hex() for e in expected]}")
        total += len(got)
    return (f"{len(sim_requests())} requests, {total} reply reports byte-identical to the "
            f"in-process virtual reader {model!r}, seed {seed}")


def print_uris() -> int:
    """One device URI per backend, as ``libre-dump --device`` takes them."""
    import hid

    reader = wait_reader()
    found = hid.enumerate(VID, reader.product_id)
    print(f"hidraw:{reader.hidraw[0][1]}")
    print(f"hidapi:{found[0]['path'].decode()}" if found else "hidapi:-")
    print(f"usb:{reader.bus}:{reader.address}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["echo", "sim", "uris", "serve"])
    parser.add_argument("model", nargs="?", default="libre")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--expect-denied", action="store_true")
    parser.add_argument("--backends", default="hidraw-file,hidraw,hidapi,pyusb")
    parser.add_argument("--uhid", action="store_true", help="the device is not on USB")
    parser.add_argument("--uris", action="store_true", help="also print the device URIs")
    args = parser.parse_intermixed_args()
    if args.mode == "uris":
        return print_uris()
    if args.mode == "serve":
        # the echo device, without the CLI's start-up cost (the stage's time is
        # dominated by Python imports under TCG); `libre-dump simulate` runs the same code
        from libre_usb.linux import gadget

        gadget.run("uhid" if args.uhid else "gadget", args.model, echo=True,
                   log=lambda msg: print(msg, file=sys.stderr, flush=True))
        return 0
    rng = random.Random(1234)
    failures = 0
    for name in args.backends.split(","):
        reader = wait_reader(usb=not args.uhid)
        link = None
        try:
            link = OPENERS[name](reader)
        except Exception as exc:  # every backend raises its own types
            denied = isinstance(exc, PermissionError) or "open failed" in str(exc) or \
                "Access denied" in str(exc) or "Errno 13" in str(exc)
            status = "DENIED" if denied else "FAIL"
            print(f"PROBE {name} - {status} cannot open: {type(exc).__name__}: {exc}", flush=True)
            if not (args.expect_denied and denied):
                failures += 1
            continue
        try:
            if args.expect_denied:
                print(f"PROBE {name} {link.uri} FAIL opened although access should be denied",
                      flush=True)
                failures += 1
                continue
            if args.mode == "echo":
                detail = exchange_echo(link, args.count, rng)
            else:
                detail = exchange_sim(link, args.model, args.seed)
            print(f"PROBE {name} {link.uri} OK {detail}", flush=True)
        except Exception as exc:  # every backend raises its own types
            print(f"PROBE {name} {link.uri} FAIL {type(exc).__name__}: {exc}", flush=True)
            failures += 1
        finally:
            try:
                link.close()
            except Exception as exc:  # every backend raises its own types
                print(f"PROBE {name}: close failed: {exc}", flush=True)
    wait_reader(usb=not args.uhid)  # leave the device with its hidraw node bound again
    if args.uris:
        print_uris()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
