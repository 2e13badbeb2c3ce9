"""``python -m libre_usb`` is the ``libre-dump`` command."""

from .cli import main

main(prog_name="libre-dump")
