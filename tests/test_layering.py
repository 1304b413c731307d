"""The architecture as a test (docs/architecture.md, "Who may import whom"), checked on the source.

Four rules, each shown to catch a violation below:

1. Top-level packages: ``keys`` and ``cardio`` use none of ours; ``idsvc`` uses ``keys`` and
   ``cardio``; ``mobile_api`` uses ``idsvc``, ``keys`` and ``cardio``.
2. Inside ``idsvc``, each package uses only the ones its row of ``MAY_USE`` names: the base
   (errors, formats, config, storage, audit) uses no feature; features use the base and each
   other; the desk gateway, operations and reports use features; the composition root uses
   everything below the CLI; nothing but the CLI uses the CLI.
3. What runs on a desk PC (``idsvc.desk_client``), and ``cardio`` and ``keys``, never load
   ``idsvc.storage`` or SQLAlchemy, directly or through any chain of imports: a desk holds no
   database, no register and no issuer key.
4. Outside libraries stay where they belong (``CONFINED``): PC/SC in ``cardio/pcsc.py``,
   PKCS#11 in ``keys/hsm.py``, FastAPI in ``mobile_api``, SQLAlchemy under ``idsvc``, ...

A violation names the file and the import (for rule 3, the whole chain).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("idsvc", "cardio", "keys", "mobile_api")

# Rule 1.
MAY_IMPORT = {
    "keys": set(),
    "cardio": set(),
    "idsvc": {"keys", "cardio"},
    "mobile_api": {"idsvc", "keys", "cardio"},
}

# Rule 2: the packages (and top-level modules) of idsvc, by the name after ``idsvc.``.
BASE = {"errors", "formats", "config", "storage", "migrations", "audit", "data"}
FEATURES = {"register", "credentials", "verification", "staff", "bank", "clients", "wallet"}
CENTRE = {"desks", "operations", "reports"}
MAY_USE: dict[str, set[str]] = {
    "": set(),  # idsvc/__init__.py: constants only
    "errors": set(),
    "formats": set(),  # and see test_formats_are_pure
    "data": set(),
    "storage": {"errors"},
    "migrations": {"storage", "errors", "formats"},  # a data migration may use a pure codec
    "config": {"errors", "formats"},
    "audit": {"errors", "formats", "config", "storage"},
    **{feature: BASE | FEATURES for feature in FEATURES},
    "desks": BASE | FEATURES,
    "operations": BASE | FEATURES,
    "reports": BASE | FEATURES,
    "services": BASE | FEATURES | CENTRE,
    # A desk: the storage-free parts of credentials, register and verification (rule 3 checks
    # that what it reaches there stays free of the database).
    "desk_client": {"errors", "formats", "config", "credentials", "register", "verification"},
    "cli": BASE | FEATURES | CENTRE | {"services", "desk_client", "cli"},
}
# Imports the rules allow by name, each with its reason.
EXCEPTIONS = {
    # IDSVC_APPROVAL_REQUIRED is checked at start-up against the actions maker-checker knows
    # (a lazy import of a constant table, a module that imports nothing, inside the validator).
    ("idsvc/config.py", "idsvc.staff.approval_actions"),
}

# Rule 3.
NO_STORAGE = ("idsvc.desk_client", "cardio", "keys")
STORAGE = ("idsvc.storage", "sqlalchemy", "alembic")

# Rule 4: outside library -> the only places (package or module path prefix) allowed to use it.
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


@dataclass(frozen=True)
class Import:
    name: str  # a module, or ``module.name`` for ``from module import name``
    lazy: bool  # inside a function: loaded when called, not when the module is imported


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(Import(child.module, lazy))
                found.extend(Import(f"{child.module}.{a.name}", lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level:
                found.append(Import(_absolute(path, child.level, child.module), lazy))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # only for the type checker: never loaded
            visit(child, inner)

    visit(tree, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _absolute(path: Path, level: int, module: str | None) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    base = parts[: len(parts) - level]
    return ".".join(base + ([module] if module else []))


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


SOURCES = sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))
MODULES = {module_name(p): p for p in SOURCES}


def ours(name: str) -> str | None:
    """The module of ours that ``name`` loads (``a.b.c`` may be ``a.b`` plus an attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def unit(name: str) -> str:
    """``idsvc.register.records`` -> ``register``; ``idsvc.config`` -> ``config``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


# -- rule 1 and 2 ------------------------------------------------------------------------------
def layer_violations(rel: str, imports: list[Import]) -> list[str]:
    package = rel.split("/", 1)[0]
    here = module_name(ROOT / rel)
    problems = []
    for imp in imports:
        top = imp.name.split(".", 1)[0]
        if top in OURS and top != package and top not in MAY_IMPORT[package]:
            problems.append(f"{rel} imports {imp.name}: {package} may not use {top}")
        if package == "idsvc" and top == "idsvc":
            target = ours(imp.name)
            if target is None or (rel, target) in EXCEPTIONS:
                continue
            mine, theirs = unit(here), unit(target)
            # idsvc/__init__.py holds constants (scopes, the default issuer) every package may use
            if theirs not in {mine, ""} and theirs not in MAY_USE[mine]:
                problems.append(
                    f"{rel} imports {target}: idsvc.{mine or '__init__'} may not use idsvc.{theirs}"
                )
        if top in CONFINED and not rel.startswith(CONFINED[top]):
            problems.append(f"{rel} imports {imp.name}: only {CONFINED[top]}")
    return problems


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    assert layer_violations(rel, imports_of(path)) == []


def test_every_idsvc_package_has_a_row() -> None:
    units = {unit(name) for name in MODULES if name.startswith("idsvc")}
    assert units <= set(MAY_USE), f"packages without a rule: {sorted(units - set(MAY_USE))}"


# -- rule 3 ------------------------------------------------------------------------------------
def loaded_by(start: str, modules: dict[str, Path]) -> dict[str, str | None]:
    """Every module importing ``start`` loads (at import time, not lazily), with the module that
    brought each in: parents' ``__init__`` run first, and ``from a import b`` may load ``a.b``."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    came_from: dict[str, str | None] = {}
    todo: list[tuple[str, str | None]] = [(start, None)]
    while todo:
        name, parent = todo.pop()
        if name in came_from:
            continue
        came_from[name] = parent
        parts = name.split(".")
        todo += [(".".join(parts[:i]), name) for i in range(1, len(parts))]
        for imp in imports_of(modules[name]):
            if imp.lazy:
                continue
            target = resolve(imp.name)
            if target is not None:
                todo.append((target, name))
            elif imp.name.split(".", 1)[0] in {"sqlalchemy", "alembic"}:
                came_from.setdefault(imp.name, name)
    return came_from


def storage_chain(start: str, modules: dict[str, Path]) -> list[str] | None:
    came_from = loaded_by(start, modules)
    hit = next((m for m in came_from if m.startswith(STORAGE)), None)
    if hit is None:
        return None
    chain = [hit]
    while (parent := came_from[chain[-1]]) is not None:
        chain.append(parent)
    return chain[::-1]


DESK_SIDE = sorted(name for name in MODULES if name.startswith(NO_STORAGE))


@pytest.mark.parametrize("name", DESK_SIDE)
def test_desk_side_never_loads_the_database(name: str) -> None:
    chain = storage_chain(name, MODULES)
    assert chain is None, " -> ".join(chain or [])


# -- rule 4 is part of layer_violations; formats --------------------------------------------------
FORMATS = sorted((ROOT / "idsvc" / "formats").rglob("*.py"))
# The pure codecs may use only the standard library, these outside libraries and each other:
# no database, no clock source of ours, no environment, no card or key-store I/O.
FORMATS_MAY_USE = {"cryptography", "cbor2", "zlib", "keys"}


@pytest.mark.parametrize("path", FORMATS, ids=lambda p: str(p.relative_to(ROOT)))
def test_formats_are_pure(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    for imp in imports_of(path):
        name, top = imp.name, imp.name.split(".", 1)[0]
        if name.startswith("idsvc.formats") or top == "__future__":
            continue
        if top == "keys":
            assert ours(name) in {"keys.jwk", "keys.algorithms", "keys.errors"}, f"{rel}: {name}"
            continue
        assert top in sys.stdlib_module_names or top in FORMATS_MAY_USE, f"{rel} imports {name}"
        assert top != "os", f"{rel} imports os: formats read no environment"


# -- each rule catches a violation ------------------------------------------------------------
def _write(tmp_path: Path, rel: str, text: str) -> Path:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_rule_1_catches_a_package_using_one_it_may_not(tmp_path: Path) -> None:
    bad = _write(tmp_path, "cardio/bad.py", "from idsvc.errors import IdsvcError\n")
    assert layer_violations("cardio/bad.py", imports_of(bad)) == [
        "cardio/bad.py imports idsvc.errors: cardio may not use idsvc",
        "cardio/bad.py imports idsvc.errors.IdsvcError: cardio may not use idsvc",
    ]


def test_rule_2_catches_the_base_using_a_feature(tmp_path: Path) -> None:
    bad = _write(tmp_path, "idsvc/storage/bad.py", "from idsvc.register.records import x\n")
    problems = layer_violations("idsvc/storage/bad.py", imports_of(bad))
    assert problems and all("idsvc.storage may not use idsvc.register" in p for p in problems)
    lazy = _write(tmp_path, "idsvc/audit/bad.py", "def f():\n    import idsvc.bank.payroll\n")
    assert layer_violations("idsvc/audit/bad.py", imports_of(lazy)), "lazy imports count too"


def test_rule_3_catches_a_desk_module_reaching_the_database_through_another(
    tmp_path: Path,
) -> None:
    # desk_client.cards -> credentials.helper (allowed by rule 2) -> idsvc.storage.tables
    files = {
        "idsvc.desk_client.cards": "from idsvc.credentials.helper import Thing\n",
        "idsvc.credentials.helper": "from idsvc.storage.tables import Row\n",
        "idsvc.storage.tables": "import sqlalchemy\n",
    }
    modules = {}
    for name, text in files.items():
        modules[name] = _write(tmp_path, name.replace(".", "/") + ".py", text)
    for package in ("idsvc", "idsvc.desk_client", "idsvc.credentials", "idsvc.storage"):
        modules[package] = _write(tmp_path, package.replace(".", "/") + "/__init__.py", "")
    assert storage_chain("idsvc.desk_client.cards", modules) == [
        "idsvc.desk_client.cards",
        "idsvc.credentials.helper",
        "idsvc.storage.tables",
    ]
    # A lazy import inside a function is not loaded with the module: no chain.
    modules["idsvc.credentials.helper"].write_text("def f():\n    import idsvc.storage.tables\n")
    assert storage_chain("idsvc.desk_client.cards", modules) is None


def test_rule_4_catches_an_outside_library_out_of_its_place(tmp_path: Path) -> None:
    bad = _write(tmp_path, "idsvc/bad.py", "import smartcard.System\n")
    assert layer_violations("idsvc/bad.py", imports_of(bad)) == [
        "idsvc/bad.py imports smartcard.System: only ('cardio/pcsc.py',)"
    ]
