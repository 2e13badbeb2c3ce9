"""Load captured uploads: raw request bodies, HAR 1.2 files and mitmproxy flow files.

The container is chosen by content, never by file name:

- a gzip (``1f 8b``), zlib (``78 ..``) or zstd stream is decompressed first, then looked at
  again; a raw deflate stream is recognised by trying to inflate its first bytes to JSON
- JSON (a UTF-8 BOM is ignored): a HAR file when it has ``log.entries``, else one request
  body, with or without the ``{"DeviceData": ...}`` envelope
- a tnetstring (``<digits>:``): a mitmproxy flow file, read with mitmproxy's own
  ``FlowReader`` (the optional ``mitm`` extra)

In HAR and flow files every request whose body holds a ``measurementLog`` is an upload; other
traffic is skipped. Bodies are decoded per ``Content-Encoding`` (gzip, deflate as zlib or
raw, br, zstd) and sniffed for gzip/zlib magic and base64 when the header is missing.

Everything is bounded: decompression is incremental and stops once the output passes
``max_bytes`` (default 256 MiB); compressed files are streamed, not read whole; plain JSON
files larger than ``max_bytes`` are refused; JSON nesting deeper than :data:`MAX_DEPTH` is
refused. Every failure is an :class:`~libre_usb.errors.InputError` with a one-line message
naming the file (and entry) it came from.

Secrets never leave this module: the value of ``UserToken`` (and of any key or request header
that names a token, password, cookie or authorization) is replaced by :data:`SECRET` as soon
as it is read; only its presence is kept.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import functools
import io
import os
import re
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, BinaryIO, ClassVar, cast

from .. import jsonsafe
from ..errors import InputError, MissingExtra
from ..inputs import Input, open_input

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: deepest JSON nesting accepted (a real upload is 5 levels deep)
MAX_DEPTH = jsonsafe.MAX_DEPTH
_CHUNK = 64 * 1024
#: what a secret value is replaced with
SECRET = "(present, not shown)"  # noqa: S105 - a marker, not a password
_MITM_HINT = "reading mitmproxy flow files needs: pip install 'libre-dump[mitm]'"

#: entry lists whose elements are parsed (anything else is kept and reported as unexplained)
ENTRY_LISTS = (
    "scheduledContinuousGlucoseEntries",
    "unscheduledContinuousGlucoseEntries",
    "currentGlucoseEntries",
    "bloodGlucoseEntries",
    "ketoneEntries",
    "insulinEntries",
    "foodEntries",
    "genericEntries",
)
_GLUCOSE_LISTS = {"scheduledContinuousGlucoseEntries", "unscheduledContinuousGlucoseEntries",
                  "currentGlucoseEntries", "bloodGlucoseEntries"}
#: extendedProperties that are booleans (JSON bools or the strings "true"/"false")
BOOL_PROPERTIES = ("isFirstAfterTimeChange", "lowOutOfRange", "highOutOfRange",
                   "isActionable", "isViewed", "canMerge")

_SECRET_NAME = re.compile(r"token|passw|secret|cookie|authori[sz]ation|api-?key|session",
                          re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """Whether a JSON key or header name carries a credential (its value is never shown)."""
    return bool(_SECRET_NAME.search(name))


# -- data types ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """Where an upload came from."""

    file: str
    #: ``body`` (a raw request body), ``har`` or ``mitmproxy``
    container: str
    #: HAR entry / flow index in the file (0-based)
    index: int | None = None
    method: str | None = None
    url: str | None = None
    host: str | None = None
    #: the server's address as the capture recorded it (IP:port), when known
    server_address: str | None = None
    #: when the request was sent (UTC), when known
    time: dt.datetime | None = None
    #: the compression the body arrived in ("gzip", "deflate", ...), None if plain
    encoding: str | None = None
    #: request headers in order; secret values are replaced by :data:`SECRET`
    headers: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        if self.container == "har":
            return f"{self.file} (HAR entry {self.index})"
        if self.container == "mitmproxy":
            return f"{self.file} (flow {self.index})"
        return self.file


@dataclasses.dataclass(frozen=True)
class ParsedTime:
    """A timestamp string taken apart: the wall clock it shows and its UTC offset."""

    text: str
    wall: dt.datetime  # naive
    #: the offset written in the string; None when it has none
    offset: dt.timedelta | None
    #: True when the string ends in ``Z`` (a UTC time, not a local one)
    zulu: bool

    @property
    def instant(self) -> dt.datetime | None:
        """The aware UTC instant, when the string has an offset (or ``Z``)."""
        if self.offset is None:
            return None
        return (self.wall - self.offset).replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class UploadEntry:
    """One element of a ``measurementLog`` entry list, checked and taken apart."""

    list_name: str
    index: int
    #: JSON path of the entry in its upload, e.g. ``DeviceData.measurementLog.foodEntries[3]``
    path: str
    data: Mapping[str, Any]
    record_number: int | None
    timestamp: ParsedTime | None
    #: ``extendedProperties.factoryTimestamp`` as an aware UTC instant
    factory: dt.datetime | None
    #: the values, normalised: mg_dl, mmol_l, trend, insulin_type, units, carbs_g, type, text
    values: Mapping[str, Any]
    #: boolean extendedProperties, parsed (see :data:`BOOL_PROPERTIES`)
    flags: Mapping[str, bool]

    @property
    def extended(self) -> Mapping[str, Any]:
        value = self.data.get("extendedProperties")
        return value if isinstance(value, dict) else {}


@dataclasses.dataclass(frozen=True)
class Upload:
    """One captured upload: its JSON (secrets scrubbed), where it came from, its entries."""

    data: dict[str, Any]
    source: Source
    #: size of the decoded body in bytes
    size: int
    #: ``"DeviceData."`` when the body has the envelope, else ``""``
    prefix: str
    entries: tuple[UploadEntry, ...]
    #: JSON paths of secret fields that were present (values scrubbed)
    secrets: tuple[str, ...] = ()

    @property
    def device_data(self) -> dict[str, Any]:
        inner = self.data.get("DeviceData") if self.prefix else self.data
        return inner if isinstance(inner, dict) else {}

    @property
    def measurement_log(self) -> dict[str, Any]:
        log = self.device_data.get("measurementLog")
        return log if isinstance(log, dict) else {}

    def label(self) -> str:
        return self.source.label()


class _Skip(Exception):
    """This HAR entry / flow is not an upload (internal)."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(label: str, message: str) -> InputError:
    return InputError(_one_line(f"{label}: {message}"))


# -- decompression --------------------------------------------------------------------------


class _Inflater:
    """Incremental gzip / zlib / raw-deflate decompression with an output limit."""

    _WBITS: ClassVar[dict[str, int]] = {"gzip": 31, "deflate": 15, "raw deflate": -15}

    def __init__(self, method: str, max_bytes: int, label: str) -> None:
        self.method = method
        self.wbits = self._WBITS[method]
        self.max_bytes = max_bytes
        self.label = label
        self.decomp = zlib.decompressobj(self.wbits)
        self.out = bytearray()
        self.started = False
        #: the first byte of a gzip member header that ended a read (its magic straddles)
        self.pending = b""
        #: counts the JSON structure as it inflates (a bomb made of structure stops early)
        self.budget: jsonsafe.Budget | None = None
        self.sniffed = False

    def feed(self, data: bytes) -> None:
        if self.pending:
            data, self.pending = self.pending + data, b""
        while data:
            if self.decomp.eof:
                if self.wbits == 31 and data == b"\x1f":
                    self.pending = data  # the magic of the next member straddles two reads
                    return
                if self.wbits == 31 and data[:2] == b"\x1f\x8b":
                    self.decomp = zlib.decompressobj(self.wbits)  # the next gzip member
                elif not data.strip(b"\0"):
                    return  # zero padding after the stream
                else:
                    raise _error(self.label, f"unexpected data after the end of the "
                                             f"{self.method} stream")
            self.started = True
            try:
                piece = self.decomp.decompress(data, self.max_bytes - len(self.out) + 1)
            except zlib.error as exc:
                raise _error(self.label, f"corrupt {self.method} data ({exc})") from None
            self.out += piece
            self._count(piece)
            if len(self.out) > self.max_bytes:
                raise _error(self.label, f"the {self.method} data expands past the "
                                         f"{self.max_bytes}-byte limit (a compression bomb?); "
                                         "stopped there (raise it with --max-bytes)")
            data = self.decomp.unused_data if self.decomp.eof else self.decomp.unconsumed_tail

    def _count(self, piece: bytes) -> None:
        if not self.sniffed and len(self.out) >= 16:
            self.sniffed = True
            if _looks_json(bytes(self.out[:16])):
                self.budget = jsonsafe.Budget(self.label)
                piece = bytes(self.out)
        if self.budget is not None:
            self.budget.feed(piece)

    def finish(self) -> bytes:
        if self.pending:
            raise _error(self.label, f"unexpected data after the end of the {self.method} "
                                     "stream")
        if not self.started or not self.decomp.eof:
            raise _error(self.label, f"truncated {self.method} data (the stream ends before "
                                     "its end marker)")
        return bytes(self.out)


def _inflate(chunks: Iterable[bytes], method: str, max_bytes: int, label: str) -> bytes:
    inflater = _Inflater(method, max_bytes, label)
    for chunk in chunks:
        inflater.feed(chunk)
    return inflater.finish()


def _unzstd(stream: IO[bytes], max_bytes: int, label: str) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise _error(label, "zstd-compressed data needs the zstandard package "
                            "(pip install 'libre-dump[compressed]')") from None
    out = bytearray()
    try:
        with zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True) as r:
            while True:
                piece = r.read(min(_CHUNK, max_bytes - len(out) + 1))
                if not piece:
                    break
                out += piece
                if len(out) > max_bytes:
                    raise _error(label, f"the zstd data expands past the {max_bytes}-byte "
                                        "limit (a compression bomb?); stopped there")
    except zstandard.ZstdError as exc:
        raise _error(label, f"corrupt or truncated zstd data ({exc})") from None
    return bytes(out)


def _unbrotli(data: bytes, max_bytes: int, label: str) -> bytes:
    try:
        import brotli  # type: ignore[import-untyped]
    except ImportError:
        raise _error(label, "br-compressed data needs the brotli package "
                            "(pip install 'libre-dump[compressed]')") from None
    decomp = brotli.Decompressor()
    out = bytearray()
    try:
        # brotli 1.1 has no output limit per call: feed one byte at a time so the check
        # below runs before the output can grow far past the limit
        for offset in range(len(data)):
            out += decomp.process(data[offset:offset + 1])
            if len(out) > max_bytes:
                raise _error(label, f"the br data expands past the {max_bytes}-byte limit "
                                    "(a compression bomb?); stopped there")
    except brotli.error as exc:
        raise _error(label, f"corrupt br data ({exc})") from None
    if not decomp.is_finished():
        raise _error(label, "truncated br data")
    return bytes(out)


def _is_zlib(head: bytes) -> bool:
    return (len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7
            and (head[0] << 8 | head[1]) % 31 == 0)


def _strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _looks_json(data: bytes) -> bool:
    return _strip_bom(data).lstrip()[:1] in (b"{", b"[")


def _raw_deflate_json(head: bytes) -> bool:
    """Whether ``head`` starts a raw deflate stream of JSON."""
    try:
        probe = zlib.decompressobj(-15).decompress(head, 64)
    except zlib.error:
        return False
    return _looks_json(probe)


def _decode_bytes(data: bytes, max_bytes: int, label: str) -> tuple[bytes, str | None]:
    """Undo a compression recognised by its magic bytes (the body had no header saying so)."""
    if data[:2] == b"\x1f\x8b":
        return _inflate([data], "gzip", max_bytes, label), "gzip"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return _unzstd(io.BytesIO(data), max_bytes, label), "zstd"
    if _is_zlib(data[:2]) and not _looks_json(data):
        return _inflate([data], "deflate", max_bytes, label), "deflate"
    if not _looks_json(data) and _raw_deflate_json(data[:4096]):
        return _inflate([data], "raw deflate", max_bytes, label), "raw deflate"
    return data, None


def _decode_content(data: bytes, header: str | None, max_bytes: int,
                    label: str) -> tuple[bytes, str | None]:
    """A request body decoded per its Content-Encoding header (then sniffed).

    A body that already is JSON text is kept as it is when the header's decoding fails:
    HAR exporters (mitmproxy's among them) store the decoded text but keep the header.
    """
    codings = [c.strip().lower() for c in (header or "").split(",") if c.strip()]
    if _looks_json(data) and any(c not in ("identity", "") for c in codings):
        try:
            return _apply_codings(data, codings, max_bytes, label)
        except InputError as exc:
            if "limit" in str(exc):
                raise
            return data, None
    return _apply_codings(data, codings, max_bytes, label)


def _apply_codings(data: bytes, codings: list[str], max_bytes: int,
                   label: str) -> tuple[bytes, str | None]:
    used: list[str] = []
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            data = _inflate([data], "gzip", max_bytes, label)
        elif coding == "deflate":
            method = "deflate" if _is_zlib(data[:2]) else "raw deflate"
            data = _inflate([data], method, max_bytes, label)
        elif coding == "br":
            data = _unbrotli(data, max_bytes, label)
        elif coding == "zstd":
            data = _unzstd(io.BytesIO(data), max_bytes, label)
        else:
            raise _error(label, f"unsupported Content-Encoding {coding!r}")
        used.append(coding)
    if not used:
        data, sniffed = _decode_bytes(data, max_bytes, label)
        return data, sniffed
    return data, ", ".join(reversed(used))


# -- JSON -----------------------------------------------------------------------------------


def parse_json(data: bytes, label: str, max_depth: int = MAX_DEPTH) -> Any:
    """Bytes -> JSON value: UTF-8 (BOM ignored), no NaN/Infinity, nesting and the number of
    values bounded (:mod:`libre_usb.jsonsafe`)."""
    return jsonsafe.loads(data, label, max_depth=max_depth)


# -- timestamps -----------------------------------------------------------------------------

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)


#: upload times must leave this much of the calendar on either side: placing them in UTC,
#: in a zone or within a tolerance moves them by at most a few days (year 1 at +14:00
#: would overflow); outside, the time is refused where it enters, with its path
_CALENDAR_MARGIN = dt.timedelta(days=8)
_EARLIEST = dt.datetime.min + _CALENDAR_MARGIN
_LATEST = dt.datetime.max - _CALENDAR_MARGIN


def parse_time(text: str) -> ParsedTime:
    """``2022-06-20T22:24:33.000+02:00``, ``…Z``, without fraction or seconds, or naive."""
    parsed = _parse_time(text)
    if not _EARLIEST <= parsed.wall <= _LATEST:
        raise ValueError(f"{parsed.text[:40]!r} is too close to the end of the calendar "
                         "(years 1 and 9999) to be placed in time")
    return parsed


def _parse_time(text: str) -> ParsedTime:
    text = text.strip()
    if len(text) >= 19 and text[10:11] in ("T", " ") and text[4:5] == "-":
        try:  # the fast path (Python >= 3.11 reads every form below, 3.10 most of them)
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return ParsedTime(text=text, wall=value.replace(tzinfo=None),
                              offset=value.utcoffset(), zulu=text[-1:] in ("Z", "z"))
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    fraction = (match.group(7) or "0")[:6].ljust(6, "0")
    wall = dt.datetime(year, month, day, hour, minute, second, int(fraction))
    zone = match.group(8)
    offset: dt.timedelta | None = None
    zulu = False
    if zone in ("Z", "z"):
        offset, zulu = dt.timedelta(0), True
    elif zone:
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"bad UTC offset in {text!r}")
        offset = dt.timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    return ParsedTime(text=text, wall=wall, offset=offset, zulu=zulu)


# -- validation: JSON -> entries -------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _number(value: Any, path: str, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(label, f"{path}: expected a number, got {_type_name(value)}")
    try:
        return float(value)
    except OverflowError:  # a JSON integer too large for a float
        raise _error(label, f"{path}: number out of range") from None


def _string(value: Any, path: str, label: str) -> str:
    if not isinstance(value, str):
        raise _error(label, f"{path}: expected a string, got {_type_name(value)}")
    return value


def parse_bool(value: Any) -> bool | None:
    """A JSON bool or the strings ``"true"``/``"false"`` (any case); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _time(value: Any, path: str, label: str) -> ParsedTime:
    text = _string(value, path, label)
    try:
        return parse_time(text)
    except ValueError as exc:
        raise _error(label, f"{path}: {exc}") from None


def _record_number(value: Any, path: str, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(1 << 63) <= value < 1 << 63:
            raise _error(label, f"{path}: {str(value)[:24]}... is outside the 64-bit range")
        return value
    raise _error(label, f"{path}: expected an integer, got {_type_name(value)}")


def _parse_entry(list_name: str, index: int, path: str, item: Any, label: str) -> UploadEntry:
    if not isinstance(item, dict):
        raise _error(label, f"{path}: expected an object, got {_type_name(item)}")
    number = _record_number(item.get("recordNumber"), f"{path}.recordNumber", label)
    extended = item.get("extendedProperties", {})
    if not isinstance(extended, dict):
        raise _error(label, f"{path}.extendedProperties: expected an object, got "
                            f"{_type_name(extended)}")
    timestamp = None
    if item.get("timestamp") is not None:
        timestamp = _time(item["timestamp"], f"{path}.timestamp", label)
    factory = None
    if extended.get("factoryTimestamp") is not None:
        parsed = _time(extended["factoryTimestamp"], f"{path}.extendedProperties."
                                                     "factoryTimestamp", label)
        factory = parsed.instant or parsed.wall.replace(tzinfo=dt.timezone.utc)
    if timestamp is None and factory is None:
        raise _error(label, f"{path}: no timestamp")
    values: dict[str, Any] = {}

    def optional_number(key: str, name: str, required: bool = False) -> None:
        if key in item and item[key] is not None:
            values[name] = _number(item[key], f"{path}.{key}", label)
        elif required:
            raise _error(label, f"{path}: no {key}")

    if list_name in _GLUCOSE_LISTS:
        optional_number("valueInMgPerDl", "mg_dl", required=True)
    elif list_name == "ketoneEntries":
        optional_number("valueInMmolPerL", "mmol_l")
        optional_number("valueInMgPerDl", "mg_dl")
    elif list_name == "insulinEntries":
        values["insulin_type"] = _string(item.get("insulinType"), f"{path}.insulinType", label)
        optional_number("units", "units")
    elif list_name == "foodEntries":
        optional_number("gramsCarbs", "carbs_g")
        if item.get("foodType") is not None:
            values["food_type"] = _string(item["foodType"], f"{path}.foodType", label)
    elif list_name == "genericEntries":
        values["type"] = _string(item.get("type"), f"{path}.type", label)
        if extended.get("text") is not None:
            values["text"] = _string(extended["text"], f"{path}.extendedProperties.text",
                                     label)
    if extended.get("trendArrow") is not None:
        values["trend"] = _string(extended["trendArrow"],
                                  f"{path}.extendedProperties.trendArrow", label)
    flags: dict[str, bool] = {}
    for key in BOOL_PROPERTIES:
        if extended.get(key) is None:
            continue
        parsed_bool = parse_bool(extended[key])
        if parsed_bool is None:
            raise _error(label, f"{path}.extendedProperties.{key}: expected a boolean or "
                                f"\"true\"/\"false\", got {_type_name(extended[key])}")
        flags[key] = parsed_bool
    return UploadEntry(list_name=list_name, index=index, path=path, data=item,
                       record_number=number, timestamp=timestamp, factory=factory,
                       values=values, flags=flags)


def _scrub(value: dict[str, Any], path: str, found: list[str]) -> None:
    """Replace secret values in the envelope and DeviceData (not in entry lists)."""
    for key in list(value):
        if is_secret_name(key):
            found.append(path + key)
            value[key] = SECRET
        elif key in ("DeviceData", "header") and isinstance(value[key], dict):
            _scrub(value[key], f"{path}{key}.", found)


def upload_from_json(doc: Any, source: Source, size: int) -> Upload:
    """Check a parsed body and take its entries apart (InputError on wrong shapes)."""
    label = source.label()
    if not isinstance(doc, dict):
        raise _error(label, f"the upload is {_type_name(doc)}, not a JSON object")
    if "DeviceData" in doc:
        prefix = "DeviceData."
        inner = doc["DeviceData"]
        if not isinstance(inner, dict):
            raise _error(label, f"DeviceData: expected an object, got {_type_name(inner)}")
    else:
        prefix, inner = "", doc
    if "measurementLog" not in inner:
        raise _error(label, "no measurementLog: not a LibreView upload")
    log = inner["measurementLog"]
    if not isinstance(log, dict):
        raise _error(label, f"{prefix}measurementLog: expected an object, got "
                            f"{_type_name(log)}")
    for key in ("header", "deviceSettings"):
        if key in inner and not isinstance(inner[key], dict):
            raise _error(label, f"{prefix}{key}: expected an object, got "
                                f"{_type_name(inner[key])}")
    secrets: list[str] = []
    _scrub(doc, "", secrets)
    entries: list[UploadEntry] = []
    for list_name in ENTRY_LISTS:
        if list_name not in log or log[list_name] is None:
            continue
        items = log[list_name]
        list_path = f"{prefix}measurementLog.{list_name}"
        if not isinstance(items, list):
            raise _error(label, f"{list_path}: expected an array, got {_type_name(items)}")
        for index, item in enumerate(items):
            entries.append(_parse_entry(list_name, index, f"{list_path}[{index}]", item, label))
    return Upload(data=doc, source=source, size=size, prefix=prefix, entries=tuple(entries),
                  secrets=tuple(secrets))


def _has_log(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    inner = doc.get("DeviceData", doc)
    return isinstance(inner, dict) and "measurementLog" in inner


# -- containers -----------------------------------------------------------------------------


def _headers(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, SECRET if is_secret_name(name) else value) for name, value in pairs)


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _is_upload_url(url: str | None) -> bool:
    return bool(url) and urllib.parse.urlsplit(url or "").path.rstrip("/").endswith(
        "/measurements")


def _upload_from_request(body: bytes, source: Source, max_bytes: int) -> Upload:
    """A request body from a HAR entry or flow -> Upload, or :class:`_Skip`.

    Hostile bodies (a compression bomb) always fail. Other problems fail only for a request
    to the upload endpoint (``…/measurements``) or one that mentions ``measurementLog``;
    unrelated traffic that does not decode is skipped.
    """
    label = source.label()
    relevant = _is_upload_url(source.url)
    try:
        data, encoding = _decode_content(body, _header(source.headers, "content-encoding"),
                                         max_bytes, label)
    except InputError as exc:
        if "limit" in str(exc) or relevant:
            raise
        raise _Skip from None
    relevant = relevant or b"measurementLog" in data
    if not _looks_json(data):
        if relevant:
            raise _error(label, "the request body is not JSON")
        raise _Skip
    try:
        doc = parse_json(data, label)
    except InputError:
        if relevant:
            raise
        raise _Skip from None
    if not _has_log(doc) and not relevant:
        raise _Skip
    return upload_from_json(doc, dataclasses.replace(source, encoding=encoding), len(data))


def _har_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_time(value)
    except ValueError:
        return None
    return parsed.instant


def _har_body(post: dict[str, Any], label: str) -> bytes:
    text = post.get("text")
    if not isinstance(text, str) or not text:
        raise _Skip
    if str(post.get("encoding", "")).lower() == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _error(label, "postData.text is not valid base64") from None
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        return text.encode("utf-8")
    if text[:2] == "\x1f\x8b" or _is_zlib(text[:2].encode("latin-1", "replace")):
        try:
            return text.encode("latin-1")  # binary kept as code points 0..255
        except UnicodeEncodeError:
            raise _Skip from None
    try:  # some tools store binary bodies as base64 without saying so
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Skip from None


def _har_uploads(doc: dict[str, Any], name: str, max_bytes: int) -> list[Upload]:
    log = doc["log"]
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise _error(name, "not a HAR file: log.entries is not an array")
    uploads: list[Upload] = []
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            continue
        post = request.get("postData")
        if not isinstance(post, dict):
            continue
        raw_headers = request.get("headers")
        pairs = [(str(h.get("name", "")), str(h.get("value", "")))
                 for h in raw_headers if isinstance(h, dict)] if isinstance(raw_headers,
                                                                           list) else []
        url = request.get("url") if isinstance(request.get("url"), str) else None
        assert isinstance(entry, dict)
        server = entry.get("serverIPAddress")
        source = Source(
            file=name, container="har", index=index,
            method=str(request.get("method")) if request.get("method") else None,
            url=url, host=urllib.parse.urlsplit(url).hostname if url else None,
            server_address=str(server) if server else None,
            time=_har_time(entry.get("startedDateTime")), headers=_headers(pairs),
        )
        try:
            body = _har_body(post, source.label())
            uploads.append(_upload_from_request(body, source, max_bytes))
        except _Skip:
            continue
    if not uploads:
        raise _error(name, f"no upload in this HAR file: none of its {len(entries)} entries "
                           "has a request body with a measurementLog")
    return uploads


def _flow_uploads(stream: IO[bytes], name: str, max_bytes: int) -> list[Upload]:
    try:
        from mitmproxy.exceptions import FlowReadException
        from mitmproxy.io import FlowReader
    except ImportError:
        raise MissingExtra(_MITM_HINT) from None
    uploads: list[Upload] = []
    count = 0
    try:
        for index, flow in enumerate(FlowReader(cast(BinaryIO, stream)).stream()):
            count += 1
            request = getattr(flow, "request", None)
            if request is None:
                continue
            body = request.raw_content
            if not body:
                continue
            server = getattr(flow, "server_conn", None)
            address = getattr(server, "peername", None) or getattr(server, "address", None)
            stamp = getattr(request, "timestamp_start", None)
            source = Source(
                file=name, container="mitmproxy", index=index, method=request.method,
                url=request.pretty_url, host=request.pretty_host,
                server_address=f"{address[0]}:{address[1]}" if address else None,
                time=dt.datetime.fromtimestamp(stamp, dt.timezone.utc) if stamp else None,
                headers=_headers(request.headers.items(multi=True)),
            )
            try:
                uploads.append(_upload_from_request(body, source, max_bytes))
            except _Skip:
                continue
    except FlowReadException as exc:
        raise _error(name, f"not a readable mitmproxy flow file ({exc})") from None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:
        # mitmproxy's reader and flow migration fail in these ways on a malformed file
        # (e.g. AttributeError for the 6 bytes 0:,:}}, found by the fuzzer)
        raise _error(name, f"not a readable mitmproxy flow file ({exc!r})") from None
    if not uploads:
        raise _error(name, f"no upload in this flow file: none of its {count} flows has a "
                           "request body with a measurementLog")
    return uploads


# -- files ------------------------------------------------------------------------------------


def _chunks(handle: IO[bytes], first: bytes = b"") -> Iterator[bytes]:
    if first:
        yield first
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            return
        yield chunk


def _read_bounded(handle: IO[bytes], first: bytes, max_bytes: int, label: str) -> bytes:
    try:
        size = os.fstat(handle.fileno()).st_size
    except (OSError, io.UnsupportedOperation, AttributeError):
        size = 0
    if size > max_bytes:
        raise _error(label, f"{size} bytes is over the {max_bytes}-byte limit "
                            "(raise it with --max-bytes)")
    out = bytearray(first)
    for chunk in _chunks(handle):
        out += chunk
        if len(out) > max_bytes:
            raise _error(label, f"more than the {max_bytes}-byte limit (raise it with "
                                "--max-bytes)")
    return bytes(out)


def _from_document(data: bytes, name: str, max_bytes: int, encoding: str | None
                   ) -> list[Upload]:
    """Decoded file content that is JSON: a HAR file or one body."""
    doc = parse_json(data, name)
    if isinstance(doc, dict) and isinstance(doc.get("log"), dict) and "entries" in doc["log"]:
        return _har_uploads(doc, name, max_bytes)
    source = Source(file=name, container="body", encoding=encoding)
    return [upload_from_json(doc, source, len(data))]


def _is_tnetstring(head: bytes) -> bool:
    return re.match(rb"\d{1,12}:", head) is not None


def _from_bytes(data: bytes, name: str, max_bytes: int, encoding: str | None) -> list[Upload]:
    """Decompressed file content: JSON or a flow file."""
    if _is_tnetstring(data[:16]):
        return _flow_uploads(io.BytesIO(data), name, max_bytes)
    if not _looks_json(data):
        raise _error(name, f"the {encoding} data is not JSON, HAR or a mitmproxy flow file")
    return _from_document(data, name, max_bytes, encoding)


def load_file(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
              ) -> list[Upload]:
    """Every upload in one file (one for a body; one per upload request in HAR/flows)."""
    name = str(path)
    # closed in the finally below
    handle = open_input(path, max_bytes, name, " (raise it with --max-bytes)")
    try:
        return _load_handle(cast(IO[bytes], handle), name, max_bytes)
    except OSError as exc:
        raise _error(name, exc.strerror or str(exc)) from None
    finally:
        handle.close()


def _load_handle(handle: IO[bytes], name: str, max_bytes: int) -> list[Upload]:
    head = handle.read(4096)
    if not head:
        raise _error(name, "empty file")
    decompress: Callable[[], bytes] | None = None
    method = None
    if head[:2] == b"\x1f\x8b":
        method = "gzip"
    elif head[:4] == b"\x28\xb5\x2f\xfd":
        method = "zstd"
    elif _is_zlib(head[:2]):
        method = "deflate"
    elif not _looks_json(head) and not _is_tnetstring(head) and _raw_deflate_json(head):
        method = "raw deflate"
    if method == "zstd":
        def decompress() -> bytes:
            return _unzstd(io.BufferedReader(_Prefixed(head, handle)), max_bytes, name)
    elif method is not None:
        chosen = method

        def decompress() -> bytes:
            return _inflate(_chunks(handle, head), chosen, max_bytes, name)
    if decompress is not None:
        return _from_bytes(decompress(), name, max_bytes, method)
    if _is_tnetstring(head):
        if isinstance(handle, Input):
            handle.unread(head)  # a bounded stream: never a huge allocation for a length
            handle.count_values(b":", jsonsafe.MAX_VALUES)  # each tnetstring value has one
            return _flow_uploads(handle, name, max_bytes)
        if handle.seekable():
            handle.seek(0)
            return _flow_uploads(handle, name, max_bytes)
        return _flow_uploads(io.BufferedReader(_Prefixed(head, handle)), name, max_bytes)
    if _looks_json(head):
        data = _read_bounded(handle, head, max_bytes, name)
        try:
            return _from_document(data, name, max_bytes, None)
        except InputError:
            if _raw_deflate_json(data[:4096]):  # raw deflate that happens to start with "{"
                inflated = _inflate([data], "raw deflate", max_bytes, name)
                return _from_bytes(inflated, name, max_bytes, "raw deflate")
            raise
    raise _error(name, "not an upload: expected JSON (plain, gzip or deflate), a HAR file or "
                       "a mitmproxy flow file")


class _Prefixed(io.RawIOBase):
    """A read-only stream: ``head`` (already read) followed by the rest of ``handle``."""

    def __init__(self, head: bytes, handle: IO[bytes]) -> None:
        self.head = head
        self.handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.head:
            count = min(len(view), len(self.head))
            view[:count] = self.head[:count]
            self.head = self.head[count:]
            return count
        data = self.handle.read(len(view))
        view[:len(data)] = data
        return len(data)


def load_uploads(paths: Iterable[str | os.PathLike[str]], *,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> list[Upload]:
    """Every upload in every file, in order."""
    uploads: list[Upload] = []
    for path in paths:
        uploads.extend(load_file(path, max_bytes=max_bytes))
    if not uploads:
        raise InputError("no upload files given")
    return uploads


def load_bytes(data: bytes, *, name: str = "<bytes>", max_bytes: int = DEFAULT_MAX_BYTES
               ) -> list[Upload]:
    """Like :func:`load_file` for content already in memory."""
    return _load_handle(io.BytesIO(data), name, max_bytes)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_DEPTH",
    "SECRET",
    "ParsedTime",
    "Source",
    "Upload",
    "UploadEntry",
    "is_secret_name",
    "load_bytes",
    "load_file",
    "load_uploads",
    "parse_bool",
    "parse_json",
    "parse_time",
    "upload_from_json",
]
