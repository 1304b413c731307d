"""Issue 19: credential offers, the token endpoint's rules and the nonce store, on SQLite and
PostgreSQL (``idsvc.wallet.offers``, ``idsvc.wallet.nonces``): who may get an offer, the codes'
life and single use, what the audit keeps (never a code), and single use under races."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.errors import UnknownEmployee, WalletOfferRefused, WalletRequestRefused
from idsvc.formats.openid4vci import PRE_AUTHORIZED_GRANT
from idsvc.register.photos import Photos
from idsvc.services import Services
from idsvc.staff.secrets import token_hash
from idsvc.storage.tables import AuditEventRow, CivilServantRow
from idsvc.storage.wallet_tables import WalletNonceRow, WalletOfferRow
from idsvc.wallet import nonces, offers
from idsvc.wallet.offers import Offer
from tests.support.card_print import portrait_bytes
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

RETIRED = "LA-MOF-002210"  # retired in the sample register


@pytest.fixture
def pictured(service: Services) -> Services:
    Photos(service.infra.db).store(ACTIVE_EMPLOYEE, portrait_bytes(), actor="t", now=NOW)
    return service


def _code(offer: Offer) -> str:
    text = parse_qs(urlsplit(offer.offer_uri).query)["credential_offer"][0]
    code: str = json.loads(text)["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    return code


def test_an_offer_is_audited_without_its_codes(pictured: Services) -> None:
    offer = pictured.wallet.offer(ACTIVE_EMPLOYEE, actor="ana@desk-1", now=NOW)
    assert offer.expires_at == NOW + timedelta(minutes=15)
    with pictured.infra.db.transaction() as session:
        event = session.execute(
            select(AuditEventRow).where(AuditEventRow.action == "wallet.offer")
        ).scalar_one()
        row = session.execute(select(WalletOfferRow)).scalar_one()
    assert (event.actor, event.target_id) == ("ana@desk-1", ACTIVE_EMPLOYEE)
    stored = json.dumps(event.details) + row.code_hash + row.tx_code_hash
    assert _code(offer) not in stored and offer.tx_code not in stored
    assert (row.state, row.attempts, row.created_by) == ("offered", 0, "ana@desk-1")
    # 32 random bytes in base64url: 43 characters; the transaction code six digits.
    assert len(_code(offer)) == 43 and len(offer.tx_code) == 6


def test_offers_are_refused_with_the_reason(service: Services) -> None:
    with pytest.raises(WalletOfferRefused, match="no photo"):
        service.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=NOW)
    Photos(service.infra.db).store(RETIRED, portrait_bytes(), actor="t", now=NOW)
    with pytest.raises(WalletOfferRefused, match="retired"):
        service.wallet.offer(RETIRED, actor=None, now=NOW)
    with pytest.raises(UnknownEmployee):
        service.wallet.offer("LA-NOBODY-1", actor=None, now=NOW)
    Photos(service.infra.db).store(ACTIVE_EMPLOYEE, portrait_bytes(), actor="t", now=NOW)
    with service.infra.db.transaction() as session:
        person = session.get(CivilServantRow, ACTIVE_EMPLOYEE)
        assert person is not None
        person.contract_end = date(2026, 11, 22)  # yesterday
    with pytest.raises(WalletOfferRefused, match="contract ended"):
        service.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=NOW)
    assert WalletOfferRefused.code == "WALLET_OFFER_REFUSED"


def test_codes_expire(pictured: Services) -> None:
    offer = pictured.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=NOW)
    late = NOW + timedelta(minutes=15)
    with pytest.raises(WalletRequestRefused) as refused:
        pictured.wallet.token(code=_code(offer), tx_code=offer.tx_code, now=late)
    assert refused.value.error == "invalid_grant"
    offer = pictured.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=NOW)
    granted = pictured.wallet.token(code=_code(offer), tx_code=offer.tx_code, now=NOW)
    pictured.wallet.check_access_token(granted.access_token, now=NOW + timedelta(minutes=4))
    with pytest.raises(WalletRequestRefused) as dead:
        pictured.wallet.check_access_token(granted.access_token, now=NOW + timedelta(minutes=5))
    assert dead.value.error == "invalid_token"


def test_nonces_are_single_use_per_purpose_and_expire(service: Services) -> None:
    with service.infra.db.transaction() as session:
        vci = nonces.issue(session, "vci", NOW)
        holder = nonces.issue(session, "holder", NOW)
        late = nonces.issue(session, "vci", NOW)
    with service.infra.db.transaction() as session:
        stored = {r.nonce_hash for r in session.execute(select(WalletNonceRow)).scalars()}
        assert vci not in stored and token_hash(vci) in stored  # hashed only
        assert not nonces.consume(session, holder, "vci", NOW)  # another purpose
        assert nonces.consume(session, vci, "vci", NOW)
        assert not nonces.consume(session, vci, "vci", NOW)
        assert not nonces.consume(session, late, "vci", NOW + nonces.NONCE_TTL)
        assert not nonces.consume(session, "x" * 10_000, "vci", NOW)
        assert nonces.consume(session, holder, "holder", NOW)
    with service.infra.db.transaction() as session:
        assert nonces.purge(session, NOW + nonces.NONCE_TTL) == 3


def _race(
    service: Services, attempt: Callable[[Session], object], workers: int = 4
) -> list[object]:
    """Run ``attempt(session)`` in ``workers`` threads at once, each in its own transaction."""
    barrier = threading.Barrier(workers)
    results: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            with service.infra.db.transaction() as session:
                results.append(attempt(session))
        except Exception as exc:  # the outcome is what the test compares
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_workers_spending_one_nonce_one_wins(service: Services) -> None:
    with service.infra.db.transaction() as session:
        nonce = nonces.issue(session, "vci", NOW)
    results = _race(service, lambda session: nonces.consume(session, nonce, "vci", NOW))
    assert sorted(map(str, results)) == ["False", "False", "False", "True"]


def test_racing_redemptions_and_wrong_codes(pictured: Services) -> None:
    offer = pictured.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=NOW)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def redeem() -> None:
        barrier.wait()
        try:
            pictured.wallet.token(code=_code(offer), tx_code=offer.tx_code, now=NOW)
            outcomes.append("token")
        except WalletRequestRefused as exc:
            outcomes.append(exc.error)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["invalid_grant"] * 3 + ["token"]

    # Wrong codes sent at once are each counted: five of them burn the offer.
    other = pictured.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=NOW)
    wrong = f"{(int(other.tx_code) + 1) % 1_000_000:06d}"

    def guess(session: Session) -> str:
        refused = offers.redeem(session, code=_code(other), tx_code=wrong, now=NOW)
        return refused.error if isinstance(refused, WalletRequestRefused) else "token"

    assert _race(pictured, guess, workers=5) == ["invalid_grant"] * 5
    with pictured.infra.db.transaction() as session:
        row = session.get(WalletOfferRow, other.offer_id)
        assert row is not None and (row.state, row.attempts) == ("burned", 5)
