"""Privacy findings: every identifier, credential, free text and setting an upload carries."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ..model import (
    Dump,
)
from ..output.libreview import (
    ANNOTATION_KEY,
    decode_reading_identifier,
)
from .kinds import PrivacyItem
from .load import SECRET, Upload, is_secret_name

# -- privacy ----------------------------------------------------------------------------------

#: key name (lower case) -> (category, what it identifies)
_KEY_RULES: dict[str, tuple[str, str]] = {
    "uniqueidentifier": ("device", "unique id of the uploading installation; LibreView binds "
                                   "the login token to it and links every upload from it"),
    "hardwaredescriptor": ("device", "phone or computer model"),
    "hardwarename": ("device", "phone or computer manufacturer"),
    "modelname": ("app", "app bundle id with its country suffix"),
    "ostype": ("device", "operating system"),
    "osversion": ("device", "operating system version"),
    "firmwareversion": ("app", "uploader app version"),
    "gatewaytype": ("app", "uploading app and platform"),
    "serialnumber": ("serial", "a reader or sensor serial number"),
    "serial": ("serial", "a reader or sensor serial number"),
    "sensorserial": ("serial", "a sensor serial number"),
    "activesensor": ("serial", "the active sensor's serial number"),
    "firstname": ("patient", "first name"),
    "lastname": ("patient", "last name"),
    "middleinitial": ("patient", "middle initial"),
    "guardianfirstname": ("patient", "guardian's first name"),
    "guardianlastname": ("patient", "guardian's last name"),
    "dateofbirth": ("patient", "date of birth"),
    "email": ("patient", "e-mail address"),
    "username": ("patient", "account user name"),
    "accountid": ("patient", "account id"),
    "patientname": ("patient", "patient name"),
    "patientid": ("patient", "patient id"),
    "uom": ("setting", "display unit"),
    "selectedlanguage": ("setting", "language and region (hints at your country)"),
    "culture": ("setting", "language and region (hints at your country)"),
    "country": ("setting", "country"),
    "timezone": ("setting", "time zone"),
    "valueglucosetargetrangelowinmgperdl": ("setting", "your glucose target range (low)"),
    "valueglucosetargetrangehighinmgperdl": ("setting", "your glucose target range (high)"),
    "selectedtimeformat": ("setting", "12/24-hour time format"),
    "selectedcarbtype": ("setting", "carbohydrate unit"),
    "isstreaming": ("setting", "whether sensor streaming (Bluetooth) is on"),
}
_PATIENT_PARENT = {"patient"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")
#: an e-mail address: bounded parts (RFC 5321: local part <= 64, domain <= 255 characters),
#: so a search costs at most a few hundred steps per "@" (never quadratic in the text)
_EMAIL = re.compile(r"[^@\s\"]{1,64}@[^@\s\"]{1,255}\.[A-Za-z]{2,63}")
#: "@" signs looked at per field (an address hides in the first ones, or it is not a field)
_MAX_AT = 16


def looks_like_email(text: str) -> bool:
    """Whether ``text`` holds an e-mail address. Linear in the text: the pattern runs only
    on a bounded window around each of the first :data:`_MAX_AT` ``@`` signs."""
    at = text.find("@")
    for _ in range(_MAX_AT):
        if at < 0:
            return False
        if _EMAIL.search(text, max(0, at - 64), at + 320):
            return True
        at = text.find("@", at + 1)
    return False
#: request headers shown with their value (they describe the device, app or you)
_SHOWN_HEADERS = {"user-agent", "abbott-adc-app-platform", "accept-language", "platform",
                  "version", "x-forwarded-for", "x-real-ip", "from", "origin", "referer"}
#: header names the report checks for, shown only as present/absent
AUTH_HEADERS = ("Authorization", "x-newyu-token", "Cookie", "x-api-key",
                "Proxy-Authorization")


#: entry fields that hold measurements or bookkeeping, never identifiers (skipped fast)
_PLAIN_KEYS = {"timestamp", "factorytimestamp", "recordnumber", "valueinmgperdl",
               "valueinmmolperl", "units", "gramscarbs", "insulintype", "trendarrow", "type",
               "isfirstaftertimechange", "lowoutofrange", "highoutofrange", "isactionable",
               "isviewed", "canmerge", "linkedglucoserecordnumber"}


class _Privacy:
    def __init__(self, reader_ids: dict[str, str]) -> None:
        self.items: dict[tuple[str, str, str | None], PrivacyItem] = {}
        self.reader_ids = reader_ids

    def add(self, path: str, category: str, what: str, value: str | None, upload: int,
            count: int = 1) -> None:
        key = (path, what, value)
        item = self.items.get(key)
        if item is None:
            item = PrivacyItem(path=path, category=category, what=what, value=value, count=0,
                               uploads=[])
            self.items[key] = item
        item.count += count
        if upload not in item.uploads:
            item.uploads.append(upload)

    def walk(self, value: Any, path: str, parent: str, upload: int) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else str(key)
                if not path and key == ANNOTATION_KEY:
                    continue
                self.field(str(key), child, child_path, parent, upload)
                self.walk(child, child_path, str(key).lower(), upload)
        elif isinstance(value, list):
            for child in value:
                self.walk(child, path + "[]", parent, upload)

    def field(self, key: str, value: Any, path: str, parent: str, upload: int) -> None:
        lower = key.lower()
        if isinstance(value, (dict, list)) or (lower in _PLAIN_KEYS and parent != "devicesettings"):
            return
        text = None if value is None else str(value)
        if is_secret_name(key) or value == SECRET:
            self.add(path, "credential", "login token or credential (value never shown)",
                     None, upload)
            return
        if text is None:
            return
        rule = _KEY_RULES.get(lower)
        if rule is None and parent in _PATIENT_PARENT and lower in ("name", "id"):
            rule = ("patient", f"patient {lower}")
        if lower == "text" and path.endswith("extendedProperties.text"):
            rule = ("note", "note text you typed")
        if lower == "timestamp" and parent == "devicesettings":
            rule = ("time", "local time of the upload, with your UTC offset")
        if rule is not None:
            category, what = rule
            if lower == "modelname":
                country = text.rsplit(".", 1)[-1] if "." in text else ""
                if 2 <= len(country) <= 3 and country.isalpha():
                    what += f" (country: {country.upper()})"
            self.add(path, category, what + self.reader_match(text), text, upload)
            return
        match = self.reader_match(text)
        if match:
            self.add(path, "reader", "a reader identifier" + match, text, upload)
        elif isinstance(value, str) and _UUID.search(text):
            self.add(path, "device", "looks like a unique id (UUID)", text, upload)
        elif isinstance(value, str) and looks_like_email(text):
            self.add(path, "patient", "looks like an e-mail address", text, upload)

    def reader_match(self, text: str) -> str:
        for label, identifier in self.reader_ids.items():
            if identifier and text.strip() == identifier:
                return f" -- equals this reader's {label}"
        return ""


def _privacy(uploads: Sequence[Upload], dump: Dump) -> list[PrivacyItem]:
    device = dump.device
    reader_ids = {"serial": device.serial or "", "patient name": device.patient_name or "",
                  "patient id": device.patient_id or ""}
    privacy = _Privacy(reader_ids)
    for index, upload in enumerate(uploads):
        privacy.walk(upload.data, "", "", index)
        if not any(path.split(".")[-1] == "UserToken" for path in upload.secrets):
            privacy.add("UserToken", "credential", "login token in the body", "absent", index)
        # sensor serials in LibreLink-encoded record numbers
        decoded: dict[tuple[str, str], list[int]] = defaultdict(list)
        offsets: Counter[str] = Counter()
        for entry in upload.entries:
            stamp = entry.timestamp
            if stamp is not None and stamp.offset is not None and not stamp.zulu:
                offsets[_offset_text(stamp.offset)] += 1
            number = entry.record_number
            if number is None or abs(number) < 1 << 40:
                continue
            serial, minute = decode_reading_identifier(number)
            pattern = re.sub(r"\[\d+\]", "[]", entry.path) + ".recordNumber"
            decoded[(pattern, serial)].append(minute)
        for (pattern, serial), minutes in decoded.items():
            shown = ", ".join(str(m) for m in sorted(set(minutes))[:5])
            more = "" if len(set(minutes)) <= 5 else ", ..."
            privacy.add(pattern, "serial",
                        "sensor serial (characters 2-11) encoded in LibreLink record numbers; "
                        f"sensor minute {shown}{more}", serial, index, count=len(minutes))
        if offsets:
            privacy.add("measurementLog.*[].timestamp", "time",
                        "UTC offsets of your local times (reveal your time zone)",
                        ", ".join(sorted(offsets)), index, count=sum(offsets.values()))
        source = upload.source
        if source.container != "body":
            for what, value in (("destination host", source.host),
                                ("request URL", source.url),
                                ("server address", source.server_address),
                                ("time of upload (UTC)", _iso_utc(source.time))):
                if value:
                    privacy.add("request", "network", what, value, index)
            names = {name.lower() for name, _ in source.headers}
            for header in AUTH_HEADERS:
                privacy.add(f"request header {header}", "credential",
                            "authentication header (value never shown)",
                            "present" if header.lower() in names else "absent", index)
            for name, value in source.headers:
                lower = name.lower()
                if is_secret_name(name) and lower not in (h.lower() for h in AUTH_HEADERS):
                    privacy.add(f"request header {name}", "credential",
                                "credential-like header (value never shown)", "present", index)
                elif lower in _SHOWN_HEADERS:
                    privacy.add(f"request header {name}", "network",
                                "sent with the upload: describes your device, app or language",
                                value, index)
    order = {"credential": 0, "patient": 1, "note": 2, "serial": 3, "reader": 4, "device": 5,
             "app": 6, "network": 7, "time": 8, "setting": 9}
    return sorted(privacy.items.values(),
                  key=lambda item: (order.get(item.category, 99), item.path, item.value or ""))


def _offset_text(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _iso_utc(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- unexplained fields -------------------------------------------------------------------------
