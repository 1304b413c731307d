"""Verifying a presented phone credential (idsvc.verification.presented): the issuer JWT by the
trust store, the disclosures, the key binding, then the rules every credential shares."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from idsvc.credentials import issuers
from idsvc.formats import sd_jwt
from idsvc.formats.jws import sign_compact
from idsvc.services import Services
from idsvc.verification.presented import PresentedResult, verify_presentation
from idsvc.verification.use_cases import DbHolders, DbStatus, LocalTrust
from tests.support.holder_phone import Phone, give_phone, holder_key
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

AUD = "x509_hash:verifier"
NONCE = "n-0S6_WzA2Mj"
VCT = "https://id.mcs.gov.kh/v1/wallet/types/civil-servant"


@pytest.fixture
def phone(service: Services) -> Phone:
    return give_phone(service, ACTIVE_EMPLOYEE, now=NOW)


@pytest.fixture
def check(service: Services) -> Iterator[Any]:
    def run(text: str, **kw: Any) -> PresentedResult:
        with service.infra.db.transaction() as session:
            trust = LocalTrust(issuers.load_issuers(session, service.infra.rings))
            args: dict[str, Any] = {"audience": AUD, "nonce": NONCE, "now": NOW, "vct": VCT}
            return verify_presentation(
                text,
                trust=trust,
                status=DbStatus(session),
                holders=DbHolders(session),
                **(args | kw),
            )

    yield run


def reasons(presented: PresentedResult) -> list[str]:
    return [str(r) for r in presented.result.reasons]


def reissued(service: Services, phone: Phone, change: dict[str, Any], *, typ: str) -> Phone:
    """The phone's credential with some claims changed, signed again by the issuer's key."""
    parsed = sd_jwt.parse(phone.credential)
    payload = parsed.jwt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims = sd_jwt.disclosed_claims(claims, parsed.disclosures) | change
    with service.infra.db.transaction() as session:
        signer = service.infra.signer(service.infra.issuer(session))
    names = [d.name for d in parsed.disclosures]
    return Phone(phone.employee_id, sd_jwt.issue_sd_jwt(claims, names, signer, typ=typ), phone.key)


def test_valid_presentation(check: Any, phone: Phone) -> None:
    text = phone.present(aud=AUD, nonce=NONCE, now=NOW, disclose=("name", "unit", "photo"))
    presented = check(text)
    assert presented.result.valid and presented.result.status == "valid"
    assert set(presented.disclosed) == {"name", "unit", "photo"}
    holder = presented.result.holder
    assert holder is not None and holder["employee_id"] == ACTIVE_EMPLOYEE
    assert set(holder) == {"employee_id", "name", "unit", "photo"}
    assert presented.result.credential_id == phone.credential_id


def test_older_wallets_typ_is_accepted_others_are_not(
    service: Services, check: Any, phone: Phone
) -> None:
    older = reissued(service, phone, {}, typ="vc+sd-jwt")
    assert check(older.present(aud=AUD, nonce=NONCE, now=NOW)).result.valid
    card_typ = reissued(service, phone, {}, typ="civil-servant-credential+jwt")
    assert reasons(check(card_typ.present(aud=AUD, nonce=NONCE, now=NOW))) == ["MALFORMED"]


def test_another_issuer_named_is_unknown_key(service: Services, check: Any, phone: Phone) -> None:
    forged = reissued(service, phone, {"iss": "https://other.example"}, typ="dc+sd-jwt")
    assert reasons(check(forged.present(aud=AUD, nonce=NONCE, now=NOW))) == ["UNKNOWN_KEY"]


def test_a_key_we_do_not_know_is_unknown_key(check: Any, phone: Phone) -> None:
    stranger = holder_key()
    parsed = sd_jwt.parse(phone.credential)
    payload = parsed.jwt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    jwt = sign_compact(claims, stranger, typ="dc+sd-jwt")
    text = jwt + "~" + "".join(d.encoded + "~" for d in parsed.disclosures)
    forged = Phone(phone.employee_id, text, phone.key)
    assert reasons(check(forged.present(aud=AUD, nonce=NONCE, now=NOW))) == ["UNKNOWN_KEY"]


def test_altered_disclosure_is_bad_signature(check: Any, phone: Phone) -> None:
    parsed = sd_jwt.parse(phone.credential)
    name = next(d for d in parsed.disclosures if d.name == "name")
    fake = sd_jwt.make_disclosure("name", "Someone Else", salt=name.salt)
    kept = parsed.jwt + "~" + fake.encoded + "~"
    text = kept + sd_jwt.make_kb_jwt(kept, phone.key, aud=AUD, nonce=NONCE, now=NOW)
    presented = check(text)
    assert reasons(presented) == ["BAD_SIGNATURE"]
    assert presented.disclosed == {} and presented.result.holder is None


@pytest.mark.parametrize(
    ("aud", "nonce", "at"),
    [
        ("x509_hash:another-verifier", NONCE, NOW),
        (AUD, "another-request", NOW),
        (AUD, NONCE, NOW + timedelta(minutes=2)),  # made in the phone's future
        (AUD, NONCE, NOW - timedelta(minutes=6)),  # stale
    ],
)
def test_key_binding_for_something_else(
    check: Any, phone: Phone, aud: str, nonce: str, at: Any
) -> None:
    presented = check(phone.present(aud=aud, nonce=nonce, now=at, disclose=("name",)))
    assert reasons(presented) == ["HOLDER_BINDING_INVALID"]
    assert presented.result.status == "not_genuine"


def test_unsigned_key_binding_is_refused(check: Any, phone: Phone) -> None:
    kept = sd_jwt.parse(phone.credential).keep(["name"]).without_kb()
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"kb+jwt"}').decode().rstrip("=")
    claims = {
        "iat": int(NOW.timestamp()),
        "aud": AUD,
        "nonce": NONCE,
        "sd_hash": sd_jwt.sd_hash(kept),
    }
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert reasons(check(kept + f"{header}.{body}.")) == ["HOLDER_BINDING_INVALID"]


def test_shared_rules_apply_expiry_and_binding_together(check: Any, phone: Phone) -> None:
    later = NOW + timedelta(days=3650 * 3)
    stale = phone.present(aud=AUD, nonce=NONCE, now=NOW, disclose=("name",))
    assert reasons(check(stale, now=later)) == ["EXPIRED", "HOLDER_BINDING_INVALID"]


def test_another_credential_type_is_malformed(check: Any, phone: Phone) -> None:
    text = phone.present(aud=AUD, nonce=NONCE, now=NOW)
    assert reasons(check(text, vct="https://other.example/type")) == ["MALFORMED"]
    assert reasons(check("not an sd-jwt")) == ["MALFORMED"]
    assert reasons(check(phone.credential.split("~")[0])) == ["MALFORMED"]  # no '~' at all
