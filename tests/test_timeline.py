"""libre_usb.output.timeline: reader clocks to UTC (the rule is in the module docstring).

The real-data checks are in test_insulinx_capture.py (four real time changes, placed instants
growing with the record ids) and test_models_neo.py; these cover each case of the rule.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from libre_usb.cli import main
from libre_usb.errors import InputError
from libre_usb.model import (
    DeviceInfo,
    Dump,
    HistoryRecord,
    Record,
    ScanRecord,
    TimeChangeRecord,
)
from libre_usb.output import timeline
from libre_usb.protocol.text.records import parse_lines

UTC = dt.timezone.utc
D = dt.datetime


def _scan(record_id: int, local: D | None) -> ScanRecord:
    return ScanRecord(record_id=record_id, source="$arresult?", record_type=2, local_time=local,
                      glucose_mg_dl=100, value_raw="100")


def _history(record_id: int, local: D | None) -> HistoryRecord:
    return HistoryRecord(record_id=record_id, source="$history?", record_type=12,
                         local_time=local, glucose_mg_dl=100)


def _change(record_id: int, old: D | None, new: D | None) -> TimeChangeRecord:
    return TimeChangeRecord(record_id=record_id, source="$arresult?", record_type=5,
                            local_time=new, old_time=old, new_time=new)


def _place(clock: D | None, zone: str, *records: Record) -> dict[tuple[str, int], Record]:
    dump = Dump(DeviceInfo(model="libre", product_id=0x3650, clock=clock), tuple(records))
    placed = timeline.place(dump, zone)
    assert placed.timezone == zone
    return {(r.source, r.record_id): r for r in placed.records}


def _utc(*args: int) -> D:
    return D(*args, tzinfo=UTC)


def test_reader_clocks_do_not_follow_dst_by_themselves() -> None:
    """No time change recorded: one segment at the offset of the dump (summer, +2), even for
    winter records (the untouched clock showed UTC+2 in winter too)."""
    out = _place(D(2026, 7, 1, 12, 0), "Europe/Berlin",
                 _scan(1, D(2026, 1, 15, 8, 0)), _history(5, D(2026, 1, 15, 8, 0)))
    assert out["$arresult?", 1].utc == _utc(2026, 1, 15, 6, 0)
    assert out["$history?", 5].utc == _utc(2026, 1, 15, 6, 0)
    assert {r.time_status for r in out.values()} == {"ok"}


def test_spring_forward_by_hand() -> None:
    """The user moved the clock 9:12:41 -> 10:12:41 on 2026-03-29: it happened at 08:12:41Z,
    and before it the clock ran at +1 (CET), which is what Berlin's offset was."""
    change = _change(20, D(2026, 3, 29, 9, 12, 41), D(2026, 3, 29, 10, 12, 41))
    out = _place(D(2026, 6, 15, 12, 0), "Europe/Berlin", change,
                 _scan(19, D(2026, 3, 29, 9, 0)), _scan(21, D(2026, 3, 29, 10, 30)),
                 _history(100, D(2026, 3, 29, 9, 0)), _history(101, D(2026, 3, 29, 10, 30)))
    assert out["$arresult?", 20].utc == _utc(2026, 3, 29, 8, 12, 41)
    assert out["$arresult?", 19].utc == _utc(2026, 3, 29, 8, 0)
    assert out["$arresult?", 21].utc == _utc(2026, 3, 29, 8, 30)
    assert out["$history?", 100].utc == _utc(2026, 3, 29, 8, 0)
    assert out["$history?", 101].utc == _utc(2026, 3, 29, 8, 30)


def test_setting_back_makes_history_in_the_repeated_hour_ambiguous() -> None:
    """The clock set back 10:30 -> 9:30: readings shown 9:30..10:30 happened twice as far as
    the clock is concerned. $arresult? records are placed by id; $history? records in the
    overlap are ambiguous (utc None), outside it they are placed."""
    change = _change(50, D(2025, 10, 26, 10, 30), D(2025, 10, 26, 9, 30))
    out = _place(D(2025, 12, 1, 12, 0), "Europe/Berlin", change,
                 _scan(49, D(2025, 10, 26, 10, 0)), _scan(51, D(2025, 10, 26, 10, 0)),
                 _history(1, D(2025, 10, 26, 8, 0)), _history(2, D(2025, 10, 26, 10, 0)),
                 _history(3, D(2025, 10, 26, 9, 30)), _history(4, D(2025, 10, 26, 11, 0)))
    # after: +1 (CET at the dump); the change at 09:30 - 1 h = 08:30Z; before: +2
    assert out["$arresult?", 50].utc == _utc(2025, 10, 26, 8, 30)
    assert out["$arresult?", 49].utc == _utc(2025, 10, 26, 8, 0)  # 10:00 at +2
    assert out["$arresult?", 51].utc == _utc(2025, 10, 26, 9, 0)  # 10:00 at +1
    assert out["$history?", 1].utc == _utc(2025, 10, 26, 6, 0)
    assert out["$history?", 4].utc == _utc(2025, 10, 26, 10, 0)
    for number in (2, 3):
        record = out["$history?", number]
        assert (record.utc, record.time_status) == (None, "ambiguous")


def test_history_in_a_skipped_stretch_is_ambiguous() -> None:
    change = _change(7, D(2026, 3, 29, 9, 0), D(2026, 3, 29, 10, 0))
    out = _place(D(2026, 6, 15, 12, 0), "Europe/Berlin", change,
                 _history(1, D(2026, 3, 29, 9, 30)))
    assert (out["$history?", 1].utc, out["$history?", 1].time_status) == (None, "ambiguous")


def test_invalid_times_and_missing_anchor() -> None:
    out = _place(D(2026, 6, 15, 12, 0), "UTC", _scan(1, None), _history(2, None))
    assert {(r.utc, r.time_status) for r in out.values()} == {(None, "invalid")}
    out = _place(None, "UTC", _scan(1, D(2026, 6, 1)), _history(2, D(2026, 6, 1)))
    assert {(r.utc, r.time_status) for r in out.values()} == {(None, "no_anchor")}


def test_a_change_with_an_invalid_time_breaks_the_chain_only_before_it() -> None:
    """After a battery change the old clock was invalid (255s): the segment before that change
    cannot be anchored, the ones after it can."""
    broken = _change(10, None, D(2026, 5, 1, 8, 0))
    out = _place(D(2026, 6, 1, 12, 0), "UTC", broken, _scan(9, D(2026, 4, 1, 8, 0)),
                 _scan(11, D(2026, 5, 1, 9, 0)), _history(1, D(2026, 4, 1, 8, 0)),
                 _history(2, D(2026, 5, 2, 8, 0)))
    assert out["$arresult?", 9].time_status == "no_anchor"
    assert out["$arresult?", 11].utc == _utc(2026, 5, 1, 9, 0)
    assert out["$arresult?", 10].utc == _utc(2026, 5, 1, 8, 0)
    # history before the broken change: its window's end is unknown -> ambiguous
    assert out["$history?", 1].time_status == "ambiguous"
    assert out["$history?", 2].utc == _utc(2026, 5, 2, 8, 0)


def test_two_digit_years_and_invalid_dates_from_lines() -> None:
    lines = [b"1,12,2,29,24,23,59,59,1,0,0,0,0,100,60,0",  # 2024-02-29: a leap day
             b"2,12,2,29,25,0,0,0,1,0,0,0,0,100,75,0",  # 2025-02-29 does not exist
             b"3,12,12,31,99,23,59,59,1,0,0,0,0,100,90,0"]  # year 99 -> 2099
    records = parse_lines("libre_history", lines, "$history?")
    assert [r.local_time for r in records] == [D(2024, 2, 29, 23, 59, 59), None,
                                               D(2099, 12, 31, 23, 59, 59)]
    out = _place(D(2024, 3, 1), "Asia/Tokyo", *records)
    assert [out["$history?", n].time_status for n in (1, 2, 3)] == ["ok", "invalid", "ok"]
    assert out["$history?", 1].utc == _utc(2024, 2, 29, 14, 59, 59)


def test_anchor_in_a_dst_fold_takes_the_offset_before_the_transition() -> None:
    # 02:30 on 2026-10-25 happens twice in Berlin; fold=0 is the first, still at +2
    out = _place(D(2026, 10, 25, 2, 30), "Europe/Berlin", _scan(1, D(2026, 10, 25, 2, 0)))
    assert out["$arresult?", 1].utc == _utc(2026, 10, 25, 0, 0)


def test_deterministic_whatever_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    records = (_change(2, D(2026, 3, 29, 9, 0), D(2026, 3, 29, 10, 0)),
               _scan(1, D(2026, 3, 1, 8, 0)), _history(9, D(2026, 4, 1, 8, 0)))
    first = _place(D(2026, 6, 1, 12, 0), "America/New_York", *records)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    second = _place(D(2026, 6, 1, 12, 0), "America/New_York", *records)
    assert first == second
    again = timeline.place_records(list(records), D(2026, 6, 1, 12, 0),
                                   timeline.resolve_zone("America/New_York"))
    assert sorted(again, key=lambda r: (r.source, r.record_id)) == sorted(
        first.values(), key=lambda r: (r.source, r.record_id))


def test_placing_twice_is_the_same_as_once() -> None:
    dump = Dump(DeviceInfo(model="libre", product_id=0x3650, clock=D(2026, 6, 1)),
                (_scan(1, D(2026, 5, 1)),))
    once = timeline.place(dump, "Europe/Paris")
    assert timeline.place(once, "Europe/Paris") == once
    assert once.records[0].utc == D(2026, 4, 30, 22, 0, tzinfo=UTC)
    # placing in another zone replaces the earlier placement
    other = timeline.place(once, "UTC")
    assert other.records[0].utc == D(2026, 5, 1, tzinfo=UTC) and other.timezone == "UTC"


def test_system_zone_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's zone (tests/test_zone_rule.py has the rest): an /etc/localtime link below
    a zoneinfo directory names the zone; $TZ wins when it names an IANA zone (the standard
    library's zoneinfo reads names, not POSIX rule strings). The zone search is tzlocal's
    since issue 11; this checks our own fallbacks, which used to be the whole lookup."""
    zoneinfo_dir = tmp_path / "usr" / "share" / "zoneinfo" / "Europe"
    zoneinfo_dir.mkdir(parents=True)
    (zoneinfo_dir / "Paris").write_bytes(b"")
    link = tmp_path / "localtime"
    link.symlink_to(zoneinfo_dir / "Paris")
    assert timeline._linked_name(link) == "Europe/Paris"
    assert timeline._linked_name(tmp_path / "none") is None
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    assert timeline.system_zone_name() == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    assert timeline.machine_zone(localtime=link).name == "Europe/Paris"
    monkeypatch.setenv("TZ", "Not/A_Zone")
    assert timeline.machine_zone(localtime=tmp_path / "none").name == "UTC"


def test_the_localtime_link_answers_before_tzlocal(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With no $TZ, a /etc/localtime link into a zoneinfo directory names the zone and tzlocal
    is not even imported (it costs a small dump about 12 ms; it would read the same link)."""
    monkeypatch.delenv("TZ", raising=False)
    target = tmp_path / "usr" / "share" / "zoneinfo" / "America" / "New_York"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    link = tmp_path / "localtime"
    link.symlink_to(target)
    monkeypatch.setitem(sys.modules, "tzlocal", None)  # importing it now raises ImportError
    zone = timeline.machine_zone(localtime=link)
    assert (zone.name, zone.origin) == ("America/New_York", str(link))
    assert zone.tzinfo.utcoffset(dt.datetime(2026, 1, 15)) == dt.timedelta(hours=-5)


def test_bad_zone_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown time zone"):
        timeline.resolve_zone("Mars/Olympus_Mons")


def test_cli_tz_option() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["dump", "-d", "sim:neo?days=5", "--tz", "Mars/Base"])
    assert result.exit_code == 2 and "unknown time zone" in result.output
    result = runner.invoke(main, ["dump", "-d", "sim:neo?days=5", "--tz", "Asia/Tokyo",
                                  "-f", "ndjson"])
    assert result.exit_code == 0, result.output
    import json

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["timezone"] == "Asia/Tokyo"
    # ($event? lines carry no time libre-dump can read: "invalid")
    assert {line["time_status"] for line in lines[1:] if line["source"] != "$event?"} == {"ok"}
    result = runner.invoke(main, ["dump", "-d", "sim:neo?days=5", "-f", "ndjson"],
                           env={"TZ": "America/Denver"})
    assert json.loads(result.stdout.splitlines()[0])["timezone"] == "America/Denver"


def test_placing_by_arithmetic_is_replace_tzinfo_utc() -> None:
    """timeline._at places a record as UTC_EPOCH + (local - (NAIVE_EPOCH + offset)), not
    (local - offset).replace(tzinfo=UTC) (a fifth of the cost): the same datetime, the same
    zone object, and an OverflowError exactly where the calendar ends."""
    import random

    def by_replace(local: dt.datetime, offset: dt.timedelta) -> object:
        try:
            return (local - offset).replace(tzinfo=dt.timezone.utc)
        except OverflowError:
            return "overflow"

    def ours(local: dt.datetime, offset: dt.timedelta) -> object:
        try:
            return timeline._UTC_EPOCH + (local - (timeline._NAIVE_EPOCH + offset))
        except OverflowError:
            return "overflow"

    rng = random.Random(16)
    span = (dt.datetime.max - dt.datetime.min) // dt.timedelta(microseconds=1)
    cases = [(dt.datetime.min + dt.timedelta(microseconds=rng.randrange(span)),
              dt.timedelta(minutes=rng.randrange(-4320, 4320),
                           microseconds=rng.choice([0, rng.randrange(10**6)])))
             for _ in range(20_000)]
    cases += [(local, dt.timedelta(minutes=minutes))
              for local in (dt.datetime.min, dt.datetime(1, 1, 1, 0, 30), dt.datetime.max,
                            dt.datetime(9999, 12, 31, 23), dt.datetime(2026, 3, 29, 2, 30))
              for minutes in (-1440, -61, -1, 0, 1, 61, 1440)]
    overflows = 0
    for local, offset in cases:
        expected, got = by_replace(local, offset), ours(local, offset)
        assert repr(got) == repr(expected), (local, offset)
        if isinstance(got, dt.datetime):
            assert got.tzinfo is dt.timezone.utc and got.fold == 0
        overflows += expected == "overflow"
    assert overflows >= 4  # the calendar's ends were reached
