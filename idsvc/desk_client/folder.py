"""Where a desk keeps its files under ``$IDSVC_HOME``: known here, importing nothing heavy, so
that every command can ask whether this machine is an enrolled desk without loading the desk
identity (cryptography: ~30 ms a command; tests/idsvc/cli/test_imports.py)."""

from __future__ import annotations

from pathlib import Path


def desk_folder(home: Path) -> Path:
    return home / "desk"


def desk_config(home: Path) -> Path:
    """``desk.json``: the file an enrolled desk has (its enrolment's commit point)."""
    return desk_folder(home) / "desk.json"
