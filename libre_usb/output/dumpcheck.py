"""Check a saved dump's device part against the shipped JSON Schema (``dump.schema.json``).

Records are type-checked field by field when they are rebuilt (``Record.from_dict``); the
device part holds free-form settings and sensor lines, which a hostile file could fill with
anything (a list where a line belongs, a reminder hour of "x"). Rather than trusting them to
whatever code reads them later, they are checked here against the schema every ``dump``
output follows. This is a small validator for the keywords that schema uses (no runtime
dependency on a JSON Schema library).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = (resources.files("libre_usb") / "data" / "dump.schema.json").read_text(
        encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def problem(value: Any, node: dict[str, Any], path: str = "", depth: int = 0) -> str | None:
    """The first way ``value`` breaks schema ``node``, or None."""
    if depth > 64:
        return f"{path}: nested too deeply"
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return problem(value, schema()["$defs"][name], path, depth + 1)
    if "anyOf" in node:
        if all(problem(value, option, path, depth + 1) for option in node["anyOf"]):
            return f"{path}: matches none of the allowed forms"
        return None
    if "const" in node and value != node["const"]:
        return f"{path}: must be {node['const']!r}"
    if "enum" in node and value not in node["enum"]:
        return f"{path}: not one of the allowed values"
    types = node.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_type_ok(value, name) for name in names):
            return f"{path}: must be {' or '.join(names)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            return f"{path}: below {node['minimum']}"
        if "maximum" in node and value > node["maximum"]:
            return f"{path}: above {node['maximum']}"
    if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
        return f"{path}: not in the expected form"
    if isinstance(value, dict):
        for key in node.get("required", ()):
            if key not in value:
                return f"{path}: {key} is missing"
        properties = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        names = node.get("propertyNames")
        for key, item in value.items():
            if names is not None and problem(key, names, f"{path}.{key}", depth + 1):
                return f"{path}: unexpected key {str(key)[:40]!r}"
            if key in properties:
                found = problem(item, properties[key], f"{path}.{key}", depth + 1)
            elif extra is False:
                return f"{path}: unexpected key {str(key)[:40]!r}"
            elif isinstance(extra, dict):
                found = problem(item, extra, f"{path}.{key}", depth + 1)
            else:
                found = None
            if found:
                return found
    if isinstance(value, list):
        if "minItems" in node and len(value) < node["minItems"]:
            return f"{path}: too few items"
        if "maxItems" in node and len(value) > node["maxItems"]:
            return f"{path}: too many items"
        prefix = node.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else node.get("items")
            if isinstance(sub, dict):
                found = problem(item, sub, f"{path}[{index}]", depth + 1)
                if found:
                    return found
    return None


def record_problem(record: Any, where: str) -> str | None:
    """How one saved record breaks the schema of its kind, or None."""
    kind = record.get("kind") if isinstance(record, dict) else None
    node = schema()["$defs"].get(kind) if isinstance(kind, str) else None
    if node is None:
        return f"{where}: unknown kind {str(kind)[:20]!r}"
    return problem(record, node, where)


def device_problem(device: Any) -> str | None:
    """How a saved dump's ``device`` object breaks the schema, or None."""
    return problem(device, schema()["$defs"]["device"], "device")


__all__ = ["device_problem", "problem", "record_problem", "schema"]
