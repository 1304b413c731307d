"""Rotating a subscription's HMAC secret or Ed25519 key without re-subscribing, on SQLite and
PostgreSQL: during the overlap both signatures travel in ``webhook-signature`` and either the
old or the new secret verifies (the independent ``standardwebhooks`` package for v1, the
published keys for v1a); after it only the new one does."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from idsvc.bank.webhook_delivery import WebhookDeliverer, http_post
from idsvc.bank.webhooks import Webhooks
from idsvc.errors import InvalidWebhook, UnknownWebhook
from idsvc.services import Services
from idsvc.storage.payroll_tables import WebhookDeliveryRow, WebhookSubscriptionRow
from idsvc.storage.tables import AuditEventRow
from tests.support.cli_runner import Cli
from tests.support.payroll import KEYS, add_client, check_people, set_status
from tests.support.settings import NOW
from tests.support.webhook_receiver import Received, receiver

ACTIVE = "LA-MOHA-000101"


def hooks(service: Services) -> Webhooks:
    return Webhooks(service.infra.db, KEYS, private_targets=True)


def deliver_again(service: Services, now: datetime) -> list[Received]:
    """Every outbox row sent once more at ``now`` (the wall clock, for standardwebhooks'
    timestamp tolerance) to a fresh receiver; what it got."""
    with service.infra.db.transaction() as s:
        for row in s.execute(select(WebhookDeliveryRow)).scalars():
            row.state, row.next_attempt_at, row.attempts = "pending", now, 0
    with receiver() as box:
        with service.infra.db.transaction() as s:
            for sub in s.execute(select(WebhookSubscriptionRow)).scalars():
                sub.url = box.url
        WebhookDeliverer(
            service.infra.db, KEYS, http_post(2, private_targets=True), max_attempts=3,
            rng=random.Random(1),
        ).run_once(now)  # fmt: skip
    return box.got


def verifies_v1a(public_key: str, got: Received) -> bool:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    content = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    for entry in got.headers["webhook-signature"].split():
        scheme, _, signature = entry.partition(",")
        try:
            if scheme == "v1a":
                key.verify(base64.b64decode(signature), content)
                return True
        except InvalidSignature:
            continue
    return False


def setup(service: Services, use_hmac: bool) -> tuple[str, str | None]:
    client_id, _ = add_client(service, "bank-a", "payroll")
    check_people(service, client_id, ACTIVE)
    new = hooks(service).add(
        "http://127.0.0.1:9/h", client_name="bank-a", events=["*"], use_hmac=use_hmac,
        now=NOW, actor="admin",
    )  # fmt: skip
    set_status(service, ACTIVE, "retired")
    return new.view.id, new.hmac_secret


def test_hmac_secret_rotation_overlaps_then_ends(service: Services) -> None:
    sub, old_secret = setup(service, use_hmac=True)
    assert old_secret
    live = datetime.now(UTC)
    rotated = hooks(service).rotate_secret(
        sub, overlap=timedelta(hours=24), now=live, actor="admin"
    )
    new_secret = rotated.hmac_secret
    assert new_secret and new_secret.startswith("whsec_") and new_secret != old_secret
    assert rotated.view.previous_until == live + timedelta(hours=24)
    (got,) = deliver_again(service, live)
    entries = got.headers["webhook-signature"].split()
    assert [e.split(",")[0] for e in entries] == ["v1", "v1"]
    for secret in (old_secret, new_secret):  # the bank may switch at any time in the window
        assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)["type"]
    # A rotation whose overlap is over: only the new secret signs.
    hooks(service).rotate_secret(
        sub, overlap=timedelta(hours=1), now=live - timedelta(hours=2), actor="admin"
    )
    (later,) = deliver_again(service, live)
    assert len(later.headers["webhook-signature"].split()) == 1
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret).verify(later.body, later.headers)
    # Stored sealed, never in clear; the audit log names the rotation, not the secret.
    with service.infra.db.transaction() as s:
        row = s.get(WebhookSubscriptionRow, sub)
        assert row is not None and row.secret_box and row.previous_box
        raw = base64.b64decode(new_secret.removeprefix("whsec_"))
        assert raw not in row.secret_box and raw not in row.previous_box
        details = s.execute(
            select(AuditEventRow.details).where(AuditEventRow.action == "webhook.rotate-secret")
        ).scalars()
        assert "whsec_" not in json.dumps(list(details))


def test_ed25519_key_rotation_overlaps_then_ends(service: Services) -> None:
    sub, _ = setup(service, use_hmac=False)
    deployment = KEYS.webhook_public_key()
    live = datetime.now(UTC)
    rotated = hooks(service).rotate_secret(sub, overlap=timedelta(hours=6), now=live, actor="admin")
    assert rotated.hmac_secret is None
    new_key = rotated.view.public_key
    assert new_key and new_key.startswith("whpk_") and new_key != deployment
    assert [v.public_key for v in hooks(service).list()] == [new_key]
    (got,) = deliver_again(service, live)
    assert [e.split(",")[0] for e in got.headers["webhook-signature"].split()] == ["v1a", "v1a"]
    assert verifies_v1a(new_key, got) and verifies_v1a(deployment, got)
    (after,) = deliver_again(service, live + timedelta(hours=7))
    assert verifies_v1a(new_key, after) and not verifies_v1a(deployment, after)


def test_rotation_is_checked(service: Services) -> None:
    sub, _ = setup(service, use_hmac=False)
    with pytest.raises(UnknownWebhook):
        hooks(service).rotate_secret("nope", overlap=timedelta(0), now=NOW, actor="a")
    for overlap in (timedelta(hours=-1), timedelta(days=8)):
        with pytest.raises(InvalidWebhook):
            hooks(service).rotate_secret(sub, overlap=overlap, now=NOW, actor="a")
    view = hooks(service).rotate_secret(sub, overlap=timedelta(0), now=NOW, actor="a").view
    assert view.previous_until is None


def test_cli_rotate_secret_prints_the_new_secret_once(service: Services) -> None:
    cli = Cli(service.settings.home, service.settings.resolved_database_url)
    private = {"IDSVC_WEBHOOK_PRIVATE_TARGETS": "1"}
    add_client(service, "bank-a", "payroll")
    added = cli("webhooks", "add", "http://127.0.0.1:9/h", "--client", "bank-a", "--events", "*",
                "--hmac", "--json", env=private)  # fmt: skip
    assert added.returncode == 0, added.stderr
    sub = json.loads(added.stdout)["id"]
    rotated = cli("webhooks", "rotate-secret", sub, "--overlap", "2")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.count("whsec_") == 1 and "also signs until" in rotated.stdout
    assert "whsec_" not in cli("webhooks", "list", "--json").stdout
    assert cli("webhooks", "rotate-secret", "nope").returncode == 22
    assert cli("webhooks", "rotate-secret", sub, "--overlap", "200").returncode == 2
    # Without the setting, a loopback receiver is refused at `add` (exit 22).
    refused = cli("webhooks", "add", "http://127.0.0.1:9/h", "--client", "bank-a", "--events", "*")
    assert refused.returncode == 22 and "IDSVC_WEBHOOK_PRIVATE_TARGETS" in refused.stderr
