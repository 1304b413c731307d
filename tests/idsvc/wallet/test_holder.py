"""The holder's own page (idsvc.wallet.holder) on SQLite and PostgreSQL: a session is opened only
by a fresh, single-use proof of possession of a live phone credential's key; it shows the record
as the register holds it (never the national ID number), the person's credentials and their
who-checked log; it ends after five minutes or as soon as the credential stops being live; the
sweeper deletes what expired."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from idsvc.audit.who_checked import CheckedBy, CheckRecord
from idsvc.errors import (
    HolderCredentialNotLive,
    HolderNonceInvalid,
    HolderProofInvalid,
    HolderSessionInvalid,
)
from idsvc.services import Services
from idsvc.storage.tables import CivilServantRow
from idsvc.storage.wallet_tables import HolderSessionRow, WalletNonceRow
from idsvc.wallet.holder import SESSION_LIFETIME, holder_audience
from tests.support.holder_phone import Phone, give_phone, holder_key
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, OTHER_ACTIVE_EMPLOYEE

AUD = holder_audience("https://id.mcs.gov.kh")


@pytest.fixture
def phone(service: Services) -> Phone:
    return give_phone(service, ACTIVE_EMPLOYEE, now=NOW)


def _proof(service: Services, phone: Phone) -> str:
    """A fresh proof of possession for the holder page."""
    nonce, _ = service.wallet.holder_nonce(now=NOW)
    return phone.present(aud=AUD, nonce=nonce, now=NOW)


def test_the_audience_is_the_holder_path_of_the_public_url() -> None:
    assert holder_audience("https://id.mcs.gov.kh/") == "https://id.mcs.gov.kh/v1/holder"


def test_a_proof_of_possession_opens_the_page_of_the_record_as_held_now(
    service: Services, phone: Phone
) -> None:
    wallet = service.wallet
    nonce, nonce_expires = wallet.holder_nonce(now=NOW)
    assert nonce_expires == NOW + timedelta(minutes=5)
    opened = wallet.open_holder_session(phone.present(aud=AUD, nonce=nonce, now=NOW), now=NOW)
    assert opened.expires_at == NOW + SESSION_LIFETIME
    assert opened.holder.credential_id == phone.credential_id
    with service.infra.db.transaction() as session:
        # Stored hashed: the token itself is nowhere in the database.
        assert session.get(HolderSessionRow, opened.token) is None
        assert session.scalar(select(func.count()).select_from(HolderSessionRow)) == 1
        # The register changed after the credential was issued: the page shows it as now.
        person = session.get(CivilServantRow, ACTIVE_EMPLOYEE)
        assert person is not None
        person.unit = "Department of Training"
        person.national_id = "LA-NID-1234567"

    page = wallet.holder_page(opened.token, now=NOW + timedelta(minutes=4))
    record = page["record"]
    assert record["employee_id"] == ACTIVE_EMPLOYEE
    assert (record["name_latin"], record["name_local"]) == ("Somphone Keomany", "ສົມພອນ ແກ້ວມະນີ")
    assert record["unit"] == "Department of Training"
    assert (record["grade"], record["category"], record["status"]) == (
        "K5",
        "civil_servant",
        "active",
    )
    assert record["status_date"] == "2010-09-01" and record["contract_end"] is None
    assert "national_id" not in record and "LA-NID-1234567" not in str(page)
    assert [(c["id"], c["kind"], c["state"]) for c in page["credentials"]] == [
        (phone.credential_id, "phone", "live")
    ]
    assert page["corrections"] == []


def test_the_page_lists_card_and_phone_credentials(service: Services, phone: Phone) -> None:
    card = service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)
    opened = service.wallet.open_holder_session(_proof(service, phone), now=NOW)
    kinds = {
        (c["kind"], c["state"])
        for c in service.wallet.holder_page(opened.token, now=NOW)["credentials"]
    }
    assert kinds == {("card", "live"), ("phone", "live")}
    assert card.id in str(service.wallet.holder_page(opened.token, now=NOW))


def test_a_proof_is_used_once(service: Services, phone: Phone) -> None:
    wallet = service.wallet
    nonce, _ = wallet.holder_nonce(now=NOW)
    proof = phone.present(aud=AUD, nonce=nonce, now=NOW)
    wallet.open_holder_session(proof, now=NOW)
    with pytest.raises(HolderNonceInvalid):
        wallet.open_holder_session(proof, now=NOW)  # the same presentation, replayed
    with pytest.raises(HolderNonceInvalid):
        # A new key-binding JWT over the spent nonce.
        wallet.open_holder_session(
            phone.present(aud=AUD, nonce=nonce, now=NOW + timedelta(seconds=30)),
            now=NOW + timedelta(seconds=30),
        )


def test_a_nonce_not_ours_for_another_purpose_or_expired_opens_nothing(
    service: Services, phone: Phone
) -> None:
    wallet = service.wallet
    with pytest.raises(HolderNonceInvalid):
        wallet.open_holder_session(phone.present(aud=AUD, nonce="made-up", now=NOW), now=NOW)
    vci = wallet.vci_nonce(now=NOW)  # a credential request's nonce is not the page's
    with pytest.raises(HolderNonceInvalid):
        wallet.open_holder_session(phone.present(aud=AUD, nonce=vci, now=NOW), now=NOW)
    nonce, expires = wallet.holder_nonce(now=NOW)
    late = expires + timedelta(seconds=1)
    with pytest.raises(HolderNonceInvalid):
        wallet.open_holder_session(phone.present(aud=AUD, nonce=nonce, now=late), now=late)


@pytest.mark.parametrize(
    "bad",
    ["wrong audience", "another key", "stale", "no key binding", "card JWT", "tampered"],
)
def test_a_proof_that_does_not_verify_is_refused_and_spends_no_nonce(
    service: Services, phone: Phone, bad: str
) -> None:
    wallet = service.wallet
    nonce, _ = wallet.holder_nonce(now=NOW)
    if bad == "wrong audience":
        proof = phone.present(aud="https://id.mcs.gov.kh/v1/verify", nonce=nonce, now=NOW)
    elif bad == "another key":
        proof = phone.present(aud=AUD, nonce=nonce, now=NOW, key=holder_key())
    elif bad == "stale":
        proof = phone.present(aud=AUD, nonce=nonce, now=NOW - timedelta(minutes=6))
    elif bad == "no key binding":
        proof = phone.credential
    elif bad == "card JWT":
        card = service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)
        proof = card.token + "~"
    else:  # a disclosure altered after issuance
        good = phone.present(aud=AUD, nonce=nonce, now=NOW, disclose=("name_latin",))
        jwt, disclosure, kb = good.split("~")
        proof = f"{jwt}~{disclosure[:-2]}AA~{kb}"
    with pytest.raises(HolderProofInvalid):
        wallet.open_holder_session(proof, now=NOW)
    # The nonce is still good for the holder's real proof.
    wallet.open_holder_session(phone.present(aud=AUD, nonce=nonce, now=NOW), now=NOW)


def test_a_credential_that_is_not_live_opens_nothing(service: Services, phone: Phone) -> None:
    service.credentials.revoke(phone.credential_id, reason="phone lost", by=None, now=NOW)
    with pytest.raises(HolderCredentialNotLive, match="REVOKED"):
        service.wallet.open_holder_session(_proof(service, phone), now=NOW)


def test_a_revoked_phone_is_shut_out_at_once_and_a_session_ends_in_five_minutes(
    service: Services, phone: Phone
) -> None:
    wallet = service.wallet
    opened = wallet.open_holder_session(_proof(service, phone), now=NOW)
    with pytest.raises(HolderSessionInvalid):
        wallet.holder_page(opened.token, now=NOW + SESSION_LIFETIME)
    with pytest.raises(HolderSessionInvalid):
        wallet.holder_page("not-a-session", now=NOW)
    second = wallet.open_holder_session(_proof(service, phone), now=NOW)
    service.credentials.revoke(phone.credential_id, reason="phone lost", by=None, now=NOW)
    with pytest.raises(HolderCredentialNotLive, match="revoked"):
        wallet.holder_page(second.token, now=NOW)


def test_a_session_is_the_holder_s_own(service: Services, phone: Phone) -> None:
    other = give_phone(service, OTHER_ACTIVE_EMPLOYEE, now=NOW)
    mine = service.wallet.open_holder_session(_proof(service, phone), now=NOW)
    theirs = service.wallet.open_holder_session(_proof(service, other), now=NOW)
    assert (
        service.wallet.holder_page(mine.token, now=NOW)["record"]["employee_id"] == ACTIVE_EMPLOYEE
    )
    assert (
        service.wallet.holder_page(theirs.token, now=NOW)["record"]["employee_id"]
        == OTHER_ACTIVE_EMPLOYEE
    )


def test_who_checked_names_clients_and_hides_anonymous_addresses(
    service: Services, phone: Phone
) -> None:
    log = service.verification.check_log
    log.record(
        [CheckRecord("verification", ACTIVE_EMPLOYEE, phone.credential_id, "valid")],
        by=CheckedBy(None, None, "203.0.113.7"),
        now=NOW - timedelta(hours=2),
    )
    log.record(
        [CheckRecord("payroll", ACTIVE_EMPLOYEE, None, "active")],
        by=CheckedBy("c1", "Banque pour le Commerce Extérieur Lao", None),
        now=NOW - timedelta(hours=1),
    )
    log.record(  # somebody else's check is not shown
        [CheckRecord("verification", OTHER_ACTIVE_EMPLOYEE, None, "valid")],
        by=CheckedBy(None, None, "203.0.113.8"),
        now=NOW,
    )
    log.flush()
    opened = service.wallet.open_holder_session(_proof(service, phone), now=NOW)
    checks = service.wallet.holder_checks(opened.token, now=NOW)
    assert checks == [
        {
            "checked_at": (NOW - timedelta(hours=1)).isoformat(),
            "kind": "payroll",
            "caller": "client",
            "by": "Banque pour le Commerce Extérieur Lao",
            "result": "active",
            "reasons": [],
        },
        {
            "checked_at": (NOW - timedelta(hours=2)).isoformat(),
            "kind": "verification",
            "caller": "anonymous",
            "by": None,
            "result": "valid",
            "reasons": [],
        },
    ]
    assert "203.0.113" not in str(checks)


def test_the_sweeper_deletes_expired_sessions_and_nonces(service: Services, phone: Phone) -> None:
    wallet = service.wallet
    wallet.open_holder_session(_proof(service, phone), now=NOW)  # one session, one used nonce
    wallet.holder_nonce(now=NOW)  # one unused nonce
    later = NOW + timedelta(minutes=3)
    wallet.holder_nonce(now=later)  # still valid at the sweep below
    ops = service.operations
    assert ops.delete_expired_wallet_rows(now=NOW + timedelta(minutes=1)) == 0
    # The session and the two nonces of NOW end at NOW + 5 min; the VCI nonce spent at issuance
    # too (give_phone ran at NOW).
    swept = ops.delete_expired_wallet_rows(now=NOW + timedelta(minutes=5))
    assert swept == 4
    with service.infra.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(HolderSessionRow)) == 0
        assert session.scalar(select(func.count()).select_from(WalletNonceRow)) == 1


def test_two_workers_racing_with_one_proof_open_one_session(
    service: Services, phone: Phone
) -> None:
    proof = _proof(service, phone)
    results: list[object] = []
    barrier = threading.Barrier(2)

    def attempt() -> None:
        barrier.wait()
        try:
            results.append(service.wallet.open_holder_session(proof, now=NOW))
        except HolderNonceInvalid as exc:
            results.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(type(r).__name__ for r in results) == ["HolderNonceInvalid", "HolderSession"]
    with service.infra.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(HolderSessionRow)) == 1
