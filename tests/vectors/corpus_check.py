"""Check a vector of ``corpus.json`` with the Python verifier, offline, as a phone would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from idsvc.verification.offline import CachedStatus, CachedStatusList, JwksTrust
from idsvc.verification.rules import verify_credential


def python_verdict(corpus: dict[str, Any], vector: dict[str, Any]) -> dict[str, Any]:
    """``{valid, status, reasons, freshness}`` for one vector, the shape ``expect`` has."""
    context = corpus["contexts"][vector["context"]]
    trust = JwksTrust({i["iss"]: i["jwks"] for i in context["issuers"]})
    status = CachedStatus(
        {
            uri: CachedStatusList(
                entry["token"], datetime.fromtimestamp(entry["fetched_at"], tz=UTC)
            )
            for uri, entry in context["status_lists"].items()
        },
        trust,
        hard_limit=timedelta(seconds=corpus["hard_limit_seconds"]),
    )
    now = datetime.fromtimestamp(vector["now"], tz=UTC)
    result = verify_credential(
        vector["credential"], trust=trust, status=status, holders=None, now=now
    )
    freshness = None
    if result.claims:
        ref = result.claims["status"]["status_list"]
        freshness = status.freshness(ref["uri"], iss=result.claims["iss"], now=now)
    return {
        "valid": result.valid,
        "status": result.status,
        "reasons": [str(r) for r in result.reasons],
        "freshness": freshness,
    }
