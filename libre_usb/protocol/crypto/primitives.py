"""Speck64/128, CMAC, CTR mode and the key derivation used by Libre 2/3 readers.

Written from the description in protocol.md section 5.1 (itself restated from freestyle-hid
1.1.x and the Speck paper), not from anyone's code. Pure functions of their inputs: no I/O,
no randomness, no clock.

Conventions (all checked against freestyle-hid and the Speck paper vector in the tests):

* **Block cipher**: Speck64/128, 32-bit words, 27 rounds, rotations alpha = 8 (right) and
  beta = 3 (left). A key is a 128-bit integer; its low 32 bits are round key 0 and the next
  three words up are l0, l1, l2. A 64-bit block integer splits as x = high word,
  y = low word.
* **Bytes**: an 8-byte block is read as a little-endian 64-bit integer, encrypted, and
  written back little-endian (``Speck.encrypt_block``).
* **CMAC** (OMAC1) over the byte cipher, 8-byte blocks, Rb = 0x1B; the subkey doubling works
  on the *big-endian* view of the 8 bytes. ``Cmac.tag`` returns the 8-byte tag T.
* **CTR**: keystream block i is E(N + i) where the 8-byte nonce N is read as a little-endian
  counter (so its first byte increments first), wrapping modulo 2**64.
* **KDF**: ``derive(master, label, context)``, see its docstring.

Speed: everything runs on plain Python ints; the round keys and the CMAC subkeys are
computed once per key object, so build one ``Speck``/``Cmac`` per key and reuse it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = [
    "BLOCK_SIZE",
    "ROUNDS",
    "Cmac",
    "Speck",
    "derive",
]

BLOCK_SIZE = 8
ROUNDS = 27

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_M128 = (1 << 128) - 1
_CMAC_RB = 0x1B

_U64 = struct.Struct("<Q")
# Counter blocks encrypted side by side per big-integer pass (see Speck._keystream_lanes).
_MAX_LANES = 16


def _byteswap64(value: int) -> int:
    """The same 8 bytes read with the other byte order."""
    return int.from_bytes(value.to_bytes(8, "little"), "big")


def _expand_key(key: int) -> tuple[int, ...]:
    """The 27 round keys of Speck64/128 (standard key schedule)."""
    if not 0 <= key <= _M128:
        raise ValueError(f"a Speck64/128 key is a 128-bit unsigned integer, got {key:#x}")
    k = key & _M32
    ls = [(key >> 32) & _M32, (key >> 64) & _M32, (key >> 96) & _M32]
    round_keys = [k]
    for i in range(ROUNDS - 1):
        l_i = ls[i]
        new_l = ((k + ((l_i >> 8) | (l_i << 24))) & _M32) ^ i
        ls.append(new_l)
        k = (((k << 3) | (k >> 29)) & _M32) ^ new_l
        round_keys.append(k)
    return tuple(round_keys)


class Speck:
    """Speck64/128 under one key, with the round keys computed once.

    >>> hex(Speck(0x1B1A1918131211100B0A090803020100).encrypt_int(0x3B7265747475432D))
    '0x8c6fa548454e028b'
    """

    __slots__ = ("_lane_keys", "_round_keys", "key")

    def __init__(self, key: int) -> None:
        self.key = key
        self._round_keys: Sequence[int] = _expand_key(key)
        self._lane_keys: dict[int, tuple[int, tuple[int, ...]]] = {}

    def encrypt_int(self, block: int) -> int:
        """Encrypt one block given as a 64-bit integer (x = high word, y = low word)."""
        x = (block >> 32) & _M32
        y = block & _M32
        for k in self._round_keys:
            # The bits the rotation leaves above bit 31 cannot reach the low 32 bits of the
            # sum, so one mask after the addition is enough.
            x = ((x >> 8 | x << 24) + y & _M32) ^ k
            y = (y << 3 | y >> 29) & _M32 ^ x
        return (x << 32) | y

    def decrypt_int(self, block: int) -> int:
        """Invert :meth:`encrypt_int` (not used by the protocol; kept for checks)."""
        x = (block >> 32) & _M32
        y = block & _M32
        for k in reversed(self._round_keys):
            y ^= x
            y = ((y >> 3) | (y << 29)) & _M32
            x = ((x ^ k) - y) & _M32
            x = ((x << 8) | (x >> 24)) & _M32
        return (x << 32) | y

    def encrypt_block(self, block: bytes) -> bytes:
        """Encrypt one 8-byte block, read and written as a little-endian integer."""
        if len(block) != BLOCK_SIZE:
            raise ValueError(f"a Speck64 block is 8 bytes, got {len(block)}")
        return _U64.pack(self.encrypt_int(_U64.unpack(block)[0]))

    def keystream(self, nonce: bytes, length: int) -> bytes:
        """The first ``length`` bytes of the CTR keystream for this 8-byte nonce."""
        if len(nonce) != BLOCK_SIZE:
            raise ValueError(f"a CTR nonce is 8 bytes, got {len(nonce)}")
        if length < 0:
            raise ValueError(f"a keystream length cannot be negative, got {length}")
        counter = _U64.unpack(nonce)[0]
        nblocks = -(-length // BLOCK_SIZE)
        parts = []
        for first in range(0, nblocks, _MAX_LANES):
            lanes = min(_MAX_LANES, nblocks - first)
            parts.append(self._keystream_lanes((counter + first) & _M64, lanes))
        return b"".join(parts)[:length]

    def _keystream_lanes(self, counter: int, lanes: int) -> bytes:
        """Encrypt the counter blocks counter .. counter+lanes-1 all at once.

        The blocks travel side by side in one big integer, one 64-bit lane per block with the
        32-bit word in the low half of its lane and the high half as guard bits: the
        rotations spill only into guard bits (masked off before the addition) and the carry
        of the addition stops in its own lane's first guard bit. The result, each lane being
        y | x << 32, is exactly the little-endian bytes of the encrypted blocks.
        """
        cached = self._lane_keys.get(lanes)
        if cached is None:
            cached = self._replicate(lanes)
        mask, lane_keys = cached
        blocks = [(counter + i) & _M64 for i in range(lanes)]
        packed = int.from_bytes(struct.pack(f"<{lanes}Q", *blocks), "little")
        y = packed & mask
        x = (packed >> 32) & mask
        for k in lane_keys:
            # Mask the rotation before adding: guard bits full of ones plus a carry would
            # otherwise ripple into the next lane.
            x = ((x >> 8 | x << 24) & mask) + y & mask ^ k
            y = (y << 3 | y >> 29) & mask ^ x
        return (y | x << 32).to_bytes(lanes * BLOCK_SIZE, "little")

    def _replicate(self, lanes: int) -> tuple[int, tuple[int, ...]]:
        """The lane mask and the round keys copied into every lane, cached per lane count."""
        ones = sum(1 << (64 * i) for i in range(lanes))
        entry = (_M32 * ones, tuple(k * ones for k in self._round_keys))
        self._lane_keys[lanes] = entry
        return entry

    def ctr(self, nonce: bytes, data: bytes) -> bytes:
        """CTR-mode encrypt (or, identically, decrypt) ``data`` under this 8-byte nonce."""
        stream = self.keystream(nonce, len(data))
        n = len(data)
        return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
            n, "little"
        )


class Cmac:
    """CMAC (OMAC1) over Speck64/128 with the subkeys computed once.

    Internally a block is kept as the little-endian integer of its 8 bytes, which makes the
    XORs of the chaining plain integer XORs and the cipher call :meth:`Speck.encrypt_int`.
    """

    __slots__ = ("_k1", "_k2", "cipher")

    def __init__(self, key: int) -> None:
        self.cipher = Speck(key)
        # L = E(0^8); dbl() on the big-endian view of L's bytes.
        big_l = _byteswap64(self.cipher.encrypt_int(0))
        big_k1 = ((big_l << 1) & _M64) ^ (_CMAC_RB if big_l >> 63 else 0)
        big_k2 = ((big_k1 << 1) & _M64) ^ (_CMAC_RB if big_k1 >> 63 else 0)
        self._k1 = _byteswap64(big_k1)
        self._k2 = _byteswap64(big_k2)

    def tag(self, data: bytes) -> bytes:
        """The 8-byte CMAC tag T of ``data`` (any length, including empty)."""
        n = len(data)
        full, rest = divmod(n, BLOCK_SIZE)
        if rest == 0 and full > 0:
            # The last block is complete: XOR it with K1.
            full -= 1
            last = _U64.unpack_from(data, full * BLOCK_SIZE)[0] ^ self._k1
        else:
            # Pad with 80 00 .. and XOR with K2 (also for the empty message).
            tail = data[full * BLOCK_SIZE :] + b"\x80" + bytes(BLOCK_SIZE - 1 - rest)
            last = _U64.unpack(tail)[0] ^ self._k2
        encrypt = self.cipher.encrypt_int
        c = 0
        if full:
            for block in struct.unpack_from(f"<{full}Q", data):
                c = encrypt(c ^ block)
        return _U64.pack(encrypt(c ^ last))


def derive(master: int, label: bytes, context: bytes) -> int:
    """Derive a 128-bit key from ``master`` (protocol.md 5.1, KDF).

    With CMAC keyed by ``master``: T1 = CMAC(01 || label || 00 || context || 80 00) and T2 the
    same with a leading 02. The result is the little-endian integer of T1 || T2, so T1 holds
    round key 0 and l0. Labels are ``AuthrEnc``, ``AuthrMAC``, ``SessnEnc``, ``SessnMAC``.
    (A counter-mode KDF in the style of NIST SP 800-108 with an 8-bit counter and the output
    length 0x0080 = 128 bits.)
    """
    mac = Cmac(master)
    body = bytes(label) + b"\x00" + bytes(context) + b"\x80\x00"
    t1 = mac.tag(b"\x01" + body)
    t2 = mac.tag(b"\x02" + body)
    return int.from_bytes(t1 + t2, "little")
