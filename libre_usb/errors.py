"""The error types libre-dump raises, each with the exit code the CLI uses for it.

Only these types (and their subclasses) may escape the library. The CLI turns them
into a one-line message on stderr and the exit code below:

====  ============================================================
code  meaning
====  ============================================================
0     success
1     ``diff`` only: the upload and the reader differ
2     usage or input error (bad option, bad file, hostile input)
3     device not found or not accessible (permissions, unplugged)
4     protocol error: bad checksum, bad MAC, unexpected reply
5     timeout: the device stopped answering
130   interrupted (Ctrl-C, SIGINT); nothing partial was written
143   terminated (SIGTERM); nothing partial was written
====  ============================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_INPUT = 2
EXIT_DEVICE = 3
EXIT_PROTOCOL = 4
EXIT_TIMEOUT = 5
#: 128 + the signal number, as shells report a process a signal ended
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class LibreDumpError(Exception):
    """Base class of every error the library raises on purpose."""

    exit_code: int = EXIT_INPUT


class InputError(LibreDumpError):
    """A file, option or value given to us is unusable (exit 2)."""

    exit_code = EXIT_INPUT


class DeviceError(LibreDumpError):
    """No reader, or the reader cannot be opened, or it went away (exit 3)."""

    exit_code = EXIT_DEVICE


class DeviceNotFound(DeviceError):
    """No matching reader is attached."""


class AccessDenied(DeviceError):
    """The reader is there but this user may not open it."""


class Disconnected(DeviceError):
    """The reader disappeared while we were talking to it."""


class MissingExtra(LibreDumpError):
    """An optional dependency is needed for this (exit 2)."""

    exit_code = EXIT_INPUT


class ProtocolError(LibreDumpError):
    """The reader sent something that breaks the protocol (exit 4)."""

    exit_code = EXIT_PROTOCOL


class ChecksumError(ProtocolError):
    """A text reply or record trailer failed its checksum."""


class NotInTranscript(ProtocolError):
    """A replayed transcript has no answer to a request: the recorded client never sent it."""


class MacError(ProtocolError):
    """An encrypted report failed its MAC (Libre 2/3)."""


class CommandFailed(ProtocolError):
    """The reader answered ``CMD Fail!`` or ``30 01 85`` (unknown message)."""


class EncryptionError(ProtocolError):
    """The Libre 2/3 encryption handshake failed or was not done."""


class DeviceTimeout(LibreDumpError):
    """The reader did not answer within the timeout (exit 5)."""

    exit_code = EXIT_TIMEOUT


class Interrupted(LibreDumpError):
    """The user or the system stopped the run (exit 6)."""

    exit_code = EXIT_INTERRUPTED


class Terminated(Interrupted):
    """SIGTERM stopped the run (exit 143)."""

    exit_code = EXIT_TERMINATED
