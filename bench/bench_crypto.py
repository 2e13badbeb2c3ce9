"""Libre 2/3 report encryption: libre-dump vs freestyle-hid, side by side in one process.

For the same N random 64-byte reports under the same random session keys it times:

* seal:  our SessionCipher("host").seal        vs freestyle-hid Session.encrypt_message
* open:  our SessionCipher("host").open        vs freestyle-hid Session.decrypt_message
         (reader reports with distinct sequence numbers, so every report needs its own
         keystream; no cache helps)
* prims: our Speck.ctr + Cmac.tag per report   vs freestyle-hid SpeckEncrypt.encrypt +
         SpeckCMAC.sign, each report with its own nonce

and prints the best of R rounds per side and the speed-up (their time / our time). The outputs
are compared first, so a fast wrong answer cannot win.

Run: python3 bench/bench_crypto.py [--reports N] [--rounds R]   (needs freestyle-hid)
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from libre_usb.protocol.crypto.link import ALWAYS_CLEAR, SessionCipher
from libre_usb.protocol.crypto.primitives import Cmac, Speck

try:
    from freestyle_hid import _session as fsh_session
    from freestyle_hid._freestyle_encryption import SpeckCMAC, SpeckEncrypt
except ImportError:
    sys.exit("bench_crypto needs freestyle-hid as the baseline: pip install 'libre-dump[dev]'")


def best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(2023)
    enc_key, mac_key = rng.getrandbits(128), rng.getrandbits(128)
    types = [t for t in range(256) if t not in ALWAYS_CLEAR]
    reports = []
    for _ in range(args.reports):
        payload = rng.randbytes(rng.randrange(55))
        reports.append((bytes([rng.choice(types), len(payload)]) + payload).ljust(64, b"\x00"))

    ours_host = SessionCipher(enc_key, mac_key, "host")
    reader = SessionCipher(enc_key, mac_key, "device", sequence=rng.getrandbits(31))
    from_reader = [reader.seal(report) for report in reports]

    theirs: Any = object.__new__(fsh_session.Session)
    theirs.crypt_enc = SpeckEncrypt(enc_key)
    theirs.crypt_mac = SpeckCMAC(mac_key)

    # Same answers first.
    for report, sealed in zip(reports, from_reader, strict=True):
        if ours_host.seal(report) != theirs.encrypt_message(report):
            sys.exit(f"seal differs from freestyle-hid on {report.hex()}")
        if ours_host.open(sealed)[:56] != theirs.decrypt_message(sealed)[:56]:
            sys.exit(f"open differs from freestyle-hid on {sealed.hex()}")

    nonces = [rng.randbytes(8) for _ in reports]
    our_speck, our_cmac = Speck(enc_key), Cmac(mac_key)
    their_speck, their_cmac = SpeckEncrypt(enc_key), SpeckCMAC(mac_key)

    def our_prims() -> None:
        for nonce, report in zip(nonces, reports, strict=True):
            our_speck.ctr(nonce, report[1:56])
            our_cmac.tag(report[:60])

    def their_prims() -> None:
        for nonce, report in zip(nonces, reports, strict=True):
            their_speck.encrypt(int.from_bytes(nonce, "big"), report[1:56])
            their_cmac.sign(report[:60])

    rows = [
        (
            "seal (host->reader)",
            lambda: [ours_host.seal(r) for r in reports],
            lambda: [theirs.encrypt_message(r) for r in reports],
        ),
        (
            "open (reader->host)",
            lambda: [ours_host.open(r) for r in from_reader],
            lambda: [theirs.decrypt_message(r) for r in from_reader],
        ),
        ("CTR + CMAC primitives", our_prims, their_prims),
    ]
    n = args.reports
    print(f"{n} reports, best of {args.rounds} rounds, Python {sys.version.split()[0]}")
    print(f"{'':24}{'ours us/report':>16}{'freestyle-hid':>16}{'speed-up':>10}")
    for name, ours, baseline in rows:
        t_ours = best_of(args.rounds, ours)
        t_theirs = best_of(args.rounds, baseline)
        print(
            f"{name:24}{t_ours / n * 1e6:16.1f}{t_theirs / n * 1e6:16.1f}{t_theirs / t_ours:9.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
