"""JSON in and out, with bounds: every JSON the tool reads or writes goes through here.

Reading (:func:`loads`, :class:`Budget`): input from outside (uploads, HAR and flow bodies,
saved dumps, transcript lines) may be a bomb made of structure rather than bytes: 250 MiB of
``[[],[],...]`` is under any byte limit and takes gigabytes as Python objects. So before
anything is parsed, the structural characters outside strings (``[``, ``{``, ``,``, ``:``,
each at most one value or member) are counted, incrementally as the bytes arrive (the count
runs at C speed: ``bytes.count`` between string literals), and more than
:data:`MAX_VALUES` is refused. Nesting deeper than :data:`MAX_DEPTH` is refused too;
``NaN``, ``Infinity`` and numbers that overflow a float (``1e999``) are not JSON and are
refused; integers longer than :data:`MAX_DIGITS` digits are refused; a lone surrogate
(``"\\udc80"``, not representable in UTF-8) is replaced by U+FFFD.

Writing (:func:`dumps`): strict JSON only. ``NaN``/``Infinity`` raise (they must never reach
a writer: values are range-checked where they enter the data model), and a string that
cannot be UTF-8 (a lone surrogate) is written as a ``\\u`` escape instead of failing.

Writing fast (:func:`dumps_fast`): the same text as :func:`dumps` with ``ensure_ascii=False``
and ``indent`` 1 (or one line), made by msgspec in C; the standard library's encoder with an
indent always takes its pure-Python path.

Sans-I/O: no files here; :mod:`libre_usb.inputs` reads files and pipes with a size bound.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import InputError

#: most structural tokens (values and members, roughly) one JSON input may have; a 90-day
#: dump is ~300,000, a HAR file with 20,000 unrelated requests ~1,000,000
MAX_VALUES = 4_000_000
#: deepest nesting (a real upload is 5 levels, a dump 4)
MAX_DEPTH = 64
#: longest integer literal (Python refuses to convert 4300 digits and more; values are
#: range-checked where they are used, with their path)
MAX_DIGITS = 4000

#: the rest of a string literal: anything but quote and backslash, or escapes (no nesting
#: of quantifiers over overlapping alternatives: linear)
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
#: a lone surrogate (compiled on first use, by re: rare, and costly to compile at start-up)
_SURROGATE = "[\ud800-\udfff]"
#: bytes split at once when counting text without escapes (Budget._split)
_WINDOW = 1 << 16


class Budget:
    """Counts the structure of JSON text fed in pieces; raises past :data:`MAX_VALUES`.

    ``feed`` may be called with any split of the bytes (a string literal or an escape
    may straddle two pieces)."""

    def __init__(self, label: str, max_values: int = MAX_VALUES) -> None:
        self.label = label
        self.max_values = max_values
        self.values = 0
        self._in_string = False
        self._carry = b""

    def feed(self, data: bytes) -> None:
        if self._carry:
            data = self._carry + data
            self._carry = b""
        if b"\\" in data:
            self._scan(data)
        else:
            self._split(data)

    def _split(self, data: bytes) -> None:
        """:meth:`_scan` of text without a backslash: with no escape, every quote opens or
        closes a string, so the pieces between quotes are outside and inside strings by
        turns, and counting is a split and four counts in C (64 KiB at a time: the pieces
        are a copy, and inputs are bounded by the memory they take).
        A test compares both on random text cut at random."""
        for start in range(0, len(data), _WINDOW):
            pieces = (data if len(data) <= _WINDOW else data[start:start + _WINDOW]).split(b'"')
            inside = self._in_string
            outside = b"".join(pieces[1::2] if inside else pieces[0::2])
            self.values += (outside.count(b",") + outside.count(b"[") + outside.count(b"{")
                            + outside.count(b":") + (len(pieces) - inside) // 2)  # strings
            self._in_string = inside != (len(pieces) % 2 == 0)  # an odd number of quotes
            self._check()

    def _scan(self, data: bytes) -> None:
        pos, end = 0, len(data)
        count = 0
        while pos < end:
            if self._in_string:
                match = _STRING_REST.match(data, pos)
                assert match is not None  # the pattern matches the empty string
                pos = match.end()
                if pos >= end:
                    break
                if data[pos] == 0x22:  # the closing quote
                    self._in_string = False
                    pos += 1
                    continue
                self._carry = data[pos:]  # a backslash at the very end: wait for the rest
                break
            quote = data.find(b'"', pos)
            stop = end if quote < 0 else quote
            count += (data.count(b",", pos, stop) + data.count(b"[", pos, stop)
                      + data.count(b"{", pos, stop) + data.count(b":", pos, stop))
            if quote < 0:
                break
            self._in_string = True
            count += 1  # a string is a value (or a key)
            pos = quote + 1
        self.values += count
        self._check()

    def _check(self) -> None:
        if self.values > self.max_values:
            raise InputError(f"{self.label}: more than {self.max_values} JSON values "
                             "(a bomb made of structure?); refused")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:24]}{'...' if len(text) > 24 else ''} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"integer of {len(text)} digits is out of range")
    return int(text)


def _check_depth(value: Any, limit: int, label: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InputError(f"{label}: JSON nested too deeply (limit {limit})")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))


def _fix_surrogates(value: Any) -> Any:
    """Lone surrogates (only ``\\u`` escapes make them) replaced by U+FFFD."""
    if isinstance(value, str):
        return re.sub(_SURROGATE, "\ufffd", value)
    if isinstance(value, list):
        return [_fix_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_fix_surrogates(key): _fix_surrogates(item) for key, item in value.items()}
    return value


def loads(text: str | bytes, label: str, *, max_depth: int = MAX_DEPTH,
          max_values: int = MAX_VALUES, counted: bool = False) -> Any:
    """JSON text -> value, bounded (see the module docstring); InputError naming ``label``.

    ``counted``: the caller already fed the same bytes through a :class:`Budget`."""
    if isinstance(text, bytes):
        if not counted:
            Budget(label, max_values).feed(text)
        if text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    elif not counted:
        Budget(label, max_values).feed(text.encode("utf-8", "surrogatepass"))
    text = text.removeprefix("\ufeff")
    import json  # here: a dump, written by msgspec, never needs it (1-2 ms of start-up)

    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                           parse_int=_bounded_int)
    except RecursionError:
        raise InputError(f"{label}: JSON nested too deeply (limit {max_depth})") from None
    except ValueError as exc:
        raise InputError(" ".join(f"{label}: invalid JSON: {exc}".split())) from None
    _check_depth(value, max_depth, label)
    if "\\u" in text and re.search(r"\\u[dD][89a-fA-F]", text):
        value = _fix_surrogates(value)
    return value


def dumps(value: Any, **options: Any) -> str:
    """Strict JSON text: never ``NaN``/``Infinity`` (ValueError), never unencodable text."""
    import json  # here: see loads

    options.setdefault("ensure_ascii", False)
    text = json.dumps(value, allow_nan=False, **options)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: keep it as a \\u escape
            text = json.dumps(value, allow_nan=False, **{**options, "ensure_ascii": True})
    return text


__all__ = ["MAX_DEPTH", "MAX_DIGITS", "MAX_VALUES", "Budget", "dumps", "dumps_fast", "loads"]


def dumps_fast(value: Any, indent: int = 0, default: Any = None) -> bytes:
    """``value`` as UTF-8 JSON text, byte for byte what :func:`dumps` writes with
    ``ensure_ascii=False`` and ``indent=indent`` (0: one line, ``", "`` and ``": "``
    between items), but made by msgspec. A value msgspec will not write (a string with a
    lone surrogate) goes through :func:`dumps` (with ``default`` for what the standard
    library cannot write), which escapes it: strict JSON either way. Floats must be finite
    (values are range-checked where they enter the data model): msgspec would write
    ``null`` where :func:`dumps` raises. One spelling differs: a float below 1e-4 in
    magnitude (msgspec ``0.00001``, the standard library ``1e-05``; the same number). No
    reader value is that small; one can only come from a hand-edited saved dump."""
    import msgspec

    try:
        return msgspec.json.format(msgspec.json.encode(value), indent=indent)
    except (msgspec.EncodeError, UnicodeError):
        return dumps(value, indent=indent or None, default=default).encode("utf-8")
