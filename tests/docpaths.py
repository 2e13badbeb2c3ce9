"""Walking and spoiling JSON documents in tests: the paths into a document, and a copy of
it with one value replaced."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any


def paths(value: Any, items: int = 2, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``value`` (keys of objects, indexes of the first ``items`` entries of
    each array), parents before their children."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from paths(item, items, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:items]):
            yield (*path, index)
            yield from paths(item, items, (*path, index))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` replaced by ``value``."""
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out
