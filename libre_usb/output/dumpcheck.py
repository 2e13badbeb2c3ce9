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
from collections.abc import Callable
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
    if node is None or not isinstance(kind, str):
        return f"{where}: unknown kind {str(kind)[:20]!r}"
    accept = _ACCEPTORS.get(kind)
    if accept is None:
        accept = _ACCEPTORS[kind] = acceptor(node)
    if accept(record):
        return None
    return problem(record, node, where)


Acceptor = Callable[[Any], bool]
#: the compiled :func:`acceptor` of each record kind's schema
_ACCEPTORS: dict[str, Acceptor] = {}


def acceptor(node: dict[str, Any], depth: int = 0) -> Acceptor:
    """The function telling whether ``problem(value, node, path, depth)`` is None, made
    once from the schema node: the same keywords read the same way, without walking the
    schema again for every value (a saved dump checks tens of thousands of records against
    a few nodes). Where a value breaks the node, :func:`problem` is asked for its message
    (tests compare both on the records of the virtual readers and on hostile values)."""
    if depth > 64:
        return _never
    if "$ref" in node:
        return acceptor(schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]], depth + 1)
    if "anyOf" in node:
        options = tuple(acceptor(option, depth + 1) for option in node["anyOf"])

        def any_of(value: Any) -> bool:
            for option in options:
                if option(value):
                    return True
            return False

        return any_of
    checks: list[Acceptor] = []
    if "const" in node:
        const = node["const"]
        checks.append(lambda value: not value != const)
    if "enum" in node:
        allowed = node["enum"]
        checks.append(lambda value: value in allowed)
    types = node.get("type")
    low: Any = node.get("minimum")
    high: Any = node.get("maximum")
    bounded = "minimum" in node or "maximum" in node
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if names == ["integer"] and "maximum" not in node:  # a count, an id, a code
            bounded = False
            if "minimum" not in node:
                checks.append(_integer)
            else:
                checks.append(lambda value: _integer(value) and not value < low)
        else:
            boolean = "boolean" in names
            others = tuple(_TYPES[name] for name in names if name != "boolean")
            checks.append(lambda value: boolean if isinstance(value, bool)
                          else isinstance(value, others))
    if bounded:
        checks.append(lambda value: not isinstance(value, (int, float))
                      or isinstance(value, bool)
                      or (("minimum" not in node or not value < low)
                          and ("maximum" not in node or not value > high)))
    if "pattern" in node:
        search = re.compile(node["pattern"]).search
        checks.append(lambda value: not isinstance(value, str) or search(value) is not None)
    if any(key in node for key in ("required", "properties", "additionalProperties",
                                   "propertyNames")):
        checks.append(_object_acceptor(node, depth))
    if any(key in node for key in ("minItems", "maxItems", "prefixItems", "items")):
        checks.append(_array_acceptor(node, depth))
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    every = tuple(checks)

    def all_of(value: Any) -> bool:
        for check in every:
            if not check(value):
                return False
        return True

    return all_of


def _integer(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _object_acceptor(node: dict[str, Any], depth: int) -> Acceptor:
    required = tuple(node.get("required", ()))
    properties = {key: acceptor(sub, depth + 1)
                  for key, sub in node.get("properties", {}).items()}
    extra = node.get("additionalProperties", True)
    extra_ok = acceptor(extra, depth + 1) if isinstance(extra, dict) else None
    names = node.get("propertyNames")
    name_ok = acceptor(names, depth + 1) if names is not None else None
    closed = extra is False

    def accept(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for key in required:
            if key not in value:
                return False
        get = properties.get
        for key, item in value.items():
            if name_ok is not None and not name_ok(key):
                return False
            check = get(key)
            if check is not None:
                if not check(item):
                    return False
            elif closed:
                return False
            elif extra_ok is not None and not extra_ok(item):
                return False
        return True

    return accept


def _array_acceptor(node: dict[str, Any], depth: int) -> Acceptor:
    fewest: Any = node.get("minItems")
    most: Any = node.get("maxItems")
    prefix = tuple(acceptor(sub, depth + 1) if isinstance(sub, dict) else None
                   for sub in node.get("prefixItems", []))
    rest = node.get("items")
    rest_ok = acceptor(rest, depth + 1) if isinstance(rest, dict) else None

    def accept(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        if "minItems" in node and len(value) < fewest:
            return False
        if "maxItems" in node and len(value) > most:
            return False
        for index, item in enumerate(value):
            check = prefix[index] if index < len(prefix) else rest_ok
            if check is not None and not check(item):
                return False
        return True

    return accept


def device_problem(device: Any) -> str | None:
    """How a saved dump's ``device`` object breaks the schema, or None."""
    return problem(device, schema()["$defs"]["device"], "device")


__all__ = ["device_problem", "problem", "record_problem", "schema"]
