"""The webhook deliverer: drains the outbox that ``idsvc.bank.change_feed`` fills.

At least once: a delivery row is claimed with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several deliverers can run), sent, then marked; a deliverer that dies mid-send
leaves the lease to expire and the row is sent again. Receivers de-duplicate on ``webhook-id``
(stable across retries, as Standard Webhooks asks).

A failed attempt (no answer within the deadline, a status other than 2xx, a refused target, or
anything else that goes wrong for that receiver: a URL the HTTP layer chokes on, a secret that
does not open) is retried after ``30 s × 2^(attempts-1)``, capped at 6 h (both set by
``IDSVC_WEBHOOK_FIRST_RETRY`` and ``IDSVC_WEBHOOK_MAX_RETRY``), with ±10 % jitter so that a
receiver that comes back is not hit by every sender at once; after ``max_attempts`` the row is
``failed`` (shown by ``idsvc webhooks list``). A failure is recorded for its subscription only;
it never ends the pass for the others.

Each receiver is served by its own thread, and a receiver's first failure in a pass postpones
its other due rows without trying them. ``timeout`` is a deadline for the whole delivery
(resolve, connect, TLS, send, status line and headers), not per read: a receiver that dribbles
one header line every few seconds is cut off at the deadline like one that never answers. Each
thread records its receiver's outcomes itself, in a transaction of its own. ``run_once`` waits
for every receiver it served (tests, ``--once``); ``DeliveryLoop`` (``idsvc webhooks deliver``)
does not: a receiver still in flight is left out of the next claims while the others go on,
so one receiver's slowness never delays another's events.

Targets. The host is resolved once per delivery; every address it resolves to must pass
``idsvc.bank.webhooks.target_refusal`` (DNS may have changed since ``add``), and the connection
goes to an address that was checked, never to a second resolution (no check-then-use gap for
DNS rebinding). TLS still verifies the certificate against the URL's host name. No proxies,
no redirects (the signed body must not wander).

A subscription whose client is disabled (``idsvc clients disable``) is skipped, not failed:
its rows stay pending and are sent when the client is enabled again.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.bank.change_feed import ChangeEvent
from idsvc.bank.server_secret import ServerKeys
from idsvc.bank.webhooks import check_url, signer_of, target_refusal
from idsvc.errors import InvalidWebhook
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import (
    ChangeEventRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
)

FIRST_RETRY: Final = timedelta(seconds=30)
MAX_RETRY: Final = timedelta(hours=6)
LEASE: Final = timedelta(seconds=60)
# The longest whole-delivery deadline: well inside the lease, so that a row is never sent by a
# second deliverer while the first is still waiting for the answer.
MAX_DEADLINE: Final = 30.0
# Receivers served at once; beyond that a receiver waits for a free thread.
MAX_PARALLEL: Final = 16
USER_AGENT: Final = "idsvc-webhooks/1"
_MAX_HEAD: Final = 64 * 1024  # status line and headers; the body is not read
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])[ \r]")


@dataclass(frozen=True)
class Outcome:
    status: int | None  # HTTP status, None when there was no answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Send = Callable[[str, bytes, Mapping[str, str]], Outcome]
# host, port → the addresses to try (``socket.getaddrinfo`` by default; tests stand in for DNS).
Resolve = Callable[[str, int], list[str]]


class TargetRefused(Exception):
    """The receiver's address is one webhooks may not reach (``target_refusal``)."""


def resolve_host(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # A link-local IPv6 address comes with its zone (fe80::1%eth0): the address is the check.
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        return left


def http_post(timeout: float, *, private_targets: bool, resolve: Resolve = resolve_host) -> Send:
    """A ``Send`` over one pinned connection, everything within ``timeout`` seconds."""

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        try:
            return _post(url, body, headers, _Deadline(timeout), private_targets, resolve)
        except InvalidWebhook as exc:  # the stored URL fails today's rule
            return Outcome(None, f"refused URL: {exc}"[:255])
        except TargetRefused as exc:
            return Outcome(None, f"refused target: {exc}"[:255])
        except TimeoutError:
            return Outcome(None, f"no answer within {timeout:g} s")
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return Outcome(None, f"no answer: {type(exc).__name__}")

    return send


def _post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    deadline: _Deadline,
    private_targets: bool,
    resolve: Resolve,
) -> Outcome:
    parts = urlsplit(check_url(url, private_targets=private_targets))
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    for address in addresses:
        refusal = target_refusal(ipaddress.ip_address(address), private_targets=private_targets)
        if refusal:  # one bad address refuses the name: the next lookup could return it
            raise TargetRefused(refusal)
    if not addresses:
        raise TargetRefused(f"{host} resolves to no address")
    sock = _connect(addresses, port, deadline)
    try:
        if parts.scheme == "https":
            sock.settimeout(deadline.left())
            # Handshake included; the certificate must name the URL's host.
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        sock.settimeout(deadline.left())
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return _answer(sock, deadline)
    finally:
        sock.close()


def _connect(addresses: list[str], port: int, deadline: _Deadline) -> socket.socket:
    last: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=deadline.left())
        except TimeoutError:
            raise
        except OSError as exc:
            last = exc
    raise last


def _answer(sock: socket.socket, deadline: _Deadline) -> Outcome:
    """The status of the answer, once its header block is in (all of it before the
    deadline)."""
    head = b""
    while b"\r\n\r\n" not in head:
        sock.settimeout(deadline.left())
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
        if len(head) > _MAX_HEAD:
            return Outcome(None, "no answer: headers too long")
    found = _STATUS_LINE.match(head)
    if found is None or b"\r\n\r\n" not in head:
        return Outcome(None, "no answer: not an HTTP response")
    status = int(found.group(1))
    return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")


def backoff(
    attempts: int,
    rng: random.Random,
    first: timedelta = FIRST_RETRY,
    longest: timedelta = MAX_RETRY,
) -> timedelta:
    base: timedelta = min(first * (2 ** min(max(attempts - 1, 0), 16)), longest)
    return base * rng.uniform(0.9, 1.1)


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    postponed: int = 0
    receivers: set[str] = field(default_factory=set)

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed
        self.postponed += other.postponed
        self.receivers |= other.receivers


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    attempts: int
    event: ChangeEvent


def payload(event: ChangeEvent) -> bytes:
    body = {"type": event.type, "timestamp": event.recorded_at.isoformat(), "data": event.as_dict()}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookDeliverer:
    def __init__(
        self,
        db: Database,
        keys: ServerKeys,
        send: Send,
        *,
        max_attempts: int,
        batch: int = 200,
        rng: random.Random | None = None,
        first_retry: timedelta = FIRST_RETRY,
        max_retry: timedelta = MAX_RETRY,
    ) -> None:
        self._db = db
        self._keys = keys
        self._send = send
        self._max_attempts = max_attempts
        self._batch = batch
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not a secret)
        self._rng_lock = threading.Lock()  # receivers' threads draw jitter from one generator
        self._first_retry = first_retry
        self._max_retry = max_retry

    def run_once(self, now: datetime) -> DeliveryReport:
        """Claim what is due, send it (one thread per receiver), and wait for all of them;
        each receiver's outcomes are recorded as soon as its own thread is done."""
        report = DeliveryReport()
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL) as pool:
            for served in self.dispatch(pool, now, busy=()).values():
                report.add(served.result())
        return report

    def dispatch(
        self, pool: ThreadPoolExecutor, now: datetime, *, busy: Collection[str]
    ) -> dict[str, Future[DeliveryReport]]:
        """Claim what is due for receivers not in ``busy`` and start serving each in
        ``pool``; subscription id → its receiver's report to come."""
        return {
            subscription.id: pool.submit(self._serve, subscription, jobs, now)
            for subscription, jobs in self._claim(now, busy).items()
        }

    def _claim(
        self, now: datetime, busy: Collection[str]
    ) -> dict[WebhookSubscriptionRow, list[_Job]]:
        with self._db.transaction() as session:
            query = (
                select(WebhookDeliveryRow)
                .join(
                    WebhookSubscriptionRow,
                    WebhookSubscriptionRow.id == WebhookDeliveryRow.subscription_id,
                )
                .join(ApiClientRow, ApiClientRow.id == WebhookSubscriptionRow.client_id)
                .where(
                    WebhookDeliveryRow.state == "pending",
                    WebhookDeliveryRow.next_attempt_at <= now,
                    (WebhookDeliveryRow.lease_until.is_(None))
                    | (WebhookDeliveryRow.lease_until < now),
                    WebhookSubscriptionRow.enabled.is_(True),
                    ApiClientRow.enabled.is_(True),  # a disabled client's rows wait
                )
                .order_by(WebhookDeliveryRow.event_position, WebhookDeliveryRow.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True, of=WebhookDeliveryRow)
            )
            if busy:
                query = query.where(WebhookDeliveryRow.subscription_id.not_in(sorted(busy)))
            due = session.execute(query).scalars().all()
            if not due:
                return {}
            events = _events(session, {row.event_position for row in due})
            subscriptions = {
                row.id: row
                for row in session.execute(
                    select(WebhookSubscriptionRow).where(
                        WebhookSubscriptionRow.id.in_({row.subscription_id for row in due})
                    )
                ).scalars()
            }
            claimed: dict[WebhookSubscriptionRow, list[_Job]] = defaultdict(list)
            for row in due:
                row.lease_until = now + LEASE
                claimed[subscriptions[row.subscription_id]].append(
                    _Job(row.id, row.attempts, events[row.event_position])
                )
            session.flush()  # the leases, before the rows leave the session
            session.expunge_all()  # read by the receivers' threads after this session ends
            return dict(claimed)

    def _serve(
        self, subscription: WebhookSubscriptionRow, jobs: list[_Job], now: datetime
    ) -> DeliveryReport:
        results: list[tuple[_Job, Outcome | None]] = []
        down = False
        for job in jobs:
            if down:
                results.append((job, None))  # postponed: not tried, not counted
                continue
            outcome = self._attempt(subscription, job, now)
            results.append((job, outcome))
            down = not outcome.ok
        report = DeliveryReport(receivers={subscription.id})
        with self._db.transaction() as session:
            for job, result in results:
                self._record(session, job, result, now, report)
        return report

    def _attempt(self, subscription: WebhookSubscriptionRow, job: _Job, now: datetime) -> Outcome:
        """One delivery; whatever goes wrong is this subscription's failed attempt."""
        try:
            body = payload(job.event)
            msg_id = f"msg_{job.event.id}"
            timestamp = int(now.timestamp())
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signer_of(self._keys, subscription, now).signature(
                    msg_id, timestamp, body
                ),
            }
            return self._send(subscription.url, body, headers)
        except Exception as exc:  # any failure is recorded as this receiver's attempt
            return Outcome(None, f"delivery failed: {type(exc).__name__}")

    def _backoff(self, attempts: int) -> timedelta:
        with self._rng_lock:
            return backoff(attempts, self._rng, self._first_retry, self._max_retry)

    def _record(
        self,
        session: Session,
        job: _Job,
        outcome: Outcome | None,
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        row = session.get(WebhookDeliveryRow, job.delivery_id)
        if row is None or row.state != "pending":
            return
        row.lease_until = None
        if outcome is None:
            row.next_attempt_at = now + self._backoff(max(row.attempts, 1))
            report.postponed += 1
            return
        row.attempts += 1
        row.last_status = outcome.status
        if outcome.ok:
            row.state = "delivered"
            row.delivered_at = now
            row.last_error = None
            report.delivered += 1
        elif row.attempts >= self._max_attempts:
            row.state = "failed"
            row.last_error = outcome.error
            report.failed += 1
        else:
            row.next_attempt_at = now + self._backoff(row.attempts)
            row.last_error = outcome.error
            report.retrying += 1


class DeliveryLoop:
    """``idsvc webhooks deliver``: passes that never wait for a slow receiver. A receiver
    still being served is left out of the next claims; the others' new events go out."""

    def __init__(self, deliverer: WebhookDeliverer) -> None:
        self._deliverer = deliverer
        self._pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL)
        self._busy: dict[str, Future[DeliveryReport]] = {}

    def step(self, now: datetime) -> DeliveryReport:
        """Collect the receivers that are done, then start on what is due for the others."""
        report = DeliveryReport()
        for subscription_id, served in list(self._busy.items()):
            if served.done():
                del self._busy[subscription_id]
                report.add(served.result())
        if len(self._busy) < MAX_PARALLEL:
            self._busy |= self._deliverer.dispatch(self._pool, now, busy=self._busy)
        return report

    @property
    def in_flight(self) -> int:
        return len(self._busy)

    def close(self) -> DeliveryReport:
        """Wait for the receivers in flight (each bounded by its deadline)."""
        report = DeliveryReport()
        for served in self._busy.values():
            report.add(served.result())
        self._busy.clear()
        self._pool.shutdown(wait=True)
        return report


def _events(session: Session, positions: set[int]) -> dict[int, ChangeEvent]:
    rows = session.execute(
        select(ChangeEventRow).where(ChangeEventRow.position.in_(positions))
    ).scalars()
    return {row.position: ChangeEvent.of(row) for row in rows}
