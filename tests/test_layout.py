"""The layout of the tests as a test. Three rules, each shown to catch a violation below:

1. No module imports a test module: nothing under ``tests/`` or ``bench/`` imports a
   ``test_*.py`` or a ``conftest.py`` (nor names one in ``pytest_plugins``). Shared helpers live
   in ``tests/support/``; shared fixtures in the nearest ``conftest.py`` above their users,
   where pytest finds them without an import.
2. ``conftest.py`` files declare fixtures and hooks only: besides imports and
   ``pytest_plugins``, every top-level statement is a ``@pytest.fixture`` function, a
   ``pytest_*`` hook, or a private (``_NAME``) literal constant for those fixtures' own use.
   Anything a test could want (a helper function, a class, a public constant) goes to
   ``tests/support/``.
3. Tests mirror the source: a folder under ``tests/`` is an existing source package
   (``tests/idsvc/register/`` for ``idsvc/register/``) or one of ``WHOLE_RUN`` (whole-deployment
   runs, the browser verifier, the shared vectors, the helpers); ``tests/`` itself holds only
   repository-wide checks; ``tests/support/`` holds no tests; every folder is a package (so two
   ``test_x.py`` in different folders never clash).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("idsvc", "cardio", "keys", "mobile_api")
WHOLE_RUN = ("system", "web", "vectors", "support")


def _python_files(root: Path, folder: str) -> Iterator[Path]:
    for path in sorted((root / folder).rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path


def _is_test_module(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "tests" and (parts[-1].startswith("test_") or parts[-1] == "conftest")


def _module_of(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _imported(root: Path, path: Path, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything ``path`` imports, lazily or not, including each name
    of a ``from`` import (``from tests.x import test_y`` imports the module ``test_y``)."""
    package = _module_of(root, path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of ``path``
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            for item in ast.walk(node.value):
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    yield node.lineno, item.value


def imports_of_test_modules(root: Path) -> list[str]:
    """Rule 1: every import of a test module from ``tests/`` or ``bench/``."""
    found = []
    for folder in ("tests", "bench"):
        for path in _python_files(root, folder):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for line, name in _imported(root, path, tree):
                if _is_test_module(name):
                    found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return sorted(found)


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr == "fixture"
    return isinstance(target, ast.Name) and target.id == "fixture"


def _private_literal(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    if not all(isinstance(t, ast.Name) and t.id.startswith("_") for t in targets):
        return False
    try:
        ast.literal_eval(value)
    except ValueError:
        return False
    return True


def _allowed_in_conftest(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return isinstance(node.value.value, str)  # the docstring
    if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
        "pytest_plugins"
    ]:
        return True
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name.startswith("pytest_") or any(map(_is_fixture, node.decorator_list))
    if isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    ):
        return all(isinstance(n, ast.Import | ast.ImportFrom) for n in node.body + node.orelse)
    return _private_literal(node)


def conftest_non_fixtures(root: Path) -> list[str]:
    """Rule 2: every top-level statement of a ``conftest.py`` that is not a fixture or hook."""
    found = []
    for path in _python_files(root, "tests"):
        if path.name != "conftest.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            if not _allowed_in_conftest(node):
                what = getattr(node, "name", None) or ast.unparse(node).splitlines()[0]
                found.append(f"{path.relative_to(root)}:{node.lineno} {what}")
    return found


def misplaced_test_files(root: Path) -> list[str]:
    """Rule 3: every Python file under ``tests/`` outside the mirrored layout."""
    found = []
    tests = root / "tests"
    for path in _python_files(root, "tests"):
        rel = path.relative_to(tests)
        folders = rel.parts[:-1]
        if not folders:
            if not (path.name.startswith("test_") or path.name in ("conftest.py", "__init__.py")):
                found.append(f"tests/{rel}: only tests and conftest.py sit in tests/ itself")
            continue
        if path.name == "__init__.py":  # a folder is judged by the files in it
            continue
        if not (path.parent / "__init__.py").is_file():
            found.append(f"tests/{rel}: tests/{'/'.join(folders)} has no __init__.py")
        if folders[0] in WHOLE_RUN:
            if folders[0] == "support" and path.name.startswith("test_"):
                found.append(f"tests/{rel}: tests/support holds helpers, not tests")
            continue
        source = root.joinpath(*folders)
        if folders[0] not in SOURCE_PACKAGES or not source.is_dir():
            found.append(f"tests/{rel}: {'/'.join(folders)}/ is not a source package")
    return found


def test_no_module_imports_a_test_module() -> None:
    assert imports_of_test_modules(ROOT) == []


def test_conftest_files_declare_only_fixtures_and_hooks() -> None:
    assert conftest_non_fixtures(ROOT) == []


def test_tests_mirror_the_source_packages() -> None:
    assert misplaced_test_files(ROOT) == []


# -- Each rule catches a violation -----------------------------------------------------------


def _write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _packages(root: Path, *folders: str) -> None:
    for folder in folders:
        _write(root, f"{folder}/__init__.py")


def test_rule_1_catches_imports_of_test_modules(tmp_path: Path) -> None:
    _packages(tmp_path, "tests", "tests/keys", "tests/support", "bench")
    _write(tmp_path, "tests/keys/test_ca.py", "def helper() -> None: ...\n")
    _write(tmp_path, "tests/support/fine.py", "X = 1\n")
    _write(tmp_path, "tests/keys/test_fine.py", "from tests.support.fine import X\n")
    _write(tmp_path, "tests/keys/test_a.py", "from tests.keys.test_ca import helper\n")
    _write(tmp_path, "tests/keys/test_b.py", "from tests.keys import test_ca\n")
    _write(tmp_path, "tests/keys/test_c.py", "def f():\n    from .test_ca import helper\n")
    _write(tmp_path, "tests/keys/test_d.py", "import tests.conftest\n")
    _write(tmp_path, "tests/conftest.py", 'pytest_plugins = ["tests.keys.test_ca"]\n')
    _write(tmp_path, "bench/run.py", "from tests.keys.conftest import thing\n")
    assert imports_of_test_modules(tmp_path) == [
        "bench/run.py:1 imports tests.keys.conftest",
        "tests/conftest.py:1 imports tests.keys.test_ca",
        "tests/keys/test_a.py:1 imports tests.keys.test_ca",
        "tests/keys/test_b.py:1 imports tests.keys.test_ca",
        "tests/keys/test_c.py:2 imports tests.keys.test_ca",
        "tests/keys/test_d.py:1 imports tests.conftest",
    ]


def test_rule_2_catches_helpers_in_a_conftest(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "tests/web/conftest.py",
        '"""Fixtures."""\n'
        "from typing import TYPE_CHECKING\n"
        "import pytest\n"
        "if TYPE_CHECKING:\n"
        "    from pathlib import Path\n"
        'pytest_plugins = ["tests.support.pcsc"]\n'
        "_TIMEOUT = 10\n"
        "PHONE = {'width': 360}\n"
        "_BUILT = dict(width=360)\n"
        "@pytest.fixture\n"
        "def phone() -> int:\n"
        "    return _TIMEOUT\n"
        "@pytest.fixture(scope='session')\n"
        "def browser() -> None: ...\n"
        "def pytest_collection_modifyitems(items: list[object]) -> None: ...\n"
        "def launch() -> None: ...\n"
        "class Site: ...\n",
    )
    assert conftest_non_fixtures(tmp_path) == [
        "tests/web/conftest.py:8 PHONE = {'width': 360}",
        "tests/web/conftest.py:9 _BUILT = dict(width=360)",
        "tests/web/conftest.py:16 launch",
        "tests/web/conftest.py:17 Site",
    ]


def test_rule_3_catches_tests_outside_the_mirrored_layout(tmp_path: Path) -> None:
    _packages(tmp_path, "idsvc/register", "tests", "tests/idsvc", "tests/idsvc/register")
    _packages(tmp_path, "tests/idsvc/nowhere", "tests/api", "tests/system", "tests/support")
    _write(tmp_path, "tests/idsvc/register/test_records.py")
    _write(tmp_path, "tests/system/test_load.py")
    _write(tmp_path, "tests/test_layout.py")
    _write(tmp_path, "tests/idsvc/nowhere/test_x.py")  # no idsvc/nowhere/
    _write(tmp_path, "tests/api/test_http.py")  # the API's package is mobile_api
    _write(tmp_path, "tests/support/test_helper.py")
    _write(tmp_path, "tests/helpers.py")
    _write(tmp_path, "tests/keys/test_ca.py")  # keys/ missing, and no __init__.py either
    assert misplaced_test_files(tmp_path) == [
        "tests/api/test_http.py: api/ is not a source package",
        "tests/helpers.py: only tests and conftest.py sit in tests/ itself",
        "tests/idsvc/nowhere/test_x.py: idsvc/nowhere/ is not a source package",
        "tests/keys/test_ca.py: tests/keys has no __init__.py",
        "tests/keys/test_ca.py: keys/ is not a source package",
        "tests/support/test_helper.py: tests/support holds helpers, not tests",
    ]
