"""Every ``--help`` screen of the whole command tree reads as a man page: options carry words
(TEXT, INTEGER, PATH or nothing for a flag), never Python type names such as ``<str>``,
``<bool>`` or ``<list[str]>`` (what Typer 0.27 and later print; pyproject.toml keeps Typer
below 0.27 for that reason)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

# Runs in a fresh interpreter, as `idsvc` does: walks the real app's command tree and prints
# each command's help screen after a marker line.
WALK = r"""
import sys
import typer
from idsvc.cli.main import app

def paths(command, prefix):
    yield prefix
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from paths(sub, (*prefix, name))

for path in paths(typer.main.get_command(app), ()):
    print("=== idsvc " + " ".join(path), flush=True)
    sys.argv = ["idsvc", *path, "--help"]
    app(args=[*path, "--help"], prog_name="idsvc", standalone_mode=False)
    sys.stdout.flush()
"""

PYTHON_TYPE_NAME = re.compile(
    r"<(?:str|bool|int|float|bytes|path|file|dir|directory|datetime|uuid|choice)(?: range)?>"
    r"|<(?:list|tuple|dict|set)\[",
    re.IGNORECASE,
)


def help_screens() -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", WALK],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")}
        | {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    screens: dict[str, str] = {}
    for chunk in proc.stdout.split("=== ")[1:]:
        name, _, text = chunk.partition("\n")
        screens[name.strip()] = text
    return screens


def type_names(screen: str) -> list[str]:
    return PYTHON_TYPE_NAME.findall(screen)


def test_no_help_screen_in_the_whole_tree_shows_python_type_names() -> None:
    screens = help_screens()
    # The walk reached the tree's leaves, not only the top level.
    for name in ("idsvc", "idsvc issue", "idsvc keys rotate", "idsvc desk issue", "idsvc serve"):
        assert name in screens, sorted(screens)
    assert len(screens) >= 60, len(screens)
    for name, screen in screens.items():
        assert f"Usage: {name}" in " ".join(screen.split()), (name, screen)
    found = {name: type_names(screen) for name, screen in screens.items() if type_names(screen)}
    assert not found, found
    # What the options say instead: a word for a value, nothing for a flag.
    issue = screens["idsvc issue"]
    assert re.search(r"--issuer\s+TEXT\s", issue), issue
    assert re.search(r"--json\s+print JSON", issue), issue
    assert re.search(r"--port\s+INTEGER RANGE", screens["idsvc serve"]), screens["idsvc serve"]


def test_the_check_sees_python_type_names_where_typer_0_29_prints_them() -> None:
    # `idsvc issue --help` and `idsvc serve --help` as Typer 0.29.2 printed them.
    typer_0_29 = """
 Usage: idsvc issue [OPTIONS] {employee_id}
│ *    employee_id      <str>  employee id in the register, e.g. KH-MCS-010002 │
│ --json                          <bool>  print JSON                           │
│ --issuer                        <str>   issuer slug [default: default]       │
│ --port                          <int range>  listen port [1<=x<=65535]       │
│ --batch                         <path>  one employee id a line               │
│ --event                         <list[str]>  event types                     │
"""
    assert type_names(typer_0_29) == [
        "<str>",
        "<bool>",
        "<str>",
        "<int range>",
        "<path>",
        "<list[",
    ]
    # ...and not in what the README and the help texts write in angle brackets.
    assert type_names("idsvc revoke <credential_id>; head <sha256>; <employee id>") == []
