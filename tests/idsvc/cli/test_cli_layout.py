"""The command line's layout, read from the source of idsvc/cli/*.py:

- one clock, two consoles and the shared options, in idsvc/cli/common.py alone: no other module
  reads ``datetime.now`` or makes a ``Console``, or defines a name that common.py defines;
- no module imports another's private (``_``-prefixed) name, or reaches for one through a module;
- every import sits at the top of its module (main.py registers nothing from its bottom): the
  command modules register on idsvc/cli/app.py's group when the root group imports them;
- the root group's table (``ROOT_COMMANDS``) names every root command and group, in the order
  ``idsvc --help`` lists them, with the modules that register it.

Each rule is a function over source files, shown below to catch a violation written for it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[3] / "idsvc" / "cli"
SHARED = "common.py"
# Typer 0.26 ships its Click only as `typer._click` and names it in the signatures a command
# group overrides (idsvc/cli/desk_routing.py): the one private import allowed, from a library.
PRIVATE_IMPORTS_ALLOWED = {("typer", "_click")}
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}


def modules(folder: Path) -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def shared_redefinitions(trees: dict[str, ast.Module]) -> list[str]:
    """A clock, a console or a shared option written again outside common.py."""
    shared = top_level_names(trees[SHARED]) - {"__all__"}
    found: list[str] = []
    for name, tree in trees.items():
        if name == SHARED:
            continue
        for again in sorted(top_level_names(tree) & shared):
            found.append(f"{name}: defines {again}, which common.py has")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in ("now", "utcnow"):
                found.append(f"{name}:{node.lineno}: a clock of its own ({node.name})")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute):
                owner = func.value
                owner_name = (
                    owner.id
                    if isinstance(owner, ast.Name)
                    else owner.attr
                    if isinstance(owner, ast.Attribute)
                    else ""
                )
                if (owner_name, func.attr) in CLOCK_CALLS:
                    found.append(
                        f"{name}:{node.lineno}: reads the clock ({owner_name}.{func.attr})"
                    )
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called == "Console":
                found.append(f"{name}:{node.lineno}: a console of its own")
    return found


def imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def private_imports(trees: dict[str, ast.Module]) -> list[str]:
    """``from x import _y``, ``import x._y``, or ``m._y`` on a module imported by name."""
    found: list[str] = []
    for name, tree in trees.items():
        module_names: set[str] = set()
        for node in imports(tree):
            if isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if source == "__future__":
                    continue
                if any(is_private(part) for part in source.split(".")):
                    found.append(f"{name}:{node.lineno}: imports from {source}")
                for alias in node.names:
                    if (source, alias.name) in PRIVATE_IMPORTS_ALLOWED:
                        continue
                    if is_private(alias.name):
                        found.append(f"{name}:{node.lineno}: imports {source}.{alias.name}")
                    elif source.startswith("idsvc.cli"):
                        module_names.add(alias.asname or alias.name)
            else:
                for alias in node.names:
                    if any(is_private(part) for part in alias.name.split(".")):
                        found.append(f"{name}:{node.lineno}: imports {alias.name}")
                    if alias.asname:
                        module_names.add(alias.asname)
        for used in ast.walk(tree):
            if (
                isinstance(used, ast.Attribute)
                and isinstance(used.value, ast.Name)
                and used.value.id in module_names
                and is_private(used.attr)
            ):
                found.append(f"{name}:{used.lineno}: uses {used.value.id}.{used.attr}")
    return found


def is_type_checking_block(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def late_imports(trees: dict[str, ast.Module]) -> list[str]:
    """A module-level import below the module's first statement of code."""
    found: list[str] = []
    for name, tree in trees.items():
        code_seen: int | None = None
        for index, node in enumerate(tree.body):
            docstring = index == 0 and isinstance(node, ast.Expr)
            if isinstance(node, ast.Import | ast.ImportFrom):
                if code_seen is not None:
                    found.append(f"{name}:{node.lineno}: import below code (line {code_seen})")
            elif not docstring and not is_type_checking_block(node) and code_seen is None:
                code_seen = node.lineno
    return found


# -- the command line as it is ---------------------------------------------------------------
def test_one_clock_and_one_pair_of_consoles_in_common() -> None:
    trees = modules(CLI)
    assert {"now", "console", "err_console", "JsonOpt"} <= top_level_names(trees[SHARED])
    assert shared_redefinitions(trees) == []


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports(modules(CLI)) == []


def test_imports_sit_at_the_top_of_every_module() -> None:
    assert late_imports(modules(CLI)) == []


# Imports every command module, then prints which module registered each root command and
# group, in Typer's order (commands, then groups), against the root's table of them.
REGISTERED = """
import importlib, json
from idsvc.cli.app import ROOT_COMMANDS, app
from idsvc.cli.lazy_groups import entries
# Each module in the order of the first entry it defines: the order Typer lists them in.
first = [modules[0] for modules in ROOT_COMMANDS.values()]
for module in [*first, *(m for modules in ROOT_COMMANDS.values() for m in modules)]:
    importlib.import_module(f"idsvc.cli.{module}")
def modules_of(entry):
    typer = getattr(entry, "typer_instance", None)
    if typer is None:
        return [entry.callback.__module__]
    found = [c.callback.__module__ for c in typer.registered_commands]
    for group in typer.registered_groups:
        found += [c.callback.__module__ for c in group.typer_instance.registered_commands]
    return sorted(set(found))
print(json.dumps({
    "table": {name: sorted(f"idsvc.cli.{m}" for m in mods) for name, mods in ROOT_COMMANDS.items()},
    "registered": {name: modules_of(entry) for name, entry in entries(app).items()},
}))
"""


def test_the_root_table_names_every_command_its_modules_and_the_help_order() -> None:
    registering = {
        f"idsvc.cli.{name.removesuffix('.py')}"
        for name, tree in modules(CLI).items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("command", "add_typer")
        if name not in ("app.py", SHARED)
    }
    proc = subprocess.run(
        [sys.executable, "-c", REGISTERED], capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(proc.stdout)
    # Same names in the same order (`idsvc --help` lists the table's), each from its modules.
    assert list(found["table"].items()) == list(found["registered"].items())
    assert {m for mods in found["table"].values() for m in mods} == registering
    assert next(iter(found["table"])) == "init"  # `idsvc --help` opens with init, import-hr, ...


# -- each rule catches what it is for --------------------------------------------------------
COMMON = """
from datetime import UTC, datetime
from rich.console import Console
console = Console()
def now() -> datetime:
    return datetime.now(UTC)
JsonOpt = bool
"""


def tree_of(folder: Path, **files: str) -> dict[str, ast.Module]:
    for name, text in {"common": COMMON, **files}.items():
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
    return modules(folder)


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("from datetime import UTC, datetime\ndef _now():\n    return datetime.now(UTC)\n", "_now"),
        ("import datetime\nstamp = lambda: datetime.datetime.now()\n", "datetime.now"),
        ("from datetime import datetime\ndef utcnow():\n    return 0\n", "utcnow"),
        ("from typing import Annotated\nJsonOpt = Annotated[bool, 'json']\n", "JsonOpt"),
        ("from rich.console import Console\nout = Console(stderr=True)\n", "console"),
    ],
    ids=["private-clock", "clock-call", "utcnow", "shared-option", "console"],
)
def test_a_second_clock_console_or_option_is_caught(tmp_path: Path, source: str, said: str) -> None:
    found = shared_redefinitions(tree_of(tmp_path, commands=source))
    assert found and all(f.startswith("commands.py") for f in found), found
    assert any(said in f for f in found), found


@pytest.mark.parametrize(
    "source",
    [
        "from idsvc.cli.card_commands import _open\n",
        "def f():\n    from idsvc.cli.card_commands import card_secrets, _open\n",
        "from idsvc.cli._helpers import thing\n",
        "import idsvc.cli._helpers as h\n",
        "from idsvc.cli import card_commands\ncard_commands._open('r')\n",
        "from typer import _completion_classes\n",
    ],
    ids=["top", "lazy", "private-module", "import-private-module", "attribute", "library"],
)
def test_an_import_of_a_private_name_is_caught(tmp_path: Path, source: str) -> None:
    assert private_imports(tree_of(tmp_path, commands=source)) != []


def test_public_names_dunders_and_the_allowed_library_import_pass(tmp_path: Path) -> None:
    source = (
        "from __future__ import annotations\nfrom typer import _click\n"
        "from idsvc.cli.card_commands import open_reader\nfrom idsvc import __version__\n"
    )
    assert private_imports(tree_of(tmp_path, commands=source)) == []


def test_an_import_at_the_bottom_of_main_is_caught(tmp_path: Path) -> None:
    bottom = (
        '"""The entry point."""\nfrom idsvc.cli.app import app\n\n'
        "app.command()(print)\n\nfrom idsvc.cli import card_commands  # noqa: E402\n"
    )
    found = late_imports(tree_of(tmp_path, main=bottom))
    assert found == ["main.py:6: import below code (line 4)"], found
    top = '"""The entry point."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
    top += "    import os\nfrom idsvc.cli.app import app\n\nNAMES = (app,)\n"
    assert late_imports(tree_of(tmp_path, main=top)) == []
