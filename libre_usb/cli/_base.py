"""The root click group and the error handling every command shares."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..errors import EXIT_INPUT, EXIT_INTERRUPTED, Disconnected, Interrupted, LibreDumpError


class _Group(click.Group):
    """A group whose commands report library errors as one line plus an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except LibreDumpError as exc:
            if debug:
                raise
            message = str(exc)
            if isinstance(exc, Disconnected):
                # like Ctrl-C: output files are atomic, so none was left half written
                message += "; no partial output was written"
            click.echo(f"libre-dump: error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("libre-dump: interrupted; no partial output was written", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # the reader of our stdout went away (e.g. `| head`): not an error of ours
            sys.stderr.close()
            ctx.exit(0)
        except OSError as exc:
            if debug:
                raise
            click.echo(f"libre-dump: error: {exc.strerror or exc}", err=True)
            ctx.exit(EXIT_INPUT)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="libre-dump")
@click.option("--debug", is_flag=True, help="Show tracebacks and protocol debug output.")
def main(debug: bool) -> None:
    """Read Abbott FreeStyle glucose readers over USB, with no vendor software.

    Exit codes: 0 ok, 1 diff found differences, 2 usage or input error,
    3 device not found or not accessible, 4 protocol or checksum error,
    5 timeout, 6 interrupted.
    """
    import logging
    import signal

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="libre-dump: %(levelname)s: %(message)s")
    # SIGTERM unwinds like Ctrl-C, so output files are cleaned up, not left half written
    signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted("terminated by SIGTERM; no partial output was written")

