"""Webhooks on SQLite and PostgreSQL: subscriptions, the outbox written with the change, signed
deliveries checked by independent verifiers, retries with back-off, and a dead receiver that
holds up nobody."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from cryptography.exceptions import InvalidSignature
from sqlalchemy import select

from idsvc.bank import change_feed
from idsvc.bank.webhook_delivery import DeliveryReport, WebhookDeliverer, http_post
from idsvc.bank.webhooks import Webhooks
from idsvc.errors import InvalidWebhook, UnknownWebhook
from idsvc.services import Services
from idsvc.storage.payroll_tables import WebhookDeliveryRow, WebhookSubscriptionRow
from tests.support.payroll import KEYS, add_client, check_people, set_status
from tests.support.settings import NOW
from tests.support.webhook_receiver import free_port, receiver, silent_receiver, verify_v1a

ACTIVE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"


def hooks(service: Services) -> Webhooks:
    # The receivers of these tests listen on loopback (an on-premises bank's setting).
    return Webhooks(service.infra.db, KEYS, private_targets=True)


def deliverer(service: Services, max_attempts: int = 5) -> WebhookDeliverer:
    return WebhookDeliverer(
        service.infra.db,
        KEYS,
        http_post(2.0, private_targets=True),
        max_attempts=max_attempts,
        rng=random.Random(7),
    )


def add_bank(service: Services) -> str:
    """bank-a, a payroll client that has checked ACTIVE and OTHER (so it gets their events)."""
    client_id, _ = add_client(service, "bank-a", "payroll")
    check_people(service, client_id, ACTIVE, OTHER)
    return client_id


def subscribe(service: Services, url: str, *events: str) -> str:
    """A v1a subscription of bank-a; its id."""
    new = hooks(service).add(
        url, client_name="bank-a", events=events, use_hmac=False, now=NOW, actor="admin"
    )
    return new.view.id


def subscribe_hmac(service: Services, url: str, *events: str) -> str:
    """A v1 (HMAC) subscription of bank-a; its whsec_ secret."""
    new = hooks(service).add(
        url, client_name="bank-a", events=events, use_hmac=True, now=NOW, actor="admin"
    )
    assert new.hmac_secret is not None
    return new.hmac_secret


def test_subscriptions_are_checked(service: Services) -> None:
    add_bank(service)
    add_client(service, "verifier", "verify")
    w = hooks(service)
    for url, client, events in (
        ("http://bank.example/hook", "bank-a", ["*"]),  # plain http off loopback
        ("ftp://bank.example/hook", "bank-a", ["*"]),
        ("https://user:pw@bank.example/hook", "bank-a", ["*"]),
        ("https://bank.example/hook", "bank-a", ["employee.promoted"]),
        ("https://bank.example/hook", "bank-a", []),
        ("https://bank.example/hook", "nobody", ["*"]),
        ("https://bank.example/hook", "verifier", ["*"]),  # lacks the payroll scope
    ):
        with pytest.raises(InvalidWebhook):
            w.add(url, client_name=client, events=events, use_hmac=False, now=NOW, actor="a")
    with pytest.raises(UnknownWebhook):
        w.set_enabled("nope", False, now=NOW, actor="a")
    ok = w.add("https://bank.example/hook", client_name="bank-a", events=["employee.*"],
               use_hmac=True, now=NOW, actor="a")  # fmt: skip
    assert ok.hmac_secret and ok.hmac_secret.startswith("whsec_")
    with service.infra.db.transaction() as s:
        row = s.get(WebhookSubscriptionRow, ok.view.id)
        assert row is not None and row.secret_box is not None
        raw = ok.hmac_secret.removeprefix("whsec_")
        assert raw.encode() not in row.secret_box  # encrypted at rest, not the secret
        assert base64.b64encode(KEYS.open(row.secret_box, row.id.encode())).decode() == raw


def test_outbox_rows_follow_patterns_and_the_transaction(service: Services) -> None:
    add_bank(service)
    everything = subscribe(service, "https://a.example/h", "*")
    people = subscribe(service, "https://b.example/h", "employee.retired", "employee.deceased")
    service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    set_status(service, ACTIVE, "retired")  # employee.retired + credential.revoked
    with pytest.raises(RuntimeError), service.infra.db.transaction() as s:
        change_feed.record_change(s, change_feed.employee_change(OTHER, "deceased", None), now=NOW)
        raise RuntimeError("rolled back: its outbox rows go too")
    with service.infra.db.transaction() as s:
        rows = s.execute(select(WebhookDeliveryRow.subscription_id)).scalars().all()
    assert sorted(rows) == sorted([everything, everything, people])


def test_signed_deliveries_verify_independently(service: Services) -> None:
    add_bank(service)
    with receiver() as asym, receiver() as sym:
        subscribe(service, asym.url, "employee.*")
        secret = subscribe_hmac(service, sym.url, "employee.*")
        set_status(service, ACTIVE, "deceased", "2026-11-19")
        report = deliverer(service).run_once(NOW)
        assert report.delivered == 2
    for box in (asym, sym):
        assert len(box.got) == 1
        body = json.loads(box.got[0].body)
        assert body["type"] == "employee.deceased"
        assert body["data"]["employee_id"] == ACTIVE
        assert body["data"]["effective_date"] == "2026-11-19"
        assert box.got[0].headers["webhook-id"] == "msg_" + body["data"]["id"]
        assert box.got[0].headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    verify_v1a(KEYS.webhook_public_key(), asym.got[0])
    tampered = type(asym.got[0])(asym.got[0].headers, asym.got[0].body.replace(b"dece", b"reti"))
    with pytest.raises(InvalidSignature):
        verify_v1a(KEYS.webhook_public_key(), tampered)
    # The independent Standard Webhooks implementation accepts the HMAC (v1) delivery. Its
    # timestamp tolerance is 5 minutes around the wall clock, so deliver once more "now".
    hook = standardwebhooks.Webhook(secret)
    live_now = datetime.now(UTC)
    with service.infra.db.transaction() as s:
        for row in s.execute(select(WebhookDeliveryRow)).scalars():
            row.state, row.next_attempt_at = "pending", live_now
    with receiver() as again:
        with service.infra.db.transaction() as s:
            for sub in s.execute(select(WebhookSubscriptionRow)).scalars():
                sub.url = again.url
        deliverer(service).run_once(live_now)
    hmac_delivery = next(g for g in again.got if g.headers["webhook-signature"].startswith("v1,"))
    payload = hook.verify(hmac_delivery.body, hmac_delivery.headers)
    assert payload["type"] == "employee.deceased"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        hook.verify(hmac_delivery.body + b" ", hmac_delivery.headers)


def test_dead_receiver_blocks_nobody_and_gets_it_later(service: Services) -> None:
    add_bank(service)
    dead_port = free_port()
    with receiver() as alive:
        subscribe(service, alive.url, "*")
        dead = subscribe(service, f"http://127.0.0.1:{dead_port}/hooks/idsvc", "*")
        service.credentials.issue(ACTIVE, actor="desk", now=NOW)
        set_status(service, ACTIVE, "retired")  # 2 events → 2 deliveries per subscription
        report = deliverer(service).run_once(NOW)
    assert len(alive.got) == 2
    assert (report.delivered, report.retrying, report.postponed) == (2, 1, 1)
    listed = {v.id: v for v in hooks(service).list()}
    assert (listed[dead].pending, listed[dead].delivered) == (2, 0)
    assert "no answer" in (listed[dead].last_error or "")
    # Not due again before the back-off (30 s ± 10 %).
    assert deliverer(service).run_once(NOW + timedelta(seconds=20)).delivered == 0
    with receiver(port=dead_port) as back:
        report = deliverer(service).run_once(NOW + timedelta(seconds=70))
    assert report.delivered == 2
    assert [json.loads(g.body)["type"] for g in back.got] == [
        "employee.retired",
        "credential.revoked",
    ]
    verify_v1a(KEYS.webhook_public_key(), back.got[0])
    listed = {v.id: v for v in hooks(service).list()}
    assert (listed[dead].pending, listed[dead].delivered, listed[dead].failed) == (0, 2, 0)


def test_a_hung_receiver_delays_only_its_own_rows(service: Services) -> None:
    """A receiver that accepts the connection and never answers: the other receiver's
    deliveries are recorded while the pass still waits out the hung one's timeout."""
    add_bank(service)
    # Long enough that the steady receiver's two deliveries fit in half of it on a loaded CI
    # machine (at 5 s they once took longer than 2.5 s with the suite running beside it).
    timeout = 8.0
    reports: list[DeliveryReport] = []
    with receiver() as alive, silent_receiver() as hung_url:
        steady = subscribe(service, alive.url, "*")
        hung = subscribe(service, hung_url, "*")
        service.credentials.issue(ACTIVE, actor="desk", now=NOW)
        set_status(service, ACTIVE, "retired")  # 2 deliveries per subscription
        slow = WebhookDeliverer(
            service.infra.db,
            KEYS,
            http_post(timeout, private_targets=True),
            max_attempts=5,
            rng=random.Random(7),
        )
        started = time.monotonic()
        run = threading.Thread(target=lambda: reports.append(slow.run_once(NOW)))
        run.start()
        while delivered(service, steady) < 2:
            assert time.monotonic() - started < timeout / 2, "held up by the hung receiver"
            time.sleep(0.05)
        assert run.is_alive()  # the hung receiver is still being waited for
        run.join(timeout * 3)
    assert len(alive.got) == 2 and time.monotonic() - started >= timeout
    (report,) = reports
    assert (report.delivered, report.retrying, report.postponed) == (2, 1, 1)
    listed = {v.id: v for v in hooks(service).list()}
    assert (listed[hung].pending, listed[hung].delivered) == (2, 0)
    assert "no answer" in (listed[hung].last_error or "")


def delivered(service: Services, subscription_id: str) -> int:
    with service.infra.db.transaction() as s:
        rows = s.execute(
            select(WebhookDeliveryRow.id).where(
                WebhookDeliveryRow.subscription_id == subscription_id,
                WebhookDeliveryRow.state == "delivered",
            )
        )
        return len(rows.all())


def test_refusing_receiver_is_retried_with_backoff_then_failed(service: Services) -> None:
    add_bank(service)
    with receiver(status=503) as refusing:
        subscribe(service, refusing.url, "employee.*")
        set_status(service, ACTIVE, "dismissed")
        d = deliverer(service, max_attempts=3)
        when = NOW
        waits = []
        for _ in range(3):
            d.run_once(when)
            with service.infra.db.transaction() as s:
                row = s.execute(select(WebhookDeliveryRow)).scalar_one()
            waits.append((row.next_attempt_at - when).total_seconds())
            when = row.next_attempt_at
    assert len(refusing.got) == 3
    assert 27 <= waits[0] <= 33 and 54 <= waits[1] <= 66  # 30 s, then 60 s (±10 %)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "failed",
        3,
        503,
        "HTTP 503",
    )
    # All three attempts carried the same webhook-id: receivers de-duplicate on it.
    assert len({g.headers["webhook-id"] for g in refusing.got}) == 1


def test_disabled_subscription_gets_nothing_new(service: Services) -> None:
    add_bank(service)
    sub = subscribe(service, "https://a.example/h", "*")
    hooks(service).set_enabled(sub, False, now=NOW, actor="admin")
    set_status(service, ACTIVE, "retired")
    with service.infra.db.transaction() as s:
        assert s.execute(select(WebhookDeliveryRow)).first() is None
