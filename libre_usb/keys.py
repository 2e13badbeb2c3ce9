"""Where the Libre 2/3 master keys and the host's random nonces come from (device layer).

The four master keys are not part of libre-dump. They ship in the optional
``freestyle-keys`` package (extra ``libre-dump[libre2]``), published by its author as
freely distributable; we import them at run time and never copy them.
"""

from __future__ import annotations

import importlib
import secrets

from .errors import MissingExtra
from .protocol.crypto.link import MasterKeys

__all__ = ["MISSING_KEYS_MESSAGE", "host_random", "load_master_keys"]

MISSING_KEYS_MESSAGE = (
    "reading a Libre 2/3 reader needs the encryption keys: pip install 'libre-dump[libre2]'"
)

_KEY_NAMES = (
    "AUTHORIZATION_ENCRYPTION_KEY",
    "AUTHORIZATION_MAC_KEY",
    "SESSION_ENCRYPTION_KEY",
    "SESSION_MAC_KEY",
)


def load_master_keys() -> MasterKeys:
    """The Libre 2/3 master keys from ``freestyle_keys.libre2``.

    Raises :class:`~libre_usb.errors.MissingExtra` when the package is not installed (or
    does not carry the four keys).
    """
    try:
        module = importlib.import_module("freestyle_keys.libre2")
    except ImportError:
        raise MissingExtra(MISSING_KEYS_MESSAGE) from None
    values = []
    for name in _KEY_NAMES:
        value = getattr(module, name, None)
        if not isinstance(value, int) or not 0 <= value < 1 << 128:
            raise MissingExtra(
                f"freestyle_keys.libre2 has no usable {name}; {MISSING_KEYS_MESSAGE}"
            )
        values.append(value)
    return MasterKeys(*values)


def host_random(n: int) -> bytes:
    """``n`` cryptographically random bytes, for the host's handshake nonce."""
    return secrets.token_bytes(n)
