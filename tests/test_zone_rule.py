"""One zone rule for every command (issue 11 section 2): ``--tz ZONE``, else this machine's
zone (``$TZ``, then what tzlocal finds, then an ``/etc/localtime`` copied as a file matched by
content), said in the output with where it came from. A new user's round trip, a vendor-style
export and a diff against the same reader, exits 0 whatever the machine's zone, with and
without ``--tz``: each case runs the CLI in a subprocess with that ``TZ``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest

from libre_usb.output import timeline

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
REPO = Path(__file__).resolve().parent.parent


def _run(*args: str, tz: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "libre_usb", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("with_tz", [False, True], ids=["machine-zone", "with-tz"])
def test_export_then_diff_round_trip_is_identical(tmp_path: Path, zone: str,
                                                  with_tz: bool) -> None:
    upload = tmp_path / "up.json"
    extra = ["--tz", zone] if with_tz else []
    made = _run("dump", "--device", "sim:libre", "--format", "libreview", "--no-redact",
                "-o", str(upload), *extra, tz=zone)
    assert made.returncode == 0, made.stderr
    doc = json.loads(upload.read_text())
    assert doc["libreDump"]["timezone"] == zone
    assert doc["libreDump"]["timezoneSource"] == ("--tz" if with_tz else "$TZ")
    report = tmp_path / "report.json"
    diffed = _run("diff", str(upload), "--device", "sim:libre", "-f", "json", "-o",
                  str(report), *extra, tz=zone)
    result = json.loads(report.read_text())
    changed = {k: v["changed"] for k, v in result["summary"].items() if v["changed"]}
    assert diffed.returncode == 0, (changed, diffed.stderr)
    assert result["identical"] and result["settings"]["timezone"] == zone


def test_a_constant_shift_is_named_first(tmp_path: Path) -> None:
    """An upload made in one zone, diffed in another: the report says so before anything."""
    upload = tmp_path / "up.json"
    assert _run("dump", "--device", "sim:libre", "-f", "libreview", "--no-redact", "-o",
                str(upload), tz="Europe/Berlin").returncode == 0
    diffed = _run("diff", str(upload), "--device", "sim:libre", tz="UTC")
    assert diffed.returncode == 1
    lines = diffed.stdout.splitlines()
    shift = next(i for i, line in enumerate(lines) if "differ only by" in line)
    assert shift < next(i for i, line in enumerate(lines) if line == "Summary")
    assert "try --tz Europe/Berlin" in lines[shift]


def test_info_says_which_zone(tmp_path: Path) -> None:
    shown = _run("info", "--device", "sim:libre", tz="America/New_York")
    assert shown.returncode == 0, shown.stderr
    assert "Time zone:      America/New_York (from $TZ)" in shown.stdout
    as_json = json.loads(_run("info", "--device", "sim:libre", "--json", "--tz", "UTC",
                              tz="America/New_York").stdout)
    assert as_json["timezone"] == {"name": "UTC", "source": "--tz"}


def test_a_copied_localtime_file_is_named_by_content(tmp_path: Path) -> None:
    """Many containers copy the zone file to /etc/localtime instead of linking it; the
    standard library alone then found no name and fell back to UTC."""
    source = next((Path(d) / "Europe" / "Berlin" for d in zoneinfo.TZPATH
                   if (Path(d) / "Europe" / "Berlin").is_file()), None)
    if source is None:
        pytest.skip("no system zoneinfo directory with Europe/Berlin (tzdata package only)")
    copy = tmp_path / "localtime"
    copy.write_bytes(source.read_bytes())
    assert timeline.zone_name_of_file(copy) == "Europe/Berlin"
    # the whole lookup, with $TZ unusable so the machine's own setting is not consulted
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "not a zone")
        zone = timeline.machine_zone(localtime=copy)
    assert zone.name == "Europe/Berlin" and "copied zone file" in zone.origin
    assert timeline.zone_name_of_file(tmp_path / "none") is None
    (tmp_path / "junk").write_bytes(b"not a zone file")
    assert timeline.zone_name_of_file(tmp_path / "junk") is None


def test_tz_environment_names_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    zone = timeline.machine_zone()
    assert (zone.name, zone.origin) == ("Asia/Tokyo", "$TZ")
    # a POSIX rule string is not an IANA name: the machine's configuration is used instead
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    assert timeline.machine_zone().origin != "$TZ"
    assert timeline.zone_for("Europe/Paris").origin == "--tz"
