"""The local archive: every dump merged into one SQLite file, kept beyond the reader's memory.

A reader holds about 90 days. ``libre-dump sync`` merges each dump into the archive:

* **Idempotent.** A record is named by reader serial, source command, record id and part
  (:mod:`libre_usb.output.identity`). A reader line already archived with the same content
  is a duplicate: syncing the same dump twice changes nothing, the second time writes nothing
  at all. Overlapping dumps give their union.
* **Nothing overwritten.** A line whose id is archived with *different* content (the reader
  was reset and counts ids again, or it changed a stored line) is added as a new *variant* of
  that id, kept apart, and reported as a conflict: in the sync's summary, in ``libre-dump
  archive`` and in the ``conflicts`` table. Placement in time (``utc``, ``time_status``) is not
  content: it belongs to the dump that added the record and is stored with it.
* **Crash-safe.** One sync is one SQLite transaction (rollback journal, ``synchronous=FULL``):
  a sync killed at any point leaves the archive as it was before or as it is after, never in
  between (tests/test_archive.py kills one with SIGKILL).
* **Versioned.** :mod:`libre_usb.archive.schema` migrates older files and refuses newer ones.

Records keep their JSON form (the ``ndjson`` line of the record), so kinds this version does
not know (written by a newer libre-dump) are kept whole and read back as ``unknown`` records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ..errors import InputError
from ..model import (
    RECORD_CLASSES,
    DeviceInfo,
    Dump,
    HistoryRecord,
    Kind,
    ReadingRecord,
    Record,
    RecordReader,
    UnknownRecord,
    record_reader,
)
from ..model import SCHEMA_VERSION as MODEL_VERSION
from ..output import timeline
from ..output.gcpause import no_cyclic_gc
from ..output.identity import kind_rank, lines
from ..output.period import ALL, Period
from ..output.redact import PREFIX as REDACTED
from . import schema

ARCHIVE_NAME = "archive.sqlite"
#: fields of a record's JSON that are its placement in time, not its content
PLACEMENT_FIELDS = ("utc", "time_status")
_GLUCOSE_KINDS = frozenset({Kind.HISTORY.value, Kind.SCAN.value, Kind.GLUCOSE.value})


def default_path(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/libre-dump/archive.sqlite`` (``~/.local/share`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else (
        Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return root / "libre-dump" / ARCHIVE_NAME


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A reader line whose id the archive already held with different content."""

    source: str
    record_id: int
    variant: int
    #: local times of the line already archived (variant 0) and of the new one, for messages
    archived_time: str | None
    new_time: str | None

    def describe(self) -> str:
        return (f"{self.source} record {self.record_id}: archived at {self.archived_time}, "
                f"now at {self.new_time} with other content; kept apart as variant "
                f"{self.variant}")


@dataclasses.dataclass(frozen=True)
class SyncResult:
    serial: str
    #: records and reader lines in the dump
    records: int
    lines: int
    added: int
    duplicates: int
    conflicts: tuple[Conflict, ...]
    #: the dump row written, None when the sync changed nothing
    dump_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "records": self.records, "lines": self.lines,
                "added": self.added, "duplicates": self.duplicates,
                "conflicts": [dataclasses.asdict(c) for c in self.conflicts],
                "changed": self.dump_id is not None}


@dataclasses.dataclass(frozen=True)
class ReaderSummary:
    serial: str
    model: str
    first: str | None
    last: str | None
    counts: dict[str, int]
    dumps: int
    conflicts: int
    last_sync: str | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "records": self.total}


def _canonical(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in PLACEMENT_FIELDS}


def _fingerprint(bodies: Sequence[dict[str, Any]]) -> int:
    text = json.dumps([_canonical(body) for body in bodies], sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _glucose(record: Record) -> int | None:
    """The value the report uses: a valid glucose reading in mg/dL, else None."""
    if isinstance(record, HistoryRecord | ReadingRecord) and not record.invalid:
        return record.glucose_mg_dl
    return None


def _placement(dump: Dump) -> dict[str, Any]:
    """How the dump's records were placed in time: the zone, the reader's clock that anchored
    the newest segment, and every segment with its offset (reader clock minus UTC)."""
    out: dict[str, Any] = {"timezone": dump.timezone,
                           "reader_clock": None if dump.device.clock is None
                           else dump.device.clock.isoformat(timespec="seconds"),
                           "segments": []}
    if dump.timezone is None:
        return out
    zone = timeline.resolve_zone(dump.timezone)
    for segment in timeline.segments(timeline.time_changes(dump.records), dump.device.clock,
                                     zone):
        out["segments"].append({
            "opened_by": segment.opened_by,
            "offset_minutes": None if segment.offset is None
            else segment.offset.total_seconds() / 60,
            "start": None if segment.start is None else segment.start.isoformat(),
            "end": None if segment.end is None else segment.end.isoformat(),
        })
    return out


def _body(text: str) -> Any:
    """A stored record's JSON, parsed (msgspec, in C; the standard library's parser for
    what msgspec refuses, such as an escaped lone surrogate, which json.loads reads)."""
    try:
        return _decode_json(text)
    except msgspec.MsgspecError:
        return json.loads(text)


_decode_json = msgspec.json.Decoder().decode
_KINDS = frozenset(kind.value for kind in Kind)


def _record_from_body(body: dict[str, Any]) -> Record:
    """A record from its archived JSON; a kind this version does not know becomes an
    ``unknown`` record holding the whole JSON, so nothing is lost on the way out."""
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        local = body.get("local_time")
        return UnknownRecord(
            record_id=int(body.get("record_id", 0)), source=str(body.get("source", "")),
            record_type=int(body.get("record_type", -1)),
            local_time=dt.datetime.fromisoformat(local) if isinstance(local, str) else None,
            fields=(json.dumps(body, ensure_ascii=False),))
    return Record.from_dict(body)


@functools.cache
def _readers() -> dict[str, RecordReader]:
    """The record reader of each kind (:func:`model.record_reader`), by kind name."""
    return {kind.value: record_reader(RECORD_CLASSES[kind]) for kind in Kind}


def record_from_text(kind: str, text: str) -> Record:
    """One archived record from its ``kind`` column and stored JSON text: the record
    :meth:`Archive.load` makes of the row (or the same refusal)."""
    reader = _readers().get(kind)
    return (reader(text) if reader is not None else None) or _record_from_body(_body(text))


class Archive:
    """An open archive file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise InputError(f"no archive at {self.path} (libre-dump sync creates it)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_dir():
            raise InputError(f"{self.path} is a directory, not an archive file")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: cannot open the archive ({exc})") from None
        try:
            self.db.execute("PRAGMA journal_mode = DELETE")
            self.db.execute("PRAGMA synchronous = FULL")
            self._check_and_migrate()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise InputError(f"{self.path}: not a libre-dump archive ({exc})") from None
        except BaseException:
            self.db.close()
            raise

    def _check_and_migrate(self) -> None:
        app = int(self.db.execute("PRAGMA application_id").fetchone()[0])
        have = schema.version(self.db)
        if app not in (0, schema.APPLICATION_ID):
            raise InputError(f"{self.path}: an SQLite file, but not a libre-dump archive")
        if have > schema.SCHEMA_VERSION:
            raise InputError(f"{self.path}: archive schema {have} was written by a newer "
                             f"libre-dump; this one knows up to {schema.SCHEMA_VERSION}")
        if have == schema.SCHEMA_VERSION and app == schema.APPLICATION_ID:
            return
        if app == 0 and have == 0:
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise InputError(f"{self.path}: an SQLite file, but not a libre-dump archive")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            schema.migrate(self.db, have)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def sync(self, dump: Dump, origin: str) -> SyncResult:
        """Merge ``dump`` (placed in time or not) into the archive, in one transaction."""
        serial = dump.device.serial
        if not serial or not serial.strip():
            raise InputError("the dump has no reader serial, so its records cannot be told "
                             "from another reader's; it is not archived")
        if serial.startswith(REDACTED):
            raise InputError("the dump was redacted (its serial is a placeholder); archive "
                             "the dump as read from the reader")
        grouped = lines(dump.records)
        prepared = []
        for (source, record_id), items in sorted(grouped.items(), key=lambda item: item[0]):
            bodies = [record.to_dict() for record in items]
            prepared.append((source, record_id, items, bodies, _fingerprint(bodies)))
        synced_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        device_json = json.dumps(dump.device.to_dict(), ensure_ascii=False, sort_keys=True)

        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            reader_id = self._reader_id(dump.device)
            existing = self._existing(reader_id, prepared)
            new_rows: list[tuple[Any, ...]] = []
            conflicts: list[Conflict] = []
            duplicates = 0
            for source, record_id, items, bodies, fingerprint in prepared:
                known = existing.get((source, record_id))
                variant = 0
                if known is not None:
                    if fingerprint in known[0]:
                        duplicates += len(items)
                        continue
                    variant = known[1] + 1
                    conflicts.append(Conflict(source, record_id, variant, known[2],
                                              bodies[0].get("local_time")))
                    known[0].add(fingerprint)
                    known[1] = variant
                for part, (record, body) in enumerate(zip(items, bodies, strict=True)):
                    new_rows.append((
                        reader_id, source, record_id, variant, part, record.kind.value,
                        body.get("local_time"), _glucose(record), fingerprint,
                        json.dumps(body, ensure_ascii=False)))
            if not new_rows and not self._device_changed(reader_id, device_json):
                db.execute("ROLLBACK")
                return SyncResult(serial, len(dump.records), len(prepared), 0, duplicates,
                                  (), None)
            cursor = db.execute(
                "INSERT INTO dumps (reader_id, synced_at, origin, model_version, reader_clock,"
                " timezone, placement, device, records, added, duplicates, conflicts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (reader_id, synced_at, origin, MODEL_VERSION,
                 None if dump.device.clock is None
                 else dump.device.clock.isoformat(timespec="seconds"),
                 dump.timezone, json.dumps(_placement(dump)), device_json,
                 len(dump.records), len(new_rows), duplicates, len(conflicts)))
            dump_id = cursor.lastrowid
            db.executemany(
                "INSERT INTO records (reader_id, source, record_id, variant, part, kind,"
                " local_time, glucose_mg_dl, line_fp, dump_id, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row[:-1], dump_id, row[-1]) for row in new_rows])
            db.executemany(
                "INSERT INTO conflicts (reader_id, source, record_id, variant, dump_id)"
                " VALUES (?, ?, ?, ?, ?)",
                [(reader_id, c.source, c.record_id, c.variant, dump_id) for c in conflicts])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return SyncResult(serial, len(dump.records), len(prepared), len(new_rows), duplicates,
                          tuple(conflicts), dump_id)

    def _reader_id(self, device: DeviceInfo) -> int:
        row = self.db.execute("SELECT id FROM readers WHERE serial = ?",
                              (device.serial,)).fetchone()
        if row is not None:
            return int(row[0])
        cursor = self.db.execute(
            "INSERT INTO readers (serial, model, product_id) VALUES (?, ?, ?)",
            (device.serial, device.model, device.product_id))
        return int(cursor.lastrowid or 0)

    def _existing(self, reader_id: int, prepared: Sequence[tuple[Any, ...]]
                  ) -> dict[tuple[str, int], list[Any]]:
        """For every line id of the dump already archived: [fingerprints of its variants,
        highest variant, local time of variant 0]. One range query per source."""
        spans: dict[str, tuple[int, int]] = {}
        for source, record_id, *_ in prepared:
            low, high = spans.get(source, (record_id, record_id))
            spans[source] = (min(low, record_id), max(high, record_id))
        out: dict[tuple[str, int], list[Any]] = {}
        for source, (low, high) in spans.items():
            rows = self.db.execute(
                "SELECT record_id, variant, line_fp, local_time FROM records WHERE reader_id = ?"
                " AND source = ? AND record_id BETWEEN ? AND ? AND part = 0",
                (reader_id, source, low, high))
            for record_id, variant, fingerprint, local_time in rows:
                entry = out.setdefault((source, record_id), [set(), -1, local_time])
                entry[0].add(fingerprint)
                entry[1] = max(entry[1], variant)
                if variant == 0:
                    entry[2] = local_time
        return out

    def _device_changed(self, reader_id: int, device_json: str) -> bool:
        """Whether the reader's info (settings, name...) differs from the newest archived,
        leaving out the clock and the record counter, which move on every read."""
        row = self.db.execute("SELECT device FROM dumps WHERE reader_id = ? ORDER BY id DESC"
                              " LIMIT 1", (reader_id,)).fetchone()
        if row is None:
            return True
        ignore = ("clock", "record_count")
        old = {k: v for k, v in json.loads(row[0]).items() if k not in ignore}
        new = {k: v for k, v in json.loads(device_json).items() if k not in ignore}
        return old != new

    # -- reading ----------------------------------------------------------------------------

    def readers(self) -> list[ReaderSummary]:
        out = []
        for reader_id, serial, model in self.db.execute(
                "SELECT id, serial, model FROM readers ORDER BY serial").fetchall():
            counts = dict(self.db.execute(
                "SELECT kind, count(*) FROM records WHERE reader_id = ? GROUP BY kind",
                (reader_id,)).fetchall())
            ordered = dict(sorted(counts.items(), key=lambda item: kind_rank(item[0])))
            first, last = self.db.execute(
                "SELECT min(local_time), max(local_time) FROM records WHERE reader_id = ?",
                (reader_id,)).fetchone()
            dumps, last_sync = self.db.execute(
                "SELECT count(*), max(synced_at) FROM dumps WHERE reader_id = ?",
                (reader_id,)).fetchone()
            conflicts = self.db.execute("SELECT count(*) FROM conflicts WHERE reader_id = ?",
                                        (reader_id,)).fetchone()[0]
            out.append(ReaderSummary(serial, model, first, last, ordered, dumps, conflicts,
                                     last_sync))
        return out

    def conflicts(self, serial: str | None = None) -> list[Conflict]:
        reader_id = self._pick(serial)[0]
        rows = self.db.execute(
            "SELECT c.source, c.record_id, c.variant,"
            " (SELECT local_time FROM records r WHERE r.reader_id = c.reader_id AND"
            "  r.source = c.source AND r.record_id = c.record_id AND r.variant = 0 AND"
            "  r.part = 0),"
            " (SELECT local_time FROM records r WHERE r.reader_id = c.reader_id AND"
            "  r.source = c.source AND r.record_id = c.record_id AND r.variant = c.variant"
            "  AND r.part = 0)"
            " FROM conflicts c WHERE c.reader_id = ? ORDER BY c.source, c.record_id, c.variant",
            (reader_id,))
        return [Conflict(*row) for row in rows]

    def _pick(self, serial: str | None) -> tuple[int, str]:
        """(reader id, serial) of ``serial``, or of the only reader when None."""
        if serial is not None:
            row = self.db.execute("SELECT id, serial FROM readers WHERE serial = ?",
                                  (serial,)).fetchone()
            if row is None:
                raise InputError(f"no reader {serial!r} in {self.path}")
            return int(row[0]), str(row[1])
        rows = self.db.execute("SELECT id, serial FROM readers ORDER BY serial").fetchall()
        if not rows:
            raise InputError(f"{self.path} holds no reader yet (libre-dump sync adds one)")
        if len(rows) > 1:
            raise InputError(f"{self.path} holds {len(rows)} readers; choose one with "
                             f"--reader ({', '.join(str(r[1]) for r in rows)})")
        return int(rows[0][0]), str(rows[0][1])

    def _head(self, reader_id: int) -> tuple[DeviceInfo, str | None, bool]:
        """The reader's newest device info and zone, and whether every dump's records are of
        this version's model (so their JSON can be written as it is)."""
        row = self.db.execute("SELECT device, timezone FROM dumps WHERE reader_id = ?"
                              " ORDER BY id DESC LIMIT 1", (reader_id,)).fetchone()
        versions = {v for (v,) in self.db.execute(
            "SELECT DISTINCT model_version FROM dumps WHERE reader_id = ?", (reader_id,))}
        kinds = {k for (k,) in self.db.execute(
            "SELECT DISTINCT kind FROM records WHERE reader_id = ?", (reader_id,))}
        current = versions <= {MODEL_VERSION} and kinds <= {kind.value for kind in Kind}
        return DeviceInfo.from_dict(json.loads(row[0])), row[1], current

    def device(self, serial: str | None = None) -> DeviceInfo:
        """The reader's device info as its newest archived dump read it."""
        return self._head(self._pick(serial)[0])[0]

    def _rows(self, reader_id: int, period: Period, columns: str) -> Iterator[Any]:
        start, end = period.bounds()
        where = "reader_id = ?"
        args: list[Any] = [reader_id]
        if start is not None:
            where += " AND local_time >= ?"
            args.append(start)
        if end is not None:
            where += " AND local_time < ?"
            args.append(end)
        if not period.open:
            where += " AND local_time IS NOT NULL"
        return iter(self.db.execute(
            f"SELECT {columns} FROM records WHERE {where}"  # noqa: S608 - fixed column lists
            " ORDER BY source, record_id, variant, part", args))

    def load(self, serial: str | None = None, period: Period = ALL) -> Dump:
        """One reader's archived records in ``period`` as a :class:`Dump` (device info and
        zone of the newest dump), for every output format."""
        reader_id, _ = self._pick(serial)
        device, zone, _ = self._head(reader_id)
        # each record straight from its text where the class's reader takes it, else the
        # general way (model.record_reader): the same records, or the same refusal
        readers = _readers()
        with no_cyclic_gc():  # records hold no cycles (libre_usb.output.gcpause)
            records = tuple((readers[kind](text) if kind in readers else None)
                            or _record_from_body(_body(text))
                            for kind, text in self._rows(reader_id, period, "kind, body"))
        return Dump(device=device, records=records, timezone=zone)

    def bodies(self, serial: str | None = None, period: Period = ALL
               ) -> tuple[DeviceInfo, str | None, Iterator[tuple[str, str]]] | None:
        """(device, zone, (kind, JSON text) of every record in output order) when the stored
        JSON can be written as it is (every dump of this model version), else None."""
        reader_id, _ = self._pick(serial)
        device, zone, current = self._head(reader_id)
        if not current:
            return None
        return device, zone, self._rows(reader_id, period, "kind, body")

    def glucose(self, serial: str | None = None, period: Period = ALL,
                kind: str = Kind.HISTORY.value) -> list[tuple[str, int]]:
        """(local time, mg/dL) of every valid glucose reading of ``kind``, oldest first."""
        reader_id, _ = self._pick(serial)
        start, end = period.bounds()
        return [(t, int(v)) for t, v in self.db.execute(
            "SELECT local_time, glucose_mg_dl FROM records INDEXED BY records_by_kind_time"
            " WHERE reader_id = ? AND kind = ? AND local_time >= ? AND local_time < ?"
            " AND glucose_mg_dl IS NOT NULL ORDER BY local_time",
            (reader_id, kind, start or "", end or "\uffff"))]

    def stats(self) -> dict[str, Any]:
        """File size and records, for ``libre-dump archive`` and the benchmarks."""
        records = self.db.execute("SELECT count(*) FROM records").fetchone()[0]
        size = self.path.stat().st_size
        return {"path": str(self.path), "bytes": size, "records": records,
                "bytes_per_record": round(size / records, 1) if records else None,
                "schema": schema.version(self.db)}
