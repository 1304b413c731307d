"""Issue 10, "security in CI": one test per known JWT attack, each refused with its stable
reason code, through the library (``Services.verify``) and, for status lists, through the
offline verifier's ``CachedStatus``. Real keys, real signatures; a loopback HTTP server stands
where ``jku``/``x5u`` point, and must never be asked. The HTTP twin of this file is
``tests/mobile_api/test_jwt_attacks_http.py``."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from idsvc.formats.credentials import CREDENTIAL_TYP
from idsvc.formats.status_list import STATUSLIST_TYP
from idsvc.services import Services
from idsvc.verification.offline import CachedStatus, CachedStatusList, JwksTrust
from idsvc.verification.rules import Reason, verify_credential
from tests.support.jwt_forgery import Forger, b64, claims_of
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

ACTIVE = "LA-MOHA-000101"
MAX_LENGTH = 16384  # idsvc.formats.jws.verify_compact's default


class _Trap(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Trap.hits.append(self.path)
        body = b'{"keys": []}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def trap_url() -> Iterator[str]:
    """A JWKS server an attacker would point ``jku``/``x5u`` at; nothing may fetch from it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()
    assert _Trap.hits == [], f"a verifier fetched an attacker's URL: {_Trap.hits}"


@dataclass
class Issued:
    service: Services
    token: str
    forger: Forger


def _issued(home: Path, trap_url: str, **settings: object) -> Issued:
    svc = make_service(make_settings(home, f"sqlite:///{home / 'idsvc.sqlite3'}", **settings))
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW
    )
    token = svc.credentials.issue(ACTIVE, actor="desk", now=NOW).token
    with svc.infra.db.transaction() as session:
        issuer = svc.infra.issuer(session)
        signer = svc.infra.signer(issuer)
        public = issuer.ring.public_keys()[signer.kid]
    forger = Forger(
        typ=CREDENTIAL_TYP,
        kid=signer.kid,
        issuer_sign=signer.sign,
        alg=signer.alg,
        issuer_public=public,
        genuine=claims_of(token),
        trap_url=trap_url,
    )
    return Issued(svc, token, forger)


@pytest.fixture(scope="module")
def es256(tmp_path_factory: pytest.TempPathFactory, trap_url: str) -> Iterator[Issued]:
    issued = _issued(tmp_path_factory.mktemp("es256"), trap_url)
    assert issued.forger.alg == "ES256"
    yield issued
    issued.service.infra.db.dispose()


@pytest.fixture(scope="module")
def eddsa(tmp_path_factory: pytest.TempPathFactory, trap_url: str) -> Iterator[Issued]:
    issued = _issued(tmp_path_factory.mktemp("eddsa"), trap_url, key_alg="EdDSA")
    assert issued.forger.alg == "EdDSA"
    yield issued
    issued.service.infra.db.dispose()


def _assert_refused(service: Services, attacks: list[tuple[str, str, Reason]]) -> None:
    assert attacks
    wrong = {}
    for name, token, expected in attacks:
        result = service.verification.verify(token, now=NOW)
        if (result.valid, result.reasons, result.holder) != (False, (expected,), None):
            wrong[name] = (result.valid, [str(r) for r in result.reasons], str(expected))
    assert not wrong, wrong


def test_the_genuine_token_and_a_faithful_reforging_verify(es256: Issued) -> None:
    # The forger's own encoding of the genuine claims must pass, or every refusal below
    # could be an artefact of the forger rather than the verifier's doing.
    for token in (es256.token, es256.forger.genuine_token()):
        result = es256.service.verification.verify(token, now=NOW)
        assert (result.valid, result.reasons) == (True, ())


def test_alg_none_is_malformed(es256: Issued) -> None:
    _assert_refused(es256.service, es256.forger.alg_none())


def test_hs256_keyed_with_the_issuers_public_key_is_malformed(es256: Issued, eddsa: Issued) -> None:
    _assert_refused(es256.service, es256.forger.hs256_with_public_key())
    _assert_refused(eddsa.service, eddsa.forger.hs256_with_public_key())


def test_hostile_kid_is_unknown_key_and_never_a_path(es256: Issued) -> None:
    _assert_refused(es256.service, es256.forger.kid_traversal())


def test_kid_naming_a_file_next_to_the_keys_is_unknown_key(es256: Issued) -> None:
    # The key files live under the service's home: a kid spelling one of their names (with and
    # without the directory) still is not a key of the ring.
    home = es256.service.settings.home
    names = [p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()]
    assert names
    attacks = [
        (f"kid {n}", es256.forger.genuine_token(kid=n), Reason.UNKNOWN_KEY)
        for n in names + [f"../{n}" for n in names] + [str(home / n) for n in names]
    ]
    _assert_refused(es256.service, attacks)


def test_key_offered_in_the_header_is_never_used(es256: Issued) -> None:
    # jwk, jku, x5u, x5c: UNKNOWN_KEY under the attacker's kid, BAD_SIGNATURE under the
    # issuer's; the trap server (trap_url) checks that nothing was fetched.
    _assert_refused(es256.service, es256.forger.key_injection())


def test_crit_is_malformed(es256: Issued) -> None:
    _assert_refused(es256.service, es256.forger.crit())


def test_oversized_token_is_malformed_even_when_genuinely_signed(es256: Issued) -> None:
    big = es256.forger.oversized(MAX_LENGTH + 1)
    assert len(big) > MAX_LENGTH
    _assert_refused(es256.service, [("oversized", big, Reason.MALFORMED)])
    # Just under the limit the same kind of token still verifies: the limit is the reason.
    fits = es256.forger.oversized(MAX_LENGTH - 1200)
    assert len(fits) <= MAX_LENGTH
    assert es256.service.verification.verify(fits, now=NOW).valid


def test_duplicate_json_members_are_malformed(es256: Issued) -> None:
    _assert_refused(es256.service, es256.forger.duplicate_members())


def test_non_canonical_base64url_is_malformed(es256: Issued) -> None:
    attacks = es256.forger.non_canonical_base64()
    assert any("trailing bits" in name for name, _, _ in attacks)
    _assert_refused(es256.service, attacks)


def test_alg_that_does_not_fit_the_key_type_is_malformed(es256: Issued, eddsa: Issued) -> None:
    _assert_refused(es256.service, es256.forger.alg_key_mismatch())
    _assert_refused(eddsa.service, eddsa.forger.alg_key_mismatch())


def test_wrong_signature_bytes_are_bad_signature(es256: Issued, eddsa: Issued) -> None:
    _assert_refused(es256.service, es256.forger.signature_shape())
    _assert_refused(eddsa.service, eddsa.forger.signature_shape())


def test_a_status_list_token_is_not_a_credential(es256: Issued) -> None:
    svc = es256.service
    uri = es256.forger.genuine["status"]["status_list"]["uri"]
    list_token = svc.credentials.status_list_token(uri.rsplit("/", 1)[-1], now=NOW)
    result = svc.verification.verify(list_token, now=NOW)
    assert (result.valid, result.reasons) == (False, (Reason.MALFORMED,))
    retyped = es256.forger.genuine_token(typ=STATUSLIST_TYP)
    assert svc.verification.verify(retyped, now=NOW).reasons == (Reason.MALFORMED,)


# Status lists: the offline verifier (a phone, the web page) checks the list token it cached.
# A hostile list must never change a credential's answer: STATUS_UNAVAILABLE, never REVOKED and
# never VALID.


def _offline_verdict(es256: Issued, list_token: str) -> tuple[bool, tuple[Reason, ...]]:
    svc = es256.service
    iss = es256.forger.genuine["iss"]
    uri = es256.forger.genuine["status"]["status_list"]["uri"]
    trust = JwksTrust({iss: svc.credentials.jwks()})
    status = CachedStatus(
        {uri: CachedStatusList(list_token, NOW)}, trust, hard_limit=timedelta(days=7)
    )
    result = verify_credential(es256.token, trust=trust, status=status, holders=None, now=NOW)
    return result.valid, result.reasons


@pytest.fixture(scope="module")
def list_forger(es256: Issued) -> Forger:
    svc = es256.service
    uri = es256.forger.genuine["status"]["status_list"]["uri"]
    genuine_list = svc.credentials.status_list_token(uri.rsplit("/", 1)[-1], now=NOW)
    f = es256.forger
    return Forger(
        typ=STATUSLIST_TYP,
        kid=f.kid,
        issuer_sign=f.issuer_sign,
        alg=f.alg,
        issuer_public=f.issuer_public,
        genuine=claims_of(genuine_list),
        trap_url=f.trap_url,
    )


def test_genuine_status_list_token_verifies_offline(es256: Issued, list_forger: Forger) -> None:
    assert _offline_verdict(es256, list_forger.genuine_token()) == (True, ())


def test_every_attack_on_the_status_list_is_status_unavailable(
    es256: Issued, list_forger: Forger
) -> None:
    attacks = list_forger.every_attack(MAX_LENGTH)
    # A list that marks everything revoked, signed by the attacker: still not believed.
    lst = b64(zlib.compress(b"\x55" * 256, 9))  # every entry INVALID (revoked)
    revoked_all = list_forger.genuine | {"status_list": {"bits": 2, "lst": lst}}
    hostile = replace(list_forger, genuine=revoked_all)
    attacks.append(
        (
            "attacker's list under the attacker's kid",
            hostile.key_injection()[0][1],
            Reason.STATUS_UNAVAILABLE,
        )
    )
    attacks.append(("credential token cached as the list", es256.token, Reason.STATUS_UNAVAILABLE))
    wrong = {
        name: _offline_verdict(es256, token)
        for name, token, _ in attacks
        if _offline_verdict(es256, token) != (False, (Reason.STATUS_UNAVAILABLE,))
    }
    assert not wrong, wrong
