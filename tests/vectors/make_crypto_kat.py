"""Write tests/vectors/crypto_kat.json: known answers for the Libre 2/3 crypto, from an oracle.

The oracle is freestyle-hid (``freestyle_hid._freestyle_encryption`` and, for the handshake
and the report layout, its ``Session`` class driven through a scripted fake HID handle). All
keys are RANDOM test keys from a seeded generator, never Abbott's keys, so the JSON can be
committed and the test that reads it needs no freestyle-hid.

Run:  python3 tests/vectors/make_crypto_kat.py   (needs freestyle-hid; output is deterministic)
"""

from __future__ import annotations

import json
import random
import sys
import types
from importlib.metadata import version
from pathlib import Path
from typing import Any
from unittest import mock

from freestyle_hid import _session as fsh_session
from freestyle_hid._freestyle_encryption import SpeckCMAC, SpeckEncrypt

SEED = 0x11B2E
OUT = Path(__file__).with_name("crypto_kat.json")
LABELS = [b"AuthrEnc", b"AuthrMAC", b"SessnEnc", b"SessnMAC"]


def fsh_iv(nonce: bytes) -> int:
    """freestyle-hid takes the CTR nonce as the big-endian integer of its 8 bytes."""
    return int.from_bytes(nonce, "big")


def pad(report: bytes) -> bytes:
    return report + bytes(64 - len(report))


class ScriptedHandle:
    """Stands in for freestyle-hid's HID handle: records writes, plays scripted reads."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self.written: list[bytes] = []

    def write(self, report: bytes) -> None:
        assert report[0] == 0, "freestyle-hid writes report number 0 first"
        self.written.append(bytes(report[1:]))

    def read(self, size: int = 64) -> bytes:
        return self.replies.pop(0)


def fsh_session_with(handle: ScriptedHandle) -> Any:
    session = object.__new__(fsh_session.Session)
    session._handle = handle
    session._encrypted_protocol = True
    session._text_message_type = 0x60
    session._text_reply_message_type = 0x60
    session._encoding = "ascii"
    return session


def block_cases(rng: random.Random) -> list[dict[str, str]]:
    cases = []
    for _ in range(32):
        key = rng.getrandbits(128)
        plain = rng.getrandbits(64)
        cases.append(
            {
                "key": f"{key:032x}",
                "plaintext": f"{plain:016x}",
                "ciphertext": f"{SpeckEncrypt(key).encrypt_block(plain):016x}",
            }
        )
    return cases


def cmac_cases(rng: random.Random) -> list[dict[str, str]]:
    cases = []
    # Every length class: partial single block, exact blocks, partial after full blocks.
    lengths = [1, 4, 7, 8, 9, 15, 16, 17, 20, 24, 26, 29, 31, 32, 33, 60] + [
        rng.randrange(1, 80) for _ in range(16)
    ]
    for length in lengths:
        key = rng.getrandbits(128)
        message = rng.randbytes(length)
        tag = SpeckCMAC(key).sign(message).to_bytes(8, "little")
        cases.append({"key": f"{key:032x}", "message": message.hex(), "tag": tag.hex()})
    return cases


def ctr_cases(rng: random.Random) -> list[dict[str, str]]:
    cases = []
    nonces = [bytes(7) + b"\xff", b"\xff" * 8, b"\xfe" + b"\xff" * 7, bytes(8)]
    nonces += [rng.randbytes(8) for _ in range(28)]
    for nonce in nonces:
        key = rng.getrandbits(128)
        plain = rng.randbytes(rng.randrange(1, 70))
        cipher = SpeckEncrypt(key).encrypt(fsh_iv(nonce), plain)
        cases.append(
            {
                "key": f"{key:032x}",
                "nonce": nonce.hex(),
                "plaintext": plain.hex(),
                "ciphertext": cipher.hex(),
            }
        )
    return cases


def derive_cases(rng: random.Random) -> list[dict[str, str]]:
    cases = []
    for i in range(24):
        master = rng.getrandbits(128)
        label = LABELS[i % 4] if i < 20 else rng.randbytes(8)
        context = rng.randbytes(13 if i % 2 else 29)
        key = SpeckCMAC(master).derive(label, context)
        cases.append(
            {
                "master": f"{master:032x}",
                "label": label.hex(),
                "context": context.hex(),
                "key": f"{key:032x}",
            }
        )
    return cases


def host_to_device_case(rng: random.Random) -> dict[str, str]:
    """freestyle-hid's own encrypt_message on a text command."""
    enc, mac = rng.getrandbits(128), rng.getrandbits(128)
    session = fsh_session_with(ScriptedHandle([]))
    session.crypt_enc = SpeckEncrypt(enc)
    session.crypt_mac = SpeckCMAC(mac)
    clear = fsh_session._FREESTYLE_MESSAGE.build(
        {"message_type": 0x60, "command": b"$history?", "mac": 0}
    )
    sealed = session.encrypt_message(clear)
    return {
        "session_enc": f"{enc:032x}",
        "session_mac": f"{mac:032x}",
        "clear": bytes(clear).hex(),
        "sealed": bytes(sealed).hex(),
    }


def device_to_host_case(rng: random.Random) -> dict[str, Any]:
    """A reader report built from freestyle-hid's primitives and opened by its decrypt_message."""
    enc, mac = rng.getrandbits(128), rng.getrandbits(128)
    sequence = rng.getrandbits(32)
    seq = sequence.to_bytes(4, "little")
    payload = b"MAGA987-J0123\r\nCKSM:000003C5\r\nCMD OK\r\n"[:54]
    clear = pad(bytes([0x60, len(payload)]) + payload)
    body = SpeckEncrypt(enc).encrypt(fsh_iv(b"\x00\x00\x00" + seq + b"\x00"), clear[1:56])
    head = clear[:1] + body + seq
    sealed = head + SpeckCMAC(mac).sign(head).to_bytes(8, "little")[4:]
    session = fsh_session_with(ScriptedHandle([]))
    session.crypt_enc = SpeckEncrypt(enc)
    session.crypt_mac = SpeckCMAC(mac)
    opened = session.decrypt_message(sealed)  # asserts the MAC
    assert opened[:56] == clear[:56]
    return {
        "session_enc": f"{enc:032x}",
        "session_mac": f"{mac:032x}",
        "sequence": sequence,
        "clear": clear.hex(),
        "sealed": sealed.hex(),
    }


def handshake_case(rng: random.Random) -> dict[str, str]:
    """freestyle-hid's Session.encryption_handshake against scripted reader replies."""
    keys = [rng.getrandbits(128) for _ in range(4)]
    serial = bytes(rng.choice(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(13))
    reader_nonce, iv, host_nonce, iv2 = (rng.randbytes(n) for n in (8, 7, 8, 7))
    auth_enc = SpeckEncrypt(SpeckCMAC(keys[0]).derive(b"AuthrEnc", serial))
    auth_mac = SpeckCMAC(SpeckCMAC(keys[1]).derive(b"AuthrMAC", serial))
    serial_reply = pad(b"\x06\x0e" + serial + b"\x00")
    challenge = pad(b"\x33\x10\x16" + reader_nonce + iv)
    head = b"\x33\x22\x18" + auth_enc.encrypt(fsh_iv(b"\x00" + iv2), host_nonce + reader_nonce)
    head += iv2
    accepted = pad(head + auth_mac.sign(head).to_bytes(8, "little") + bytes(2))

    handle = ScriptedHandle([serial_reply, challenge, accepted])
    session = fsh_session_with(handle)
    fake_keys = types.SimpleNamespace(
        AUTHORIZATION_ENCRYPTION_KEY=keys[0],
        AUTHORIZATION_MAC_KEY=keys[1],
        SESSION_ENCRYPTION_KEY=keys[2],
        SESSION_MAC_KEY=keys[3],
    )
    fake_random = types.SimpleNamespace(randbytes=lambda n: host_nonce)
    with (
        mock.patch.object(fsh_session, "libre2_keys", fake_keys, create=True),
        mock.patch.object(fsh_session, "random", fake_random),
    ):
        session.encryption_handshake()  # raises if our scripted acceptance were wrong
    written = [pad(report) for report in handle.written]
    return {
        "auth_enc": f"{keys[0]:032x}",
        "auth_mac": f"{keys[1]:032x}",
        "session_enc": f"{keys[2]:032x}",
        "session_mac": f"{keys[3]:032x}",
        "serial": serial.hex(),
        "reader_nonce": reader_nonce.hex(),
        "iv": iv.hex(),
        "host_nonce": host_nonce.hex(),
        "iv2": iv2.hex(),
        "host_reports": [report.hex() for report in written],
        "device_reports": [serial_reply.hex(), challenge.hex(), accepted.hex()],
        "session_enc_key": f"{session.crypt_enc.key:032x}",
        "session_mac_key": f"{session.crypt_mac.cipher.key:032x}",
    }


def main() -> int:
    rng = random.Random(SEED)
    data = {
        "about": (
            "Known answers for libre_usb.protocol.crypto.primitives/encryption, computed by "
            "freestyle-hid as the oracle with RANDOM keys (not Abbott's). Integers are hex, "
            "byte strings are hex. Regenerate with tests/vectors/make_crypto_kat.py."
        ),
        "oracle": f"freestyle-hid {version('freestyle-hid')}",
        "seed": SEED,
        "block": block_cases(rng),
        "cmac": cmac_cases(rng),
        "ctr": ctr_cases(rng),
        "derive": derive_cases(rng),
        "report_host_to_device": host_to_device_case(rng),
        "report_device_to_host": device_to_host_case(rng),
        "handshake": [handshake_case(rng) for _ in range(3)],
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
