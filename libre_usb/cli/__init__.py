"""The ``libre-dump`` command line: thin click commands over the library.

Commands parse options, call the library and render. They never build frames.

Commands are loaded lazily: :data:`COMMANDS` names the module and attribute of each, and
:class:`~libre_usb.cli._base.LazyGroup` imports a command's module only when that command
runs (or its own ``--help`` is asked for). ``libre-dump --help`` lists the commands from the
one-line summaries kept here (a test checks they equal each command's own), so neither
``--help`` nor ``--version`` imports the protocol, a transport backend, mitmproxy or crypto.
To add a command: write it in a module under ``libre_usb/cli/`` and add one line here.
"""

from __future__ import annotations

from ._base import LazyCommand, main

#: name -> (module, attribute, one-line summary shown by ``libre-dump --help``)
COMMANDS: dict[str, LazyCommand] = {
    "capture": LazyCommand("libre_usb.cli.capture_cmd", "capture",
                           "Print the reader conversation in a USB capture of any client's "
                           "session."),
    "clock": LazyCommand("libre_usb.cli.clock_cmd", "clock",
                         "Show the reader's clock, the host's clock and the drift between "
                         "them; with --set, set the reader's clock (the only command that "
                         "writes to a reader)."),
    "archive": LazyCommand("libre_usb.cli.archive_cmds", "archive_cmd",
                           "List the archived readers: the span of their records, counts by "
                           "kind, dumps and conflicts."),
    "export": LazyCommand("libre_usb.cli.archive_cmds", "export_cmd",
                          "Write archived records in any `dump` format."),
    "sync": LazyCommand("libre_usb.cli.archive_cmds", "sync",
                        "Read a reader (or a saved dump) into the local archive."),
    "diff": LazyCommand("libre_usb.cli.diff_cmd", "diff",
                        "Diff captured uploads (raw bodies, HAR files, mitmproxy flow files) "
                        "against a reader."),
    "doctor": LazyCommand("libre_usb.cli.linux_cmds", "doctor",
                          "Explain what the system sees of FreeStyle readers and how to fix "
                          "access."),
    "dump": LazyCommand("libre_usb.cli.device_cmds", "dump",
                        "Read everything the reader stores."),
    "info": LazyCommand("libre_usb.cli.device_cmds", "info",
                        "Show the reader's model, serial, software, unit, clock, patient, "
                        "record count and settings."),
    "list": LazyCommand("libre_usb.cli.device_cmds", "list_cmd",
                        "List attached FreeStyle readers and the URI to reach each."),
    "report": LazyCommand("libre_usb.cli.report_cmd", "report",
                          "Write an Ambulatory Glucose Profile (AGP) page, or its metrics as "
                          "JSON."),
    "schema": LazyCommand("libre_usb.cli.schema_cmd", "schema",
                          "Print the JSON Schema (draft 2020-12) that every `dump --format "
                          "json` output follows."),
    "simulate": LazyCommand("libre_usb.cli.linux_cmds", "simulate",
                            "Expose the virtual reader MODEL (e.g. libre) as a device on this "
                            "machine (root)."),
    "udev": LazyCommand("libre_usb.cli.linux_cmds", "udev",
                        "The udev rules that let a normal user open FreeStyle readers."),
}

main.lazy_commands = COMMANDS

__all__ = ["COMMANDS", "main"]
