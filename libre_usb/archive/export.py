"""Every ``dump`` format, written from the archive (``libre-dump export``).

The archive keeps each record as its ``ndjson`` line (mg/dL), so ``json`` and ``ndjson`` in
mg/dL are written by streaming the stored text: years of records in about a second, and the
bytes are exactly the ones archived. Every other case (other formats, ``--unit mmol/L``,
``--redact``, records of an older model version) rebuilds the records and goes through the
same writers as ``dump`` (:mod:`libre_usb.output.export`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..model import GROUPS, SCHEMA_VERSION, DeviceInfo
from ..output import export, timeline
from ..output.period import ALL, Period
from ..output.redact import redact as redact_dump
from ..output.units import MG_DL
from . import stored
from .store import Archive

_GROUP_OF = {kind.value: name for kind, name in GROUPS.items()}


def _stream_ndjson(device: DeviceInfo, zone: str | None, rows: Iterator[tuple[str, str]],
                   out: IO[str]) -> None:
    head = {"kind": "device", "format": export.FORMAT_NAME, "version": SCHEMA_VERSION,
            "unit": MG_DL, "device": device.to_dict(), "timezone": zone}
    out.write(json.dumps(head, ensure_ascii=False) + "\n")
    for _, body in rows:
        out.write(body)
        out.write("\n")


def _stream_json(device: DeviceInfo, zone: str | None, rows: Iterator[tuple[str, str]],
                 out: IO[str]) -> None:
    groups: dict[str, list[str]] = {name: [] for name in GROUPS.values()}
    for kind, body in rows:
        groups[_GROUP_OF[kind]].append(body)
    head = {"format": export.FORMAT_NAME, "version": SCHEMA_VERSION, "unit": MG_DL,
            "device": device.to_dict(), "timezone": zone,
            "counts": {name: len(items) for name, items in groups.items()}}
    text = json.dumps(head, ensure_ascii=False, indent=1)
    out.write(text[:-2])  # without the closing "\n}"
    out.write(',\n "records": {')
    for index, (name, items) in enumerate(groups.items()):
        out.write(("," if index else "") + f"\n  {json.dumps(name)}: [")
        if items:
            out.write("\n   ")
            out.write(",\n   ".join(items))
            out.write("\n  ")
        out.write("]")
    out.write("\n }\n}\n")


def _nightscout(part: str | None) -> Callable[..., list[str]]:
    def write(loaded: stored.Loaded, out: IO[str], **_: Any) -> list[str]:
        return export.left_out_notes(
            "nightscout", stored.write_nightscout(loaded, out, part))

    return write


#: the formats written from the stored text (:mod:`.stored`)
_FROM_STORED: dict[str, Callable[..., list[str]]] = {
    "nightscout": _nightscout(None), "nightscout-entries": _nightscout("entries"),
    "nightscout-treatments": _nightscout("treatments"), "csv": stored.write_csv,
    "libreview-csv": stored.write_libreview_csv}


def write(archive: Archive, out: IO[str], *, fmt: str, serial: str | None = None,
          period: Period = ALL, unit: str | None = None, redact: bool = False,
          date_style: str | None = None) -> list[str]:
    """Write one reader's archived records in ``period`` as ``fmt``; ``unit`` None is the
    format's default (:func:`libre_usb.output.export.default_unit`). Returns the notes of
    :func:`libre_usb.output.export.format_notes`."""
    if fmt in ("json", "ndjson") and unit in (None, MG_DL) and not redact:
        found = archive.bodies(serial, period)
        if found is not None:
            device, zone, rows = found
            (_stream_json if fmt == "json" else _stream_ndjson)(device, zone, rows, out)
            return []
    if fmt in _FROM_STORED and not redact:
        loaded = stored.load(archive, serial, period)
        if loaded is not None:
            return _FROM_STORED[fmt](loaded, out, unit=unit, date_style=date_style)
    dump = archive.load(serial, period)
    if fmt == "libreview":
        out.write(export.render_libreview(dump, timeline.resolve_zone(dump.timezone),
                                          redact=redact))
        return []
    if redact:
        dump = redact_dump(dump)
    # streamed as the dump command streams (the records are in the formats' order already)
    export.write(dump, fmt, out, unit=unit or export.default_unit(dump, fmt),
                 date_style=date_style)
    return export.format_notes(dump, fmt)
