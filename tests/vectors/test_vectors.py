"""The committed corpus is what the generator makes: same vectors, same expected answers, and
a freshly generated corpus (new ES256 signatures) verifies the same way in Python. The
JavaScript side is checked in tests/web/test_vectors_js.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.vectors import generate
from tests.vectors.corpus_check import python_verdict


def _expectations(corpus: dict[str, Any]) -> dict[str, Any]:
    return {
        v["name"]: (v["format"], v["context"], v["now"], v["expect"]) for v in corpus["vectors"]
    }


def test_regenerating_gives_the_same_vectors_and_verdicts(tmp_path: Path) -> None:
    committed = json.loads(generate.CORPUS.read_text(encoding="utf-8"))
    generate.write(tmp_path / "corpus.json")
    fresh = json.loads((tmp_path / "corpus.json").read_text(encoding="utf-8"))
    assert _expectations(fresh) == _expectations(committed)
    assert fresh["hard_limit_seconds"] == committed["hard_limit_seconds"]
    # Fixed keys: the trust data (JWKS) is byte for byte the same.
    for name, context in fresh["contexts"].items():
        assert context["issuers"] == committed["contexts"][name]["issuers"]
    for vector in fresh["vectors"]:
        assert python_verdict(fresh, vector) == vector["expect"], vector["name"]


def test_every_vector_names_a_known_context() -> None:
    corpus = json.loads(generate.CORPUS.read_text(encoding="utf-8"))
    names = [v["name"] for v in corpus["vectors"]]
    assert len(names) == len(set(names))
    assert {v["context"] for v in corpus["vectors"]} <= set(corpus["contexts"])
