"""The package rules (README "Layout"), checked on the source: who may import whom, and where each
outside library may appear. A violation names the file and the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"idsvc", "cardio", "keys", "mobile_api"}
MAY_IMPORT = {
    "keys": set(),
    "cardio": set(),
    "idsvc": {"keys", "cardio"},
    "mobile_api": {"idsvc", "keys"},
}
# outside library -> the only places (package or module path prefix) allowed to import it
CONFINED = {
    "smartcard": ("cardio/pcsc.py",),
    "pkcs11": ("keys/hsm.py",),
    "fastapi": ("mobile_api/",),
    "starlette": ("mobile_api/",),
    "sqlalchemy": ("idsvc/",),
    "alembic": ("idsvc/storage/", "idsvc/migrations/"),
    "typer": ("idsvc/cli/",),
    "uvicorn": ("idsvc/cli/",),
    "prometheus_client": ("mobile_api/metrics.py", "mobile_api/routes/health.py"),
}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


SOURCES = sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_design(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    package = rel.split("/", 1)[0]
    for name in imports_of(path):
        top = name.split(".", 1)[0]
        if top in OURS and top != package:
            assert top in MAY_IMPORT[package], f"{rel} imports {name}: {package} may not use {top}"
        if top in CONFINED:
            assert rel.startswith(CONFINED[top]), f"{rel} imports {name}: only {CONFINED[top]}"


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import smartcard.System\nfrom idsvc.service import IdService\n")
    assert imports_of(bad) == ["smartcard.System", "idsvc.service"]


FORMATS = sorted((ROOT / "idsvc" / "formats").rglob("*.py"))
# The pure codecs may use only the standard library, these outside libraries and each other:
# no database, no clock source of ours, no environment, no card or key-store I/O.
FORMATS_MAY_USE = {"cryptography", "cbor2", "zlib", "keys"}


@pytest.mark.parametrize("path", FORMATS, ids=lambda p: str(p.relative_to(ROOT)))
def test_formats_are_pure(path: Path) -> None:
    import sys

    rel = path.relative_to(ROOT).as_posix()
    for name in imports_of(path):
        top = name.split(".", 1)[0]
        if name.startswith("idsvc.formats") or top == "__future__":
            continue
        if top == "keys":
            assert name in {"keys.jwk", "keys.algorithms", "keys.errors"}, f"{rel} imports {name}"
            continue
        assert top in sys.stdlib_module_names or top in FORMATS_MAY_USE, f"{rel} imports {name}"
        assert top != "os", f"{rel} imports os: formats read no environment"
