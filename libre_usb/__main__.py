"""``python -m libre_usb`` is the ``libre-dump`` command (:func:`run` is the console script)."""

from __future__ import annotations

import sys


def run() -> None:
    """The ``libre-dump`` entry point. ``--version`` alone is answered without importing
    click (the same line click's version option prints): it is what scripts and package
    managers call most, and start-up is most of its cost (docs/performance.md)."""
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        sys.stdout.write(f"libre-dump, version {__version__}\n")
        return
    from .cli import main

    main(prog_name="libre-dump")


if __name__ == "__main__":
    run()
