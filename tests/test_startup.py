"""Start-up stays cheap: commands are imported lazily, ``--version`` and ``--help`` load no
protocol, transport backend, upload reader or crypto (issue 16). Timing is bench/'s job;
these tests check what is imported, which is what the time depends on."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from libre_usb import __version__
from libre_usb.cli import COMMANDS, main

HEAVY = ("construct", "hid", "hidraw", "usb", "mitmproxy", "libre_usb.protocol",
         "libre_usb.transport", "libre_usb.upload", "libre_usb.reader", "libre_usb.simulator",
         "libre_usb.protocol.crypto", "libre_usb.linux")


def _modules_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``libre-dump argv``."""
    code = (
        "import sys, json, contextlib, io\n"
        "from libre_usb.__main__ import _main\n"
        f"sys.argv = ['libre-dump', *{list(argv)!r}]\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    _main()  # run() without its os._exit\n"
        "sys.__stdout__.write(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    return set(json.loads(done.stdout))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("argv", [("--version",), ("--help",), ("schema",), ("dump", "--help")])
def test_light_commands_import_nothing_heavy(argv: tuple[str, ...]) -> None:
    heavy = _heavy(_modules_after(*argv))
    if argv == ("dump", "--help"):
        # the dump command's module names its options (formats, models): still no backend,
        # no crypto, no upload reader
        heavy = [m for m in heavy if not m.startswith(("libre_usb.protocol", "construct",
                                                       "libre_usb.reader", "libre_usb.transport"))
                 or m.startswith(("libre_usb.protocol.crypto", "libre_usb.transport.interfaces"))]
    assert heavy == []


def test_version_imports_not_even_click() -> None:
    modules = _modules_after("--version")
    assert "click" not in modules
    assert "libre_usb.cli" not in modules


def test_version_fast_path_prints_what_click_prints() -> None:
    done = subprocess.run([sys.executable, "-m", "libre_usb", "--version"], capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout == CliRunner().invoke(main, ["--version"], prog_name="libre-dump").output
    assert done.stdout == f"libre-dump, version {__version__}\n"


def test_dump_of_a_replay_imports_no_usb_backend_crypto_or_upload_reader() -> None:
    modules = _modules_after("dump", "--device", "sim:libre?days=1", "-o", "/dev/null")
    assert "libre_usb.cli.device_cmds" in modules  # the command did run
    for name in ("hid", "hidraw", "usb", "mitmproxy", "libre_usb.upload.load",
                 "libre_usb.transport.interfaces.hidapi", "libre_usb.transport.interfaces.pyusb",
                 "libre_usb.linux.doctor"):
        assert name not in modules, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_summaries_in_the_table_are_the_commands_own(name: str) -> None:
    where = COMMANDS[name]
    command = getattr(importlib.import_module(where.module), where.attribute)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert command.get_short_help_str(limit=1_000_000) == where.summary


def test_every_command_module_is_in_the_table() -> None:
    """A command defined in a cli module but missing from the table would be unreachable."""
    for module in {where.module for where in COMMANDS.values()}:
        defined = {c.name for c in importlib.import_module(module).commands}
        assert defined <= set(COMMANDS), defined - set(COMMANDS)


def test_help_lists_every_command_and_unknown_command_fails() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.output
    bad = CliRunner().invoke(main, ["no-such-command"])
    assert bad.exit_code == 2 and "No such command" in bad.output


@pytest.mark.parametrize(("argv", "code", "out"), [
    (["--version"], 0, f"libre-dump, version {__version__}\n"),
    (["dump", "--no-such-option"], 2, ""),
])
def test_the_process_ends_without_teardown_but_with_its_output_and_exit_handlers(
        argv: list[str], code: int, out: str) -> None:
    """run() ends with os._exit: stdout still arrives whole through a pipe, atexit handlers
    (logging's flush is one) still run, and the exit code is the command's."""
    script = ("import atexit, sys\n"
              "from libre_usb.__main__ import run\n"
              "atexit.register(lambda: sys.stderr.write('exit handler ran\\n'))\n"
              f"sys.argv = ['libre-dump', *{argv!r}]\n"
              "run()\n"
              "raise AssertionError('run() returned')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == code, done.stderr
    assert done.stdout == out
    assert done.stderr.endswith("exit handler ran\n")
    assert "Traceback" not in done.stderr


def test_a_dump_with_nothing_to_log_never_imports_logging() -> None:
    """libre_usb.logs: logging (about 4 ms of start-up) comes in with the first message."""
    modules = _modules_after("dump", "--device", "sim:libre?days=1", "-o", "/dev/null")
    assert "libre_usb.cli.device_cmds" in modules and "logging" not in modules


def test_the_first_warning_configures_logging_and_is_written_as_ours(tmp_path: Path) -> None:
    """A retry's warning on a run that had imported no logging: our prefix, on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "libre_usb", "dump", "--device",
         "sim:libre?days=1&faults=checksum_once@history", "-o", str(tmp_path / "d.json")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("libre-dump: WARNING: $history?") and "retrying" in line
               for line in lines), lines


def test_below_the_threshold_a_message_imports_nothing() -> None:
    script = ("import sys\n"
              "from libre_usb import logs\n"
              "logs.configure_lazily(logs.WARNING, lambda: print('configured'))\n"
              "logs.get('libre_usb.x').info('not shown %d', 1)\n"
              "print('logging' in sys.modules)\n"
              "logs.get('libre_usb.x').warning('shown %d', 2)\n"
              "print('logging' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.splitlines() == ["False", "configured", "True"]
    assert done.stderr == "shown 2\n"  # logging's last resort: the hook configured nothing


def test_a_json_dump_imports_no_other_format(tmp_path: Path) -> None:
    """The libreview-csv writer and its csv helpers are imported by what uses them, not by
    every dump (a few ms of start-up)."""
    session = tmp_path / "s.jsonl"
    subprocess.run([sys.executable, "-m", "libre_usb", "dump", "--device", "sim:neo?days=1",
                    "--record", str(session), "-o", os.devnull, "-q"], check=True, timeout=120)
    modules = _modules_after("dump", "--device", f"replay:{session}", "-o", os.devnull)
    assert "libre_usb.cli.device_cmds" in modules
    for name in ("libre_usb.output.libreview_csv", "libre_usb.output.csvlines"):
        assert name not in modules, name


def test_the_date_styles_the_command_line_offers_are_the_writers() -> None:
    from libre_usb.output import export, libreview_csv

    assert export.LIBREVIEW_DATE_STYLES == tuple(sorted(libreview_csv.DATE_STYLES))
    assert export.LIBREVIEW_DEFAULT_DATE_STYLE == libreview_csv.DEFAULT_DATE_STYLE


def test_the_collector_is_off_for_start_up_and_on_for_the_command(tmp_path: Path) -> None:
    """__main__ imports with the cyclic collector off; the command line freezes what start-up
    made and turns the collector on again before the command runs."""
    script = ("import gc, sys\n"
              "from libre_usb.__main__ import _main\n"
              "from libre_usb.cli import device_cmds\n"
              "seen = []\n"
              "real = device_cmds.open_session\n"
              "def spy(*a, **k):\n"
              "    seen.append((gc.isenabled(), gc.get_freeze_count() > 0))\n"
              "    return real(*a, **k)\n"
              "device_cmds.open_session = spy\n"
              f"sys.argv = ['libre-dump', 'dump', '--device', 'sim:neo?days=1', '-o', "
              f"{str(tmp_path / 'd.json')!r}, '-q']\n"
              "code = _main()\n"
              "print(code, seen[0], gc.isenabled())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split("\n")[0] == "0 (True, True) True", done.stderr
