"""The library's log messages, without importing :mod:`logging` until one is written.

Importing logging costs about 4 ms, a real share of a small dump's start-up
(docs/performance.md), and most runs have nothing to log. So library modules log through
:func:`get`, whose loggers pass a message on to ``logging.getLogger(name)`` only when its
level reaches :data:`threshold`, and import logging then.

The library's own threshold is 0: every message goes on to logging, whose configuration
decides, as with plain logging. The command line raises it to its handler's level
(:func:`configure_lazily`) and configures logging just before the first message that gets
through, or at once when logging is already imported (then a third party may log too).
Code about to use a third party that logs calls :func:`ready` first, so that its messages
are written (and escaped) as ours are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

DEBUG, INFO, WARNING = 10, 20, 30

#: messages below this level are dropped before logging is imported (0: none are)
threshold = 0
#: what configures logging, until it has run (set by :func:`configure_lazily`)
_configure: Callable[[], None] | None = None


def configure_lazily(level: int, configure: Callable[[], None]) -> None:
    """Drop messages below ``level``; run ``configure`` before the first one that is not,
    or now when logging is already imported."""
    global threshold, _configure
    threshold, _configure = level, configure
    if "logging" in sys.modules:
        ready()


def reset() -> None:
    """Back to the library's default: every message on to logging, nothing to configure."""
    global threshold, _configure
    threshold, _configure = 0, None


def ready() -> None:
    """Configure logging now, if that is still to be done."""
    global _configure
    configure, _configure = _configure, None
    if configure is not None:
        configure()


class Logger:
    """The few methods of :class:`logging.Logger` the library uses."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, message: str, *args: object) -> None:
        self._emit(DEBUG, message, args)

    def info(self, message: str, *args: object) -> None:
        self._emit(INFO, message, args)

    def warning(self, message: str, *args: object) -> None:
        self._emit(WARNING, message, args)

    def _emit(self, level: int, message: str, args: tuple[object, ...]) -> None:
        if level < threshold:
            return
        ready()
        import logging

        # stacklevel 3: the record names the caller of debug()/info()/warning(), not this
        # module
        logging.getLogger(self.name).log(level, message, *args, stacklevel=3)


def get(name: str) -> Logger:
    """The logger ``name`` (a :mod:`logging` logger name, e.g. ``libre_usb.reader.session``)."""
    return Logger(name)
