"""Byte streams cut the ways a reader's reports cut them, for the reply assembler's tests."""

from __future__ import annotations


def chunked(stream: bytes, sizes: list[int]) -> list[bytes]:
    """``stream`` cut into pieces of ``sizes[0]``, ``sizes[1]``, ... bytes, cycling."""
    out, at, index = [], 0, 0
    while at < len(stream):
        size = sizes[index % len(sizes)]
        out.append(stream[at : at + size])
        at += size
        index += 1
    return out
