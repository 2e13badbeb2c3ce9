"""The two checksums of the binary protocol.

``crc32_words``: every ATP frame and every compressed record. CRC-32/MPEG-2 parameters
(polynomial 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final XOR) computed the way the
STM32's CRC unit does it: the data is zero-padded to a multiple of 4 bytes and read as
little-endian 32-bit words, each word fed most significant byte first. Source of the
parameters: Tidepool's ``freeStyleLibreProtocol.js`` (a 16-entry nibble table of that
polynomial); checked against the 19 frames Tidepool captured with Wireshark
(tests/data/tidepool).

``crc16_record``: every database record (common header + body, without the table-id byte
and without the CRC itself). Polynomial 0x1021 processed LSB first (the reflected CCITT
table), init 0xFFFF, and the result *not* reflected back (refin=true, refout=false, no final
XOR): that is the 16-bit residue with its bits reversed. Source: Tidepool's
``freeStyleLibreData.js``; checked against its four real history records.

Both are table-driven over bytes. (A generic CRC package was tried first; it needed 1.5 ms
per record, which made a 90-day read take a minute.)
"""

from __future__ import annotations


def _table32(poly: int) -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ poly if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
        out.append(crc)
    return tuple(out)


def _table16_reflected(poly_reflected: int) -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly_reflected if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_T32 = _table32(0x04C11DB7)
_T16 = _table16_reflected(0x8408)  # 0x1021 with its bits reversed
_REVERSE8 = tuple(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _words_msb_first(data: bytes) -> bytes:
    padded = data + bytes(-len(data) % 4)
    swapped = bytearray(len(padded))
    swapped[0::4] = padded[3::4]
    swapped[1::4] = padded[2::4]
    swapped[2::4] = padded[1::4]
    swapped[3::4] = padded[0::4]
    return bytes(swapped)


def crc32_words(data: bytes) -> int:
    """The STM32-style CRC32 of ``data`` (see the module docstring)."""
    crc = 0xFFFFFFFF
    table = _T32
    for byte in _words_msb_first(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def crc16_record(data: bytes) -> int:
    """The record CRC16 of ``data`` (see the module docstring)."""
    crc = 0xFFFF
    table = _T16
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    # the residue's 16 bits in reverse order
    return (_REVERSE8[crc & 0xFF] << 8) | _REVERSE8[crc >> 8]
