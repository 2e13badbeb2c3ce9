"""The root click group and the error handling every command shares.

Every failure is one line on stderr, ``libre-dump: error: ...``, and a documented exit
code: library errors (:mod:`libre_usb.errors`), usage errors (exit 2, without click's usage
block), signals (128 + N: 130 for Ctrl-C, 143 for SIGTERM). Text from the reader or an
upload never reaches the terminal with its control characters (an escape sequence in a
note is shown as ``\\x1b``, not obeyed).
"""

from __future__ import annotations

import gc
import importlib
import math
import signal
import sys
from collections.abc import Mapping
from types import FrameType, MappingProxyType
from typing import Any, NamedTuple

import click

from .. import __version__, logs
from ..errors import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    Disconnected,
    Interrupted,
    LibreDumpError,
    Terminated,
)
from ..output.terminal import escape_controls


def fail(message: str) -> None:
    """Write one error line (control characters escaped, one line whatever the text)."""
    line = " ".join(escape_controls(message).split())
    try:
        click.echo(f"libre-dump: error: {line}", err=True)
    except OSError:
        pass


class LazyCommand(NamedTuple):
    """Where a command lives, and its one-line summary for the group's ``--help``."""

    module: str
    attribute: str
    summary: str


#: options can come from LIBRE_DUMP_<COMMAND>_<OPTION> (README)
ENV_PREFIX = "LIBRE_DUMP"


def name_envvars(command: click.Command, prefix: str) -> None:
    """Name each option's environment variable after the option as typed (``--format`` ->
    ``<prefix>_FORMAT``), not after the Python parameter behind it (``fmt``), which is what
    click's ``auto_envvar_prefix`` alone would use."""
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar is None:
            longs = [o for o in param.opts if o.startswith("--")]
            if longs:
                param.envvar = f"{prefix}_{longs[0][2:].replace('-', '_').upper()}"
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            name_envvars(sub, f"{prefix}_{name.replace('-', '_').upper()}")


class _Group(click.Group):
    """A group whose commands report library errors as one line plus an exit code, and
    whose commands are imported only when used (see :data:`libre_usb.cli.COMMANDS`)."""

    lazy_commands: Mapping[str, LazyCommand] = MappingProxyType({})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        where = self.lazy_commands.get(cmd_name)
        if where is None:
            return None
        command = getattr(importlib.import_module(where.module), where.attribute)
        assert isinstance(command, click.Command)
        name_envvars(command, f"{ENV_PREFIX}_{cmd_name.replace('-', '_').upper()}")
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries in the table: no command module imported."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            if loaded is not None and loaded.hidden:
                continue
            summary = (loaded.get_short_help_str(limit=1_000_000) if loaded is not None
                       else self.lazy_commands[name].summary)
            rows.append((name, summary))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            # click's own shortening, on a stand-in command that carries only the summary
            formatter.write_dl([(name, click.Command(name, help=summary).get_short_help_str(limit))
                                for name, summary in rows])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # --debug is a global option, but people add it where they notice they need it: at
        # the end. Accept it anywhere before a "--" by moving it in front of the command.
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            args = ["--debug"] + [a for a in args[:end] if a != "--debug"] + args[end:]
        return super().parse_args(ctx, args)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            value = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.UsageError as exc:  # bad option or argument: one line, not the usage
            where = exc.ctx.command_path if exc.ctx is not None else "libre-dump"
            fail(f"{exc.format_message()} (see '{where} --help')")
            value = exc.exit_code
        except click.Abort:  # click's own prompt interrupted
            fail("interrupted; no partial output was written")
            value = EXIT_INTERRUPTED
        except click.ClickException as exc:
            fail(exc.format_message())
            value = exc.exit_code
        finally:
            # back to the library's default for what runs after in the same process (the
            # library itself, or the command line again, as the tests run it)
            logs.reset()
        if not standalone_mode:
            return value
        sys.exit(value if isinstance(value, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except LibreDumpError as exc:
            if isinstance(exc, Interrupted):
                _hold_signals()
            if debug:
                raise
            message = str(exc)
            if isinstance(exc, Disconnected):
                # like Ctrl-C: output files are atomic, so none was left half written
                message += "; no partial output was written"
            fail(message)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _hold_signals()
            if debug:
                raise
            fail("interrupted; no partial output was written")
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # the reader of our stdout went away (e.g. `| head`): not an error of ours
            sys.stderr.close()
            ctx.exit(0)
        except OSError as exc:
            if debug:
                raise
            fail(str(exc.strerror or exc))
            ctx.exit(EXIT_INPUT)


class Finite(click.FloatRange):
    """A float in a range, and a number: ``nan`` and ``inf`` are refused (every comparison
    with NaN is false, so a plain range lets it through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "auto_envvar_prefix": ENV_PREFIX})
@click.version_option(__version__, prog_name="libre-dump")
@click.option("--debug", is_flag=True, help="Show tracebacks and protocol debug output.")
def main(debug: bool) -> None:
    """Read Abbott FreeStyle glucose readers over USB, with no vendor software.

    Every option can also come from the environment: LIBRE_DUMP_<COMMAND>_<OPTION>, e.g.
    LIBRE_DUMP_DUMP_DEVICE=sim:libre or LIBRE_DUMP_DUMP_TZ=Europe/Berlin.

    Exit codes: 0 ok, 1 diff found differences, 2 usage or input error,
    3 device not found or not accessible, 4 protocol, checksum or MAC error,
    5 timeout, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM): 128 + the
    signal number, as shells report it.
    """
    resume_collector()
    # logging is configured when the first message is written (most runs write none, and
    # importing logging costs a few ms of start-up: libre_usb.logs); with --debug at once
    logs.configure_lazily(logs.DEBUG if debug else logs.WARNING,
                          lambda: _configure_logging(debug))
    if debug:
        logs.ready()
    # From here on a signal unwinds (output files are cleaned up, not left half written)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _terminate)


#: set by ``libre_usb.__main__``, which imports the command line with the cyclic garbage
#: collector off
collector_paused = False


def resume_collector() -> None:
    """After start-up's imports (the command's module included), before the command runs:
    what they made lives as long as the process, so it is frozen (never traversed by a
    collection) and the collector is on again."""
    global collector_paused
    if collector_paused:
        collector_paused = False
        gc.freeze()
        gc.enable()


def _configure_logging(debug: bool) -> None:
    """Messages on stderr as ``libre-dump: warning: ...``, control characters escaped."""
    import logging

    class EscapingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return escape_controls(super().format(record))

    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("libre-dump: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


def _hold_signals() -> None:
    """While unwinding after the first signal, later ones are ignored (no second traceback,
    no "Exception ignored ... KeyboardInterrupt")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _hold_signals()
    raise Interrupted("interrupted; no partial output was written")


def _terminate(signum: int, frame: FrameType | None) -> None:
    _hold_signals()
    raise Terminated("terminated by SIGTERM; no partial output was written")

