"""Write output files so they appear complete or not at all, without ever replacing what is
not a regular file.

One helper for every writer (``dump -o``, ``diff -o``, ``--record``), with these rules
(docs/reliability.md, "Output paths"):

- ``-`` is standard output.
- A new path, or an existing regular file, is written atomically: the data goes to a
  temporary file in the target's directory, is flushed and fsynced, and only then renamed
  over the target. An error, Ctrl-C or SIGTERM before the rename removes the temporary file
  and leaves the target as it was. Overwriting keeps the existing file's mode and owner; a
  new file is created readable by its owner only (0600: it holds health data).
- A symbolic link is followed: its target is written by these rules and the link stays a
  link (a dangling link creates its target).
- A FIFO, a character device (``/dev/null``, a terminal) or a socket is opened and written
  directly: renaming a file over it would replace the device node or pipe.
- A directory, an empty path, and a path whose directory is missing or not writable are
  errors, found by :func:`check_output` before any reader is opened (exit 2, the message
  names the path).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import InputError

STDOUT = "-"


def _target(path: str | os.PathLike[str]) -> Path:
    """The path to write: a symbolic link's (final) target, else the path itself."""
    target = Path(path)
    if target.is_symlink():
        return Path(os.path.realpath(target))
    return target


def _is_direct(target: Path) -> bool:
    """A path that is written in place: anything that exists and is not a regular file."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_output(path: str | None, what: str = "output") -> None:
    """Refuse an output path that cannot be written, before anything is read (InputError:
    exit 2, naming the path). None (no option given) and ``-`` are fine."""
    if path is None or path == STDOUT:
        return
    if path == "":
        raise InputError(f"the {what} path is empty (use - for standard output)")
    target = _target(path)
    if target.is_dir():
        raise InputError(f"{what} {path}: is a directory")
    if _is_direct(target):
        if not os.access(target, os.W_OK):
            raise InputError(f"{what} {path}: not writable")
        return
    directory = target.parent
    if not directory.is_dir():
        raise InputError(f"{what} {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: the directory {directory} is not writable")
    if target.exists() and not os.access(target, os.W_OK) and os.geteuid() != 0:
        raise InputError(f"{what} {path}: not writable")


def _same(a: str, b: str) -> bool:
    if a == STDOUT or b == STDOUT:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(outputs: Iterable[tuple[str, str | None]],
                   inputs: Iterable[tuple[str, str | None]] = ()) -> None:
    """Refuse two outputs on one file (one would silently lose) and an output on an input
    (it would be overwritten with what was read from it). Pairs are (option, path)."""
    outs = [(name, path) for name, path in outputs if path and path != STDOUT]
    ins = [(name, path) for name, path in inputs if path and path != STDOUT]
    for i, (name, path) in enumerate(outs):
        for other, other_path in outs[i + 1:]:
            if _same(path, other_path):
                raise InputError(f"{name} and {other} name the same file {path}: "
                                 "one would be lost")
        for source, source_path in ins:
            if _same(path, source_path):
                raise InputError(f"{name} {path} is also the input {source}: refusing to "
                                 "overwrite it")


@contextlib.contextmanager
def _direct(target: Path, mode: str, encoding: str | None) -> Iterator[IO[str]]:
    with open(target, mode, encoding=encoding, newline="") as handle:
        yield handle


def _new_private_file(directory: Path, name: str) -> tuple[int, str]:
    """A new file ``.NAME.<random>.tmp`` in ``directory`` that no one else has opened: the
    contract of :func:`tempfile.mkstemp` (created exclusively, mode 0600, never through a
    link) without importing :mod:`tempfile`, whose imports (random, shutil, bz2, lzma) cost
    about 12 ms, more than all the work of a 100-record dump (docs/performance.md)."""
    flags = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    for _ in range(100):
        path = os.path.abspath(os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp"))
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue  # 48 random bits taken already: draw again
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(directory))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w",
                 encoding: str | None = "utf-8") -> Iterator[IO[str]]:
    """``with atomic_write("out.json") as f: ...`` (text mode), by the rules above."""
    if str(path) == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = _target(path)
    if _is_direct(target):
        with _direct(target, mode, encoding) as handle:
            yield handle
        return
    if target.is_dir():
        raise InputError(f"{path}: is a directory")
    try:
        old = target.stat()
    except OSError:
        old = None
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = _new_private_file(directory, target.name)
    try:
        if old is not None:  # keep the mode and owner of the file being replaced
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
            if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, old.st_uid, old.st_gid)
        with os.fdopen(fd, mode, encoding=encoding, newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
