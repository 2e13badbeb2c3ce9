"""What the virtual reader keeps from one run to the next: its clock, once someone set it.

A real reader's clock keeps running after ``libre-dump clock --set`` ends; the virtual reader
lives as long as one command. So a ``sim:`` device keeps the clock it was set to in a small
JSON file, and the next run reads it back:

``$XDG_STATE_HOME/libre-dump/sim/<model>-seed<seed>.json`` (``~/.local/state`` when
``XDG_STATE_HOME`` is unset or not absolute, as the XDG base directory specification says),
unless the URI names another file (``sim:libre?state=FILE``) or none (``state=none``: the
reader forgets when the command ends).

The file is written only when a setter changes the clock (``$date,``/``$time,`` or the binary
SET_DATE_TIME), never by a read: until then the reader shows its seeded clock, and dumps of
the same model and seed are the same bytes. It holds the time the clock was set to and the
moment (UTC) it was set; a later run shows that time plus what has elapsed since, the way a
reader's own clock would have run. Delete the file to give the reader its seeded clock back.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

from .. import jsonsafe
from ..errors import InputError

#: ``state=none``: keep nothing beyond the command
NO_STATE = "none"


def default_state_path(model: str, seed: int,
                       environ: Mapping[str, str] | None = None) -> Path:
    """Where a plain ``sim:<model>`` (of seed ``seed``) keeps its clock."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else (
        Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return root / "libre-dump" / "sim" / f"{model}-seed{seed}.json"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def load_clock(path: Path) -> dt.datetime | None:
    """The clock saved in ``path``, run on by the time elapsed since it was set; None when
    there is no such file (nobody set the clock)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        clock = dt.datetime.fromisoformat(saved["clock"])
        set_at = saved.get("set_at")
        if set_at is not None:
            # the clock ran on since; a host clock that went back does not turn it back
            elapsed = _utc_now() - dt.datetime.fromisoformat(set_at)
            clock += max(elapsed, dt.timedelta(0))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise InputError(f"sim state file {path}: {exc} (delete it to start afresh)") from None
    return clock


def save_clock(path: Path, clock: dt.datetime) -> None:
    """Keep ``clock`` (just set) in ``path``, written whole or not at all."""
    text = jsonsafe.dumps({"clock": clock.isoformat(),
                           "set_at": _utc_now().isoformat()}) + "\n"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"sim state file {path}: {exc}") from None
