"""The package's layers, enforced: imports only go down, and there are no import circles.

docs/architecture.md describes the layers; this test is what keeps them from rotting. It
reads every module of ``libre_usb`` with :mod:`ast` (imports at module level and inside
functions alike, ``TYPE_CHECKING`` blocks included) and checks the rules below. Run it alone
with ``python -m pytest tests/test_layering.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "libre_usb"

#: modules a sans-I/O protocol module may not import: files, sockets, clocks, randomness,
#: processes, USB and HID access, databases
IO_MODULES = frozenset({
    "os", "io", "pathlib", "socket", "select", "selectors", "time", "subprocess", "shutil",
    "tempfile", "signal", "threading", "asyncio", "secrets", "random", "sqlite3", "mmap",
    "fcntl", "termios", "urllib", "http", "ssl", "hid", "hidraw", "usb", "libusb_package",
    "logging",
})

#: layer -> the libre_usb packages and modules it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "libre_usb.protocol": ("libre_usb.transport", "libre_usb.reader", "libre_usb.simulator",
                           "libre_usb.output", "libre_usb.upload", "libre_usb.linux",
                           "libre_usb.cli", "libre_usb.devices", "libre_usb.keys"),
    "libre_usb.transport": ("libre_usb.reader", "libre_usb.upload", "libre_usb.linux",
                            "libre_usb.cli"),
    "libre_usb.simulator": ("libre_usb.transport", "libre_usb.reader", "libre_usb.output",
                            "libre_usb.upload", "libre_usb.linux", "libre_usb.cli"),
    "libre_usb.reader": ("libre_usb.simulator", "libre_usb.output", "libre_usb.upload",
                         "libre_usb.linux", "libre_usb.cli"),
    "libre_usb.output": ("libre_usb.transport", "libre_usb.reader", "libre_usb.simulator",
                         "libre_usb.upload", "libre_usb.linux", "libre_usb.cli",
                         "libre_usb.protocol"),
    "libre_usb.upload": ("libre_usb.transport", "libre_usb.reader", "libre_usb.simulator",
                         "libre_usb.linux", "libre_usb.cli", "libre_usb.protocol"),
    "libre_usb.linux": ("libre_usb.cli",),
    "libre_usb.model": ("libre_usb.",),
    "libre_usb.errors": ("libre_usb.",),
    "libre_usb.jsonsafe": ("libre_usb.transport", "libre_usb.reader", "libre_usb.simulator",
                           "libre_usb.output", "libre_usb.upload", "libre_usb.linux",
                           "libre_usb.cli", "libre_usb.protocol", "libre_usb.inputs"),
    "libre_usb.inputs": ("libre_usb.transport", "libre_usb.reader", "libre_usb.simulator",
                         "libre_usb.output", "libre_usb.upload", "libre_usb.linux",
                         "libre_usb.cli", "libre_usb.protocol", "libre_usb.jsonsafe"),
}

#: the one exception to "transport imports nothing of output": the recorder writes its
#: transcript atomically with the same helper every other writer uses
ALLOWED = {("libre_usb.transport", "libre_usb.output.atomic")}

#: who may import the CLI
CLI_IMPORTERS = ("libre_usb.__main__", "libre_usb.cli")


def module_name(path: Path, package: Path = PACKAGE) -> tuple[str, bool]:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def imports_of(name: str, is_pkg: bool, source: str) -> set[str]:
    """Every module ``source`` imports, absolute, with ``from X import name`` giving both
    ``X`` and ``X.name`` (one of them is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def load(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module name -> the modules it imports, for every module of the package."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        name, is_pkg = module_name(path, package)
        graph[name] = imports_of(name, is_pkg, path.read_text(encoding="utf-8"))
    return graph


def _within(name: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Every broken layering rule in ``graph``, one line each."""
    out: list[str] = []
    for module, imported in sorted(graph.items()):
        for target in sorted(set(imported)):
            top = target.split(".")[0]
            if _within(module, "libre_usb.protocol") and top in IO_MODULES:
                out.append(f"{module} imports {target}: the protocol layer is sans-I/O")
            if not target.startswith("libre_usb"):
                continue
            for layer, banned in FORBIDDEN.items():
                if not _within(module, layer):
                    continue
                for bad in banned:
                    if _within(target, bad) and not _within(target, layer) and not any(
                            _within(module, a) and _within(target, b) for a, b in ALLOWED):
                        out.append(f"{module} imports {target}: {layer} may not import {bad}")
            if _within(target, "libre_usb.cli") and not any(
                    _within(module, who) for who in CLI_IMPORTERS):
                out.append(f"{module} imports {target}: nothing imports the CLI")
    return out


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (import circles), with imports of
    a module's own parent package not counted (a package's ``__init__`` may import its
    children)."""
    names = set(graph)
    edges: dict[str, set[str]] = {}
    for module, imported in graph.items():
        targets = set()
        for target in imported:
            while target and target not in names:
                target = target.rpartition(".")[0]
            if target and target != module and not _within(module, target) \
                    and not _within(target, module):
                targets.add(target)
        edges[module] = targets
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        # iterative Tarjan: (node, iterator over its edges)
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


# --- the package as it is --------------------------------------------------------------------


def test_the_package_keeps_its_layers() -> None:
    graph = load()
    assert "libre_usb.protocol.frames" in graph and "libre_usb.cli" in graph
    assert violations(graph) == []


def test_the_package_has_no_import_circles() -> None:
    assert circles(load()) == []


def test_the_package_root_holds_only_cross_cutting_modules() -> None:
    plain = sorted(p.name for p in PACKAGE.glob("*.py"))
    # inputs.py (bounded reading of any input kind) and jsonsafe.py (bounded JSON in, strict
    # JSON out) serve every layer that reads files or writes JSON: upload, output, transport
    assert plain == ["__init__.py", "__main__.py", "devices.py", "errors.py", "inputs.py",
                     "jsonsafe.py", "keys.py", "logs.py", "model.py"]


# --- the checker catches what it should ------------------------------------------------------


@pytest.mark.parametrize("line", [
    "import os",
    "import hid",
    "from time import monotonic",
    "from ...transport import Transport",
    "from ...transport.interfaces.hidraw import open_hidraw",
    "from ...reader.session import Session",
    "from ...cli import main",
])
def test_a_protocol_module_that_does_io_or_imports_upwards_is_caught(line: str) -> None:
    graph = {"libre_usb.protocol.text.bad": imports_of(
        "libre_usb.protocol.text.bad", False, f"def f():\n    {line}\n")}
    assert violations(graph), line


@pytest.mark.parametrize(("module", "line"), [
    ("libre_usb.transport.interfaces.sim", "from ...cli._base import main"),
    ("libre_usb.transport.interface", "from ..reader.session import Session"),
    ("libre_usb.output.export", "from ..transport import open_transport"),
    ("libre_usb.reader.session", "from ..output import export"),
])
def test_an_upward_import_is_caught(module: str, line: str) -> None:
    assert violations({module: imports_of(module, False, line + "\n")}), line


def test_the_allowed_and_downward_imports_pass() -> None:
    graph = {
        "libre_usb.protocol.text.records": imports_of(
            "libre_usb.protocol.text.records", False,
            "import datetime\nfrom ...model import Record\nfrom .reply import decode_text\n"),
        "libre_usb.transport.transcript": imports_of(
            "libre_usb.transport.transcript", False,
            "from ..output.atomic import atomic_write\nfrom ..protocol.frames import describe\n"),
        "libre_usb.__main__": imports_of("libre_usb.__main__", False, "from .cli import main\n"),
    }
    assert violations(graph) == []


def test_a_circle_is_caught() -> None:
    graph = {"libre_usb.a": {"libre_usb.b"}, "libre_usb.b": {"libre_usb.c"},
             "libre_usb.c": {"libre_usb.a"}, "libre_usb.d": {"libre_usb.a"}}
    assert circles(graph) == [["libre_usb.a", "libre_usb.b", "libre_usb.c"]]
