"""The Libre 2/3 encryption handshake over a transport (device layer).

:func:`handshake` is what :meth:`libre_usb.reader.session.Session.open` runs for models with
``encrypted=True`` (FreeStyle Libre 2, PID 0x3950, and the Libre 3 reader, PID 0x3960),
before the usual clear ``15`` / ``01`` exchange. It drives the sans-I/O
:class:`~libre_usb.protocol.crypto.link.HostHandshake` over a transport, adding
what the state machine leaves out on purpose: the master keys (from the optional
``freestyle-keys`` package), the host nonce (from :mod:`secrets`), a deadline on every
read, and a bound on how many unrelated reports we are willing to skip.

On success it returns the reader's serial (from its clear ``06`` reply) and the host-role
:class:`~libre_usb.protocol.crypto.link.SessionCipher`, which the session installs on its
connection so every later report in and out is sealed and opened. This module knows the
transport, not the session: the session imports it, never the other way round.

Errors, all one line:

* :class:`~libre_usb.errors.MissingExtra` (exit 2): freestyle-keys is not installed.
* :class:`~libre_usb.errors.DeviceTimeout` (exit 5): the reader fell silent mid-handshake.
* :class:`~libre_usb.errors.MacError` / :class:`~libre_usb.errors.EncryptionError`
  (exit 4): a bad handshake MAC, our nonces not coming back, or the reader answering
  ``33 01 15`` / ``33 01 14``.
* :class:`~libre_usb.errors.ProtocolError` (exit 4) for anything else the reader or the
  transport does wrong, prefixed with the handshake step it happened at.
"""

from __future__ import annotations

from .. import logs
from ..errors import DeviceTimeout, ProtocolError
from ..keys import host_random, load_master_keys
from ..protocol.crypto.link import ALWAYS_CLEAR, HostHandshake, HostHandshakeState, SessionCipher
from ..transport.interface import Transport

__all__ = ["MAX_SKIPPED", "handshake"]

log = logs.get("libre_usb.reader.encrypted")

#: keepalives and stray encrypted reports (left over from an earlier session) skipped
#: during one handshake before we give up
MAX_SKIPPED = 4096

#: what the host is waiting for in each state, for messages
_WAITING_FOR = {
    HostHandshakeState.AWAIT_SERIAL: "the serial reply (06) to QUERY SERIAL (05)",
    HostHandshakeState.AWAIT_CHALLENGE: "the challenge (33 10 16) to START AUTHORIZE (14 01 11)",
    HostHandshakeState.AWAIT_ACCEPT: "the challenge acceptance (33 22 18)",
}


def _step(hs: HostHandshake) -> str:
    return _WAITING_FOR.get(hs.state, f"state {hs.state.value}")


def _write(transport: Transport, hs: HostHandshake, report: bytes) -> None:
    try:
        transport.write(report)
    except ProtocolError as exc:
        # e.g. a replay transcript with no such exchange: say which step needed it
        raise type(exc)(
            f"encryption handshake failed sending {report[:3].hex(' ')} "
            f"(then waiting for {_step(hs)}): {exc}"
        ) from None


def _skip(hs: HostHandshake, skipped: int) -> int:
    """Count a report that did not move the handshake on; a bound keeps us from looping
    forever on a reader that only sends keepalives or leftovers."""
    skipped += 1
    if skipped > MAX_SKIPPED:
        raise ProtocolError(
            f"encryption handshake: the reader sent more than {MAX_SKIPPED} keepalive or "
            f"unrelated encrypted reports while we waited for {_step(hs)}"
        )
    return skipped


def handshake(transport: Transport, timeout_ms: int) -> tuple[str, SessionCipher]:
    """Run the Libre 2/3 encryption handshake over ``transport``, waiting at most
    ``timeout_ms`` for each report; return the reader serial and the host session cipher.

    See the module docstring for the errors.
    """
    keys = load_master_keys()
    hs = HostHandshake(keys, host_random)
    _write(transport, hs, hs.start())
    skipped = 0
    while not hs.done:
        report = transport.read(timeout_ms)
        if report is None:
            raise DeviceTimeout(
                f"the reader stopped answering the encryption handshake: it did not send "
                f"{_step(hs)} within {timeout_ms / 1000:g} s"
            )
        if report[:1] and report[0] not in ALWAYS_CLEAR:
            # An encrypted report cannot belong to the handshake (which is all clear): it is
            # left over from an earlier session whose keys we do not have.
            log.info("skipped a stray encrypted 0x%02x report during the handshake", report[0])
            skipped = _skip(hs, skipped)
            continue
        before = hs.state
        reply = hs.receive(report)
        if reply is not None:
            _write(transport, hs, reply)
        elif hs.state is before:  # a keepalive
            skipped = _skip(hs, skipped)
    assert hs.serial is not None  # set before DONE
    serial = hs.serial.rstrip(b"\0").decode("ascii", errors="replace")
    log.debug("encryption handshake done with reader %s", serial)
    return serial, hs.session
