"""No file of the project cites a document a newcomer's clone does not have: the design notes
and performance notes the project started from lived outside the repository, and what still
holds of them now lives in README.md and docs/."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Spelled in pieces, so that this file does not cite them either.
OUTSIDE = ("DESIGN" + ".md", "PERF" + "-NOTES", "../" + "shared")
TEXT = {".py", ".md", ".js", ".html", ".toml", ".cfg", ".txt", ".yaml", ".yml", ".lua", ".mako"}


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    paths = [ROOT / name.decode() for name in listed if name]
    return [p for p in paths if p.suffix in TEXT or p.parent.name in {"scripts", ".ci"}]


def test_no_file_cites_a_document_outside_the_repository() -> None:
    files = _tracked()
    assert len(files) > 100  # the walk found the project
    cited = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        if path.is_file()
        for name in OUTSIDE
        if name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert cited == []
