"""A stable name for every record: reader serial, source command, record id and part.

One reader line can yield several records that share its ``record_id`` (a scan and the
insulin, food and notes noted with it). The *part* tells them apart: the records of a line,
ordered by kind (the order of :class:`libre_usb.model.Kind`) and then by their order in the
line, are numbered 0, 1, 2... The order of kinds is fixed, so the numbering does not depend
on whether the records came from a reader or from a saved ``json`` dump (which groups records
by kind). A kind this version does not know sorts after every known one.

The archive (:mod:`libre_usb.archive`) keys records by ``(serial, source, record_id, part)``
and the Nightscout identifiers (:mod:`libre_usb.output.nightscout`) are derived from the same
four values, so re-posting an overlapping dump names every record the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from ..model import Kind, Record

_KIND_ORDER = {kind.value: index for index, kind in enumerate(Kind)}

#: (source, record_id): the records of one reader line share it
LineKey = tuple[str, int]


def kind_rank(kind: str) -> int:
    return _KIND_ORDER.get(kind, len(_KIND_ORDER))


def lines(records: Iterable[Record]) -> dict[LineKey, list[Record]]:
    """The records grouped by reader line, each line's records in part order."""
    out: dict[LineKey, list[Record]] = {}
    for record in records:
        out.setdefault((record.source, record.record_id), []).append(record)
    for key, items in out.items():
        if len(items) > 1:
            out[key] = sorted(items, key=lambda r: kind_rank(r.kind.value))  # stable
    return out


def parts(records: Sequence[Record]) -> list[int]:
    """The part number of each record of ``records`` (same order as given)."""
    ranks: dict[type[Record], int] = {}

    def rank(position: int) -> int:
        cls = type(records[position])
        found = ranks.get(cls)
        if found is None:
            found = ranks[cls] = kind_rank(cls.kind.value)
        return found

    return numbered([(record.source, record.record_id) for record in records], rank)


def numbered(keys: Sequence[LineKey], rank: Callable[[int], int]) -> list[int]:
    """The part number of each item of a sequence, from the reader line of each
    (``keys``) and the rank of its kind (``rank(position)``, asked only where a line has
    several items): :func:`parts` of records, and of records still in their archived text
    (:mod:`libre_usb.archive.stored`)."""
    shared = {key for key, count in Counter(keys).items() if count > 1}
    out = [0] * len(keys)
    if not shared:
        return out
    ranked: dict[LineKey, list[tuple[int, int]]] = {}
    for position, key in enumerate(keys):
        if key in shared:
            ranked.setdefault(key, []).append((rank(position), position))
    for items in ranked.values():
        for part, (_, position) in enumerate(sorted(items)):
            out[position] = part
    return out
