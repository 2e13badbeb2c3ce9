#!/usr/bin/env python3
"""Write the ELF ``vmlinux`` hidden in an xz-compressed x86 ``bzImage``.

Debian's kernels compress the image with xz. Booting the plain ELF through PVH
(``qemu -kernel vmlinux``) skips the in-guest decompression, which is slow under
TCG. The xz stream starts somewhere inside the bzImage: try every xz magic until
one decompresses to an ELF file.

usage: extract_vmlinux.py VMLINUZ OUT
"""

from __future__ import annotations

import lzma
import sys
from pathlib import Path

XZ_MAGIC = b"\xfd7zXZ\x00"


def extract(image: bytes) -> bytes:
    start = image.find(XZ_MAGIC)
    while start != -1:
        try:
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[start:])
        except lzma.LZMAError:
            elf = b""
        if elf.startswith(b"\x7fELF"):
            return elf
        start = image.find(XZ_MAGIC, start + 1)
    raise SystemExit("extract_vmlinux: no xz-compressed ELF kernel found")


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: extract_vmlinux.py VMLINUZ OUT")
    Path(argv[2]).write_bytes(extract(Path(argv[1]).read_bytes()))


if __name__ == "__main__":
    main(sys.argv)
