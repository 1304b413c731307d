"""The webhook deliverer: drains the outbox that ``idsvc.change_feed`` fills.

At least once: a delivery row is claimed with a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several deliverers can run), sent, then marked; a deliverer that dies mid-send
leaves the lease to expire and the row is sent again. Receivers de-duplicate on ``webhook-id``
(stable across retries, as Standard Webhooks asks).

A failed attempt (no answer within the timeout, or a status other than 2xx) is retried after
``30 s × 2^(attempts-1)``, capped at 6 h (both set by ``IDSVC_WEBHOOK_FIRST_RETRY`` and
``IDSVC_WEBHOOK_MAX_RETRY``), with ±10 % jitter so that a receiver that comes back
is not hit by every sender at once; after ``max_attempts`` the row is ``failed`` (shown by
``idsvc webhooks list``). Each receiver is served by its own thread, and a receiver's first
failure in a pass postpones its other due rows without trying them: a dead receiver costs one
timeout per pass and never holds up the others, nor the changes themselves (they only wrote a
row). Each receiver's outcomes are recorded as soon as its thread is done, in a transaction of
their own: a receiver that accepts the connection and never answers delays only its own rows.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.change_feed import ChangeEvent
from idsvc.server_secret import ServerKeys
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import (
    ChangeEventRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
)
from idsvc.webhooks import sign_v1, sign_v1a

FIRST_RETRY: Final = timedelta(seconds=30)
MAX_RETRY: Final = timedelta(hours=6)
LEASE: Final = timedelta(seconds=60)
# Receivers served at once in a pass; beyond that a receiver waits for a free thread.
MAX_PARALLEL: Final = 16
USER_AGENT: Final = "idsvc-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status: int | None  # HTTP status, None when there was no answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Send = Callable[[str, bytes, Mapping[str, str]], Outcome]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is a failed delivery: the signed body must not wander


def http_post(timeout: float) -> Send:
    """A ``Send`` over urllib (no redirects, no proxies from the environment)."""
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        if not url.startswith(("https://", "http://")):  # checked at `add`; never file: etc.
            return Outcome(None, "not an http(s) URL")
        request = urllib.request.Request(  # noqa: S310  (scheme checked on the line above)
            url, data=body, headers=dict(headers), method="POST"
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                return Outcome(int(response.status))
        except urllib.error.HTTPError as exc:
            return Outcome(exc.code, f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Outcome(None, f"no answer: {type(reason).__name__}"[:255])

    return send


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


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    attempts: int
    event: ChangeEvent


@dataclass(frozen=True)
class _Receiver:
    subscription_id: str
    url: str
    scheme: str
    hmac_secret: bytes | None


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
        self._first_retry = first_retry
        self._max_retry = max_retry

    def run_once(self, now: datetime) -> DeliveryReport:
        """Claim what is due, send it (one thread per receiver), record each receiver's
        outcomes as they come."""
        claimed = self._claim(now)
        report = DeliveryReport()
        if not claimed:
            return report
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(claimed))) as pool:
            served = {
                pool.submit(self._serve, receiver, jobs, now): receiver
                for receiver, jobs in claimed.items()
            }
            # Recorded in this thread only, so the report needs no lock.
            for done in as_completed(served):
                report.receivers.add(served[done].subscription_id)
                with self._db.transaction() as session:
                    for job, outcome in done.result():
                        self._record(session, job, outcome, now, report)
        return report

    def _claim(self, now: datetime) -> dict[_Receiver, list[_Job]]:
        with self._db.transaction() as session:
            due = (
                session.execute(
                    select(WebhookDeliveryRow)
                    .join(
                        WebhookSubscriptionRow,
                        WebhookSubscriptionRow.id == WebhookDeliveryRow.subscription_id,
                    )
                    .where(
                        WebhookDeliveryRow.state == "pending",
                        WebhookDeliveryRow.next_attempt_at <= now,
                        (WebhookDeliveryRow.lease_until.is_(None))
                        | (WebhookDeliveryRow.lease_until < now),
                        WebhookSubscriptionRow.enabled.is_(True),
                    )
                    .order_by(WebhookDeliveryRow.event_position, WebhookDeliveryRow.id)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True, of=WebhookDeliveryRow)
                )
                .scalars()
                .all()
            )
            if not due:
                return {}
            events = _events(session, {row.event_position for row in due})
            receivers = {
                row.id: _Receiver(
                    row.id,
                    row.url,
                    row.scheme,
                    self._keys.open(row.secret_box, row.id.encode()) if row.secret_box else None,
                )
                for row in session.execute(
                    select(WebhookSubscriptionRow).where(
                        WebhookSubscriptionRow.id.in_({row.subscription_id for row in due})
                    )
                ).scalars()
            }
            claimed: dict[_Receiver, list[_Job]] = defaultdict(list)
            for row in due:
                row.lease_until = now + LEASE
                claimed[receivers[row.subscription_id]].append(
                    _Job(row.id, row.attempts, events[row.event_position])
                )
            return dict(claimed)

    def _serve(
        self, receiver: _Receiver, jobs: list[_Job], now: datetime
    ) -> list[tuple[_Job, Outcome | None]]:
        results: list[tuple[_Job, Outcome | None]] = []
        down = False
        for job in jobs:
            if down:
                results.append((job, None))  # postponed: not tried, not counted
                continue
            outcome = self._send(receiver.url, *self._signed(receiver, job.event, now))
            results.append((job, outcome))
            down = not outcome.ok
        return results

    def _backoff(self, attempts: int) -> timedelta:
        return backoff(attempts, self._rng, self._first_retry, self._max_retry)

    def _signed(
        self, receiver: _Receiver, event: ChangeEvent, now: datetime
    ) -> tuple[bytes, dict[str, str]]:
        body = payload(event)
        msg_id = f"msg_{event.id}"
        timestamp = int(now.timestamp())
        if receiver.scheme == "v1" and receiver.hmac_secret is not None:
            signature = sign_v1(receiver.hmac_secret, msg_id, timestamp, body)
        else:
            signature = sign_v1a(self._keys.webhook_signing_key, msg_id, timestamp, body)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        return body, headers

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


def _events(session: Session, positions: set[int]) -> dict[int, ChangeEvent]:
    rows = session.execute(
        select(ChangeEventRow).where(ChangeEventRow.position.in_(positions))
    ).scalars()
    return {row.position: ChangeEvent.of(row) for row in rows}
