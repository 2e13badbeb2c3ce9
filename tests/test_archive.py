"""The local archive: idempotent merge, union of overlapping dumps, reset readers kept apart,
several readers, placement stored per dump, schema versioning, every format out, and a sync
killed with SIGKILL leaving the archive before or after, never between."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from simdumps import ZONE, content_dump

from libre_usb.archive import Archive, default_path, schema
from libre_usb.archive import export as archive_export
from libre_usb.cli import main
from libre_usb.model import Kind, Record
from libre_usb.output import export
from libre_usb.output.period import Period


def keys(records: tuple[Record, ...] | list[Record]) -> set[str]:
    """Records as comparable JSON (placement included)."""
    return {json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False) for r in records}


def state(path: Path) -> tuple[int, str]:
    """Everything archived, as a count and a digest."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT reader_id, source, record_id, variant, part, body FROM records"
                          " ORDER BY reader_id, source, record_id, variant, part").fetchall()
        dumps = db.execute("SELECT id, records, added FROM dumps ORDER BY id").fetchall()
    finally:
        db.close()
    digest = hashlib.sha256(json.dumps([rows, dumps]).encode()).hexdigest()
    return len(rows), digest


def test_sync_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    dump = content_dump()
    with Archive(path, create=True) as archive:
        first = archive.sync(dump, "test")
    assert first.added == len(dump.records) and first.duplicates == 0 and not first.conflicts
    before = (path.read_bytes(), state(path))
    with Archive(path) as archive:
        second = archive.sync(dump, "test")
    assert second.added == 0 and second.duplicates == len(dump.records)
    assert second.dump_id is None and not second.conflicts
    assert (path.read_bytes(), state(path)) == before  # not a byte written


def test_overlapping_dumps_give_their_union(tmp_path: Path) -> None:
    full = content_dump()
    assert full.device.clock is not None
    cut_old = full.device.clock - dt.timedelta(days=30)
    cut_new = full.device.clock - dt.timedelta(days=60)
    older = Period(None, cut_old).select(full.records)
    newer = Period(cut_new, None).select(full.records)
    assert len(older) + len(newer) > len(full.records)  # they overlap
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(msgspec.structs.replace(full, records=older), "older")
        result = archive.sync(msgspec.structs.replace(full, records=newer), "newer")
        assert result.duplicates > 0 and result.added > 0 and not result.conflicts
        merged = archive.load()
    dated = Period(dt.datetime(1900, 1, 1), None).select(full.records)
    assert keys(merged.records) == keys(dated)


def test_reset_reader_reused_ids_are_kept_apart_and_reported(tmp_path: Path) -> None:
    before_reset = content_dump(3, days=20)
    # after a reset the reader counts again from the same ids, with other readings
    later = content_dump(9, days=20, now=dt.datetime(2026, 9, 20, 12, 0),
                         serial=before_reset.device.serial)
    shift = {source: min(r.record_id for r in before_reset.records if r.source == source)
             - min(r.record_id for r in later.records if r.source == source)
             for source in {r.source for r in later.records}}
    reused = tuple(msgspec.structs.replace(r, record_id=r.record_id + shift[r.source])
                   for r in later.records)
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(before_reset, "before")
        result = archive.sync(msgspec.structs.replace(later, records=reused), "after reset")
        assert result.conflicts, "reused ids with other content must be reported"
        assert all(c.variant == 1 for c in result.conflicts)
        kept = archive.load()
        listed = archive.conflicts()
        readers = archive.readers()
    assert keys(kept.records) == keys(before_reset.records) | keys(reused)
    assert len(listed) == len(result.conflicts) == readers[0].conflicts
    assert "kept apart as variant 1" in result.conflicts[0].describe()


def test_several_readers_and_the_reader_option(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    one, two = content_dump(3, days=20), content_dump(4, days=20)
    assert one.device.serial != two.device.serial
    with Archive(path, create=True) as archive:
        archive.sync(one, "one")
        archive.sync(two, "two")
        assert [r.serial for r in archive.readers()] == sorted(
            [str(one.device.serial), str(two.device.serial)])
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--archive", str(path), "-f", "ndjson"])
    assert result.exit_code == 2 and "--reader" in result.stderr
    result = runner.invoke(main, ["export", "--archive", str(path), "-f", "ndjson",
                                  "--reader", str(two.device.serial)])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(two.records) + 1


def test_each_dump_keeps_its_time_placement(tmp_path: Path) -> None:
    dump = content_dump()
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(dump, "test")
    db = sqlite3.connect(path)
    placement, zone, clock = db.execute(
        "SELECT placement, timezone, reader_clock FROM dumps").fetchone()
    db.close()
    placement = json.loads(placement)
    assert zone == ZONE and placement["timezone"] == ZONE
    assert clock == placement["reader_clock"] == "2026-06-15T12:00:00"
    # the virtual reader's user moved the clock an hour forward: two segments, their
    # offsets an hour apart, newest anchored at the zone's summer offset (+2 h)
    offsets = [s["offset_minutes"] for s in placement["segments"]]
    assert offsets == [60.0, 120.0]


def test_schema_version_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True):
        pass
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    runner = CliRunner()
    result = runner.invoke(main, ["archive", "--archive", str(path)])
    assert result.exit_code == 2 and "newer libre-dump" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    result = runner.invoke(main, ["archive", "--archive", str(junk)])
    assert result.exit_code == 2 and "not a libre-dump archive" in result.stderr

    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    result = runner.invoke(main, ["sync", "--device", "sim:libre?days=1",
                                  "--archive", str(other)])
    assert result.exit_code == 2 and "not a libre-dump archive" in result.stderr

    result = runner.invoke(main, ["archive", "--archive", str(tmp_path / "missing.sqlite")])
    assert result.exit_code == 2 and "libre-dump sync creates it" in result.stderr


def test_an_older_schema_is_migrated(tmp_path: Path) -> None:
    """A file at version 0 (created, never set up) gets every step, in one transaction."""
    path = tmp_path / "a.sqlite"
    sqlite3.connect(path).close()
    with Archive(path) as archive:
        assert archive.readers() == []
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    db.close()


def test_default_path_follows_xdg() -> None:
    assert default_path({"XDG_DATA_HOME": "/data", "HOME": "/home/u"}) == Path(
        "/data/libre-dump/archive.sqlite")
    assert default_path({"HOME": "/home/u"}) == Path(
        "/home/u/.local/share/libre-dump/archive.sqlite")
    assert default_path({"XDG_DATA_HOME": "relative", "HOME": "/home/u"}) == Path(
        "/home/u/.local/share/libre-dump/archive.sqlite")


def test_redacted_or_serial_less_dumps_are_refused(tmp_path: Path) -> None:
    from libre_usb.errors import InputError
    from libre_usb.output.redact import redact

    dump = content_dump(days=2)
    with Archive(tmp_path / "a.sqlite", create=True) as archive:
        with pytest.raises(InputError, match="redacted"):
            archive.sync(redact(dump), "x")
        with pytest.raises(InputError, match="no reader serial"):
            archive.sync(msgspec.structs.replace(
                dump, device=msgspec.structs.replace(dump.device, serial=None)), "x")


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_every_dump_format_from_the_archive(tmp_path: Path, fmt: str) -> None:
    dump = content_dump(days=15)
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(dump, "test")
    out = tmp_path / f"out.{fmt}"
    result = CliRunner().invoke(main, ["export", "--archive", str(path), "-f", fmt,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    if fmt in ("json", "ndjson"):
        back = export.load_dump(out)
        assert keys(back.records) == keys(dump.records)
        assert back.device.serial == dump.device.serial and back.timezone == ZONE
    elif fmt == "csv":
        assert keys(export.records_from_csv(text)) == keys(dump.records)
    else:
        assert text.strip()


def test_streamed_json_is_the_json_format(tmp_path: Path) -> None:
    """The fast path (stored text) and the record path (rebuilt records, the writers of
    `dump`) give the same document."""
    from dumpschema import assert_valid_dump

    dump = content_dump(days=15)
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(dump, "test")
        import io
        fast = io.StringIO()
        archive_export.write(archive, fast, fmt="json")
        slow = export.render(archive.load(), "json")
    assert json.loads(fast.getvalue()) == json.loads(slow)
    assert_valid_dump(fast.getvalue())


def test_since_and_until_select_by_the_reader_clock(tmp_path: Path) -> None:
    dump = content_dump(days=20)
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(dump, "test")
        period = Period.parse("2026-06-01", "2026-06-03")
        chosen = archive.load(period=period)
    expected = [r for r in dump.records if r.local_time is not None
                and dt.datetime(2026, 6, 1) <= r.local_time < dt.datetime(2026, 6, 4)]
    assert keys(chosen.records) == keys(expected) and expected


def test_kinds_this_version_does_not_know_are_kept_whole(tmp_path: Path) -> None:
    """An archive written by a newer libre-dump (say with a ``warmup`` kind) still exports:
    the record comes out as an ``unknown`` record holding its whole JSON."""
    dump = content_dump(days=3)
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(dump, "test")
    alien = {"kind": "warmup", "record_id": 7, "source": "$arresult?", "record_type": 9,
             "local_time": "2026-06-14T10:00:00", "raw": [], "utc": None, "time_status": "",
             "warmup": "low glucose"}
    db = sqlite3.connect(path)
    db.execute("INSERT INTO records (reader_id, source, record_id, variant, part, kind,"
               " local_time, glucose_mg_dl, line_fp, dump_id, body)"
               " VALUES (1, '$arresult?', 7, 0, 0, 'warmup', '2026-06-14T10:00:00', NULL, 0, 1,"
               " ?)", (json.dumps(alien),))
    db.commit()
    db.close()
    with Archive(path) as archive:
        loaded = archive.load()
    unknown = [r for r in loaded.records if r.kind is Kind.UNKNOWN and r.record_id == 7]
    assert len(unknown) == 1 and json.loads(unknown[0].fields[0]) == alien  # type: ignore[attr-defined]
    result = CliRunner().invoke(main, ["export", "--archive", str(path), "-f", "json"])
    assert result.exit_code == 0 and "low glucose" in result.stdout


def test_sync_cli_from_the_virtual_reader_and_a_dump_file(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    runner = CliRunner()
    result = runner.invoke(main, ["sync", "--device", "sim:libre?days=5", "--archive",
                                  str(path), "--tz", ZONE, "--json"])
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)
    assert first["added"] == first["records"] > 0 and first["changed"]
    saved = tmp_path / "d.json"
    result = runner.invoke(main, ["dump", "--device", "sim:libre?days=5", "--tz", ZONE,
                                  "-o", str(saved)])
    assert result.exit_code == 0
    result = runner.invoke(main, ["sync", "--dump", str(saved), "--archive", str(path)])
    assert result.exit_code == 0 and "0 new" in result.stdout and "archive unchanged" in \
        result.stdout
    result = runner.invoke(main, ["archive", "--archive", str(path)])
    assert result.exit_code == 0 and "1 readers" in result.stdout and "history" in result.stdout


def _sync_process(dump_file: Path, path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-m", "libre_usb", "sync", "--dump", str(dump_file), "--archive",
         str(path), "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_mid_sync_leaves_the_archive_before_or_after(tmp_path: Path) -> None:
    """A sync is one transaction. Kill it with SIGKILL while it writes (its rollback journal
    exists) and at other moments: the archive opens, passes SQLite's integrity check, and
    holds exactly what it held before, or exactly what a finished sync leaves."""
    path = tmp_path / "a.sqlite"
    with Archive(path, create=True) as archive:
        archive.sync(content_dump(4, days=30), "other reader")
    big = content_dump(5, days=150)
    dump_file = tmp_path / "big.ndjson"
    dump_file.write_text(export.render(big, "ndjson"), encoding="utf-8")
    journal = Path(f"{path}-journal")
    before = state(path)

    # the state a finished sync leaves, computed on a copy
    after_path = tmp_path / "after.sqlite"
    after_path.write_bytes(path.read_bytes())
    process = _sync_process(dump_file, after_path)
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    after = state(after_path)
    assert after != before

    killed_mid_write = 0
    for delay in (None, 0.0, None):
        process = _sync_process(dump_file, path)
        deadline = time.monotonic() + 120
        if delay is None:  # wait for the write transaction, then kill at once
            while not journal.exists() and process.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.001)
            writing = journal.exists()
        else:
            time.sleep(delay)
            writing = journal.exists()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        killed_mid_write += writing and process.returncode == -signal.SIGKILL
        with sqlite3.connect(path) as db:  # a hot journal is rolled back on open
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        now = state(path)
        assert now in (before, after)
        if now == after:
            break
    assert killed_mid_write >= 1, "no kill landed inside the write transaction"
    process = _sync_process(dump_file, path)
    assert process.wait(timeout=300) == 0
    assert state(path) == after
