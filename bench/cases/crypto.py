"""Libre 2/3 report encryption: ours against freestyle-hid's, same reports, same keys.

For N random reports under random session keys, best of R interleaved rounds:

* seal: sealing reports as the reader does, each with its own sequence number and so its
  own CTR nonce (our ``SessionCipher("device").seal`` against the same report built with
  freestyle-hid's ``SpeckEncrypt.encrypt`` + ``SpeckCMAC.sign``). The host direction is not
  timed: its nonce never changes (sequence 0), so our one-entry keystream cache would make it
  a cache benchmark rather than a cipher one.
* open: verifying and decrypting reader reports, each with its own sequence number (our
  ``SessionCipher("host").open`` against freestyle-hid's ``Session.decrypt_message``).

The outputs are compared first, so a fast wrong answer cannot win.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from libre_usb.protocol.crypto.link import ALWAYS_CLEAR, SessionCipher

from ..core import Context, Row, case, have_freestyle_hid, interleaved


@case("crypto")
def crypto(ctx: Context) -> Iterator[Row]:
    if not have_freestyle_hid():
        raise RuntimeError("needs freestyle-hid, the baseline: pip install -e '.[bench]'")
    from freestyle_hid import _session
    from freestyle_hid._freestyle_encryption import SpeckCMAC, SpeckEncrypt

    n = 500 if ctx.quick else 2000
    rng = random.Random(2023)
    enc_key, mac_key = rng.getrandbits(128), rng.getrandbits(128)
    types = [t for t in range(256) if t not in ALWAYS_CLEAR]
    reports = []
    for _ in range(n):
        payload = rng.randbytes(rng.randrange(55))
        reports.append((bytes([rng.choice(types), len(payload)]) + payload).ljust(64, b"\x00"))
    first_sequence = rng.getrandbits(31)

    their_speck, their_cmac = SpeckEncrypt(enc_key), SpeckCMAC(mac_key)

    def our_seal() -> list[bytes]:
        device = SessionCipher(enc_key, mac_key, "device", sequence=first_sequence)
        return [device.seal(report) for report in reports]

    def their_seal() -> list[bytes]:
        out = []
        for number, report in enumerate(reports, first_sequence):
            sealed = bytearray(report)
            sealed[56:60] = number.to_bytes(4, "little")
            # freestyle-hid's nonce for a report: its sequence field, big-endian, shifted
            # one byte left (the direction byte, 00 from the reader)
            sealed[1:56] = their_speck.encrypt(int.from_bytes(sealed[56:60], "big") << 8,
                                               report[1:56])
            sealed[60:64] = their_cmac.sign(bytes(sealed[:60])).to_bytes(8, "little")[4:]
            out.append(bytes(sealed))
        return out

    sealed = our_seal()
    if sealed != their_seal():
        raise RuntimeError("our sealed reports differ from freestyle-hid's")
    host = SessionCipher(enc_key, mac_key, "host")
    theirs: Any = object.__new__(_session.Session)
    theirs.crypt_enc, theirs.crypt_mac = their_speck, their_cmac
    for report in sealed:
        if host.open(report)[:56] != theirs.decrypt_message(report)[:56]:
            raise RuntimeError("open differs from freestyle-hid")
    t_ours, t_theirs = interleaved(ctx.rounds, our_seal, their_seal)
    yield Row("crypto: seal, a nonce per report", f"{n:,} reports", t_ours / n * 1e6,
              t_theirs / n * 1e6, "us/report", target=1.0)
    t_ours, t_theirs = interleaved(ctx.rounds, lambda: [host.open(r) for r in sealed],
                                   lambda: [theirs.decrypt_message(r) for r in sealed])
    yield Row("crypto: open", f"{n:,} reports", t_ours / n * 1e6, t_theirs / n * 1e6,
              "us/report", target=1.0)
