"""libre-dump: read Abbott FreeStyle glucose readers over USB HID, and audit vendor uploads."""

__version__ = "0.1.0"
