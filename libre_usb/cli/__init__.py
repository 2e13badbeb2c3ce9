"""The ``libre-dump`` command line: thin click commands over the library.

Commands parse options, call the library and render. They never build frames.
Every command lives in its own module and is registered in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib

from ._base import main

#: modules that each define ``commands``, a list of click commands or groups
COMMAND_MODULES = (
    "libre_usb.cli.device_cmds",
    "libre_usb.cli.linux_cmds",
    "libre_usb.cli.diff_cmd",
    "libre_usb.cli.schema_cmd",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for command in module.commands:
            main.add_command(command)


_register()

__all__ = ["main"]
