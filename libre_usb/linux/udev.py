"""The udev rules that let a normal user open FreeStyle readers on Linux.

The rules ship inside the package (``libre_usb/data/70-libre-dump.rules``, the same
bytes as ``udev/70-libre-dump.rules`` in the source tree) and are read with
:mod:`importlib.resources`, so ``libre-dump udev show`` and ``udev install`` work
from a wheel, a virtualenv or a source checkout alike.

A rules file is found by name across udev's directories; a file in
``/etc/udev/rules.d`` hides one of the same name in ``/run`` or ``/usr/lib``.
:func:`check` reports the copy udev actually uses.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from ..errors import AccessDenied, DeviceError, InputError

RULES_NAME = "70-libre-dump.rules"
#: every Abbott reader product id the rules cover (vendor 1a61), with a model name
#: (protocol.md section 1); :mod:`libre_usb.devices` has the models we can read
READER_PRODUCT_IDS: dict[int, str] = {
    0x3650: "libre",
    0x3670: "libre-pro",
    0x3950: "libre2",
    0x3960: "libre3",
    0x3850: "precision-neo",
    0x3460: "insulinx",
    0x3450: "insulinx",
}
DEFAULT_PREFIX = "/etc/udev/rules.d"
#: udev's rules directories, highest priority first (a file name found in an
#: earlier directory hides the same name in the later ones)
RULES_DIRS = (
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
)
#: the trigger that re-applies rules to attached readers (USB device level)
TRIGGER_COMMAND = ("udevadm", "trigger", "--action=change", "--attr-match=idVendor=1a61")
RELOAD_COMMAND = ("udevadm", "control", "--reload")
#: systemd's file that turns TAG+="uaccess" into an ACL; ours must sort before it
SEAT_LATE = "73-seat-late.rules"

_VERSION_RE = re.compile(rb"^#\s*libre-dump-rules-version:\s*(\d+)\s*$", re.MULTILINE)

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def rules_bytes() -> bytes:
    """The rules file shipped with this libre-dump."""
    resource = resources.files("libre_usb").joinpath("data").joinpath(RULES_NAME)
    try:
        data = resource.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        data = b""
    if data.startswith(b"#"):
        return data
    # A source checkout whose symlink was not kept (e.g. git with core.symlinks=false)
    source = Path(__file__).resolve().parent.parent / "udev" / RULES_NAME
    try:
        return source.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"the udev rules are missing from this installation ({RULES_NAME}); "
            "reinstall libre-dump"
        ) from None


def rules_text() -> str:
    return rules_bytes().decode("utf-8")


def rules_version(data: bytes) -> int | None:
    """The ``libre-dump-rules-version`` a rules file declares, or None."""
    match = _VERSION_RE.search(data)
    return int(match.group(1)) if match else None


# ----------------------------------------------------------------------------- check


@dataclasses.dataclass(frozen=True)
class RulesStatus:
    """What :func:`check` found.

    ``state`` is one of:

    ``current``   the file udev uses is byte-identical to ours
    ``missing``   no ``70-libre-dump.rules`` in any udev rules directory
    ``outdated``  installed from an older libre-dump (lower rules version)
    ``newer``     installed from a newer libre-dump
    ``modified``  same version (or none) but different bytes: edited by hand
    """

    state: str
    path: str | None
    installed_version: int | None
    packaged_version: int | None
    #: other copies of our file that udev ignores because ``path`` hides them
    shadowed: tuple[str, ...] = ()
    #: other rules files mentioning vendor 1a61 and uaccess that sort after 73-seat-late
    late_files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "current"

    def summary(self) -> str:
        if self.state == "current":
            return (
                f"udev rules installed and current: {self.path} "
                f"(version {self.packaged_version})"
            )
        if self.state == "missing":
            return f"udev rules not installed (no {RULES_NAME} in {', '.join(RULES_DIRS[:2])} ...)"
        if self.state == "outdated":
            return (
                f"udev rules outdated: {self.path} is version {self.installed_version}, "
                f"this libre-dump ships version {self.packaged_version}"
            )
        if self.state == "newer":
            return (
                f"udev rules from a newer libre-dump: {self.path} is version "
                f"{self.installed_version}, this one ships {self.packaged_version}"
            )
        return f"udev rules modified: {self.path} differs from the packaged copy"

    def fix(self) -> str | None:
        if self.state in ("missing", "outdated"):
            return install_hint()
        if self.state == "modified":
            return (
                f"compare with 'libre-dump udev show | diff - {self.path}'; "
                f"to restore ours: {install_hint()}"
            )
        return None


def check(dirs: Sequence[str | os.PathLike[str]] = RULES_DIRS) -> RulesStatus:
    """Is our rules file installed, and is it the one this libre-dump ships?"""
    ours = rules_bytes()
    ours_version = rules_version(ours)
    copies = [Path(d) / RULES_NAME for d in dirs if (Path(d) / RULES_NAME).is_file()]
    late = tuple(str(p) for p in _late_vendor_files(dirs))
    if not copies:
        return RulesStatus("missing", None, None, ours_version, late_files=late)
    used, shadowed = copies[0], tuple(str(p) for p in copies[1:])
    try:
        data = used.read_bytes()
    except OSError as exc:
        raise DeviceError(f"cannot read {used}: {exc.strerror}") from None
    version = rules_version(data)
    if data == ours:
        state = "current"
    elif version is not None and ours_version is not None and version < ours_version:
        state = "outdated"
    elif version is not None and ours_version is not None and version > ours_version:
        state = "newer"
    else:
        state = "modified"
    return RulesStatus(state, str(used), version, ours_version, shadowed, late)


def _late_vendor_files(dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Rules files that tag Abbott devices with uaccess but sort after 73-seat-late.

    Those are applied too late for the ACL to be set (systemd >= 258 never applies
    them), a common reason for "I installed the rules but it still fails".
    """
    found: dict[str, Path] = {}
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".rules") or name in found or name == RULES_NAME:
                continue
            found[name] = Path(d) / name
    late = []
    for name, path in sorted(found.items()):
        if name < SEAT_LATE[:3]:
            continue
        try:
            text = path.read_text(errors="replace").lower()
        except OSError:
            continue
        if "1a61" in text and "uaccess" in text:
            late.append(path)
    return late


# --------------------------------------------------------------------------- install


@dataclasses.dataclass(frozen=True)
class InstallResult:
    path: str
    #: False when the file was already identical (nothing was written)
    changed: bool
    dry_run: bool
    #: the commands run (or, for a dry run, that would be run), in order
    commands: tuple[tuple[str, ...], ...]
    #: human-readable remarks: skipped reloads, what to do next
    notes: tuple[str, ...] = ()


def install_hint(prefix: str = DEFAULT_PREFIX) -> str:
    """The exact command that installs the rules as root."""
    exe = _own_executable()
    extra = "" if prefix == DEFAULT_PREFIX else f" --prefix {shlex.quote(prefix)}"
    if exe:
        return f"sudo {shlex.quote(exe)} udev install{extra}"
    target = shlex.quote(str(Path(prefix) / RULES_NAME))
    return (
        f"libre-dump udev show | sudo tee {target} >/dev/null && "
        f"sudo {' '.join(RELOAD_COMMAND)} && sudo {' '.join(TRIGGER_COMMAND)}"
    )


def _own_executable() -> str | None:
    """An absolute path to the libre-dump command (sudo's PATH may not have a venv's)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "libre-dump" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    return shutil.which("libre-dump")


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        list(cmd), capture_output=True, text=True, timeout=60, check=False
    )


def abbott_hidraw_syspaths(sysfs: str | os.PathLike[str] = "/sys") -> list[str]:
    """sysfs paths of hidraw nodes whose HID device has vendor 1a61.

    ``udevadm trigger --attr-match=idVendor=1a61`` reaches only the USB device
    itself (hidraw devices have no idVendor attribute), so these are triggered too.
    """
    base = Path(sysfs) / "class" / "hidraw"
    found = []
    for entry in sorted(base.glob("hidraw*")):
        hid_id = _uevent(entry / "device" / "uevent").get("HID_ID", "")
        parts = hid_id.split(":")
        if len(parts) == 3 and parts[1].upper().endswith("1A61"):
            found.append(str(entry))
    return found


def _uevent(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def install(
    prefix: str = DEFAULT_PREFIX,
    dry_run: bool = False,
    *,
    runner: Runner = _run,
    sysfs: str = "/sys",
) -> InstallResult:
    """Write the rules into ``prefix`` atomically, reload udev and re-trigger readers.

    Raises :class:`~libre_usb.errors.AccessDenied` (one line, with the exact sudo
    command) when this user cannot write ``prefix``.
    """
    target = Path(prefix) / RULES_NAME
    data = rules_bytes()
    is_root = os.geteuid() == 0
    commands: list[tuple[str, ...]] = [RELOAD_COMMAND, TRIGGER_COMMAND]
    hidraw = abbott_hidraw_syspaths(sysfs)
    if hidraw:
        commands.append(("udevadm", "trigger", "--action=change", *hidraw))
    try:
        changed = target.read_bytes() != data
    except OSError:
        changed = True
    if Path(prefix).exists() and not Path(prefix).is_dir():
        raise InputError(f"{prefix} is a file, not a directory")
    if not Path(prefix).is_dir():
        if not Path(prefix).parent.is_dir():
            raise InputError(f"{prefix} does not exist (nor does its parent directory)")
        if not dry_run and not is_root:
            raise AccessDenied(f"{prefix} does not exist; run: {install_hint(prefix)}")
    elif not os.access(prefix, os.W_OK | os.X_OK) and not dry_run:
        raise AccessDenied(
            f"installing udev rules into {prefix} needs root; run: {install_hint(prefix)}"
        )
    notes: list[str] = []
    if dry_run:
        if not is_root and not os.access(prefix, os.W_OK):
            notes.append(f"this needs root: {install_hint(prefix)}")
        if not changed:
            notes.append(f"{target} is already current; nothing would be written")
        return InstallResult(str(target), changed, True, tuple(commands), tuple(notes))
    if changed:
        # e.g. /run/udev/rules.d, which udev reads but does not create
        Path(prefix).mkdir(mode=0o755, exist_ok=True)
        _atomic_write(target, data)
    if not is_root:
        notes.append(
            "udev was not reloaded (not root); run: sudo "
            + " ".join(RELOAD_COMMAND)
            + " && sudo "
            + " ".join(TRIGGER_COMMAND)
        )
        return InstallResult(str(target), changed, False, (), tuple(notes))
    if shutil.which("udevadm") is None and runner is _run:
        notes.append("udevadm not found: unplug and replug the reader to apply the rules")
        return InstallResult(str(target), changed, False, (), tuple(notes))
    ran: list[tuple[str, ...]] = []
    for cmd in commands:
        result = runner(cmd)
        ran.append(cmd)
        if result.returncode != 0:
            err = (result.stderr or result.stdout or "").strip().splitlines()
            detail = err[-1] if err else f"exit status {result.returncode}"
            notes.append(f"'{' '.join(cmd)}' failed ({detail}); replug the reader to apply")
            break
    return InstallResult(str(target), changed, False, tuple(ran), tuple(notes))


def _atomic_write(target: Path, data: bytes) -> None:
    """Write ``target`` so that udev never reads a half-written file.

    The temporary name does not end in ``.rules``, so udev ignores it.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
