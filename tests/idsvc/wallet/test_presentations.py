"""Presentation requests (idsvc.wallet.presentations) on SQLite and PostgreSQL: the signed
request object a wallet checks, one answer per request, replays refused, the shared rules'
reason codes, the who-checked log, and the poll token."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idsvc.audit.who_checked import checks_of
from idsvc.formats import sd_jwt
from idsvc.services import Services
from idsvc.storage.wallet_tables import PresentationRequestRow
from idsvc.wallet.presentations import (
    ClaimRequiredAndOptional,
    PresentationRefused,
    Presentations,
    TooManyOptionalClaims,
    UnknownClaim,
    UnknownPresentationRequest,
)
from idsvc.wallet.verifier_key import DIRECTORY, FILE_NAME
from tests.support import spec_sd_jwt
from tests.support.holder_phone import Phone, give_phone
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, OTHER_ACTIVE_EMPLOYEE

Asked = tuple[str, dict[str, object]]  # (request id, request object claims)
REQUIRED = ("name", "name_latin", "photo")  # what the default request requires


@pytest.fixture
def phone(service: Services) -> Phone:
    return give_phone(service, ACTIVE_EMPLOYEE, now=NOW)


def checked_request_object(service: Services, jwt: str) -> dict[str, Any]:
    """The request object's claims, checked as the independent wallet of the tests checks them
    (tests/support/spec_wallet.py): the ``x5c`` chain ends at the issuer's CA, the leaf's key
    signed it, and the client id is ``x509_hash:`` of the leaf."""
    with service.infra.db.transaction() as session:
        anchor = service.infra.issuer(session).ring.ca_certificate()
    header, _, _, _ = spec_sd_jwt.jws_parts(jwt)
    assert header["typ"] == "oauth-authz-req+jwt" and header["alg"] == "ES256"
    leaf = spec_sd_jwt.check_chain(header["x5c"], [anchor], NOW.timestamp())
    _, claims = spec_sd_jwt.jws_verify(jwt, leaf.public_key())
    digest = hashlib.sha256(leaf.public_bytes(Encoding.DER)).digest()
    assert claims["client_id"] == "x509_hash:" + spec_sd_jwt.b64u(digest)
    assert len(header["x5c"]) == 2
    assert base64.b64decode(header["x5c"][1]) == anchor.public_bytes(Encoding.DER)
    return claims


def ask(service: Services, claims: list[str] | None = None) -> tuple[Asked, str]:
    """A new request and its checked request object; and the poll token."""
    created = service.wallet.create_presentation_request(claims, requested_by="anonymous", now=NOW)
    jwt = service.wallet.presentation_request_object(created.id, now=NOW)
    return (created.id, checked_request_object(service, jwt)), created.poll_token


def vp_token(presentation: str) -> str:
    return '{"civil_servant": ["' + presentation + '"]}'


def answer(service: Services, asked: Asked, presentation: str, **kw: object) -> None:
    request_id, claims = asked
    service.wallet.answer_presentation(
        request_id,
        state=str(kw.get("state", claims["state"])),
        vp_token=vp_token(presentation),
        now=NOW + timedelta(seconds=5),
    )


def presented(phone: Phone, asked: Asked, **kw: object) -> str:
    _, claims = asked
    disclose = kw.get("disclose", ("name", "name_latin", "photo"))
    assert isinstance(disclose, tuple)
    return phone.present(
        aud=str(claims["client_id"]), nonce=str(claims["nonce"]), now=NOW, disclose=disclose
    )


def result_of(service: Services, asked: Asked, poll_token: str) -> dict[str, Any]:
    view = service.wallet.presentation_result(asked[0], poll_token, now=NOW + timedelta(seconds=6))
    assert view.status == "answered", view
    assert view.result is not None
    return view.result


def test_request_object_is_signed_by_a_certificate_of_the_issuer_ca(service: Services) -> None:
    created = service.wallet.create_presentation_request(None, requested_by="anonymous", now=NOW)
    assert created.expires_at == NOW + timedelta(minutes=5)
    jwt = service.wallet.presentation_request_object(created.id, now=NOW)
    claims = checked_request_object(service, jwt)
    base = f"https://id.mcs.gov.kh/v1/presentation-requests/{created.id}"
    assert created.request_uri == base + "/request"
    assert claims["response_uri"] == base + "/response"
    assert claims["response_type"] == "vp_token"
    assert claims["response_mode"] == "direct_post"
    assert claims["aud"] == "https://self-issued.me/v2"
    assert claims["exp"] == int((NOW + timedelta(minutes=5)).timestamp())
    query = claims["dcql_query"]["credentials"][0]
    assert query["id"] == "civil_servant"
    assert query["meta"] == {"vct_values": ["https://id.mcs.gov.kh/v1/wallet/types/civil-servant"]}
    assert [c["path"] for c in query["claims"]] == [
        ["name"],
        ["name_latin"],
        ["photo"],
        ["ministry"],
        ["position"],
    ]
    assert created.openid4vp_uri.startswith("openid4vp://?client_id=x509_hash%3A")
    # 32 random bytes each, base64url; a fresh set per request.
    assert len(str(claims["nonce"])) == 43 and len(str(claims["state"])) == 43
    assert len(created.poll_token) == 43
    other, _ = ask(service)
    assert other[1]["nonce"] != claims["nonce"] and other[1]["client_id"] == claims["client_id"]


def test_verifier_key_is_made_once_and_shared_by_every_worker(service: Services) -> None:
    first = service.wallet.presentations.verifier_key(NOW)
    path = service.settings.keys_dir / DIRECTORY / FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # Another process (worker) reads the same key: the client id a request names is the one
    # the answer is checked against, whichever worker serves each.
    again = Presentations(service.infra).verifier_key(NOW)
    assert again.client_id == first.client_id and again.chain == first.chain
    # Near the certificate's end a new one is issued, and every worker then reads it.
    late = first.not_after - timedelta(days=10)
    renewed = Presentations(service.infra).verifier_key(late)
    assert renewed.client_id != first.client_id and renewed.usable(late)
    assert Presentations(service.infra).verifier_key(late).client_id == renewed.client_id


def test_verifier_certificate_is_no_card_certificate(service: Services) -> None:
    key = service.wallet.presentations.verifier_key(NOW)
    leaf = x509.load_der_x509_certificate(key.chain[0])
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):  # no PIV card-authentication, no client auth
        leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["https://id.mcs.gov.kh"]
    assert leaf.not_valid_after_utc == NOW + timedelta(days=365)


def test_a_valid_presentation_is_answered_once_and_logged(service: Services, phone: Phone) -> None:
    asked, poll = ask(service)
    answer(service, asked, presented(phone, asked))
    result = result_of(service, asked, poll)
    assert result["valid"] is True and result["status"] == "valid" and result["reasons"] == []
    assert result["credential_id"] == phone.credential_id
    disclosed = result["disclosed"]
    assert isinstance(disclosed, dict)
    assert set(disclosed) == {"name", "name_latin", "photo"}
    assert disclosed["name_latin"] == "Somphone Keomany"
    assert str(disclosed["photo"]).startswith("data:image/jpeg;base64,")
    assert result["holder"] == {
        "name": disclosed["name"],
        "name_latin": "Somphone Keomany",
        "photo": disclosed["photo"],
    }
    # A second answer (a replay of the same one, or another) changes nothing.
    with pytest.raises(PresentationRefused, match="already been answered"):
        answer(service, asked, presented(phone, asked))
    assert result_of(service, asked, poll) == result
    with service.infra.db.transaction() as session:
        checks = checks_of(session, ACTIVE_EMPLOYEE)
    assert [(c.kind, c.credential_id, c.result) for c in checks] == [
        ("verification", phone.credential_id, "valid")
    ]


def test_only_the_poll_token_reads_the_result(service: Services) -> None:
    asked, poll = ask(service)
    view = service.wallet.presentation_result(asked[0], poll, now=NOW)
    assert (view.status, view.result) == ("pending", None)
    for token in (None, "", poll[:-1] + ("A" if poll[-1] != "A" else "B")):
        with pytest.raises(UnknownPresentationRequest):
            service.wallet.presentation_result(asked[0], token, now=NOW)
    with pytest.raises(UnknownPresentationRequest):
        service.wallet.presentation_result("not-an-id", poll, now=NOW)
    late = service.wallet.presentation_result(asked[0], poll, now=NOW + timedelta(minutes=6))
    assert late.status == "expired"


def test_a_presentation_replayed_to_another_request_is_never_valid(
    service: Services, phone: Phone
) -> None:
    first, _ = ask(service)
    second, poll = ask(service)
    stolen = presented(phone, first)
    answer(service, second, stolen)
    result = result_of(service, second, poll)
    assert result["valid"] is False
    assert result["reasons"] == ["HOLDER_BINDING_INVALID"]
    assert result["status"] == "not_genuine"


@pytest.mark.parametrize(
    "spoil",
    [
        "no_kb",  # the credential alone, as a thief who copied it would send it
        "other_key",  # a KB-JWT by another key than cnf's
        "dropped_disclosure",  # a disclosure removed after the KB-JWT: sd_hash no longer fits
        "stale",  # a KB-JWT made 10 minutes before
    ],
)
def test_key_binding_failures_are_holder_binding_invalid(
    service: Services, phone: Phone, spoil: str
) -> None:
    asked, poll = ask(service)
    _, claims = asked
    aud, nonce = str(claims["client_id"]), str(claims["nonce"])
    good = presented(phone, asked)
    if spoil == "no_kb":
        text = sd_jwt.parse(good).keep(["name", "name_latin", "photo"]).without_kb()
    elif spoil == "other_key":
        thief = give_phone(service, OTHER_ACTIVE_EMPLOYEE, now=NOW)
        text = phone.present(aud=aud, nonce=nonce, now=NOW, disclose=REQUIRED, key=thief.key)
    elif spoil == "dropped_disclosure":
        # An optional one: the presentation still has every claim the request requires.
        shared = presented(phone, asked, disclose=(*REQUIRED, "ministry"))
        (ministry,) = [d for d in sd_jwt.parse(shared).disclosures if d.name == "ministry"]
        text = shared.replace("~" + ministry.encoded + "~", "~", 1)
        assert text != shared
    else:
        text = phone.present(
            aud=aud, nonce=nonce, now=NOW - timedelta(minutes=10), disclose=REQUIRED
        )
    answer(service, asked, text)
    result = result_of(service, asked, poll)
    assert result["reasons"] == ["HOLDER_BINDING_INVALID"]
    assert result["valid"] is False


def test_revoked_phone_credential_is_revoked(service: Services, phone: Phone) -> None:
    service.credentials.revoke(phone.credential_id, reason="phone lost", by=None, now=NOW)
    asked, poll = ask(service)
    answer(service, asked, presented(phone, asked))
    result = result_of(service, asked, poll)
    assert (result["valid"], result["status"], result["reasons"]) == (False, "revoked", ["REVOKED"])


def test_retired_holder_is_inactive(service: Services, phone: Phone) -> None:
    service.register.correct_status(
        ACTIVE_EMPLOYEE, status="retired", reason="retired at 60 in HR", by=None, now=NOW
    )
    asked, poll = ask(service)
    answer(service, asked, presented(phone, asked))
    result = result_of(service, asked, poll)
    assert result["valid"] is False
    assert "HOLDER_INACTIVE" in str(result["reasons"])
    assert result["status"] == "revoked"


def test_only_claims_asked_for_are_kept(service: Services, phone: Phone) -> None:
    asked, poll = ask(service, ["ministry", "photo"])
    # The wallet discloses more than asked: the extra claims are not kept.
    answer(service, asked, presented(phone, asked, disclose=("ministry", "photo", "birthdate")))
    result = result_of(service, asked, poll)
    assert set(result["disclosed"]) == {"ministry", "photo"}
    assert set(result["holder"]) == {"ministry", "photo"}


def test_the_default_request_lets_the_holder_leave_out_ministry_and_position(
    service: Services, phone: Phone
) -> None:
    asked, poll = ask(service)
    (query,) = asked[1]["dcql_query"]["credentials"]  # type: ignore[index]
    assert [c["path"] for c in query["claims"]] == [
        ["name"],
        ["name_latin"],
        ["photo"],
        ["ministry"],
        ["position"],
    ]
    assert query["claim_sets"][0] == ["name", "name_latin", "photo", "ministry", "position"]
    assert query["claim_sets"][-1] == list(REQUIRED)
    with service.infra.db.transaction() as session:
        row = session.get(PresentationRequestRow, asked[0])
        assert row is not None
        assert row.claims == {"required": list(REQUIRED), "optional": ["ministry", "position"]}
    # The holder shares the ministry, not the position (nor the date of birth, never asked).
    answer(service, asked, presented(phone, asked, disclose=(*REQUIRED, "ministry", "birthdate")))
    result = result_of(service, asked, poll)
    assert result["valid"] is True
    assert set(result["disclosed"]) == {*REQUIRED, "ministry"}
    assert set(result["holder"]) == {*REQUIRED, "ministry"}
    assert result["disclosed"]["ministry"]


def test_a_presentation_without_a_required_claim_fails_and_names_it(
    service: Services, phone: Phone
) -> None:
    asked, poll = ask(service)
    # A wallet that drops the photo the official needs (and shares what was optional).
    text = presented(phone, asked, disclose=("name", "name_latin", "ministry", "position"))
    with pytest.raises(PresentationRefused, match="requires: photo"):
        answer(service, asked, text)
    view = service.wallet.presentation_result(asked[0], poll, now=NOW)
    assert view.status == "failed"
    assert view.result == {
        "error": "invalid_request",
        "error_description": "the presentation leaves out claims the request requires: photo",
        "missing": ["photo"],
    }
    # Nothing was verified, so no one was checked; the request is over.
    with service.infra.db.transaction() as session:
        assert checks_of(session, ACTIVE_EMPLOYEE) == []
    with pytest.raises(PresentationRefused, match="already been answered"):
        answer(service, asked, presented(phone, asked))


def test_claims_asked_for_required_and_optional(service: Services, phone: Phone) -> None:
    create = service.wallet.create_presentation_request
    with pytest.raises(ClaimRequiredAndOptional, match="'photo' is both"):
        create(["name", "photo"], optional=["photo"], requested_by="anonymous", now=NOW)
    with pytest.raises(TooManyOptionalClaims, match="at most 4"):
        create(
            ["name"],
            optional=["unit", "grade", "category", "ministry", "position"],
            requested_by="anonymous",
            now=NOW,
        )
    with pytest.raises(UnknownClaim, match="'salary' cannot be asked for"):
        create(["name"], optional=["salary"], requested_by="anonymous", now=NOW)
    with pytest.raises(UnknownClaim, match="at least one"):
        create([], optional=["name"], requested_by="anonymous", now=NOW)
    # Only optional ones given: the default required ones with them.
    created = create(None, optional=["grade"], requested_by="anonymous", now=NOW)
    jwt = service.wallet.presentation_request_object(created.id, now=NOW)
    (query,) = checked_request_object(service, jwt)["dcql_query"]["credentials"]
    assert query["claim_sets"] == [[*REQUIRED, "grade"], list(REQUIRED)]
    # Only required ones given: all required, the query without claim_sets (as before).
    asked, poll = ask(service, ["name", "grade"])
    (query,) = asked[1]["dcql_query"]["credentials"]  # type: ignore[index]
    assert "claim_sets" not in query
    answer(service, asked, presented(phone, asked, disclose=("name", "grade")))
    assert set(result_of(service, asked, poll)["disclosed"]) == {"name", "grade"}


def test_unknown_claim_is_refused(service: Services) -> None:
    with pytest.raises(UnknownClaim, match="'card_serial' cannot be asked for"):
        service.wallet.create_presentation_request(
            ["name", "card_serial"], requested_by="anonymous", now=NOW
        )
    with pytest.raises(UnknownClaim):
        service.wallet.create_presentation_request([], requested_by="anonymous", now=NOW)


def test_wrong_state_stores_nothing(service: Services, phone: Phone) -> None:
    asked, poll = ask(service)
    with pytest.raises(PresentationRefused, match="state"):
        answer(service, asked, presented(phone, asked), state="not-the-state")
    assert service.wallet.presentation_result(asked[0], poll, now=NOW).status == "pending"
    answer(service, asked, presented(phone, asked))  # the real answer still gets through
    assert result_of(service, asked, poll)["valid"] is True


def test_expired_request_is_refused(service: Services, phone: Phone) -> None:
    asked, _ = ask(service)
    with pytest.raises(PresentationRefused, match="expired"):
        service.wallet.answer_presentation(
            asked[0],
            state=str(asked[1]["state"]),
            vp_token=vp_token(presented(phone, asked)),
            now=NOW + timedelta(minutes=5),
        )
    with pytest.raises(PresentationRefused, match="expired"):
        service.wallet.presentation_request_object(asked[0], now=NOW + timedelta(minutes=5))


def test_wallet_error_and_unreadable_token_fail_the_request(service: Services) -> None:
    asked, poll = ask(service)
    service.wallet.answer_presentation(
        asked[0],
        state=str(asked[1]["state"]),
        vp_token=None,
        error="access_denied",
        error_description="the holder declined\x00",
        now=NOW,
    )
    view = service.wallet.presentation_result(asked[0], poll, now=NOW)
    assert view.status == "failed"
    assert view.result == {"error": "access_denied", "error_description": "the holder declined"}

    asked, poll = ask(service)
    with pytest.raises(PresentationRefused, match="vp_token"):
        service.wallet.answer_presentation(
            asked[0], state=str(asked[1]["state"]), vp_token='{"other": []}', error=None, now=NOW
        )
    view = service.wallet.presentation_result(asked[0], poll, now=NOW)
    assert view.status == "failed" and view.result is not None
    assert view.result["error"] == "invalid_request"
