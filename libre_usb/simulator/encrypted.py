"""The reader side of the Libre 2/3 encrypted transport, for the virtual reader.

:class:`EncryptedLink` sits between :class:`~libre_usb.simulator.reader.VirtualReader` and
the host: every report the host writes goes through :meth:`EncryptedLink.incoming` before
the reader's clear-text logic sees it, and every report the reader emits goes through
:meth:`EncryptedLink.outgoing` on its way out. The reader itself stays a clear-text Libre.

Behaviour, as a real Libre 2 reader shows it or (marked) as we infer it:

* ``05`` (QUERY SERIAL) and ``14 ...`` (the handshake, protocol.md 5.3) are answered here by
  :class:`~libre_usb.protocol.crypto.link.DeviceHandshake`, in the clear. The serial it
  sends is the reader content's serial, the one the keys are derived from.
* Other clear types (``04``, ``15``, ``01``, ``0D`` ...) pass through to the reader, before
  and after the handshake: a real Libre 2 answers ``04``/``05``/``15``/``01`` before any
  handshake (glucometerutils issue #68).
* Before the handshake completes, any message of an encrypted type gets ``33 01 15``
  "encryption not initialised", as the real reader answered a clear ``$sn?`` (issue #68).
* Once it completes, messages of an encrypted type are MAC-checked and decrypted with the
  device-role session cipher; the host's sequence field is recorded, not enforced
  (``host_sequences``).
* **A host report that fails its MAC** (inferred; no public capture shows what a reader
  does): it is dropped unread and answered ``33 01 15``, and the session stays up. A
  report that does not authenticate is, to the reader, no better than one sent without a
  session, and ``33 01 15`` is the one answer to such a report seen on hardware. The
  alternatives, silence (the host times out) or ``33 01 14`` (a handshake-step status),
  fit the evidence worse. Each rejection is counted in ``mac_failures``.
* Outgoing reports of an encrypted type are sealed with sequence numbers 0, 1, 2, ...
  (freestyle-hid reads the device's sequence field into the nonce but does not check it;
  our host records it). Clear types (``06``, ``33``, ``71``, keepalives ...) go out as is.
* An encrypted report holds at most 54 payload bytes (protocol.md 5.4), so the reader
  splits text replies into pieces of at most :attr:`EncryptedLink.max_payload` bytes
  instead of 62 (how a real Libre 2 splits them is not documented; it has to fit too).
* A new START AUTHORIZE (``14 01 11``) drops the session and starts a new handshake.

Faults for tests (the reader's ``faults`` option, e.g. ``sim:libre2?faults=bad_mac``):

``bad_mac``         flip one bit of the MAC of the first encrypted report sent
``bad_mac:N``       the same for the N-th encrypted report (0-based)
``flip:N:BIT``      flip bit BIT (0..511; byte BIT // 8, bit BIT % 8) of the N-th encrypted
                    report, anywhere in it

The reader's nonces come from a generator seeded by the reader's seed, so a simulated
session is reproducible; the host's nonce (and so the session keys) still changes per run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from ..errors import InputError, ProtocolError
from ..keys import load_master_keys
from ..protocol.crypto.link import (
    ALWAYS_CLEAR,
    MAX_ENCRYPTED_PAYLOAD,
    NOT_INITIALISED_REPLY,
    REPORT_SIZE,
    DeviceHandshake,
)
from ..protocol.frames import MessageType

__all__ = ["EncryptedLink", "parse_faults"]

_HANDSHAKE_TYPES = frozenset({MessageType.QUERY_SERIAL, MessageType.AUTH_REQUEST})
_MAC_BYTE = 60
_BITS = REPORT_SIZE * 8


def parse_faults(faults: Iterable[str]) -> dict[int, int]:
    """The link's faults as {encrypted report index: bit to flip}; other names are ignored
    (they belong to other parts of the simulator)."""
    flips: dict[int, int] = {}
    for fault in faults:
        name, _, args = fault.partition(":")
        if name not in ("bad_mac", "flip"):
            continue
        parts = args.split(":") if args else []
        try:
            if name == "bad_mac" and len(parts) <= 1:
                index, bit = (int(parts[0]) if parts else 0), _MAC_BYTE * 8
            elif name == "flip" and len(parts) == 2:
                index, bit = int(parts[0]), int(parts[1])
            else:
                raise ValueError(fault)
        except ValueError:
            raise InputError(
                f"bad sim fault {fault!r}: expected bad_mac, bad_mac:N or flip:N:BIT"
            ) from None
        if index < 0 or not 0 <= bit < _BITS:
            raise InputError(
                f"bad sim fault {fault!r}: N must be >= 0 and BIT in 0..{_BITS - 1}"
            )
        flips[index] = bit
    return flips


class EncryptedLink:
    """The reader's end of the encrypted transport. See the module docstring.

    ``send`` queues one raw 64-byte report for the host (the link's own clear replies:
    handshake messages and ``33 01 15``). Raises
    :class:`~libre_usb.errors.MissingExtra` when freestyle-keys is not installed.
    """

    #: the largest payload one encrypted report carries; the reader splits replies to fit
    max_payload = MAX_ENCRYPTED_PAYLOAD

    def __init__(
        self,
        serial: str,
        seed: int,
        faults: Iterable[str],
        send: Callable[[bytes], None],
    ) -> None:
        self._flips = parse_faults(faults)
        keys = load_master_keys()
        rng = random.Random(f"libre-dump virtual reader nonces {seed}")  # noqa: S311 - a simulator, reproducible on purpose
        self.handshake = DeviceHandshake(keys, serial.encode("ascii"), rng.randbytes)
        self._send = send
        #: encrypted reports sealed so far (the index the faults count by)
        self.sealed = 0
        #: host reports rejected for a bad MAC
        self.mac_failures = 0
        #: host reports of an encrypted type refused before the handshake
        self.refused_before_handshake = 0
        #: sequence fields of the host reports accepted (recorded, not enforced)
        self.host_sequences: list[int] = []

    @property
    def established(self) -> bool:
        return self.handshake.done

    def incoming(self, report: bytes) -> bytes | None:
        """Take one host report; return the clear report for the reader to handle, or
        None when the link has answered it (or refused it) itself."""
        message_type = report[0]
        if message_type in _HANDSHAKE_TYPES:
            reply = self.handshake.receive(report)
            if reply is not None:
                self._send(reply)
                return None
        if message_type in ALWAYS_CLEAR:
            return report
        if not self.handshake.done:
            self.refused_before_handshake += 1
            self._send(NOT_INITIALISED_REPLY)
            return None
        cipher = self.handshake.session
        try:
            clear = cipher.open(report)
        except ProtocolError:  # a bad MAC (MacError) or a garbled length: not authentic
            self.mac_failures += 1
            self._send(NOT_INITIALISED_REPLY)
            return None
        if cipher.last_peer_sequence is not None:
            self.host_sequences.append(cipher.last_peer_sequence)
        return clear

    def outgoing(self, report: bytes) -> bytes:
        """Seal one report the reader emits, if it is of an encrypted type and the session
        is up; apply any fault planned for it."""
        if report[0] in ALWAYS_CLEAR or not self.handshake.done:
            return report
        sealed = self.handshake.session.seal(report)
        bit = self._flips.get(self.sealed)
        self.sealed += 1
        if bit is None:
            return sealed
        corrupted = bytearray(sealed)
        corrupted[bit // 8] ^= 1 << (bit % 8)
        return bytes(corrupted)
