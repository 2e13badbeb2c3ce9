"""Libre 2 (PID 0x3950) and Libre 3 reader (0x3960) transport encryption, sans-I/O.

Three pieces, all pure (bytes in, bytes out; randomness comes from an injected callable):

* :class:`SessionCipher` seals clear 64-byte reports into the encrypted layout and opens
  encrypted ones, for either end of the link (``role="host"`` or ``role="device"``).
* :class:`HostHandshake` is the host side of the authorisation handshake
  (protocol.md 5.3) as an explicit state machine: ``start()`` gives the first report to
  send, ``receive(report)`` takes each reply and gives the next report to send.
* :class:`DeviceHandshake` is the reader side of the same handshake, for the virtual reader.

The master keys are not part of this project: :class:`MasterKeys` is filled from the
optional ``freestyle-keys`` package by ``libre_usb.keys.load_master_keys``.

Encrypted report layout (protocol.md 5.4)::

    byte  0       message type, in clear
    bytes 1..55   CTR under the session encryption key: length byte, payload (<= 54 bytes),
                  zero padding
    bytes 56..59  sequence field, in clear (little-endian uint32)
    bytes 60..63  the last 4 bytes T[4..7] of the 8-byte CMAC (session MAC key) of bytes 0..59

CTR nonce: ``00 00 00 || bytes 56..59 || D`` where D is ``FF`` for host-to-device reports and
``00`` for device-to-host reports. freestyle-hid uses exactly these nonces (with a host
sequence field of zero, so its host nonce is the constant ``00*7 || FF``); reading the last
byte as a direction marker and bytes 3..6 as the sequence field is our inference (9.7).

Sequence-number policy:

* **Host**: we always send a sequence field of 0, as freestyle-hid does and real Libre 2
  readers accept. Nobody has documented whether a reader checks or expects increasing host
  sequence numbers (protocol.md 5.4 and 9.7), so we copy the one behaviour known to work.
* **Device**: the reader's sequence field is used for the nonce, and the value is recorded
  (``SessionCipher.last_peer_sequence``) but **not enforced**: nobody has documented whether
  it must increase, start at a given value or may repeat, and rejecting a real reader's
  data on a guess would lose data. The MAC still authenticates it (it covers bytes 0..59).
* Our own device role (the virtual reader) numbers its reports 0, 1, 2, ... (mod 2**32).

Reports whose type is in :data:`ALWAYS_CLEAR` are never encrypted in either direction and
pass through :meth:`SessionCipher.seal` and :meth:`SessionCipher.open` unchanged.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import construct as cs

from ...errors import CommandFailed, EncryptionError, LibreDumpError, MacError, ProtocolError
from .primitives import Cmac, Speck, derive

__all__ = [
    "ALWAYS_CLEAR",
    "CHALLENGE",
    "CHALLENGE_ACCEPTED",
    "CHALLENGE_RESPONSE",
    "ENCRYPTED_REPORT",
    "MAX_ENCRYPTED_PAYLOAD",
    "NOT_INITIALISED_REPLY",
    "REPORT_SIZE",
    "SETUP_FAILED_REPLY",
    "DeviceHandshake",
    "DeviceHandshakeState",
    "HostHandshake",
    "HostHandshakeState",
    "MasterKeys",
    "RandomBytes",
    "Role",
    "SessionCipher",
    "derive_auth_keys",
    "derive_session_keys",
]

REPORT_SIZE = 64
MAX_ENCRYPTED_PAYLOAD = 54
SERIAL_LENGTH = 13

#: Message types never encrypted, in either direction (freestyle-hid's list, protocol.md 5.4,
#: plus 0x30, the clear "unknown message" error, per glucometer-protocols).
ALWAYS_CLEAR: frozenset[int] = frozenset(
    {0x01, 0x04, 0x05, 0x06, 0x0C, 0x0D, 0x14, 0x15, 0x33, 0x34, 0x35, 0x71, 0x22, 0x30}
)

Role = Literal["host", "device"]
RandomBytes = Callable[[int], bytes]

# Message types and sub-commands of the handshake (protocol.md 2.2 and 5.3).
_QUERY_SERIAL = 0x05
_SERIAL_REPLY = 0x06
_AUTH_REQUEST = 0x14
_AUTH_REPLY = 0x33
_KEEPALIVE = 0x22
_UNKNOWN_MESSAGE = 0x30
_START_AUTHORIZE = 0x11
_CHALLENGE = 0x16
_CHALLENGE_RESPONSE = 0x17
_CHALLENGE_ACCEPTED = 0x18
_STATUS_NOT_INITIALISED = 0x15
_STATUS_SETUP_FAILED = 0x14

_LABEL_AUTH_ENC = b"AuthrEnc"
_LABEL_AUTH_MAC = b"AuthrMAC"
_LABEL_SESSION_ENC = b"SessnEnc"
_LABEL_SESSION_MAC = b"SessnMAC"

# Slices of the encrypted report.
_BODY = slice(1, 56)
_SEQUENCE = slice(56, 60)
_MACED = slice(0, 60)
_MAC = slice(60, 64)
_BODY_SIZE = 55
_HOST_TO_DEVICE = b"\xff"
_DEVICE_TO_HOST = b"\x00"


def _pad(report: bytes) -> bytes:
    return report + bytes(REPORT_SIZE - len(report))


#: The clear reply of a reader that got an encrypted-only message before the handshake.
NOT_INITIALISED_REPLY = _pad(bytes([_AUTH_REPLY, 1, _STATUS_NOT_INITIALISED]))
#: The clear reply of a reader that rejected a handshake message.
SETUP_FAILED_REPLY = _pad(bytes([_AUTH_REPLY, 1, _STATUS_SETUP_FAILED]))

#: The encrypted 64-byte report (field names for logs and dissectors; the hot path slices).
ENCRYPTED_REPORT = cs.Struct(
    "message_type" / cs.Int8ub,
    "ciphertext" / cs.Bytes(_BODY_SIZE),
    "sequence" / cs.Int32ul,
    "mac" / cs.Bytes(4),
)

#: D->H CHALLENGE, ``33 10 16 || reader_nonce(8) || iv(7)``.
CHALLENGE = cs.Struct(
    "message_type" / cs.Const(_AUTH_REPLY, cs.Int8ub),
    "length" / cs.Const(0x10, cs.Int8ub),
    "subcommand" / cs.Const(_CHALLENGE, cs.Int8ub),
    "reader_nonce" / cs.Bytes(8),
    "iv" / cs.Bytes(7),
)

#: H->D CHALLENGE RESPONSE, ``14 1A 17 || C(16) || 01 || M(8)``; M covers the first 20 bytes.
CHALLENGE_RESPONSE = cs.Struct(
    "message_type" / cs.Const(_AUTH_REQUEST, cs.Int8ub),
    "length" / cs.Const(0x1A, cs.Int8ub),
    "subcommand" / cs.Const(_CHALLENGE_RESPONSE, cs.Int8ub),
    "encrypted_nonces" / cs.Bytes(16),
    "marker" / cs.Const(0x01, cs.Int8ub),
    "mac" / cs.Bytes(8),
)
_CHALLENGE_RESPONSE_MACED = 20

#: D->H CHALLENGE ACCEPTED, ``33 22 18 || C2(16) || iv2(7) || M2(8)``; M2 covers the first 26
#: bytes. The length byte says 34 payload bytes but only 32 are known; the last two are kept
#: as ``trailer`` (not covered by the MAC, meaning unknown; our virtual reader sends zeros).
CHALLENGE_ACCEPTED = cs.Struct(
    "message_type" / cs.Const(_AUTH_REPLY, cs.Int8ub),
    "length" / cs.Const(0x22, cs.Int8ub),
    "subcommand" / cs.Const(_CHALLENGE_ACCEPTED, cs.Int8ub),
    "encrypted_nonces" / cs.Bytes(16),
    "iv" / cs.Bytes(7),
    "mac" / cs.Bytes(8),
    "trailer" / cs.Bytes(2),
)
_CHALLENGE_ACCEPTED_MACED = 26


@dataclass(frozen=True)
class MasterKeys:
    """The four 128-bit master keys of the Libre 2/3 handshake (never committed here).

    The values are hidden from ``repr`` so they do not end up in logs or bug reports.
    """

    auth_enc: int = field(repr=False)
    auth_mac: int = field(repr=False)
    session_enc: int = field(repr=False)
    session_mac: int = field(repr=False)


def derive_auth_keys(keys: MasterKeys, serial: bytes) -> tuple[int, int]:
    """The authorisation (encryption, MAC) keys for a reader serial (protocol.md 5.3 step 2)."""
    return (
        derive(keys.auth_enc, _LABEL_AUTH_ENC, serial),
        derive(keys.auth_mac, _LABEL_AUTH_MAC, serial),
    )


def derive_session_keys(
    keys: MasterKeys, serial: bytes, reader_nonce: bytes, host_nonce: bytes
) -> tuple[int, int]:
    """The session (encryption, MAC) keys (protocol.md 5.3 step 7).

    The context is serial(13) || reader_nonce(8) || host_nonce(8). Public so that a recorded
    handshake can be replayed to decrypt a capture.
    """
    context = bytes(serial) + bytes(reader_nonce) + bytes(host_nonce)
    return (
        derive(keys.session_enc, _LABEL_SESSION_ENC, context),
        derive(keys.session_mac, _LABEL_SESSION_MAC, context),
    )


def _split(report: bytes, what: str) -> tuple[int, bytes]:
    """(type, payload) of a clear report; the padding after the payload is ignored."""
    if not 2 <= len(report) <= REPORT_SIZE:
        raise ProtocolError(f"{what}: a report is 2..64 bytes, got {len(report)}")
    length = report[1]
    if 2 + length > len(report):
        raise ProtocolError(
            f"{what}: report {report[:2].hex(' ')} claims {length} payload bytes "
            f"but only {len(report) - 2} follow"
        )
    return report[0], bytes(report[2 : 2 + length])


def _take_random(random_bytes: RandomBytes, n: int) -> bytes:
    value = random_bytes(n)
    if not isinstance(value, bytes | bytearray) or len(value) != n:
        raise ValueError(f"random_bytes({n}) must return {n} bytes")
    return bytes(value)


def _nonce(iv: bytes) -> bytes:
    """The handshake CTR nonce ``00 || iv(7)``."""
    return b"\x00" + iv


class SessionCipher:
    """Seals and opens encrypted 64-byte reports for one end of an established session.

    ``role="host"``: :meth:`seal` makes host-to-device reports (sequence field 0),
    :meth:`open` reads device-to-host reports. ``role="device"`` is the mirror image, for
    the virtual reader; its sequence field starts at ``sequence`` and counts up per sealed
    report. See the module docstring for the sequence-number policy.
    """

    __slots__ = (
        "_cipher",
        "_mac",
        "_stream_cache",
        "last_peer_sequence",
        "next_sequence",
        "role",
    )

    def __init__(self, enc_key: int, mac_key: int, role: Role, *, sequence: int = 0) -> None:
        if role not in ("host", "device"):
            raise ValueError(f"role must be 'host' or 'device', not {role!r}")
        if not 0 <= sequence <= 0xFFFFFFFF:
            raise ValueError(f"a sequence number is a uint32, got {sequence}")
        self.role: Role = role
        self._cipher = Speck(enc_key)
        self._mac = Cmac(mac_key)
        self._stream_cache: tuple[bytes, bytes] = (b"", b"")
        #: The sequence field the device role writes into its next sealed report.
        self.next_sequence = sequence
        #: The sequence field of the last report :meth:`open` accepted (recorded, not enforced).
        self.last_peer_sequence: int | None = None

    @property
    def enc_key(self) -> int:
        """The session encryption key (for logs of one's own session; never persist it)."""
        return self._cipher.key

    @property
    def mac_key(self) -> int:
        """The session MAC key."""
        return self._mac.cipher.key

    def _keystream(self, nonce: bytes) -> bytes:
        # One-entry cache: the host-to-device nonce is the same for every report.
        cached_nonce, stream = self._stream_cache
        if cached_nonce != nonce:
            stream = self._cipher.keystream(nonce, _BODY_SIZE)
            self._stream_cache = (nonce, stream)
        return stream

    def _xor_body(self, body: bytes, sequence: bytes, direction: bytes) -> bytes:
        stream = self._keystream(b"\x00\x00\x00" + sequence + direction)
        return (int.from_bytes(body, "little") ^ int.from_bytes(stream, "little")).to_bytes(
            _BODY_SIZE, "little"
        )

    def seal(self, report: bytes) -> bytes:
        """Encrypt one clear report (type, length, payload, padding) into 64 bytes.

        Reports of an :data:`ALWAYS_CLEAR` type are returned unchanged. The padding after the
        payload is not sent: the plaintext is zero-padded, so no stale bytes leak.
        """
        message_type, payload = _split(report, "cannot encrypt report")
        if message_type in ALWAYS_CLEAR:
            return bytes(report)
        if len(payload) > MAX_ENCRYPTED_PAYLOAD:
            raise ProtocolError(
                f"a {len(payload)}-byte payload does not fit an encrypted report "
                f"(at most {MAX_ENCRYPTED_PAYLOAD} bytes)"
            )
        if self.role == "host":
            sequence = bytes(4)
            direction = _HOST_TO_DEVICE
        else:
            sequence = self.next_sequence.to_bytes(4, "little")
            direction = _DEVICE_TO_HOST
            self.next_sequence = (self.next_sequence + 1) & 0xFFFFFFFF
        clear = bytes([len(payload)]) + payload
        clear += bytes(_BODY_SIZE - len(clear))
        head = bytes([message_type]) + self._xor_body(clear, sequence, direction) + sequence
        return head + self._mac.tag(head)[4:]

    def open(self, raw: bytes) -> bytes:
        """Verify and decrypt one 64-byte report from the peer into a clear 64-byte report.

        Reports of an :data:`ALWAYS_CLEAR` type are returned unchanged. The result is type,
        length, payload and zeros. Raises :class:`MacError` on a bad MAC and
        :class:`ProtocolError` on a bad size or an impossible decrypted length.
        """
        raw = bytes(raw)
        if not raw:
            raise ProtocolError("cannot decrypt an empty report")
        message_type = raw[0]
        if message_type in ALWAYS_CLEAR:
            return raw
        if len(raw) != REPORT_SIZE:
            raise ProtocolError(
                f"an encrypted report (type 0x{message_type:02x}) is 64 bytes, got {len(raw)}"
            )
        expected = self._mac.tag(raw[_MACED])[4:]
        if not hmac.compare_digest(expected, raw[_MAC]):
            raise MacError(
                f"encrypted report of type 0x{message_type:02x} failed its MAC check "
                f"(MAC field {raw[_MAC].hex()}): the report was corrupted, or the session "
                "keys do not match the reader's"
            )
        sequence = raw[_SEQUENCE]
        direction = _DEVICE_TO_HOST if self.role == "host" else _HOST_TO_DEVICE
        clear = self._xor_body(raw[_BODY], sequence, direction)
        length = clear[0]
        if length > MAX_ENCRYPTED_PAYLOAD:
            raise ProtocolError(
                f"encrypted report of type 0x{message_type:02x} decrypts to a length of "
                f"{length}, more than the {MAX_ENCRYPTED_PAYLOAD} bytes it can hold"
            )
        self.last_peer_sequence = int.from_bytes(sequence, "little")
        return _pad(bytes([message_type]) + clear[: 1 + length])


def _parse(struct: Any, report: bytes, what: str) -> Any:
    try:
        return struct.parse(report)
    except cs.ConstructError:
        raise ProtocolError(
            f"malformed {what} during the encryption handshake: {report[:8].hex(' ')} ..."
        ) from None


def _check_status(message_type: int, payload: bytes) -> None:
    """Raise for the reader's clear error replies (33 01 15, 33 01 14, 30 01 xx)."""
    if message_type == _AUTH_REPLY and payload == bytes([_STATUS_NOT_INITIALISED]):
        raise EncryptionError(
            "encryption not initialised: the reader answered 33 01 15 during the "
            "encryption handshake (it did not accept the handshake); unplug the reader, "
            "plug it back in and try again"
        )
    if message_type == _AUTH_REPLY and payload == bytes([_STATUS_SETUP_FAILED]):
        raise EncryptionError(
            "encryption setup failed: the reader answered 33 01 14 and rejected our "
            "challenge response (wrong master keys, or an unsupported reader)"
        )
    if message_type == _UNKNOWN_MESSAGE:
        raise CommandFailed(
            f"the reader does not know the encryption handshake (30 {payload.hex(' ')}): "
            "is it really a Libre 2 or Libre 3 reader?"
        )


class HostHandshakeState(enum.Enum):
    """Where the host side of the handshake stands."""

    IDLE = "idle"  # start() not called yet
    AWAIT_SERIAL = "await_serial"  # sent 05, waiting for 06 <serial>
    AWAIT_CHALLENGE = "await_challenge"  # sent 14 01 11, waiting for 33 10 16 ...
    AWAIT_ACCEPT = "await_accept"  # sent 14 1A 17 ..., waiting for 33 22 18 ...
    DONE = "done"  # session keys established
    FAILED = "failed"  # an error was raised; start a new handshake


class HostHandshake:
    """The host side of the Libre 2/3 handshake (protocol.md 5.3), sans-I/O.

    Usage::

        hs = HostHandshake(keys, random_bytes)
        out = hs.start()                 # send it
        while not hs.done:
            out = hs.receive(read())     # None: nothing to send (keepalive, or finished)
            if out is not None:
                send(out)
        cipher = hs.session              # then send 01 / expect 71 01 01 as usual

    Every report it returns is a full 64-byte clear report. Keepalives (0x22) are skipped.
    Errors: :class:`EncryptionError` when the reader reports encryption not initialised
    (33 01 15) or setup failed (33 01 14) or the nonces do not match, :class:`MacError` on a
    bad handshake MAC, :class:`ProtocolError` on anything unexpected. After an error the
    state is FAILED and every further call raises.
    """

    def __init__(self, keys: MasterKeys, random_bytes: RandomBytes) -> None:
        self._keys = keys
        self._random_bytes = random_bytes
        self.state = HostHandshakeState.IDLE
        #: The reader's serial (first 13 payload bytes of its 06 reply), once known.
        self.serial: bytes | None = None
        self.reader_nonce: bytes | None = None
        self.host_nonce: bytes | None = None
        self._auth_enc: Speck | None = None
        self._auth_mac: Cmac | None = None
        self._session: SessionCipher | None = None

    @property
    def done(self) -> bool:
        return self.state is HostHandshakeState.DONE

    @property
    def session(self) -> SessionCipher:
        """The host-role session cipher; only once the handshake is done."""
        if self._session is None:
            raise EncryptionError(
                f"the encryption handshake has not finished (state {self.state.value})"
            )
        return self._session

    def start(self) -> bytes:
        """The first report to send: QUERY SERIAL (05)."""
        if self.state is not HostHandshakeState.IDLE:
            raise ProtocolError(f"handshake already started (state {self.state.value})")
        self.state = HostHandshakeState.AWAIT_SERIAL
        return _pad(bytes([_QUERY_SERIAL, 0]))

    def receive(self, report: bytes) -> bytes | None:
        """Take one report from the reader; return the next report to send, if any."""
        if self.state in (
            HostHandshakeState.IDLE,
            HostHandshakeState.DONE,
            HostHandshakeState.FAILED,
        ):
            raise ProtocolError(
                f"unexpected report during the encryption handshake (state {self.state.value})"
            )
        try:
            return self._receive(bytes(report))
        except LibreDumpError:
            self.state = HostHandshakeState.FAILED
            raise

    def _receive(self, report: bytes) -> bytes | None:
        message_type, payload = _split(report, "encryption handshake")
        if message_type == _KEEPALIVE:
            return None
        _check_status(message_type, payload)
        if self.state is HostHandshakeState.AWAIT_SERIAL:
            return self._on_serial(message_type, payload)
        if self.state is HostHandshakeState.AWAIT_CHALLENGE:
            return self._on_challenge(report)
        self._on_accepted(report)
        return None

    def _on_serial(self, message_type: int, payload: bytes) -> bytes:
        if message_type != _SERIAL_REPLY:
            raise ProtocolError(
                f"expected the serial reply (06) to 05, got type 0x{message_type:02x}"
            )
        if len(payload) < SERIAL_LENGTH:
            raise ProtocolError(
                f"the serial reply has {len(payload)} payload bytes, expected at least "
                f"{SERIAL_LENGTH}"
            )
        self.serial = payload[:SERIAL_LENGTH]
        auth_enc, auth_mac = derive_auth_keys(self._keys, self.serial)
        self._auth_enc = Speck(auth_enc)
        self._auth_mac = Cmac(auth_mac)
        self.state = HostHandshakeState.AWAIT_CHALLENGE
        return _pad(bytes([_AUTH_REQUEST, 1, _START_AUTHORIZE]))

    def _on_challenge(self, report: bytes) -> bytes:
        assert self._auth_enc is not None and self._auth_mac is not None
        challenge = _parse(CHALLENGE, report, "challenge (expected 33 10 16 ...)")
        reader_nonce = bytes(challenge.reader_nonce)
        host_nonce = _take_random(self._random_bytes, 8)
        encrypted = self._auth_enc.ctr(_nonce(bytes(challenge.iv)), reader_nonce + host_nonce)
        head = bytes([_AUTH_REQUEST, 0x1A, _CHALLENGE_RESPONSE]) + encrypted + b"\x01"
        self.reader_nonce = reader_nonce
        self.host_nonce = host_nonce
        self.state = HostHandshakeState.AWAIT_ACCEPT
        return _pad(head + self._auth_mac.tag(head))

    def _on_accepted(self, report: bytes) -> None:
        assert self._auth_enc is not None and self._auth_mac is not None
        assert self.serial is not None
        assert self.reader_nonce is not None and self.host_nonce is not None
        accepted = _parse(CHALLENGE_ACCEPTED, report, "challenge acceptance (33 22 18 ...)")
        expected = self._auth_mac.tag(report[:_CHALLENGE_ACCEPTED_MACED])
        if not hmac.compare_digest(expected, bytes(accepted.mac)):
            raise MacError(
                "the reader's challenge acceptance (33 22 18) failed its MAC check: "
                "corrupted report, or the reader uses other keys"
            )
        nonces = self._auth_enc.ctr(_nonce(bytes(accepted.iv)), bytes(accepted.encrypted_nonces))
        if not hmac.compare_digest(nonces, self.host_nonce + self.reader_nonce):
            raise EncryptionError(
                "encryption handshake failed: the reader's challenge acceptance does not "
                "carry our nonces back (nonce mismatch)"
            )
        enc_key, mac_key = derive_session_keys(
            self._keys, self.serial, self.reader_nonce, self.host_nonce
        )
        self._session = SessionCipher(enc_key, mac_key, "host")
        self.state = HostHandshakeState.DONE


class DeviceHandshakeState(enum.Enum):
    """Where the reader side of the handshake stands."""

    IDLE = "idle"  # no challenge outstanding
    CHALLENGED = "challenged"  # sent 33 10 16 ..., waiting for 14 1A 17 ...
    DONE = "done"  # session established


class DeviceHandshake:
    """The reader side of the Libre 2/3 handshake, for the virtual reader (sans-I/O).

    :meth:`receive` takes each host report and returns the reader's clear reply to a
    handshake message (05, 14 ...), or ``None`` for any other report, which the caller
    handles (a real Libre 2 answers encrypted-only messages before the handshake with
    :data:`NOT_INITIALISED_REPLY`). A bad challenge response gets
    :data:`SETUP_FAILED_REPLY` (33 01 14), the reason is kept in :attr:`last_error`, and the
    challenge is spent. A new START AUTHORIZE restarts the handshake and drops any session.
    """

    def __init__(self, keys: MasterKeys, serial: bytes, random_bytes: RandomBytes) -> None:
        serial = bytes(serial)
        if len(serial) != SERIAL_LENGTH:
            raise ValueError(f"a reader serial is {SERIAL_LENGTH} bytes, got {len(serial)}")
        self._keys = keys
        self.serial = serial
        self._random_bytes = random_bytes
        auth_enc, auth_mac = derive_auth_keys(keys, serial)
        self._auth_enc = Speck(auth_enc)
        self._auth_mac = Cmac(auth_mac)
        self.state = DeviceHandshakeState.IDLE
        self.reader_nonce: bytes | None = None
        self.host_nonce: bytes | None = None
        self._iv: bytes | None = None
        self._session: SessionCipher | None = None
        #: Why the last challenge response was rejected, if it was.
        self.last_error: str | None = None

    @property
    def done(self) -> bool:
        return self.state is DeviceHandshakeState.DONE

    @property
    def session(self) -> SessionCipher:
        """The device-role session cipher; only once the handshake is done."""
        if self._session is None:
            raise EncryptionError(
                f"the encryption handshake has not finished (state {self.state.value})"
            )
        return self._session

    def receive(self, report: bytes) -> bytes | None:
        """The reply to one host report, or None if it is not a handshake message."""
        report = bytes(report)
        message_type, payload = _split(report, "virtual reader handshake")
        if message_type == _QUERY_SERIAL:
            return _pad(bytes([_SERIAL_REPLY, SERIAL_LENGTH + 1]) + self.serial + b"\x00")
        if message_type != _AUTH_REQUEST:
            return None
        if payload == bytes([_START_AUTHORIZE]):
            return self._challenge()
        if payload[:1] == bytes([_CHALLENGE_RESPONSE]) and self.state is (
            DeviceHandshakeState.CHALLENGED
        ):
            return self._on_response(report)
        return self._reject(f"unexpected handshake message {report[:3].hex(' ')}")

    def _reject(self, reason: str) -> bytes:
        self.last_error = reason
        self.state = DeviceHandshakeState.IDLE
        self.reader_nonce = self._iv = None
        return SETUP_FAILED_REPLY

    def _challenge(self) -> bytes:
        self._session = None
        self.host_nonce = None
        self.reader_nonce = _take_random(self._random_bytes, 8)
        self._iv = _take_random(self._random_bytes, 7)
        self.state = DeviceHandshakeState.CHALLENGED
        return _pad(CHALLENGE.build({"reader_nonce": self.reader_nonce, "iv": self._iv}))

    def _on_response(self, report: bytes) -> bytes:
        assert self.reader_nonce is not None and self._iv is not None
        try:
            response = CHALLENGE_RESPONSE.parse(report)
        except cs.ConstructError:
            return self._reject("malformed challenge response")
        expected = self._auth_mac.tag(report[:_CHALLENGE_RESPONSE_MACED])
        if not hmac.compare_digest(expected, bytes(response.mac)):
            return self._reject("challenge response MAC mismatch")
        nonces = self._auth_enc.ctr(_nonce(self._iv), bytes(response.encrypted_nonces))
        if not hmac.compare_digest(nonces[:8], self.reader_nonce):
            return self._reject("challenge response does not carry the reader nonce")
        reader_nonce, host_nonce = self.reader_nonce, nonces[8:]
        iv2 = _take_random(self._random_bytes, 7)
        encrypted = self._auth_enc.ctr(_nonce(iv2), host_nonce + reader_nonce)
        head = bytes([_AUTH_REPLY, 0x22, _CHALLENGE_ACCEPTED]) + encrypted + iv2
        reply = _pad(head + self._auth_mac.tag(head) + bytes(2))
        enc_key, mac_key = derive_session_keys(self._keys, self.serial, reader_nonce, host_nonce)
        self._session = SessionCipher(enc_key, mac_key, "device")
        self.host_nonce = host_nonce
        self._iv = None
        self.last_error = None
        self.state = DeviceHandshakeState.DONE
        return reply
