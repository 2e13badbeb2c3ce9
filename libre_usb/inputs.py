"""Input files of every kind, read with one size bound and one wait bound.

Uploads, HAR and flow files, saved dumps and transcripts may be regular files, or
``/dev/stdin``, a pipe, a FIFO or a character device. :func:`open_input` opens any of them
without blocking (a FIFO with no writer would block ``open`` forever) and returns an
:class:`Input`, whose reads:

- never return more than ``max_bytes`` in total: past it, an :class:`InputError` (a regular
  file larger than that is refused before anything is read);
- never allocate more than they can return (``read(99999999999)`` on a 12-byte file, as a
  flow file's length prefix can ask for, allocates 13 bytes);
- wait at most :data:`WAIT_S` seconds for the next bytes of a pipe, FIFO or device, then fail
  with a one-line error ("no data for 10 s").
"""

from __future__ import annotations

import io
import os
import stat
from typing import Any

from .errors import InputError

#: longest wait for the next bytes of a pipe, FIFO or device (a FIFO with no writer)
WAIT_S = 10.0
_PIECE = 1 << 20


class Input(io.RawIOBase):
    """A bounded, non-blocking reader of one input (see the module docstring)."""

    def __init__(self, fd: int, label: str, max_bytes: int, size: int | None,
                 hint: str = "") -> None:
        super().__init__()
        self.fd = fd
        self.label = label
        self.max_bytes = max_bytes
        #: the size of a regular file, None for a stream
        self.size = size
        self.total = 0
        self.hint = hint
        self._peeked = b""
        self._eof = False
        self._count_byte = b""
        self._count_max = 0
        self._counted = 0

    # -- io interface ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.size is not None

    def fileno(self) -> int:
        return self.fd

    def tell(self) -> int:
        return self.total - len(self._peeked)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.size is None:
            raise io.UnsupportedOperation("seek on a stream")
        position = os.lseek(self.fd, offset, whence)
        self.total, self._peeked, self._eof = position, b"", False
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self.fd)
            finally:
                super().close()

    # -- reading -------------------------------------------------------------------------------

    def unread(self, data: bytes) -> None:
        """Put ``data`` (just read) back in front of what comes next."""
        self._peeked = data + self._peeked

    def count_values(self, byte: bytes, limit: int) -> None:
        """From now on, refuse input holding more than ``limit`` of ``byte`` (a bound on the
        values a format that marks each value with it can make: tnetstring's ``:``)."""
        self._count_byte, self._count_max = byte, limit
        self._counted = self._peeked.count(byte)

    def peek(self, n: int = 1) -> bytes:
        if len(self._peeked) < n:
            self._peeked += self._read(n - len(self._peeked))
        return self._peeked[:n]

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes (all of them for -1), fewer only at the end of the input."""
        want = (1 << 62) if n is None or n < 0 else n
        out = self._peeked[:want]
        self._peeked = self._peeked[len(out):]
        if len(out) < want:
            out += self._read(want - len(out))
        return out

    def _read(self, want: int) -> bytes:
        pieces: list[bytes] = []
        got = 0
        while got < want and not self._eof:
            room = self.max_bytes - self.total + 1  # one byte past the limit shows it
            if self.size is not None:
                room = min(room, max(self.size - self.total, 0) + 1)
            piece = self._read_piece(min(want - got, room, _PIECE))
            if not piece:
                self._eof = True
                break
            self.total += len(piece)
            if self.total > self.max_bytes:
                raise InputError(f"{self.label}: more than the {self.max_bytes}-byte limit"
                                 f"{self.hint}; refused")
            if self._count_byte:
                self._counted += piece.count(self._count_byte)
                if self._counted > self._count_max:
                    raise InputError(f"{self.label}: more than {self._count_max} values "
                                     "(a bomb made of structure?); refused")
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def _read_piece(self, count: int) -> bytes:
        if count <= 0:
            return b""
        if self.size is not None:
            return os.read(self.fd, count)
        import select  # only for pipes and FIFOs: not on a dump's start-up path

        while True:
            ready, _, _ = select.select([self.fd], [], [], WAIT_S)
            if not ready:
                raise InputError(f"{self.label}: no data for {WAIT_S:g} s (a pipe or FIFO "
                                 "with no writer?); stopped waiting")
            try:
                return os.read(self.fd, count)
            except BlockingIOError:
                continue


def open_input(path: str | os.PathLike[str], max_bytes: int, label: str | None = None,
               hint: str = "") -> Input:
    """Open ``path`` for bounded reading (InputError naming it when it cannot be)."""
    name = label or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{name}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{name}: is a directory")
        size: int | None = None
        if stat.S_ISREG(info.st_mode):
            size = info.st_size
            if size > max_bytes:
                raise InputError(f"{name}: {size} bytes is over the {max_bytes}-byte limit"
                                 f"{hint}; too large, refused")
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return Input(fd, name, max_bytes, size, hint)


def read_input(path: str | os.PathLike[str], max_bytes: int, label: str | None = None
               ) -> bytes:
    """The whole of ``path``, bounded as :func:`open_input` says."""
    with open_input(path, max_bytes, label) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise InputError(f"{handle.label}: {exc.strerror or exc}") from None


__all__ = ["WAIT_S", "Input", "open_input", "read_input"]
