"""The cython-hidapi transports, with a fake device that behaves as cython-hidapi does."""

from __future__ import annotations

import time

import pytest

from libre_usb.errors import Disconnected
from libre_usb.transport.interfaces.hidapi import HidapiDevice


class FakeHidapi:
    """``read(n, timeout_ms)``: 0 means block forever in cython-hidapi, so it is a bug here."""

    def __init__(self, replies: list[list[int]]) -> None:
        self.replies = replies
        self.written: list[bytes] = []

    def read(self, size: int, timeout_ms: int) -> list[int]:
        assert timeout_ms >= 1, "timeout 0 would block forever in cython-hidapi"
        if self.replies:
            return self.replies.pop(0)
        time.sleep(timeout_ms / 1000)
        return []

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        return len(data)

    def close(self) -> None:
        pass


def _transport(fake: object) -> HidapiDevice:
    transport = HidapiDevice()
    transport._dev = fake
    transport.uri = "hidapi:fake"
    return transport


def test_never_asks_hidapi_for_a_blocking_read() -> None:
    transport = _transport(FakeHidapi([]))
    for timeout in (0, 1, 2, 7):
        start = time.monotonic()
        assert transport.read(timeout) is None
        assert time.monotonic() - start < 0.5


def test_zero_length_packets_are_not_answers() -> None:
    report = [0x71, 0x01, 0x01] + [0] * 61
    transport = _transport(FakeHidapi([[], [], report]))
    assert transport.read(1000) == bytes(report)


def test_writes_carry_the_report_id_byte() -> None:
    fake = FakeHidapi([])
    _transport(fake).write(bytes(64))
    assert fake.written == [bytes(65)]


def test_read_error_is_a_disconnect() -> None:
    class Broken(FakeHidapi):
        def read(self, size: int, timeout_ms: int) -> list[int]:
            raise OSError("read error")

    with pytest.raises(Disconnected, match="read error"):
        _transport(Broken([])).read(100)
