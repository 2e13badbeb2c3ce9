"""Libre 2/3 encrypted reports and handshake (libre_usb.protocol.crypto.link, libre_usb.keys).

Our host and our virtual reader are checked against each other, but never only against each
other: freestyle-hid's known answers (tests/vectors/crypto_kat.json, random keys) pin every
byte our host sends and every report layout, and, when freestyle-hid is installed, its own
Session class runs the handshake against our virtual reader and exchanges encrypted
reports with it.
"""

from __future__ import annotations

import json
import random
import secrets
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from libre_usb import keys as keys_module
from libre_usb.errors import (
    CommandFailed,
    EncryptionError,
    MacError,
    MissingExtra,
    ProtocolError,
)
from libre_usb.protocol.crypto.link import (
    ALWAYS_CLEAR,
    ENCRYPTED_REPORT,
    NOT_INITIALISED_REPLY,
    SETUP_FAILED_REPLY,
    DeviceHandshake,
    DeviceHandshakeState,
    HostHandshake,
    HostHandshakeState,
    MasterKeys,
    SessionCipher,
    derive_auth_keys,
)
from libre_usb.protocol.crypto.primitives import Cmac, Speck

VECTORS = Path(__file__).parent / "vectors" / "crypto_kat.json"
SERIAL = b"MAGA987-J0123"  # the Libre 2 serial format quoted in protocol.md (ISS #68)
KEEPALIVE = bytes.fromhex("220105").ljust(64, b"\x00")
FSH_MISSING = "freestyle-hid (the oracle) is not installed: pip install 'libre-dump[dev]'"


@pytest.fixture(scope="module")
def kat() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def pad(report: bytes) -> bytes:
    return report + bytes(64 - len(report))


def clear_report(message_type: int, payload: bytes, filler: int = 0) -> bytes:
    return (bytes([message_type, len(payload)]) + payload).ljust(64, bytes([filler]))


def random_keys(rng: random.Random) -> MasterKeys:
    return MasterKeys(*(rng.getrandbits(128) for _ in range(4)))


def scripted(*chunks: bytes) -> Callable[[int], bytes]:
    """A random_bytes stand-in that hands out the given byte strings in order."""
    queue = list(chunks)

    def take(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n
        return chunk

    return take


def run_handshake(host: HostHandshake, device: DeviceHandshake) -> list[tuple[bytes, bytes]]:
    """Drive both state machines to the end; return the (host report, reply) pairs."""
    exchanged = []
    out: bytes | None = host.start()
    while out is not None:
        reply = device.receive(out)
        assert reply is not None, f"the virtual reader ignored {out[:3].hex()}"
        exchanged.append((out, reply))
        out = host.receive(reply)
    return exchanged


def established(rng: random.Random, keys: MasterKeys | None = None) -> tuple[Any, Any]:
    keys = keys or random_keys(rng)
    host = HostHandshake(keys, rng.randbytes)
    device = DeviceHandshake(keys, SERIAL, rng.randbytes)
    run_handshake(host, device)
    assert host.done and device.done
    return host, device


# --- constants -----------------------------------------------------------------------------


def test_always_clear_is_the_documented_set() -> None:
    assert {0x01, 0x04, 0x05, 0x06, 0x0C, 0x0D, 0x14, 0x15, 0x33, 0x34, 0x35, 0x71, 0x22} | {
        0x30
    } == ALWAYS_CLEAR


def test_always_clear_covers_freestyle_hid_list() -> None:
    fsh = pytest.importorskip("freestyle_hid._session", reason=FSH_MISSING)
    assert set(fsh._ALWAYS_UNENCRYPTED_MESSAGES) | {0x30} == ALWAYS_CLEAR


def test_master_keys_repr_hides_the_values() -> None:
    keys = MasterKeys(0xAAAA1111, 0xBBBB2222, 0xCCCC3333, 0xDDDD4444)
    text = repr(keys)
    assert "aaaa" not in text.lower() and str(0xAAAA1111) not in text
    assert keys.auth_enc == 0xAAAA1111


# --- encrypted reports: known answers from freestyle-hid ----------------------------------


def test_host_seal_matches_freestyle_hid_known_answer(kat: dict[str, Any]) -> None:
    case = kat["report_host_to_device"]
    enc, mac = int(case["session_enc"], 16), int(case["session_mac"], 16)
    clear, sealed = bytes.fromhex(case["clear"]), bytes.fromhex(case["sealed"])
    assert SessionCipher(enc, mac, "host").seal(clear) == sealed
    assert SessionCipher(enc, mac, "device").open(sealed) == clear


def test_device_report_matches_freestyle_hid_known_answer(kat: dict[str, Any]) -> None:
    case = kat["report_device_to_host"]
    enc, mac = int(case["session_enc"], 16), int(case["session_mac"], 16)
    clear, sealed = bytes.fromhex(case["clear"]), bytes.fromhex(case["sealed"])
    host = SessionCipher(enc, mac, "host")
    assert host.open(sealed) == clear
    assert host.last_peer_sequence == case["sequence"]
    device = SessionCipher(enc, mac, "device", sequence=case["sequence"])
    assert device.seal(clear) == sealed
    assert device.next_sequence == (case["sequence"] + 1) % 2**32


def test_encrypted_report_struct_names_the_layout(kat: dict[str, Any]) -> None:
    case = kat["report_device_to_host"]
    sealed = bytes.fromhex(case["sealed"])
    parsed = ENCRYPTED_REPORT.parse(sealed)
    assert parsed.message_type == 0x60
    assert parsed.ciphertext == sealed[1:56]
    assert parsed.sequence == case["sequence"]
    assert parsed.mac == sealed[60:]
    assert ENCRYPTED_REPORT.build(parsed) == sealed


# --- handshake: known answers from freestyle-hid ------------------------------------------


def _kat_keys(case: dict[str, Any]) -> MasterKeys:
    return MasterKeys(
        *(int(case[name], 16) for name in ("auth_enc", "auth_mac", "session_enc", "session_mac"))
    )


def test_host_handshake_sends_exactly_what_freestyle_hid_sends(kat: dict[str, Any]) -> None:
    for case in kat["handshake"]:
        host = HostHandshake(_kat_keys(case), scripted(bytes.fromhex(case["host_nonce"])))
        host_reports = [bytes.fromhex(r) for r in case["host_reports"]]
        device_reports = [bytes.fromhex(r) for r in case["device_reports"]]
        assert host.start() == host_reports[0]
        assert host.receive(device_reports[0]) == host_reports[1]
        assert host.receive(device_reports[1]) == host_reports[2]
        assert host.receive(device_reports[2]) is None
        assert host.done and host.serial == bytes.fromhex(case["serial"])
        assert host.session.enc_key == int(case["session_enc_key"], 16)
        assert host.session.mac_key == int(case["session_mac_key"], 16)
        assert host.session.role == "host"


def test_device_handshake_replies_match_the_known_answers(kat: dict[str, Any]) -> None:
    for case in kat["handshake"]:
        nonces = (bytes.fromhex(case[name]) for name in ("reader_nonce", "iv", "iv2"))
        device = DeviceHandshake(_kat_keys(case), bytes.fromhex(case["serial"]), scripted(*nonces))
        host_reports = [bytes.fromhex(r) for r in case["host_reports"]]
        device_reports = [bytes.fromhex(r) for r in case["device_reports"]]
        for sent, expected in zip(host_reports, device_reports, strict=True):
            assert device.receive(sent) == expected
        assert device.done
        assert device.session.enc_key == int(case["session_enc_key"], 16)
        assert device.session.mac_key == int(case["session_mac_key"], 16)


# --- handshake between our host and our virtual reader ------------------------------------


def test_handshake_message_shapes() -> None:
    rng = random.Random(20)
    keys = random_keys(rng)
    host = HostHandshake(keys, rng.randbytes)
    device = DeviceHandshake(keys, SERIAL, rng.randbytes)
    exchanged = run_handshake(host, device)
    assert [(sent[:3].hex(), reply[:3].hex()) for sent, reply in exchanged] == [
        ("050000", "060e4d"),
        ("140111", "331016"),
        ("141a17", "332218"),
    ]
    assert exchanged[0][1] == pad(b"\x06\x0e" + SERIAL + b"\x00")
    assert all(len(sent) == 64 and len(reply) == 64 for sent, reply in exchanged)
    assert exchanged[2][0][28:] == bytes(36), "the 28-byte response is zero-padded"
    assert exchanged[2][0][19] == 0x01
    assert host.serial == SERIAL
    assert host.reader_nonce == device.reader_nonce
    assert host.host_nonce == device.host_nonce
    assert host.state is HostHandshakeState.DONE and device.state is DeviceHandshakeState.DONE


def _check_interop(host: HostHandshake, device: DeviceHandshake, rng: random.Random) -> None:
    assert host.session.enc_key == device.session.enc_key
    assert host.session.mac_key == device.session.mac_key
    for length in range(55):
        for message_type in (0x60, 0x21, 0x0A, 0x0B):
            report = clear_report(message_type, rng.randbytes(length))
            sealed = host.session.seal(report)
            assert sealed != report and sealed[0] == message_type
            assert device.session.open(sealed) == report
            sealed = device.session.seal(report)
            assert host.session.open(sealed) == report


def test_host_and_virtual_reader_interoperate_with_random_keys() -> None:
    rng = random.Random(21)
    for _ in range(4):
        host, device = established(rng)
        _check_interop(host, device, rng)
        assert host.session.last_peer_sequence == device.session.next_sequence - 1


@pytest.fixture(scope="module")
def real_keys() -> MasterKeys:
    try:
        return keys_module.load_master_keys()
    except MissingExtra as exc:
        pytest.skip(f"freestyle-keys is not installed, no real keys to test with ({exc})")


def test_host_and_virtual_reader_interoperate_with_the_real_keys(real_keys: MasterKeys) -> None:
    rng = random.Random(22)
    host = HostHandshake(real_keys, keys_module.host_random)
    device = DeviceHandshake(real_keys, SERIAL, rng.randbytes)
    run_handshake(host, device)
    _check_interop(host, device, rng)


def test_keepalives_are_skipped_in_every_state() -> None:
    rng = random.Random(23)
    keys = random_keys(rng)
    host = HostHandshake(keys, rng.randbytes)
    device = DeviceHandshake(keys, SERIAL, rng.randbytes)
    out: bytes | None = host.start()
    while out is not None:
        state = host.state
        assert host.receive(KEEPALIVE) is None
        assert host.state is state
        reply = device.receive(out)
        assert reply is not None
        out = host.receive(reply)
    assert host.done


# --- handshake failures -------------------------------------------------------------------


def _host_in_state(
    target: HostHandshakeState,
) -> tuple[HostHandshake, DeviceHandshake, bytes]:
    """A host handshake stopped in ``target``, the reader, and the host's last report (which
    the reader has not answered yet)."""
    rng = random.Random(24)
    keys = random_keys(rng)
    host = HostHandshake(keys, rng.randbytes)
    device = DeviceHandshake(keys, SERIAL, rng.randbytes)
    out = host.start()
    while host.state is not target:
        reply = device.receive(out)
        assert reply is not None
        next_out = host.receive(reply)
        assert next_out is not None
        out = next_out
    return host, device, out


WAITING = [
    HostHandshakeState.AWAIT_SERIAL,
    HostHandshakeState.AWAIT_CHALLENGE,
    HostHandshakeState.AWAIT_ACCEPT,
]


@pytest.mark.parametrize("state", WAITING)
def test_not_initialised_reply_raises_encryption_error(state: HostHandshakeState) -> None:
    """``33 01 15``, the real Libre 2 reply to anything before the handshake (ISS #68)."""
    host, _, _ = _host_in_state(state)
    with pytest.raises(EncryptionError, match="not initialised"):
        host.receive(bytes.fromhex("330115").ljust(64, b"\xcd"))
    assert host.state is HostHandshakeState.FAILED
    with pytest.raises(ProtocolError):
        host.receive(KEEPALIVE)


def test_reader_rejecting_our_response_is_setup_failed() -> None:
    """A reader with other keys answers 33 01 14; the host reports setup failed."""
    rng = random.Random(25)
    host = HostHandshake(random_keys(rng), rng.randbytes)
    device = DeviceHandshake(random_keys(rng), SERIAL, rng.randbytes)
    out: bytes | None = host.start()
    with pytest.raises(EncryptionError, match="encryption setup failed"):
        for _ in range(3):
            assert out is not None
            reply = device.receive(out)
            assert reply is not None
            out = host.receive(reply)
    assert device.last_error == "challenge response MAC mismatch"
    assert not device.done
    assert host.state is HostHandshakeState.FAILED


@pytest.mark.parametrize("offset", [3, 18, 19, 25, 26, 33])
def test_corrupted_acceptance_fails_its_mac(offset: int) -> None:
    host, device, pending = _host_in_state(HostHandshakeState.AWAIT_ACCEPT)
    reply = device.receive(pending)
    assert reply is not None
    accepted = bytearray(reply)
    accepted[offset] ^= 0x01
    with pytest.raises(MacError, match="MAC"):
        host.receive(bytes(accepted))


def test_acceptance_with_valid_mac_but_wrong_nonces_is_rejected() -> None:
    """A reader that sends reader_nonce || host_nonce (not swapped), correctly MACed."""
    rng = random.Random(26)
    host, _, _ = _host_in_state(HostHandshakeState.AWAIT_ACCEPT)
    keys = host._keys
    assert host.reader_nonce is not None and host.host_nonce is not None
    auth_enc, auth_mac = derive_auth_keys(keys, SERIAL)
    iv2 = rng.randbytes(7)
    wrong = Speck(auth_enc).ctr(b"\x00" + iv2, host.reader_nonce + host.host_nonce)
    head = b"\x33\x22\x18" + wrong + iv2
    with pytest.raises(EncryptionError, match="nonce mismatch"):
        host.receive(pad(head + Cmac(auth_mac).tag(head) + bytes(2)))


@pytest.mark.parametrize(
    ("state", "report", "error"),
    [
        (HostHandshakeState.AWAIT_SERIAL, clear_report(0x60, b"CMD OK\r\n"), ProtocolError),
        (HostHandshakeState.AWAIT_SERIAL, clear_report(0x06, b"MAGA987"), ProtocolError),
        (HostHandshakeState.AWAIT_SERIAL, clear_report(0x30, b"\x85"), CommandFailed),
        (HostHandshakeState.AWAIT_CHALLENGE, clear_report(0x33, bytes(16)), ProtocolError),
        (HostHandshakeState.AWAIT_CHALLENGE, clear_report(0x71, b"\x01"), ProtocolError),
        (HostHandshakeState.AWAIT_ACCEPT, clear_report(0x33, b"\x16" + bytes(15)), ProtocolError),
        (HostHandshakeState.AWAIT_ACCEPT, bytes.fromhex("33ff18"), ProtocolError),
        (HostHandshakeState.AWAIT_ACCEPT, b"\x33", ProtocolError),
    ],
)
def test_unexpected_replies_raise_protocol_errors(
    state: HostHandshakeState, report: bytes, error: type[Exception]
) -> None:
    host, _, _ = _host_in_state(state)
    with pytest.raises(error):
        host.receive(report)
    assert host.state is HostHandshakeState.FAILED


def test_host_handshake_misuse() -> None:
    rng = random.Random(27)
    host = HostHandshake(random_keys(rng), rng.randbytes)
    with pytest.raises(ProtocolError):
        host.receive(KEEPALIVE)
    with pytest.raises(EncryptionError, match="not finished"):
        _ = host.session
    host.start()
    with pytest.raises(ProtocolError, match="already started"):
        host.start()


def test_host_checks_its_random_source() -> None:
    host, device, pending = _host_in_state(HostHandshakeState.AWAIT_CHALLENGE)
    host._random_bytes = lambda n: bytes(n - 1)
    challenge = device.receive(pending)
    assert challenge is not None
    with pytest.raises(ValueError, match="must return 8 bytes"):
        host.receive(challenge)


# --- the virtual reader's side ------------------------------------------------------------


def test_virtual_reader_ignores_non_handshake_reports() -> None:
    rng = random.Random(28)
    device = DeviceHandshake(random_keys(rng), SERIAL, rng.randbytes)
    for report in (clear_report(0x01, b""), clear_report(0x60, b"$sn?"), clear_report(0x04, b"")):
        assert device.receive(report) is None
    assert NOT_INITIALISED_REPLY == pad(b"\x33\x01\x15")


def test_virtual_reader_rejects_a_response_without_challenge_and_replays() -> None:
    rng = random.Random(29)
    keys = random_keys(rng)
    host = HostHandshake(keys, rng.randbytes)
    device = DeviceHandshake(keys, SERIAL, rng.randbytes)
    exchanged = run_handshake(host, device)
    response = exchanged[2][0]
    # Replaying the old response to a new challenge fails: the reader nonce changed.
    assert device.receive(pad(b"\x14\x01\x11"))[:3] == b"\x33\x10\x16"  # type: ignore[index]
    assert not device.done
    assert device.receive(response) == SETUP_FAILED_REPLY
    assert device.last_error == "challenge response does not carry the reader nonce"
    # And without any outstanding challenge.
    assert device.receive(response) == SETUP_FAILED_REPLY
    assert device.last_error is not None and "unexpected" in device.last_error


def test_virtual_reader_serial_must_be_13_bytes() -> None:
    with pytest.raises(ValueError, match="13 bytes"):
        DeviceHandshake(MasterKeys(1, 2, 3, 4), b"SHORT", random.Random(0).randbytes)


# --- session cipher -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def session_pair() -> tuple[SessionCipher, SessionCipher]:
    rng = random.Random(30)
    enc, mac = rng.getrandbits(128), rng.getrandbits(128)
    return SessionCipher(enc, mac, "host"), SessionCipher(enc, mac, "device", sequence=7)


@pytest.mark.parametrize("direction", ["host_to_device", "device_to_host"])
def test_every_flipped_bit_fails_the_mac(
    session_pair: tuple[SessionCipher, SessionCipher], direction: str
) -> None:
    host, device = session_pair
    sender, receiver = (host, device) if direction == "host_to_device" else (device, host)
    sealed = sender.seal(clear_report(0x60, b"$history?"))
    receiver.open(sealed)  # the untouched report opens
    failures = 0
    for byte in range(1, 64):
        for bit in range(8):
            tampered = bytearray(sealed)
            tampered[byte] ^= 1 << bit
            with pytest.raises(MacError, match="failed its MAC check"):
                receiver.open(bytes(tampered))
            failures += 1
    assert failures == 63 * 8


def test_always_clear_types_pass_through_both_ways(
    session_pair: tuple[SessionCipher, SessionCipher],
) -> None:
    host, device = session_pair
    for message_type in sorted(ALWAYS_CLEAR):
        report = clear_report(message_type, b"\x01", filler=0xCD)
        for cipher in (host, device):
            assert cipher.seal(report) == report
            assert cipher.open(report) == report


def test_seal_does_not_leak_stale_padding(
    session_pair: tuple[SessionCipher, SessionCipher],
) -> None:
    host, device = session_pair
    stale = clear_report(0x60, b"$sn?", filler=0xCD)
    clean = clear_report(0x60, b"$sn?")
    assert host.seal(stale) == host.seal(clean)
    assert device.open(host.seal(stale)) == clean


def test_host_sends_sequence_zero_and_device_counts_up() -> None:
    rng = random.Random(31)
    host, device = established(rng)
    for _ in range(3):
        assert host.session.seal(clear_report(0x60, b"$sn?"))[56:60] == bytes(4)
    sequences = [
        ENCRYPTED_REPORT.parse(device.session.seal(clear_report(0x60, b"x"))).sequence
        for _ in range(3)
    ]
    assert sequences == [0, 1, 2]


def test_device_sequence_is_recorded_not_enforced(
    session_pair: tuple[SessionCipher, SessionCipher],
) -> None:
    host, _ = session_pair
    enc, mac = host.enc_key, host.mac_key
    for sequence in (5, 5, 2, 0xFFFFFFFF, 0):
        device = SessionCipher(enc, mac, "device", sequence=sequence)
        report = clear_report(0x60, b"CMD OK\r\n")
        assert host.open(device.seal(report)) == report
        assert host.last_peer_sequence == sequence


def test_oversized_payload_is_refused(session_pair: tuple[SessionCipher, SessionCipher]) -> None:
    host, _ = session_pair
    host.seal(clear_report(0x60, bytes(54)))
    with pytest.raises(ProtocolError, match="at most 54"):
        host.seal(clear_report(0x60, bytes(55)))


def test_decrypted_length_over_54_is_a_protocol_error(
    session_pair: tuple[SessionCipher, SessionCipher],
) -> None:
    """A correctly MACed reader report whose length byte decrypts to 55."""
    host, _ = session_pair
    sequence = bytes.fromhex("01000000")
    body = bytes([55]) + bytes(54)
    ciphertext = Speck(host.enc_key).ctr(b"\x00\x00\x00" + sequence + b"\x00", body)
    head = b"\x60" + ciphertext + sequence
    raw = head + Cmac(host.mac_key).tag(head)[4:]
    with pytest.raises(ProtocolError, match="length of 55"):
        host.open(raw)


@pytest.mark.parametrize("size", [0, 1, 63, 65])
def test_open_refuses_wrong_sizes(
    session_pair: tuple[SessionCipher, SessionCipher], size: int
) -> None:
    host, _ = session_pair
    with pytest.raises(ProtocolError):
        host.open(b"\x60" * size)


def test_session_cipher_rejects_unknown_role() -> None:
    with pytest.raises(ValueError, match="role"):
        SessionCipher(1, 2, "observer")  # type: ignore[arg-type]


# --- freestyle-hid's own Session as the host, against our virtual reader ------------------


class _ReaderHandle:
    """Connects freestyle-hid's Session to our virtual reader instead of a HID device."""

    def __init__(self, device: DeviceHandshake) -> None:
        self.device = device
        self.replies: list[bytes] = []
        self.written: list[bytes] = []

    def write(self, report: bytes) -> None:
        assert report[0] == 0 and len(report) == 65
        report = bytes(report[1:])
        self.written.append(report)
        if self.device.done and report[0] not in ALWAYS_CLEAR:
            self.replies.append(self.device.session.open(report))
            return
        reply = self.device.receive(report)
        self.replies.append(reply if reply is not None else NOT_INITIALISED_REPLY)

    def read(self, size: int = 64) -> bytes:
        return self.replies.pop(0)


@pytest.fixture
def fsh_session() -> Iterator[Callable[[DeviceHandshake, MasterKeys], Any]]:
    fsh = pytest.importorskip("freestyle_hid._session", reason=FSH_MISSING)

    patches: list[Any] = []

    def make(device: DeviceHandshake, keys: MasterKeys) -> Any:
        session = object.__new__(fsh.Session)
        session._handle = _ReaderHandle(device)
        session._encrypted_protocol = True
        fake = types.SimpleNamespace(
            AUTHORIZATION_ENCRYPTION_KEY=keys.auth_enc,
            AUTHORIZATION_MAC_KEY=keys.auth_mac,
            SESSION_ENCRYPTION_KEY=keys.session_enc,
            SESSION_MAC_KEY=keys.session_mac,
        )
        patch = mock.patch.object(fsh, "libre2_keys", fake, create=True)
        patch.start()
        patches.append(patch)
        return session

    yield make
    for patch in reversed(patches):  # nested patches of one attribute: undo last first
        patch.stop()


def _fsh_against_virtual_reader(session: Any, device: DeviceHandshake) -> None:
    session.encryption_handshake()  # raises on any MAC or nonce problem
    assert device.done
    assert session.crypt_enc.key == device.session.enc_key
    assert session.crypt_mac.cipher.key == device.session.mac_key
    handle = session._handle
    for command in (b"$sn?", b"$history?", bytes(range(54))):
        session.send_command(0x60, command)
        opened = handle.replies.pop()
        assert opened == clear_report(0x60, command)
        assert handle.written[-1][56:60] == bytes(4)
        payload = b"CKSM:00000000\r\nCMD OK\r\n" + command[:20]
        handle.replies.append(device.session.seal(clear_report(0x60, payload)))
        assert session.read_response() == (0x60, payload)


def test_freestyle_hid_host_handshakes_with_our_virtual_reader(
    fsh_session: Callable[[DeviceHandshake, MasterKeys], Any],
) -> None:
    rng = random.Random(40)
    for _ in range(5):
        keys = random_keys(rng)
        device = DeviceHandshake(keys, SERIAL, rng.randbytes)
        _fsh_against_virtual_reader(fsh_session(device, keys), device)


def test_freestyle_hid_host_handshakes_with_our_virtual_reader_real_keys(
    fsh_session: Callable[[DeviceHandshake, MasterKeys], Any], real_keys: MasterKeys
) -> None:
    device = DeviceHandshake(real_keys, SERIAL, random.Random(41).randbytes)
    _fsh_against_virtual_reader(fsh_session(device, real_keys), device)


def test_our_host_sends_what_freestyle_hid_sends_live(
    fsh_session: Callable[[DeviceHandshake, MasterKeys], Any],
) -> None:
    """Same reader replies, same host nonce: byte-identical host reports, same keys."""
    fsh = pytest.importorskip("freestyle_hid._session", reason=FSH_MISSING)
    rng = random.Random(42)
    for _ in range(5):
        keys = random_keys(rng)
        host = HostHandshake(keys, rng.randbytes)
        device = DeviceHandshake(keys, SERIAL, random.Random(rng.random()).randbytes)
        exchanged = run_handshake(host, device)
        assert host.host_nonce is not None

        replay = types.SimpleNamespace(
            written=[], replies=[reply for _, reply in exchanged], read=None
        )
        replay.write = lambda report, r=replay: r.written.append(bytes(report[1:]))
        replay.read = lambda size=64, r=replay: r.replies.pop(0)
        session = fsh_session(device, keys)
        session._handle = replay
        fake_random = types.SimpleNamespace(randbytes=lambda n, nonce=host.host_nonce: nonce)
        with mock.patch.object(fsh, "random", fake_random):
            session.encryption_handshake()
        assert [pad(r) for r in replay.written] == [sent for sent, _ in exchanged]
        assert session.crypt_enc.key == host.session.enc_key
        assert session.crypt_mac.cipher.key == host.session.mac_key


def test_session_cipher_matches_freestyle_hid_on_random_reports(
    fsh_session: Callable[[DeviceHandshake, MasterKeys], Any],
) -> None:
    fsh = pytest.importorskip("freestyle_hid._session", reason=FSH_MISSING)
    fsh_crypto = pytest.importorskip("freestyle_hid._freestyle_encryption")

    rng = random.Random(43)
    session = object.__new__(fsh.Session)
    types_used = [t for t in range(256) if t not in ALWAYS_CLEAR]
    for i in range(300):
        enc, mac = rng.getrandbits(128), rng.getrandbits(128)
        session.crypt_enc, session.crypt_mac = (
            fsh_crypto.SpeckEncrypt(enc),
            fsh_crypto.SpeckCMAC(mac),
        )
        message_type = rng.choice(types_used)
        payload = rng.randbytes(rng.randrange(55))
        clear = fsh._FREESTYLE_MESSAGE.build(
            {"message_type": message_type, "command": payload, "mac": 0}
        )
        assert SessionCipher(enc, mac, "host").seal(clear) == session.encrypt_message(clear)
        device = SessionCipher(enc, mac, "device", sequence=rng.getrandbits(32) if i else 0)
        sealed = device.seal(clear)
        assert session.decrypt_message(sealed)[:56] == clear[:56]
        assert SessionCipher(enc, mac, "host").open(sealed) == clear


# --- keys ---------------------------------------------------------------------------------


def test_missing_freestyle_keys_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "freestyle_keys", None)
    monkeypatch.setitem(sys.modules, "freestyle_keys.libre2", None)
    with pytest.raises(MissingExtra) as caught:
        keys_module.load_master_keys()
    message = str(caught.value)
    assert "libre-dump[libre2]" in message and "pip install" in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_incomplete_freestyle_keys_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("freestyle_keys")
    libre2 = types.ModuleType("freestyle_keys.libre2")
    libre2.AUTHORIZATION_ENCRYPTION_KEY = 1  # type: ignore[attr-defined]
    package.libre2 = libre2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "freestyle_keys", package)
    monkeypatch.setitem(sys.modules, "freestyle_keys.libre2", libre2)
    with pytest.raises(MissingExtra, match="AUTHORIZATION_MAC_KEY"):
        keys_module.load_master_keys()


def test_load_master_keys_reads_freestyle_keys() -> None:
    libre2 = pytest.importorskip(
        "freestyle_keys.libre2",
        reason="freestyle-keys is not installed: no real keys to compare with",
    )
    keys = keys_module.load_master_keys()
    assert keys.auth_enc == libre2.AUTHORIZATION_ENCRYPTION_KEY
    assert keys.auth_mac == libre2.AUTHORIZATION_MAC_KEY
    assert keys.session_enc == libre2.SESSION_ENCRYPTION_KEY
    assert keys.session_mac == libre2.SESSION_MAC_KEY


def test_host_random_comes_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_token_bytes(n: int) -> bytes:
        calls.append(n)
        return b"\x07" * n

    monkeypatch.setattr(secrets, "token_bytes", fake_token_bytes)
    assert keys_module.host_random(8) == b"\x07" * 8
    assert calls == [8]
    monkeypatch.undo()
    values = {keys_module.host_random(8) for _ in range(16)}
    assert len(values) == 16 and all(len(v) == 8 for v in values)
