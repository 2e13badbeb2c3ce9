"""``schema``: print the JSON Schema of the ``json`` dump format."""

from __future__ import annotations

from importlib import resources

import click

from ..errors import LibreDumpError

SCHEMA_FILE = "dump.schema.json"


def schema_text() -> str:
    """The schema as shipped in the package (``libre_usb/data``, the same file as
    ``docs/dump.schema.json``)."""
    try:
        return (resources.files("libre_usb") / "data" / SCHEMA_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise LibreDumpError(f"the packaged schema is missing ({exc}); "
                             "reinstall libre-dump") from None


@click.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) that every `dump --format json` output follows."""
    click.echo(schema_text(), nl=False)


commands = [schema]
