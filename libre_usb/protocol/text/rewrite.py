"""Rewriting a text reply for a shareable transcript, sans-I/O.

A shareable transcript (``--record FILE --redact``) must still verify and replay, so the
text replies in it are rewritten, not cut: the bytes that could identify someone are
replaced by a placeholder of the same length and character class (:func:`mask`), and the
``CKSM:`` checksum and the multi-record trailer are computed again over the new bytes.

Because every placeholder has the length of what it replaces, a rewritten reply has the
length of the original, byte for byte: it is written back into the same report payloads
(:func:`rewrite_reply`), so the report boundaries, keepalives and message types of the
original session are kept exactly.

What is identifying is not decided here: the caller passes a function that rewrites the
message lines (``libre_usb.output.redact`` has the rules). This module only knows the
framing: the checksum, the trailer, ``Log Empty``, the status line, and where the fields
of a record line begin and end (:func:`field_spans`, the same split as
:func:`~libre_usb.protocol.text.records.split_line`).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Callable, Sequence

from ...errors import ProtocolError
from .reply import (
    CRLF,
    LOG_EMPTY,
    TextReply,
    TextReplyAssembler,
    build_text_reply,
    byte_sum,
)

#: rewrites the message lines of a reply (record lines without their trailer); every
#: line must keep its length
LineRewriter = Callable[[tuple[bytes, ...]], tuple[bytes, ...]]

_UPPER = b"X"
_LOWER = b"x"
_DIGIT = b"#"
_OTHER = b"~"
#: the placeholder table: A-Z -> X, a-z -> x, 0-9 -> #, every byte >= 0x80 -> ~; everything
#: else (punctuation, spaces, commas, quotes, control characters) stays, so a masked text
#: keeps its length, its shape and every separator the line's layout depends on
_MASK = bytes(
    _UPPER[0] if 0x41 <= b <= 0x5A else _LOWER[0] if 0x61 <= b <= 0x7A
    else _DIGIT[0] if 0x30 <= b <= 0x39 else _OTHER[0] if b >= 0x80 else b
    for b in range(256)
)
_TRAILER = re.compile(rb"(\d{1,9}),([0-9A-Fa-f]{8})\Z")


def mask(data: bytes) -> bytes:
    """The placeholder for ``data``: each letter, digit and non-ASCII byte replaced by one
    byte of its class (``X``, ``x``, ``#``, ``~``), everything else kept. Same length, and
    stable: the same text always gets the same placeholder. A masked field never reads as
    a number (``#`` is not a digit), so masking an undecoded field cannot make a line
    decode differently."""
    return data.translate(_MASK)


def mask_text(text: str, encoding: str = "utf-8") -> str:
    """:func:`mask` of a decoded text, as the masked bytes decode (each non-ASCII
    character becomes one ``~`` per byte it takes in ``encoding``)."""
    return mask(text.encode(encoding, errors="replace")).decode("ascii")


# -- fields of a record line ----------------------------------------------------------------

def _separators_csv(text: str) -> list[int]:
    """Positions of the commas that separate fields, with ``"``-quoted fields as Python's
    csv module (default dialect) reads them."""
    seps: list[int] = []
    state = "start"
    for i, char in enumerate(text):
        if state == "quoted":
            if char == '"':
                state = "quote"
        elif char == ",":
            seps.append(i)
            state = "start"
        elif state == "quote":
            state = "quoted" if char == '"' else "plain"
        elif state == "start":
            state = "quoted" if char == '"' else "plain"
    return seps


def field_spans(line: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` byte offsets of each field of a record line, quotes included, split
    exactly as :func:`~libre_usb.protocol.text.records.split_line` splits it (plain commas,
    or csv quoting when the line has a ``"``; a lone CR or LF outside quotes makes the
    split plain again)."""
    # latin-1 maps each byte to one character, so offsets in the text are byte offsets;
    # the split depends on ASCII characters only, which UTF-8 decoding keeps in place
    text = line.decode("latin-1")
    seps: list[int]
    if '"' not in text:
        seps = [i for i, char in enumerate(text) if char == ","]
    else:
        try:
            next(csv.reader([text]))
            seps = _separators_csv(text)
        except csv.Error:
            if "\r" in text or "\n" in text:
                seps = [i for i, char in enumerate(text) if char == ","]
            else:  # pragma: no cover - csv fails only on line breaks with this dialect
                seps = _separators_csv(text)
    bounds = [-1, *seps, len(text)]
    return [(bounds[i] + 1, bounds[i + 1]) for i in range(len(bounds) - 1)]


def mask_fields(line: bytes, indices: set[int] | frozenset[int]) -> bytes:
    """``line`` with the fields at ``indices`` masked (:func:`mask`), separators kept."""
    out = bytearray(line)
    for index, (start, end) in enumerate(field_spans(line)):
        if index in indices:
            out[start:end] = mask(line[start:end])
    return bytes(out)


# -- a whole reply ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Rewritten:
    """The payloads of a rewritten reply and how it went."""

    payloads: list[bytes]
    #: "rewritten" (verified, rewritten, checksums recomputed), "empty" (``Log Empty``),
    #: "masked-records" (the ``CKSM:`` verified but the trailer did not: the records are
    #: masked whole, the trailer's count kept and its checksum made :data:`WRONG_SUM`, the
    #: ``CKSM:`` recomputed) or "masked" (the reply did not verify or never completed:
    #: masked whole, its ``CKSM:`` made :data:`WRONG_SUM`)
    how: str


def _message(lines: Sequence[bytes], fragment: bool) -> bytes:
    body = b"".join(line + CRLF for line in lines)
    return body[:-2] if fragment else body


def _rewrite_message(reply: TextReply, rewrite: LineRewriter, multirecord: bool
                     ) -> tuple[bytes, str]:
    lines = reply.lines
    if multirecord and lines == (LOG_EMPTY,):
        return reply.message, "empty"
    trailer: bytes | None = None
    if multirecord and lines and not reply.fragment:
        match = _TRAILER.match(lines[-1])
        body = lines[:-1]
        if match is None or byte_sum(_message(body, False)) != int(match.group(2), 16):
            # the CKSM verified, the trailer does not: keep that fault, hide the text
            return _mask_reply(reply.message), "masked-records"
        trailer = match.group(1)
    else:
        body = lines
    new = rewrite(tuple(body))
    if len(new) != len(body) or any(len(a) != len(b) for a, b in zip(new, body, strict=True)):
        raise ValueError("a rewritten line must keep its length")
    if trailer is not None:
        counted = _message(new, False)
        return counted + trailer + b",%08X" % byte_sum(counted) + CRLF, "rewritten"
    return _message(new, reply.fragment), "rewritten"


def rewrite_reply(payloads: Sequence[bytes], rewrite: LineRewriter, *,
                  multirecord: bool = False) -> Rewritten:
    """Rewrite the text reply carried by ``payloads`` (the payloads of the 0x60 reports
    that answered one command, in order).

    When the payloads hold one complete reply whose ``CKSM:`` (and, for a
    ``multirecord`` reply, trailer) verify, ``rewrite`` gets the message lines (record
    lines without the trailer) and returns them with placeholders; the checksum and
    trailer are computed again. Anything else (a reply that fails its checksum, one cut
    short, bytes after the status line) is masked whole: no letter or digit of it is kept
    and its checksum stays wrong (:data:`WRONG_SUM`), so a replay meets the same fault the
    session met.
    The result has exactly the payload lengths given.
    """
    stream = b"".join(payloads)
    assembler = TextReplyAssembler(max_bytes=max(len(stream), 1))
    consumed = 0
    reply: TextReply | None = None
    try:
        for payload in payloads:
            reply = assembler.feed(payload)
            consumed += len(payload)
            if reply is not None:
                consumed -= len(reply.trailing)
                break
    except ProtocolError:  # ChecksumError included
        reply = None
    if reply is None:
        return Rewritten(_split(_mask_reply(stream), payloads), "masked")
    message, how = _rewrite_message(reply, rewrite, multirecord)
    new = build_text_reply(message, reply.ok)
    if len(new) != consumed:  # pragma: no cover - the length rule above makes this impossible
        raise ValueError("a rewritten reply must keep its length")
    return Rewritten(_split(new + _mask_reply(stream[consumed:]), payloads), how)


#: the framing a session acts on: the checksum line, the status lines, ``Log Empty`` and a
#: trailer, each a whole line
_STRUCTURE = re.compile(
    rb"CKSM:[0-9A-Fa-f]{8}(?=\r\n)"
    rb"|(?:(?<=\n)|\A)(?:CMD OK|CMD Fail!|Log Empty|\d{1,9},[0-9A-Fa-f]{8})(?=\r\n)"
)


#: what replaces the checksum of a reply that did not verify: still wrong (a masked message,
#: all bytes under 0x7F, would need more than 30 MB to sum to it), and it keeps nothing of
#: the reader's value, which is a byte sum of the text it replaces
WRONG_SUM = b"FFFFFFFF"


def _mask_reply(data: bytes) -> bytes:
    """A reply we could not verify: every letter, digit and non-ASCII byte masked, except
    the framing a session acts on (``CKSM:``, ``CMD OK``/``CMD Fail!``, ``Log Empty``, a
    trailer's count), so a replay fails or recovers where the session did. The checksums
    in it become :data:`WRONG_SUM`."""
    out = bytearray(mask(data))
    for match in _STRUCTURE.finditer(data):
        kept = match.group(0)
        if kept.startswith(b"CKSM:") or b"," in kept:
            kept = kept[:-8] + WRONG_SUM
        out[match.start():match.end()] = kept
    return bytes(out)


def _split(data: bytes, like: Sequence[bytes]) -> list[bytes]:
    out: list[bytes] = []
    at = 0
    for payload in like:
        out.append(data[at : at + len(payload)])
        at += len(payload)
    return out
