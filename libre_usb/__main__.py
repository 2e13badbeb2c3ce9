"""``python -m libre_usb`` and the ``libre-dump`` console script (:func:`run`).

Signals are handled from the first instruction to the last, with the exit codes shells
expect (128 + the signal number): Ctrl-C (SIGINT) exits 130, SIGTERM 143. Until the command
line is set up (imports take a few tenths of a second) nothing can be half written, so a
signal then ends the process at once with one line on stderr; from then on it unwinds (output
files are atomic: no partial file is left) and a repeated signal is ignored while it does.

The process ends with :func:`os._exit` once the command has finished, its output files are
closed and renamed into place, stdout and stderr are flushed and the ``atexit`` handlers have
run: the interpreter's own teardown (freeing every module and, after a long dump, every
record) changes nothing on disk or screen and costs 10-20 ms, more than a 100-record dump's
whole work (docs/performance.md).
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
from types import FrameType
from typing import NoReturn


def _early(signum: int, frame: FrameType | None) -> None:
    try:
        what = b"terminated by SIGTERM" if signum == signal.SIGTERM else b"interrupted"
        os.write(2, b"libre-dump: error: " + what + b"; no partial output was written\n")
    except OSError:
        pass
    os._exit(128 + signum)


def _flush(stream: object) -> None:
    try:
        stream.flush()  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        pass


def run() -> NoReturn:
    """The entry point: handlers first, then the command line, then a controlled exit."""
    _exit(_main())


def _main() -> int:
    """The command line run to its end, signals ignored from then on: the exit code."""
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    if sys.stderr is None:  # started with stderr closed (2>&-): messages go nowhere
        sys.stderr = open(os.devnull, "w")
    code: int | str | None = 0
    try:
        if sys.argv[1:] == ["--version"]:
            # answered without importing click (the same line click's version option
            # prints): it is what scripts and package managers call most, and start-up
            # is most of its cost (docs/performance.md)
            from . import __version__

            sys.stdout.write(f"libre-dump, version {__version__}\n")
        else:
            # no cyclic garbage collection while the command line and the command's modules
            # are imported (they make many objects and no garbage: about 3 ms of start-up);
            # the command line freezes what they made and turns it on again before the
            # command runs (cli._base.resume_collector)
            gc.disable()
            from .cli import _base, main

            _base.collector_paused = True
            main(prog_name="libre-dump")
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # a signal between the command's end and here
        code = 130
    # the last instructions: no signal may turn a finished run into a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _flush(sys.stdout)
    _flush(sys.stderr)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        _early_message(str(code))
        code = 1
    return code


def _exit(code: int) -> NoReturn:
    """End the process: ``atexit`` handlers (logging's flush among them), the standard
    streams flushed, then :func:`os._exit` without the interpreter's teardown. Signals are
    already ignored, so nothing here can be interrupted into a traceback."""
    try:
        atexit._run_exitfuncs()
    finally:
        _flush(sys.stdout)
        _flush(sys.stderr)
        os._exit(code)


def _early_message(text: str) -> None:
    try:
        os.write(2, text.encode("utf-8", "replace") + b"\n")
    except OSError:
        pass


if __name__ == "__main__":
    run()
