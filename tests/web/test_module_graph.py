"""The web verifier's ES modules, read as a graph of imports (static ``import``/``export ...
from`` and dynamic ``import("...")``): every import names a module of the page, the graph has
no cycle, and every module is reached from the page (app.js) or its service worker (sw.js).

A cycle between modules works in a browser only as long as neither side touches the other at
load time; the next edit that does breaks the page with a TDZ error, only on the path that
loads that module first. verifier.js and claim169.js were such a pair."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "mobile_api" / "static" / "verify"
ENTRY_POINTS = ("app.js", "sw.js")

# Comments as this code writes them: whole `//` lines and `/* ... */` blocks opening a line.
_COMMENTS = re.compile(r"^\s*//[^\n]*|^\s*/\*[\s\S]*?\*/", re.MULTILINE)
# `import x from "m"`, `import { a, b as c } from "m"`, `import * as n from "m"`, `import "m"`,
# `export { a } from "m"`, `export * from "m"`, over as many lines as the braces take.
_STATIC = re.compile(r"""\b(?:import|export)\s*(?:[\w$*{},\s]*?\bfrom\s*)?["']([^"']+)["']""")
_DYNAMIC = re.compile(r"""\bimport\s*\(\s*(?:["']([^"']+)["']\s*\))?""")


def imports_of(source: str) -> list[str]:
    """The specifiers a module imports, static and dynamic, in the order written.

    A dynamic ``import(...)`` of anything but a string literal gives ``"?"``: the graph
    would be incomplete, and the tests below refuse it."""
    code = _COMMENTS.sub("", source)
    found = [(m.start(), m.group(1)) for m in _STATIC.finditer(code)]
    found += [(m.start(), m.group(1) or "?") for m in _DYNAMIC.finditer(code)]
    return [spec for _, spec in sorted(found)]


def resolve(folder: Path, importer: str, spec: str) -> str:
    """The module ``spec`` names, relative to ``folder``; ValueError outside it."""
    if spec.startswith("/verify/"):
        target = folder / spec.removeprefix("/verify/")
    elif spec.startswith(("./", "../")):
        target = (folder / importer).parent / spec
    else:
        raise ValueError(f"{importer} imports {spec!r}: only the page's own modules")
    target = target.resolve()
    if not target.is_relative_to(folder.resolve()) or not target.is_file():
        raise ValueError(f"{importer} imports {spec!r}, which is not a module of the page")
    return target.relative_to(folder.resolve()).as_posix()


def graph(folder: Path) -> dict[str, list[str]]:
    """Each module in ``folder`` (not its vendored subfolders) with the modules it imports."""
    return {
        path.name: [
            resolve(folder, path.name, spec)
            for spec in imports_of(path.read_text(encoding="utf-8"))
        ]
        for path in sorted(folder.glob("*.js"))
    }


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as the path around it (``[a, b, a]``), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for successor in edges.get(node, ()):
            cycle = visit(successor)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(edges):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def reached(edges: Mapping[str, Iterable[str]], starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def test_the_verifier_modules_import_no_cycle() -> None:
    edges = graph(STATIC)
    assert find_cycle(edges) is None
    # The graph is read, not empty: the pair that used to form a cycle, and what they share.
    assert "claim169.js" in edges["verifier.js"], "verifier.js loads claim169.js on demand"
    assert "rules.js" in edges["verifier.js"] and "rules.js" in edges["claim169.js"]
    assert "verifier.js" not in edges["claim169.js"]


def test_every_module_is_part_of_the_page() -> None:
    edges = graph(STATIC)
    # Vendored modules (vendor/, listed in VENDOR.md) are leaves: not in the graph's keys.
    ours = {m for m in reached(edges, ENTRY_POINTS) if not m.startswith("vendor/")}
    assert ours == set(edges), "a module nothing imports"


def test_imports_are_read_in_every_form_and_comments_are_not() -> None:
    source = """// import { nope } from "./comment.js";
/** Not an import either: import("./doc.js") */
import { a,
  b as c } from "./multi-line.js";
import * as all from "./star.js";
import "./bare.js";
export { d } from "./re-export.js";
const later = await import("./dynamic.js");
const computed = await import(name);
"""
    assert imports_of(source) == [
        "./multi-line.js",
        "./star.js",
        "./bare.js",
        "./re-export.js",
        "./dynamic.js",
        "?",
    ]


def test_a_cycle_through_a_dynamic_import_is_caught(tmp_path: Path) -> None:
    # The shape the page had: the JWT verifier loads the QR reader on demand, and the QR reader
    # took its rules from the JWT verifier.
    (tmp_path / "app.js").write_text('import { verify } from "./verifier.js";\n')
    (tmp_path / "verifier.js").write_text(
        'export const fail = () => 0;\nexport const verify = async () => import("./claim169.js");\n'
    )
    (tmp_path / "claim169.js").write_text('import { fail } from "./verifier.js";\n')
    assert find_cycle(graph(tmp_path)) == ["verifier.js", "claim169.js", "verifier.js"]
    # Moved into a module of their own, the rules break it.
    (tmp_path / "rules.js").write_text("export const fail = () => 0;\n")
    (tmp_path / "claim169.js").write_text('import { fail } from "./rules.js";\n')
    assert find_cycle(graph(tmp_path)) is None


def test_a_longer_cycle_and_a_stray_import_are_caught(tmp_path: Path) -> None:
    assert find_cycle({"a.js": ["b.js"], "b.js": ["c.js"], "c.js": ["a.js"]}) == [
        "a.js",
        "b.js",
        "c.js",
        "a.js",
    ]
    assert find_cycle({"a.js": ["b.js", "c.js"], "b.js": ["c.js"], "c.js": []}) is None
    (tmp_path / "a.js").write_text('import { x } from "./missing.js";\n')
    with pytest.raises(ValueError, match=r"missing\.js"):
        graph(tmp_path)
    (tmp_path / "a.js").write_text("const m = await import(`./${name}.js`);\n")
    with pytest.raises(ValueError, match=re.escape("'?'")):
        graph(tmp_path)
    (tmp_path / "a.js").write_text('import { x } from "https://cdn.example/x.js";\n')
    with pytest.raises(ValueError, match="only the page's own modules"):
        graph(tmp_path)
