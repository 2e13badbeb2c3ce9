"""Frictions a new user met (issue 14): --debug anywhere, units in any case, "not reported"
instead of an empty value, options from the environment, shell completion, man pages, the
virtual reader's options, one wording of the exit codes, and honest packaging."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import libre_usb
from libre_usb.cli import main
from libre_usb.errors import EXIT_INPUT
from libre_usb.transport.interfaces.sim import OPTIONS

ROOT = Path(__file__).resolve().parent.parent
SIM = "sim:libre?days=1"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, prog_name="libre-dump")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("args", [
    ["--debug", "info", "--device", SIM],
    ["info", "--debug", "--device", SIM],
    ["info", "--device", SIM, "--debug"],
])
def test_debug_is_accepted_anywhere(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 0, err
    assert "Serial:" in out


def test_debug_after_the_command_shows_the_traceback() -> None:
    result = CliRunner().invoke(main, ["info", "--device", "sim:nosuchmodel", "--debug"])
    assert result.exception is not None and not isinstance(result.exception, SystemExit)
    code, _, err = run("info", "--device", "sim:nosuchmodel")
    assert code == EXIT_INPUT and "Traceback" not in err and err.count("\n") == 1


def test_debug_after_a_double_dash_is_an_argument() -> None:
    code, _, err = run("diff", "--dump", "x.json", "--", "--debug")
    assert code == EXIT_INPUT and "Traceback" not in err


@pytest.mark.parametrize("unit", ["mg/dl", "MG/DL", "mmol/l", "Mmol/L"])
def test_units_in_any_case(unit: str) -> None:
    code, out, err = run("dump", "--device", SIM, "-f", "ndjson", "--unit", unit)
    assert code == 0, err
    head = json.loads(out.splitlines()[0])
    assert head["unit"] == ("mmol/L" if unit.lower().startswith("mmol") else "mg/dL")


@pytest.mark.parametrize("model", ["neo", "insulinx"])
def test_info_says_not_reported(model: str) -> None:
    code, out, _ = run("info", "--device", f"sim:{model}")
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["Record counter"].strip() == "not reported"
    assert all(value.strip() for value in lines.values()), out  # no empty value


def test_options_from_the_environment(tmp_path: Path) -> None:
    out_file = tmp_path / "env.csv"
    code, _, err = run("dump", env={"LIBRE_DUMP_DUMP_DEVICE": SIM,
                                    "LIBRE_DUMP_DUMP_FORMAT": "csv",
                                    "LIBRE_DUMP_DUMP_OUTPUT": str(out_file)})
    assert code == 0, err
    assert out_file.read_text().startswith("kind,")
    # the command line wins over the environment
    code, out, _ = run("dump", "-f", "ndjson", env={"LIBRE_DUMP_DUMP_DEVICE": SIM,
                                                    "LIBRE_DUMP_DUMP_FORMAT": "csv"})
    assert code == 0 and out.startswith("{")
    # every option is named as typed: --record -> ..._RECORD, --json -> ..._JSON
    clock = main.get_command(click.Context(main), "clock")
    assert clock is not None
    names = {p.envvar for p in clock.params if isinstance(p, click.Option)}
    assert {"LIBRE_DUMP_CLOCK_SET", "LIBRE_DUMP_CLOCK_JSON", "LIBRE_DUMP_CLOCK_RECORD",
            "LIBRE_DUMP_CLOCK_YES"} <= names


def test_the_environment_is_documented() -> None:
    _, out, _ = run("--help")
    assert "LIBRE_DUMP_" in out
    assert "LIBRE_DUMP_DUMP_DEVICE" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_script(shell: str) -> None:
    result = CliRunner().invoke(main, [], prog_name="libre-dump",
                                env={"_LIBRE_DUMP_COMPLETE": f"{shell}_source"})
    assert result.exit_code == 0
    assert "_LIBRE_DUMP_COMPLETE" in result.output
    assert f"_LIBRE_DUMP_COMPLETE={shell}_source libre-dump" in (ROOT / "README.md").read_text()


def test_completion_of_commands_and_options() -> None:
    env = {"_LIBRE_DUMP_COMPLETE": "bash_complete", "COMP_WORDS": "libre-dump cl",
           "COMP_CWORD": "1"}
    result = CliRunner().invoke(main, [], prog_name="libre-dump", env=env)
    assert "plain,clock" in result.output
    env.update(COMP_WORDS="libre-dump dump --fo", COMP_CWORD="2")
    result = CliRunner().invoke(main, [], prog_name="libre-dump", env=env)
    assert "plain,--format" in result.output


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # click-man uses an old click helper
def test_man_pages_from_the_click_commands(tmp_path: Path) -> None:
    core = pytest.importorskip("click_man.core", reason="click-man comes with the dev extra")
    core.write_man_pages("libre-dump", main, version=libre_usb.__version__,
                         target_dir=str(tmp_path))
    pages = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert {"libre-dump.1", "libre-dump-dump.1", "libre-dump-clock.1"} <= set(pages)
    assert "\\-\\-yes" in pages["libre-dump-clock.1"] or "--yes" in pages["libre-dump-clock.1"]
    assert "click-man libre-dump" in (ROOT / "README.md").read_text()


def test_unknown_sim_option_lists_the_valid_ones() -> None:
    code, _, err = run("info", "--device", "sim:libre?pace=3")
    assert code == EXIT_INPUT and err.count("\n") == 1
    assert all(name in err for name in OPTIONS)


def test_every_sim_option_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in OPTIONS:
        assert f"| `{name}` |" in readme, name


def _exit_codes(text: str) -> str:
    match = re.search(r"Exit codes: (.*?\.)", " ".join(text.split()))
    assert match, text
    return match.group(1)


def test_exit_codes_are_worded_the_same_in_help_and_readme() -> None:
    _, help_text, _ = run("--help")
    assert _exit_codes(help_text) == _exit_codes((ROOT / "README.md").read_text())


# -- packaging ----------------------------------------------------------------------------------

def _pyproject() -> dict[str, object]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    data: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def test_licence_and_version_in_one_place() -> None:
    data = _pyproject()
    project = data["project"]
    assert isinstance(project, dict)
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "version" not in project and project["dynamic"] == ["version"]
    tool = data["tool"]
    assert isinstance(tool, dict)
    assert tool["setuptools"]["dynamic"]["version"] == {"attr": "libre_usb.__version__"}
    _, out, _ = run("--version")
    assert out.strip() == f"libre-dump, version {libre_usb.__version__}"


def test_every_imported_module_is_declared() -> None:
    """Every third-party module the package imports, even lazily, comes from a distribution
    named in the dependencies or an extra."""
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    declared = {re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")
                for req in [*project["dependencies"],
                            *(r for reqs in project["optional-dependencies"].values()
                              for r in reqs)]}
    providers = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    for path in (ROOT / "libre_usb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "libre_usb"}
    assert third_party, imported
    for module in sorted(third_party):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists & declared, f"{module} (from {dists or 'nothing installed'}) is not declared"


def test_readme_has_two_set_up_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    install, test = commands
    assert "pip install ." in install and "dump --device sim:libre -o " in install
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()
    assert "set -euo pipefail" in ci  # so pytest's exit 5 (no tests) fails the run
    assert "shared" not in ci
