"""Text for a terminal: control characters from the reader or an upload are shown, not
obeyed (an OSC or CSI escape sequence in a note could retitle the window, hide lines or
rewrite what the terminal shows)."""

from __future__ import annotations

import re

#: C0 controls except TAB and LF, DEL, and the C1 controls (U+0080..U+009F)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character but TAB and LF written as ``\\xNN``."""
    return _CONTROLS.sub(_escape, text)


__all__ = ["escape_controls"]
