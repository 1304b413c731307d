"""The test-vector corpus (tests/vectors/corpus.json) through the web verifier's JavaScript in
real Chromium, and through the Python verifier: both must give every vector its expected
answer, so they agree with each other on every vector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import Site, site
from tests.vectors.corpus_check import python_verdict

CORPUS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "corpus.json"
CORPUS: dict[str, Any] = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))

RUN_CORPUS = """
async ([corpus]) => {
  const { TrustSnapshot } = await import("/verify/trust.js");
  const { verifyPresented } = await import("/verify/verifier.js");
  const out = {};
  const snapshots = {};
  for (const [name, data] of Object.entries(corpus.contexts)) {
    snapshots[name] = new TrustSnapshot(data, { hardLimit: corpus.hard_limit_seconds });
  }
  for (const v of corpus.vectors) {
    const r = await verifyPresented(v.credential, { trust: snapshots[v.context], now: v.now });
    out[v.name] = {
      verdict: { valid: r.valid, status: r.status, reasons: r.reasons, freshness: r.freshness },
      holder: r.holder, format: r.format,
    };
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site(tmp_path_factory.mktemp("vectors")) as s:
        yield s


@pytest.fixture(scope="module")
def js_results(browser: Browser, server: Site) -> dict[str, Any]:
    context = browser.new_context(service_workers="block")
    page: Page = context.new_page()
    # Any document of the service's origin will do: the verifier modules are imported into it.
    page.goto(f"{server.base_url}/verify/manifest.webmanifest")
    results: dict[str, Any] = page.evaluate(RUN_CORPUS, [CORPUS])
    context.close()
    return results


VECTORS = CORPUS["vectors"]


def test_the_corpus_covers_every_offline_reason_in_both_forms() -> None:
    offline_reasons = {
        "BAD_SIGNATURE",
        "UNKNOWN_KEY",
        "MALFORMED",
        "EXPIRED",
        "REVOKED",
        "SUSPENDED",
        "STATUS_UNAVAILABLE",
        "TRUST_STALE",
    }
    for fmt in ("jwt", "claim169"):
        vectors = [v for v in VECTORS if v["format"] == fmt]
        covered = {r for v in vectors for r in v["expect"]["reasons"]}
        assert offline_reasons <= covered, (fmt, offline_reasons - covered)
        assert any(v["expect"]["valid"] for v in vectors)
    assert any("NOT_YET_VALID" in v["expect"]["reasons"] for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_javascript_verifier_gives_the_expected_answer(
    vector: dict[str, Any], js_results: dict[str, Any]
) -> None:
    assert js_results[vector["name"]]["verdict"] == vector["expect"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_python_verifier_gives_the_expected_answer(vector: dict[str, Any]) -> None:
    assert python_verdict(CORPUS, vector) == vector["expect"]


def test_valid_vectors_show_the_names_in_both_scripts(js_results: dict[str, Any]) -> None:
    khmer = js_results["qr_valid_es256_khmer"]["holder"]
    assert khmer["name"] == "សុខ ចន្ថា" and khmer["name_latin"] == "Sok Chantha"
    lao = js_results["jwt_valid_eddsa_lao"]["holder"]
    assert lao["name"] == "ສົມພອນ ແກ້ວມະນີ" and lao["name_latin"] == "Somphone Keomany"
    assert "birthdate" not in lao
    face = js_results["qr_valid_with_face"]["holder"]["photo"]
    assert face.startswith("data:image/png;base64,")
