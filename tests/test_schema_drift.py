"""The JSON Schema cannot drift from the record classes: every record kind's definition in
the shipped schema names exactly the fields the class has (which is what the generated
encoder writes, model.record_encoder), requires them all, and fixes ``kind``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from libre_usb.model import RECORD_CLASSES, Kind, Record, record_fields

SCHEMA: dict[str, Any] = json.loads(
    (resources.files("libre_usb") / "data" / "dump.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", list(RECORD_CLASSES), ids=str)
def test_each_kinds_schema_lists_exactly_the_class_fields(kind: Kind) -> None:
    cls: type[Record] = RECORD_CLASSES[kind]
    definition = SCHEMA["$defs"][kind.value]
    fields = [field.name for field in record_fields(cls)]
    derived = {"glucose_mmol_l"} if "glucose_mg_dl" in fields else set()
    assert set(definition["properties"]) == {"kind", *fields, *derived}
    assert set(definition["required"]) == {"kind", *fields}
    assert definition["properties"]["kind"] == {"const": kind.value}
    assert definition.get("additionalProperties") is False


@pytest.mark.parametrize("kind", list(RECORD_CLASSES), ids=str)
def test_what_the_encoder_writes_is_what_the_schema_lists(kind: Kind) -> None:
    cls = RECORD_CLASSES[kind]
    values: dict[str, Any] = {"record_id": 1, "source": "$history?", "record_type": 0,
                              "local_time": None}
    written = cls(**values).to_dict()
    assert list(written) == ["kind", *(f.name for f in record_fields(cls))]
