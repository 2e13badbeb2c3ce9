"""Upload fields that no reader record explains."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..output.libreview import (
    ANNOTATION_KEY,
)
from .items import entry_kind
from .kinds import LIST_KINDS, UnexplainedField
from .load import Upload, is_secret_name

_COMMON_KEYS = {"recordNumber", "timestamp", "extendedProperties"}
_COMMON_EXT = {"factoryTimestamp"}
_GLUCOSE_EXT = {"isFirstAfterTimeChange", "lowOutOfRange", "highOutOfRange"}
#: per kind: (entry keys, extendedProperties keys) a reader record explains
_EXPLAINED: dict[str, tuple[set[str], set[str]]] = {
    "history": ({"valueInMgPerDl"}, _GLUCOSE_EXT),
    "scan": ({"valueInMgPerDl"}, _GLUCOSE_EXT | {"trendArrow", "isActionable"}),
    "glucose": ({"valueInMgPerDl"}, _GLUCOSE_EXT),
    "ketone": ({"valueInMmolPerL", "valueInMgPerDl"}, {"lowOutOfRange", "highOutOfRange"}),
    "insulin": ({"insulinType", "units"}, set()),
    "food": ({"gramsCarbs"}, set()),
    "exercise": ({"type"}, set()),
    "medication": ({"type"}, set()),
    "note": ({"type"}, {"text"}),
    "sensorstart": ({"type"}, set()),
    "sensorend": ({"type"}, set()),
    "alert": ({"type"}, set()),
    "error": ({"type"}, set()),
    "current": ({"valueInMgPerDl"}, _GLUCOSE_EXT | {"trendArrow", "isActionable"}),
    "other": ({"type"}, set()),
}
#: what known fields without a reader counterpart are
_FIELD_NOTES = {
    "capabilities": "entry types the uploading app says it can send",
    "connectedDevices": "insulin pens or other devices linked to the app",
    "forceUpload": "app upload flag",
    "Domain": "service name",
    "linkedGlucoseRecordNumber": "link from a logbook entry to a glucose entry (app "
                                 "bookkeeping)",
    "isViewed": "whether you looked at the value in the app",
    "canMerge": "server-side merge hint",
    "foodType": "meal name chosen by the app (a reader stores none)",
    "gmin": "sensor's lowest reportable glucose",
    "gmax": "sensor's highest reportable glucose",
    "puckGen": "sensor transmitter generation",
    "wearDuration": "sensor wear time in minutes",
    "warmupTime": "sensor warm-up in minutes",
    "productType": "sensor product type",
    "latejoin": "sensor late-join flag",
    "isStreaming": "whether sensor streaming (Bluetooth) is on",
    "action": "deletion marker",
    "intensity": "exercise intensity (a reader stores none)",
    "durationInMinutes": "exercise duration (a reader stores none)",
}
_KNOWN_ENVELOPE = {"DeviceData", "UserToken", "GatewayType", ANNOTATION_KEY}
_KNOWN_DEVICE_DATA = {"header", "deviceSettings", "measurementLog"}
_KNOWN_LOG = set(LIST_KINDS) | {"genericEntries", "device"}
_KNOWN_SETTINGS = {"factoryConfig", "firmwareVersion", "miscellaneous", "timestamp"}


class _Unexplained:
    def __init__(self) -> None:
        self.items: dict[str, UnexplainedField] = {}

    def add(self, path: str, value: Any, upload: int, what: str | None = None) -> None:
        key = path
        name = path.rsplit(".", 1)[-1].split("[", 1)[0]
        item = self.items.get(key)
        if item is None:
            example = None if isinstance(value, (dict, list)) else _short(value)
            if isinstance(value, list):
                example = f"{len(value)} items"
            elif isinstance(value, dict):
                example = f"{{{', '.join(list(value)[:6])}}}"
            item = UnexplainedField(path=path, what=what or _FIELD_NOTES.get(
                name, "no reader record explains it"), example=example, count=0, uploads=[])
            self.items[key] = item
        item.count += 1
        if upload not in item.uploads:
            item.uploads.append(upload)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unexplained(uploads: Sequence[Upload]) -> list[UnexplainedField]:
    found = _Unexplained()
    for index, upload in enumerate(uploads):
        data = upload.data
        if upload.prefix:
            for key, value in data.items():
                if key not in _KNOWN_ENVELOPE and not is_secret_name(key):
                    found.add(key, value, index)
        inner = upload.device_data
        prefix = upload.prefix
        for key, value in inner.items():
            if key not in _KNOWN_DEVICE_DATA and not (not prefix and key in _KNOWN_ENVELOPE):
                found.add(prefix + key, value, index)
        settings = inner.get("deviceSettings")
        if isinstance(settings, dict):
            for key, value in settings.items():
                if key not in _KNOWN_SETTINGS:
                    found.add(f"{prefix}deviceSettings.{key}", value, index)
        header = inner.get("header")
        if isinstance(header, dict):
            for key, value in header.items():
                if key not in ("device", "patient"):
                    found.add(f"{prefix}header.{key}", value, index)
        log = upload.measurement_log
        for key, value in log.items():
            if key not in _KNOWN_LOG:
                found.add(f"{prefix}measurementLog.{key}", value, index)
        for entry in upload.entries:
            kind = entry_kind(entry)
            keys, ext_keys = _EXPLAINED[kind]
            pattern = re.sub(r"\[\d+\]", "[]", entry.path)
            for key, value in entry.data.items():
                if key not in keys and key not in _COMMON_KEYS:
                    found.add(f"{pattern}.{key}", value, index)
            for key, value in entry.extended.items():
                if key not in ext_keys and key not in _COMMON_EXT:
                    found.add(f"{pattern}.extendedProperties.{key}", value, index)
    return sorted(found.items.values(), key=lambda item: item.path)


# -- the diff -----------------------------------------------------------------------------------
