"""The root group imports and builds its commands on use (idsvc/cli/app.py, lazy_groups.py):
`idsvc --help` still lists every command and group, a group loaded on use runs its commands,
and `idsvc verify` imports the one command module it needs."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

from idsvc.cli.app import ROOT_COMMANDS
from idsvc.cli.lazy_groups import BuiltOnUse
from idsvc.cli.main import app
from tests.support.cli_runner import run_reporting

# Runs `idsvc ARGS` as the script does, then prints the command modules it imported and which
# root entries it built (a last JSON line).
RUN = r"""
import json, sys
from idsvc.cli.main import app
import typer.main
built = {}
real = typer.main.get_command
def kept(instance):
    group = real(instance)
    built["root"] = group
    return group
typer.main.get_command = kept
sys.argv = ["idsvc", *sys.argv[1:]]
try:
    app()
except SystemExit as exc:
    code = exc.code
print()
print(json.dumps({
    "code": code,
    "modules": sorted(m for m in sys.modules if m.startswith("idsvc.cli.") and "_commands" in m),
    "built": sorted(built["root"].commands._built),
}))
"""


def run_idsvc(*args: str) -> tuple[dict[str, Any], str]:
    found, screen, _ = run_reporting(RUN, *args)
    return found, screen


def test_help_lists_every_command_and_group_in_order() -> None:
    found, screen = run_idsvc("--help")
    assert found["code"] == 0
    listed = [
        line.split()[1] for line in screen.splitlines() if line.startswith("│ ") and line[2] != "-"
    ]
    names = [name for name in listed if name in ROOT_COMMANDS]
    assert names == list(ROOT_COMMANDS), listed
    # Every group got its help line from its own module...
    assert "Issuer signing keys." in screen and "This machine as a remote issuance desk." in screen
    # ...and every command module was imported for it, but no group built its commands.
    assert found["modules"] == sorted(
        {f"idsvc.cli.{m}" for modules in ROOT_COMMANDS.values() for m in modules}
    )


def test_a_command_imports_its_own_module_and_builds_itself_alone() -> None:
    found, _ = run_idsvc("verify", "--help")
    assert found["code"] == 0
    assert found["modules"] == ["idsvc.cli.core_commands"]
    assert found["built"] == ["verify"]


def test_a_lazily_loaded_group_and_its_nested_group_run() -> None:
    found, screen = run_idsvc("desk", "approvals", "--help")
    assert found["code"] == 0
    assert found["built"] == ["desk"]
    # desk_commands and what it imports (the operator sign-in), not the other nine modules.
    assert "idsvc.cli.desk_commands" in found["modules"] and len(found["modules"]) <= 2
    assert "Usage: idsvc desk approvals" in " ".join(screen.split())
    for command in ("list", "approve", "reject"):
        assert f"│ {command} " in screen, screen


def test_a_group_built_on_use_has_every_command_its_modules_register() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    audit = group.get_command(_click.Context(group), "audit")
    assert isinstance(audit, TyperGroup)
    # `audit` is filled by two modules: both were imported before it was built.
    assert list(audit.commands) == ["verify", "who-checked", "purge-checks"]
    result = CliRunner().invoke(app, ["audit", "verify", "--help"])
    assert result.exit_code == 0, result.output
    assert "Check the audit chain" in result.output


def test_built_on_use_builds_only_what_is_read() -> None:
    calls: list[str] = []

    def build(name: str) -> _click.Command | None:
        calls.append(name)
        return None if name == "gone" else TyperCommand(name)

    commands = BuiltOnUse(["a", "b", "gone"], build)
    assert list(commands) == ["a", "b", "gone"] and calls == []
    assert commands["b"].name == "b" and commands["b"].name == "b"
    assert calls == ["b"]  # built once, kept
    assert commands.get("gone") is None and commands.get("nope") is None
    with pytest.raises(KeyError):
        commands["nope"]
    commands["c"] = TyperCommand("c")
    assert list(commands) == ["a", "b", "gone", "c"]
    del commands["a"]
    assert list(commands) == ["b", "gone", "c"] and len(commands) == 3
