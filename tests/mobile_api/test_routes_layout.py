"""mobile_api's own layout rules, checked on the source:

- no module of ``mobile_api/routes`` imports another (what routes share lives in a non-route
  module: ``deps``, ``desk_requests``, ``verdicts``...), and ``api.py`` mounts every one;
- a schema class of ``mobile_api/schemas`` is named ``…Request`` or ``…Response`` (a body a route
  takes or answers), or is used only nested in another schema class (``PayrollItem``); a route's
  body and response model are always ``…Request``/``…Response`` classes of that package;
- no schema module and no ``…Request``/``…Response`` class is unused outside the package.

Each rule is a function run over the real package and, in a test of its own, over a made-up
violation, so a rule that stopped catching anything would fail too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel

import mobile_api.routes
import mobile_api.schemas

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mobile_api"
ROUTES = "mobile_api.routes"
SCHEMAS = "mobile_api.schemas"
TOP_LEVEL = ("Request", "Response")


def submodules(package: types.ModuleType) -> list[types.ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, absolute names; ``from a import b`` gives ``a`` and ``a.b``
    (``b`` may be a module); a relative import gives its dots and name (``.x``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module:
                found.append(base)
            joint = "" if base.endswith(".") else "."
            found += [f"{base}{joint}{alias.name}" for alias in node.names]
    return found


def route_imports(path: Path) -> list[str]:
    """What the route module at ``path`` imports of ``mobile_api.routes`` (any relative import
    counts: inside ``routes/`` it names a sibling)."""
    return sorted(
        {
            name
            for name in imported_modules(path)
            if name.startswith(".") or name.startswith(f"{ROUTES}.")
        }
    )


def mounted(api: Path) -> set[str]:
    """The route modules ``api.py`` imports (and so mounts: it includes each one's router)."""
    prefix = f"{ROUTES}."
    return {name.removeprefix(prefix) for name in imported_modules(api) if name.startswith(prefix)}


def referenced_classes(annotation: object) -> Iterator[object]:
    """``annotation`` and every type inside it (``list[X] | None`` gives ``X`` too)."""
    yield annotation
    for arg in typing.get_args(annotation):
        yield from referenced_classes(arg)


def nested_in(part: type[BaseModel], model: type[BaseModel]) -> bool:
    if part is not model and issubclass(model, part):
        return True  # a shared base class (``_Strict``) is a part of the models built on it
    return any(
        part in referenced_classes(field.annotation) for field in model.model_fields.values()
    )


def naming_violations(classes: Iterable[type[BaseModel]]) -> list[str]:
    """Classes neither named ``…Request``/``…Response`` nor nested in another of ``classes``."""
    models = list(classes)
    return [
        f"{c.__module__}.{c.__name__}: name it …Request/…Response, or use it only nested"
        for c in models
        if not c.__name__.endswith(TOP_LEVEL) and not any(nested_in(c, m) for m in models)
    ]


def schema_classes(module: types.ModuleType) -> list[type[BaseModel]]:
    return [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, BaseModel) and c.__module__ == module.__name__
    ]


def body_violations(router: APIRouter) -> list[str]:
    """Bodies and response models of ``router``'s routes that are not ``…Request``/``…Response``
    classes of ``mobile_api.schemas``."""
    wrong: list[str] = []
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        models = [p.field_info.annotation for p in route.dependant.body_params]
        models.append(route.response_model)
        for model in models:
            if not (inspect.isclass(model) and issubclass(model, BaseModel)):
                continue
            in_package = model.__module__.startswith(f"{SCHEMAS}.")
            if not (in_package and model.__name__.endswith(TOP_LEVEL)):
                wrong.append(f"{route.path}: {model.__module__}.{model.__name__}")
    return wrong


def schema_imports(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Schema module -> the names imported from it by ``paths``."""
    used: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{SCHEMAS}."):
                module = str(node.module).removeprefix(f"{SCHEMAS}.")
                used.setdefault(module, set()).update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(f"{SCHEMAS}."):
                        used.setdefault(alias.name.removeprefix(f"{SCHEMAS}."), set())
    return used


def unused(defined: dict[str, list[str]], used: dict[str, set[str]]) -> list[str]:
    """Schema modules nobody imports, and ``…Request``/``…Response`` classes nobody imports."""
    found: list[str] = []
    for module, classes in sorted(defined.items()):
        if module not in used:
            found.append(f"{SCHEMAS}.{module}")
            continue
        found += [
            f"{SCHEMAS}.{module}.{name}"
            for name in classes
            if name.endswith(TOP_LEVEL) and name not in used[module]
        ]
    return found


def outside_schemas() -> list[Path]:
    schemas_dir = PACKAGE / "schemas"
    return sorted(p for p in PACKAGE.rglob("*.py") if schemas_dir not in p.parents)


# The rules over the real package.


def test_route_modules_do_not_import_each_other() -> None:
    wrong = {
        p.name: route_imports(p)
        for p in sorted((PACKAGE / "routes").glob("*.py"))
        if route_imports(p)
    }
    assert wrong == {}


def test_every_route_module_is_mounted() -> None:
    modules = {m.__name__.rsplit(".", 1)[1] for m in submodules(mobile_api.routes)}
    assert modules == mounted(PACKAGE / "api.py")


def test_schema_classes_follow_the_naming_rule() -> None:
    classes = [c for m in submodules(mobile_api.schemas) for c in schema_classes(m)]
    assert classes, "no schema classes found: the rule would check nothing"
    assert naming_violations(classes) == []


def test_route_bodies_are_requests_and_responses_of_the_schemas_package() -> None:
    wrong = [v for m in submodules(mobile_api.routes) for v in body_violations(m.router)]
    assert wrong == []


def test_no_schema_module_or_class_is_unused() -> None:
    defined = {
        m.__name__.removeprefix(f"{SCHEMAS}."): [c.__name__ for c in schema_classes(m)]
        for m in submodules(mobile_api.schemas)
    }
    assert unused(defined, schema_imports(outside_schemas())) == []


# Each rule catches a violation.


def test_a_route_importing_a_route_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from mobile_api.routes.desk import answer\n"
        "from mobile_api.routes import health\n"
        "from . import payroll\n"
        "import mobile_api.routes.hr\n"
        "from mobile_api.deps import Now\n"
        "from mobile_api.routes_extra import x\n"
    )
    assert route_imports(bad) == [
        ".payroll",
        f"{ROUTES}.desk",
        f"{ROUTES}.desk.answer",
        f"{ROUTES}.health",
        f"{ROUTES}.hr",
    ]


def test_an_unmounted_route_module_is_caught(tmp_path: Path) -> None:
    api = tmp_path / "api.py"
    api.write_text("from mobile_api.routes import desk, health\n")
    assert mounted(api) == {"desk", "health"}


def test_a_misnamed_or_orphan_schema_is_caught() -> None:
    class Part(BaseModel):
        x: int

    class ThingRequest(BaseModel):
        parts: list[Part] | None = None

    class Orphan(BaseModel):
        y: int

    assert naming_violations([Part, ThingRequest]) == []
    assert naming_violations([Part, ThingRequest, Orphan]) == [
        f"{__name__}.Orphan: name it …Request/…Response, or use it only nested"
    ]


class Thing(BaseModel):
    """A plain noun: fine nested, wrong as a route's body or answer (defined at module level so
    that FastAPI can resolve the route's string annotations)."""

    x: int


def test_a_plain_noun_as_a_route_body_is_caught() -> None:
    router = APIRouter()

    @router.post("/things", response_model=Thing)
    def create(body: Thing) -> dict[str, int]:
        return {"x": body.x}

    assert body_violations(router) == [f"/things: {__name__}.Thing"] * 2


def test_an_unused_schema_module_or_class_is_caught(tmp_path: Path) -> None:
    user = tmp_path / "route.py"
    user.write_text(f"from {SCHEMAS}.payroll import PayrollCheckRequest\nimport {SCHEMAS}.hr\n")
    used = schema_imports([user])
    assert used == {"payroll": {"PayrollCheckRequest"}, "hr": set()}
    defined = {
        "payroll": ["PayrollCheckRequest", "PayrollCheckResponse", "PayrollItem"],
        "hr": [],
        "desk": ["LoginRequest"],
    }
    assert unused(defined, used) == [
        f"{SCHEMAS}.desk",
        f"{SCHEMAS}.payroll.PayrollCheckResponse",
    ]
