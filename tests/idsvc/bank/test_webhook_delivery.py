"""What no receiver may do to the deliverer, on SQLite and PostgreSQL, with real loopback
receivers: a URL the HTTP layer refuses, a secret that does not open, a slow-loris answer, a
target on the ministry's own network (also after a DNS change), a disabled client. Each costs
its own subscription a recorded attempt (or a skip), never the other receivers' deliveries."""

from __future__ import annotations

import ipaddress
import json
import random
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select, update

from idsvc.bank.webhook_delivery import (
    DeliveryLoop,
    Resolve,
    WebhookDeliverer,
    http_post,
    resolve_host,
)
from idsvc.bank.webhooks import Webhooks, check_url, target_refusal
from idsvc.clients.api_clients import ApiClients
from idsvc.errors import InvalidWebhook
from idsvc.services import Services
from idsvc.storage.payroll_tables import WebhookDeliveryRow, WebhookSubscriptionRow
from tests.support.payroll import KEYS, add_client, check_people, set_status
from tests.support.settings import NOW
from tests.support.webhook_receiver import receiver, slow_receiver

ACTIVE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"


def hooks(service: Services, private: bool = True) -> Webhooks:
    return Webhooks(service.infra.db, KEYS, private_targets=private)


def deliverer(
    service: Services, timeout: float = 2.0, resolve: Resolve = resolve_host
) -> WebhookDeliverer:
    return WebhookDeliverer(
        service.infra.db,
        KEYS,
        http_post(timeout, private_targets=True, resolve=resolve),
        max_attempts=5,
        rng=random.Random(7),
    )


def bank(service: Services, name: str = "bank-a", *scopes: str) -> str:
    client_id, _ = add_client(service, name, *(scopes or ("payroll",)))
    check_people(service, client_id, ACTIVE, OTHER)
    return client_id


def subscribe(service: Services, url: str, client: str = "bank-a") -> str:
    new = hooks(service).add(
        url, client_name=client, events=["*"], use_hmac=False, now=NOW, actor="admin"
    )
    return new.view.id


def rows_of(service: Services, subscription_id: str) -> list[WebhookDeliveryRow]:
    with service.infra.db.transaction() as s:
        found = s.execute(
            select(WebhookDeliveryRow).where(WebhookDeliveryRow.subscription_id == subscription_id)
        ).scalars()
        return list(found)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a b",
        "https://bank.example/a\tb",
        "https://bank.example/\x7f",
        "https://bänk.example/hook",
        " https://bank.example/hook",
        "https://bank.example:99999/hook",
        "https://bank.example:port/hook",
        "https://bank.example:0/hook",
    ],
)
def test_add_refuses_urls_the_http_layer_would_choke_on(service: Services, url: str) -> None:
    bank(service)
    with pytest.raises(InvalidWebhook):
        hooks(service).add(
            url, client_name="bank-a", events=["*"], use_hmac=False, now=NOW, actor="a"
        )
    with service.infra.db.transaction() as s:
        assert s.execute(select(WebhookSubscriptionRow)).first() is None


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("https://169.254.169.254/latest/meta-data", True),  # cloud metadata: never
        ("https://[fe80::1]/hook", True),
        ("https://0.0.0.0/hook", True),
        ("https://[::]/hook", True),
        ("https://224.0.0.1/hook", True),
        ("https://[ff02::1]/hook", True),
        ("https://127.0.0.1/hook", False),  # loopback and private: only with the setting
        ("http://127.0.0.1:8080/hook", False),
        ("http://localhost:8080/hook", False),
        ("https://[::ffff:127.0.0.1]/hook", False),
        ("https://10.1.2.3/hook", False),
        ("https://192.168.1.20/hook", False),
        ("https://100.64.0.9/hook", False),
        ("https://[fd00::5]/hook", False),
        ("http://10.1.2.3/hook", True),  # plain http stays loopback-only
    ],
)
def test_add_refuses_targets_inside(service: Services, url: str, private: bool) -> None:
    bank(service)
    with pytest.raises(InvalidWebhook, match=r"refused|plain http"):
        hooks(service, private).add(
            url, client_name="bank-a", events=["*"], use_hmac=False, now=NOW, actor="a"
        )


def test_private_targets_setting_admits_an_on_premises_bank() -> None:
    for url in ("http://127.0.0.1:8080/h", "https://10.1.2.3/h", "https://[fd00::5]/h"):
        assert check_url(url, private_targets=True) == url
    assert check_url("https://hooks.bank.la/idsvc", private_targets=False)
    public = ipaddress.ip_address("203.0.114.7")  # not a documentation range: global
    assert target_refusal(public, private_targets=False) is None


def test_a_url_the_http_layer_refuses_fails_alone(service: Services) -> None:
    """A subscription stored before URLs were checked (here: written as such) fails its own
    attempt; the other receivers get their events and the pass ends normally."""
    bank(service)
    with receiver() as good:
        ok = subscribe(service, good.url)
        broken = subscribe(service, "http://127.0.0.1:9/hooks")
        boxed = subscribe(service, "http://127.0.0.1:9/other")
        with service.infra.db.transaction() as s:
            s.execute(
                update(WebhookSubscriptionRow)
                .where(WebhookSubscriptionRow.id == broken)
                .values(url="http://127.0.0.1:9/a b")
            )
            # A secret that does not open (say, written under another server secret).
            s.execute(
                update(WebhookSubscriptionRow)
                .where(WebhookSubscriptionRow.id == boxed)
                .values(scheme="v1", secret_box=b"\0" * 40)
            )
        set_status(service, ACTIVE, "retired")
        report = deliverer(service).run_once(NOW)
    assert len(good.got) == 1 and report.delivered == 1
    assert (report.retrying, report.failed) == (2, 0)
    assert [(r.state, r.attempts) for r in rows_of(service, ok)] == [("delivered", 1)]
    (bad,) = rows_of(service, broken)
    assert (bad.state, bad.attempts, bad.last_status) == ("pending", 1, None)
    assert bad.last_error and bad.last_error.startswith("refused URL")
    (sealed,) = rows_of(service, boxed)
    assert (sealed.attempts, sealed.last_error) == (1, "delivery failed: ServerSecretError")


def test_a_slow_loris_receiver_is_cut_off_at_the_deadline(service: Services) -> None:
    """The receiver answers a header line every second: no single read ever waits 2 s, but the
    whole delivery must end by its 2 s deadline, and the other receiver is not held up."""
    bank(service)
    with receiver() as fast, slow_receiver(every=0.5) as slow:
        steady = subscribe(service, fast.url)
        dribbling = subscribe(service, slow.url)
        set_status(service, ACTIVE, "retired")
        started = time.monotonic()
        report = deliverer(service, timeout=2.0).run_once(NOW)
        took = time.monotonic() - started
    assert took < 4.0, f"the pass took {took:.1f} s"
    assert slow.connections == 1 and len(fast.got) == 1
    assert (report.delivered, report.retrying) == (1, 1)
    (row,) = rows_of(service, dribbling)
    assert (row.state, row.last_error) == ("pending", "no answer within 2 s")
    assert [r.state for r in rows_of(service, steady)] == ["delivered"]


def test_the_deliver_loop_serves_others_while_a_receiver_is_slow(service: Services) -> None:
    """``idsvc webhooks deliver``'s loop: while the slow receiver is still being served, a new
    event for the other receiver goes out at the next step."""
    bank(service)
    with receiver() as fast, slow_receiver(every=0.5) as slow:
        subscribe(service, fast.url)
        subscribe(service, slow.url)
        set_status(service, ACTIVE, "retired")
        loop = DeliveryLoop(deliverer(service, timeout=6.0))
        try:
            loop.step(NOW)
            wait_for(lambda: len(fast.got) == 1)
            set_status(service, OTHER, "deceased")  # a new event while the slow one is served
            started = time.monotonic()
            while len(fast.got) < 2:
                loop.step(NOW + timedelta(seconds=1))
                assert time.monotonic() - started < 3, "waited for the slow receiver"
                time.sleep(0.05)
            assert loop.in_flight >= 1  # the slow receiver is still being waited for
        finally:
            report = loop.close()
    assert [json.loads(g.body)["data"]["employee_id"] for g in fast.got] == [ACTIVE, OTHER]
    assert report.retrying == 1 and slow.connections == 1


def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds
        time.sleep(0.02)


def test_delivery_rechecks_the_resolved_address_and_connects_to_it(service: Services) -> None:
    """The host name is resolved at delivery; a name that now points at link-local is refused
    without a connection, and the connection goes to the address that was checked (a second
    lookup returning another address is never used)."""
    bank(service)
    lookups: list[str] = []
    answers = {"localhost": ["127.0.0.1"], "hooks.bank.la": ["169.254.169.254"]}

    def rebinding_dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        # First lookup: the receiver's loopback address; any later one: cloud metadata.
        return answers[host] if lookups.count(host) == 1 else ["169.254.169.254"]

    with receiver() as good:
        port = good.url.split(":")[2].split("/")[0]
        pinned = subscribe(service, f"http://localhost:{port}/hooks/idsvc")
        rebound = subscribe(service, "https://hooks.bank.la/idsvc")
        set_status(service, ACTIVE, "retired")
        report = deliverer(service, resolve=rebinding_dns).run_once(NOW)
    assert len(good.got) == 1 and good.got[0].headers["host"] == f"localhost:{port}"
    assert sorted(lookups) == ["hooks.bank.la", "localhost"]  # once each
    assert (report.delivered, report.retrying) == (1, 1)
    assert [r.state for r in rows_of(service, pinned)] == ["delivered"]
    (refused,) = rows_of(service, rebound)
    assert refused.last_error and refused.last_error.startswith("refused target: 169.254")


def test_a_disabled_client_gets_nothing_until_enabled_again(service: Services) -> None:
    bank(service)
    bank(service, "bank-b")
    with receiver() as a, receiver() as b:
        sub_a = subscribe(service, a.url)
        subscribe(service, b.url, client="bank-b")
        clients = ApiClients(service.infra.db)
        clients.disable("bank-a", NOW)
        set_status(service, ACTIVE, "retired")
        report = deliverer(service).run_once(NOW)
        assert (len(a.got), len(b.got), report.delivered) == (0, 1, 1)
        # Skipped, not failed: no attempt is counted, the row waits.
        assert [(r.state, r.attempts) for r in rows_of(service, sub_a)] == [("pending", 0)]
        assert deliverer(service).run_once(NOW + timedelta(hours=1)).delivered == 0
        clients.enable("bank-a", NOW)
        report = deliverer(service).run_once(NOW + timedelta(hours=1))
    assert (len(a.got), report.delivered) == (1, 1)
    assert json.loads(a.got[0].body)["data"]["employee_id"] == ACTIVE


def test_webhooks_carry_only_the_people_the_client_checked(service: Services) -> None:
    add_client(service, "bank-a", "payroll")  # has checked nobody yet
    client_b, _ = add_client(service, "bank-b", "payroll")
    check_people(service, client_b, OTHER)
    add_client(service, "ministry", "payroll", "admin")
    with receiver() as a, receiver() as b, receiver() as admin:
        subscribe(service, a.url)
        subscribe(service, b.url, client="bank-b")
        subscribe(service, admin.url, client="ministry")
        set_status(service, ACTIVE, "retired")
        set_status(service, OTHER, "deceased")
        deliverer(service).run_once(NOW)
    people = {
        name: [json.loads(g.body)["data"]["employee_id"] for g in box.got]
        for name, box in (("a", a), ("b", b), ("admin", admin))
    }
    assert people == {"a": [], "b": [OTHER], "admin": [ACTIVE, OTHER]}
    assert all(json.loads(g.body)["data"]["reason"] == "HR_STATUS_CHANGE" for g in admin.got)


def test_receivers_threads_record_concurrently(service: Services) -> None:
    """Several receivers at once, each recording its own outcomes in its own transaction (on
    SQLite too): nothing lost, nothing recorded twice."""
    bank(service)
    with receiver() as r1, receiver() as r2, receiver() as r3, receiver(status=500) as r4:
        subs = [subscribe(service, box.url) for box in (r1, r2, r3, r4)]
        for person in (ACTIVE, OTHER):
            set_status(service, person, "suspended")
        report = deliverer(service).run_once(NOW)
    assert (report.delivered, report.retrying, report.postponed) == (6, 1, 1)
    assert [len(rows_of(service, s)) for s in subs] == [2, 2, 2, 2]


def _tls_receiver_files(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_checks_the_certificate_against_the_urls_host(
    service: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the checked address, but TLS verifies the certificate against
    the URL's host name (SNI): a certificate for that name from a trusted CA is delivered to,
    one for another name is a recorded failure, not a delivery."""
    bank(service)
    cert_file, key_file = _tls_receiver_files(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted like a public CA would be
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    with receiver(tls=context) as good:
        port = good.url.rsplit(":", 1)[1].split("/")[0]
        right = subscribe(service, f"https://localhost:{port}/hooks/idsvc")
        wrong = subscribe(service, f"https://127.0.0.1:{port}/hooks/idsvc")  # not the cert's
        set_status(service, ACTIVE, "retired")
        report = deliverer(service).run_once(NOW)
    assert len(good.got) == 1 and (report.delivered, report.retrying) == (1, 1)
    assert [r.state for r in rows_of(service, right)] == ["delivered"]
    (refused,) = rows_of(service, wrong)
    assert refused.last_error == "no answer: SSLCertVerificationError"
