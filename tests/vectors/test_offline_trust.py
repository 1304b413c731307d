"""``idsvc.verification.offline`` rules the corpus does not reach on its own: ttl clamping at both
ends and the hard-limit argument."""

from __future__ import annotations

from datetime import timedelta

import pytest

from idsvc.verification.offline import TTL_CEILING, TTL_FLOOR, CachedStatus, JwksTrust, clamp_ttl


@pytest.mark.parametrize(
    ("ttl", "used"),
    [
        (1, TTL_FLOOR),
        (0, TTL_FLOOR),
        (-5, TTL_FLOOR),
        (True, TTL_FLOOR),
        ("3600", TTL_FLOOR),
        (3600, 3600),
        (3600.9, 3600),
        (365 * 86_400, TTL_CEILING),
    ],
)
def test_silly_ttl_values_are_clamped(ttl: object, used: int) -> None:
    assert clamp_ttl(ttl) == used


def test_the_hard_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="hard_limit"):
        CachedStatus({}, JwksTrust({}), hard_limit=timedelta(0))


def test_jwks_without_usable_keys_trust_nothing() -> None:
    trust = JwksTrust({"https://a.example": {"keys": [{"kid": "x", "kty": "RSA"}, "junk"]}})
    with pytest.raises(KeyError):
        trust.key_for("x")
