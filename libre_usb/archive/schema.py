"""The archive's SQLite schema and its migrations.

``PRAGMA application_id`` marks the file as a libre-dump archive; ``PRAGMA user_version`` is
the schema version. :data:`MIGRATIONS` [i] takes a file from version i to i + 1, so a new
release appends a step and never edits an old one; :func:`migrate` runs the missing steps in
the caller's transaction (all or nothing). A file of a newer version than this release knows
is refused, never written.

Tables (version 1):

``readers``    one row per reader serial
``dumps``      one row per sync that brought something new: when, from where, the reader's
               clock, the zone and the time placement (segments and their offsets from UTC)
               used for the records it added, the reader's device info, and counts
``records``    one row per record, keyed (unique index) by reader, source command, record
               id, variant and part (:mod:`libre_usb.output.identity`); ``body`` is the
               record exactly as the ``ndjson`` format writes it (mg/dL), with the
               placement of the dump that added it. ``variant`` is 0, or 1, 2... for a
               reader line whose id came back with different content (a reset reader
               reusing ids): kept apart, never overwritten.
``conflicts``  one row per such variant, with the dump that brought it
"""

from __future__ import annotations

import sqlite3

#: "LDAR" (libre-dump archive), in the SQLite header so ``file`` and we can tell the file
APPLICATION_ID = 0x4C444152

_V1 = (
    """CREATE TABLE readers (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        product_id INTEGER
    )""",
    """CREATE TABLE dumps (
        id INTEGER PRIMARY KEY,
        reader_id INTEGER NOT NULL REFERENCES readers (id),
        synced_at TEXT NOT NULL,
        origin TEXT NOT NULL,
        model_version INTEGER NOT NULL,
        reader_clock TEXT,
        timezone TEXT,
        placement TEXT NOT NULL,
        device TEXT NOT NULL,
        records INTEGER NOT NULL,
        added INTEGER NOT NULL,
        duplicates INTEGER NOT NULL,
        conflicts INTEGER NOT NULL
    )""",
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        reader_id INTEGER NOT NULL,
        source TEXT NOT NULL,
        record_id INTEGER NOT NULL,
        variant INTEGER NOT NULL,
        part INTEGER NOT NULL,
        kind TEXT NOT NULL,
        local_time TEXT,
        glucose_mg_dl INTEGER,
        line_fp INTEGER NOT NULL,
        dump_id INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX records_key ON records (reader_id, source, record_id, variant, part)",
    "CREATE INDEX records_by_kind_time ON records (reader_id, kind, local_time, glucose_mg_dl)",
    """CREATE TABLE conflicts (
        reader_id INTEGER NOT NULL,
        source TEXT NOT NULL,
        record_id INTEGER NOT NULL,
        variant INTEGER NOT NULL,
        dump_id INTEGER NOT NULL,
        PRIMARY KEY (reader_id, source, record_id, variant)
    )""",
)

#: MIGRATIONS[i]: the statements that take a file from schema version i to i + 1
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
#: the schema version this release writes
SCHEMA_VERSION = len(MIGRATIONS)


def version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def migrate(connection: sqlite3.Connection, start: int) -> None:
    """Run the steps from ``start`` to :data:`SCHEMA_VERSION` (inside the caller's
    transaction) and set the version."""
    for step in MIGRATIONS[start:]:
        for statement in step:
            connection.execute(statement)
    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
