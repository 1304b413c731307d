"""Every reference the README and docs/ make into the repository resolves.

Files move (issue 17 moved most of them), and a document that names a file which no longer
exists sends a newcomer looking for it. Checked in README.md and docs/*.md:

- relative markdown links ``[text](path#anchor)``, from the linking file: the file must exist,
  and an anchor into a markdown file must be one of its headings (GitHub's slugs);
- repository paths written in backticks or in a code block: a word starting with one of the
  repository's top-level folders or files (``idsvc/…``, ``docs/…``, ``tests/…``,
  ``scripts/…``, ``requirements.lock`` …), from the repository root; ``<placeholder>`` and
  ``*`` parts match any name; a pytest node id (``tests/…py::test_name``) must name a test
  that the file defines;
- dotted module names in backticks (``idsvc.bank.payroll``, ``keys.ca.IssuerCA``): the longest
  module prefix must be a module or package of ours, and a name after it must be defined at the
  top level of that module.

A word that looks like a path but is not one goes into NOT_PATHS, with the reason.

The module maps at the top of idsvc's feature packages (``idsvc/<package>/__init__.py``) are
documentation too: each names exactly the modules its package has, and imports nothing (importing
a package stays free).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
OUR_PACKAGES = ("idsvc", "cardio", "keys", "mobile_api")
# Words that start like a repository path but name something else, each with why.
NOT_PATHS: dict[str, str] = {}

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"(?<!\!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
DOTTED = re.compile(r"^(?:" + "|".join(OUR_PACKAGES) + r")(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


@cache
def top_level_names() -> tuple[str, ...]:
    """The repository's top-level folders (as ``name/``) and files, hidden ones included."""
    names = []
    for entry in ROOT.iterdir():
        if entry.name in {".git", ".venv", "__pycache__"} or entry.name.endswith(".egg-info"):
            continue
        names.append(entry.name + "/" if entry.is_dir() else entry.name)
    return tuple(sorted(names))


def looks_like_path(word: str) -> bool:
    return any(word == n or word.startswith(n) for n in top_level_names() if "/" in n) or (
        word in top_level_names()
    )


def path_words(text: str) -> list[str]:
    """Candidate repository paths in one stretch of code text (inline code or a fenced block)."""
    found = []
    for raw in re.split(r"[\s=]+", text):
        word = raw.strip("\"'(),;:[]{}").removesuffix(".")
        if word.startswith("./"):
            word = word[2:]
        if word and looks_like_path(word):
            found.append(word)
    return found


def exists(pattern: str) -> bool:
    """Whether a repository path exists; ``<placeholder>`` and ``*`` parts match any name."""
    pattern = re.sub(r"<[^>/]*>", "*", pattern).rstrip("/")
    if "*" not in pattern:
        return (ROOT / pattern).exists()
    return any(ROOT.glob(pattern))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(document: Path) -> frozenset[str]:
    """The anchors of a markdown file's headings (code blocks skipped; repeats get -1, -2 ...)."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", document.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(match.group(1))
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return frozenset(found)


@cache
def top_level_definitions(module_file: Path) -> frozenset[str]:
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def defined_names(test_file: Path) -> frozenset[str]:
    """The top-level functions and classes of a test file (a pytest node id's first part)."""
    if test_file.suffix != ".py" or not test_file.is_file():
        return frozenset()
    return top_level_definitions(test_file)


def dotted_problem(name: str) -> str | None:
    """Why a dotted module reference does not resolve (None when it does)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else None
        if module is None and (base / "__init__.py").is_file():
            module = base / "__init__.py"
        if module is None:
            continue
        rest = parts[cut:]
        if rest and rest[0] not in top_level_definitions(module):
            return f"{'.'.join(parts[:cut])} defines no {rest[0]}"
        return None
    return "no such module"


def references(document: Path) -> list[tuple[str, str]]:
    """(kind, reference) pairs of one document: links, paths and dotted names."""
    text = document.read_text(encoding="utf-8")
    refs: list[tuple[str, str]] = []
    for block in FENCE.finditer(text):
        refs += [("path", w) for w in path_words(block.group(0))]
    prose = FENCE.sub("", text)
    for match in INLINE_CODE.finditer(prose):
        code = match.group(2).strip()
        if DOTTED.match(code.removesuffix("()")):
            refs.append(("module", code.removesuffix("()")))
        refs += [("path", w) for w in path_words(code)]
    without_code = INLINE_CODE.sub("", prose)
    refs += [("link", target) for target in LINK.findall(without_code)]
    return refs


def broken(document: Path) -> list[str]:
    problems = []
    for kind, ref in references(document):
        if ref in NOT_PATHS:
            continue
        if kind == "link":
            if re.match(r"^[a-z][a-z0-9+.-]*:", ref):
                continue  # a URL
            target, _, anchor = ref.partition("#")
            linked = document.parent / target if target else document
            if not linked.exists():
                problems.append(f"link ({ref})")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"link ({ref}): no such heading")
        elif kind == "path":
            path, _, test = ref.partition("::")
            if not exists(path):
                problems.append(f"path `{ref}`")
            elif test and test.split("::")[0].split("[")[0] not in defined_names(ROOT / path):
                problems.append(f"test `{ref}`: {path} defines no {test}")
        elif (why := dotted_problem(ref)) is not None:
            problems.append(f"module `{ref}`: {why}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_into_the_repository_resolves(document: Path) -> None:
    assert broken(document) == []


MAPPED_PACKAGES = (
    "register", "credentials", "verification", "audit", "staff",
    "bank", "clients", "desks", "desk_client", "operations",
)  # fmt: skip
MAP_ENTRY = re.compile(r"^- ``([a-z_][a-z0-9_]*)``\s", re.M)


def map_problems(package_dir: Path) -> list[str]:
    """How a package's module map disagrees with its modules (empty when it agrees)."""
    tree = ast.parse((package_dir / "__init__.py").read_text(encoding="utf-8"))
    problems = [
        f"{package_dir.name}/__init__.py line {node.lineno}: only the docstring belongs here"
        for node in tree.body[1:]
    ]
    listed = set(MAP_ENTRY.findall(ast.get_docstring(tree) or ""))
    modules = {p.stem for p in package_dir.glob("*.py")} - {"__init__"}
    problems += [f"{package_dir.name}: {m} is not in the map" for m in sorted(modules - listed)]
    problems += [
        f"{package_dir.name}: the map names {m}, no such module" for m in sorted(listed - modules)
    ]
    return problems


@pytest.mark.parametrize("package", MAPPED_PACKAGES)
def test_each_package_map_names_exactly_its_modules(package: str) -> None:
    assert map_problems(ROOT / "idsvc" / package) == []


def test_the_map_check_catches_a_stale_map(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A package.\n\n- ``kept``   here\n- ``gone``   moved away\n"""\nimport os\n',
        encoding="utf-8",
    )
    (package / "kept.py").write_text("", encoding="utf-8")
    (package / "added.py").write_text("", encoding="utf-8")
    assert map_problems(package) == [
        "pkg/__init__.py line 6: only the docstring belongs here",
        "pkg: added is not in the map",
        "pkg: the map names gone, no such module",
    ]


def test_the_documents_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOCUMENTS}
    assert {"README.md", "docs/architecture.md", "docs/operations.md"} <= names


def test_the_check_catches_each_kind_of_broken_reference(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "See [ops](operations.md#the-ops-page), [gone](missing.md#x), [web](https://x.org/a.md)\n"
        "[here](#see-also) [there](operations.md#no-such-heading) [own](#no-heading-here)\n"
        "and `idsvc/no_such_module.py`, `docs/operations.md`, `tests/<package>/`,\n"
        "`idsvc.no_such`, `idsvc.errors.NoSuchError`, `idsvc.errors`, `IDSVC_HOME`,\n"
        "`tests/test_docs_links.py::test_no_such_test`, `tests/test_docs_links.py::broken`.\n"
        "```sh\nbench/no_such_bench.py --json\nscripts/test -k desk\n```\n## See also\n",
        encoding="utf-8",
    )
    (tmp_path / "operations.md").write_text("# The ops page\n", encoding="utf-8")
    assert broken(page) == [
        "path `bench/no_such_bench.py`",
        "path `idsvc/no_such_module.py`",
        "module `idsvc.no_such`: idsvc defines no no_such",
        "module `idsvc.errors.NoSuchError`: idsvc.errors defines no NoSuchError",
        "test `tests/test_docs_links.py::test_no_such_test`: tests/test_docs_links.py defines no"
        " test_no_such_test",
        "link (missing.md#x)",
        "link (operations.md#no-such-heading): no such heading",
        "link (#no-heading-here): no such heading",
    ]


def test_anchors_follow_githubs_slugs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Running in production: `idsvc serve`\n## Notes\n## Notes\n```\n# not a heading\n```\n",
        encoding="utf-8",
    )
    assert anchors(page) == {"running-in-production-idsvc-serve", "notes", "notes-1"}
