"""The local archive (``libre-dump sync``, ``archive``, ``export``): see :mod:`.store`."""

from .store import Archive, Conflict, ReaderSummary, SyncResult, default_path

__all__ = ["Archive", "Conflict", "ReaderSummary", "SyncResult", "default_path"]
