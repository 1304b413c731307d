"""Every Prometheus metric of the API, and how ``/metrics`` collects them.

Two kinds of metric, collected differently:

- per-process counters, histograms and gauges (requests, latency, checks, payroll items,
  database pool): with ``PROMETHEUS_MULTIPROC_DIR`` set (``idsvc serve`` sets and empties it
  before its workers start) each worker writes them to its own files there and the worker that
  answers a scrape adds all workers' files up (``MultiProcessCollector``). Without it (tests,
  ``create_app()`` in-process) they live in ``REGISTRY``.
- totals read from the database at scrape time (``DatabaseCollector``: credential events and
  webhook deliveries, via ``idsvc.operations.activity``; status-list age from
  ``IDSVC_PUBLISHED_DIR``):
  work done by every process, CLI included, kept for ``DB_TOTALS_CACHE`` seconds.

Labels hold only bounded, non-personal values: route *templates* (``/v1/holders/{employee_id}
/checks``, never the id), methods, status codes, reason codes, status-list names.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from idsvc.audit.who_checked import CheckRecord
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.operations.activity import ActivityTotals, activity_totals
from idsvc.operations.readiness import published_lists
from idsvc.storage.db import StorageError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
DB_TOTALS_CACHE = 10.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter(
    "idsvc_http_requests",
    "HTTP requests answered, by route template, method and status code",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "idsvc_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


# ``labels()`` validates and takes a lock on every call; the children it returns are kept
# (route templates x methods x status codes: a small set; the bound is a safety net).
@functools.lru_cache(maxsize=4096)
def request_counter(route: str, method: str, status: int) -> Counter:
    return HTTP_REQUESTS.labels(route, method, str(status))


@functools.lru_cache(maxsize=1024)
def request_timer(route: str, method: str) -> Histogram:
    return HTTP_LATENCY.labels(route, method)


CHECKS = Counter(
    "idsvc_checks",
    "Verifications answered (kind: verification or card), by result and reason code",
    ["kind", "result", "reason"],
    registry=REGISTRY,
)
PAYROLL_ITEMS = Counter(
    "idsvc_payroll_items",
    "Payroll items checked, by the status answered (a batch of 10,000 counts 10,000)",
    ["status"],
    registry=REGISTRY,
)
DB_POOL_IN_USE = Gauge(
    "idsvc_db_pool_connections_in_use",
    "Database connections checked out of the pools, summed over live workers",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "idsvc_db_pool_capacity",
    "Connections the pools may hold (size + overflow), summed over live workers",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

# Reason codes are a closed set (``idsvc.verification.rules``); anything else is folded so that a
# bug
# can never turn a label into free text.
_REASON = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_RESULT = re.compile(r"^[a-z][a-z0-9_]{0,23}$")


def _bounded(value: str, pattern: re.Pattern[str]) -> str:
    return value if pattern.match(value) else "other"


def count_payroll(statuses: Iterable[str]) -> None:
    """Count a batch's items by the status answered (one increment per distinct status)."""
    for status, n in collections.Counter(_bounded(s, _RESULT) for s in statuses).items():
        PAYROLL_ITEMS.labels(status).inc(n)


@functools.lru_cache(maxsize=4096)
def _check_counter(kind: str, result: str, reason: str) -> Counter:
    # As request_counter: the labelled child kept, not looked up under a lock every check.
    return CHECKS.labels(_bounded(kind, _RESULT), _bounded(result, _RESULT), reason)


def count_checks(records: list[CheckRecord]) -> None:
    """Count each check by kind, result and reason (a listener of the who-checked log,
    ``CheckLog.listen``: every check the log records is counted, whoever built it)."""
    for r in records:
        for reason in r.reasons or ("NONE",):
            _check_counter(r.kind, r.result, _bounded(reason, _REASON)).inc()


def watch_pool(infra: Infrastructure) -> None:
    """Keep the pool gauges of this worker current (checkout/checkin events)."""
    from idsvc.operations.activity import watch_pool as watch

    DB_POOL_CAPACITY.set(watch(infra.db, DB_POOL_IN_USE.inc, DB_POOL_IN_USE.dec))


class DatabaseCollector(Collector):
    """Database-derived totals, re-read at most every ``DB_TOTALS_CACHE`` seconds."""

    def __init__(self, infra: Infrastructure) -> None:
        self._infra = infra
        self._lock = threading.Lock()
        self._at = -DB_TOTALS_CACHE
        self._totals: ActivityTotals | None = None

    def _current(self) -> ActivityTotals | None:
        with self._lock:
            if time.monotonic() - self._at >= DB_TOTALS_CACHE:
                try:
                    self._totals = activity_totals(self._infra.db)
                except StorageError:
                    self._totals = None  # reported as idsvc_database_totals_up 0
                self._at = time.monotonic()
            return self._totals

    def collect(self) -> Iterator[Metric]:
        totals = self._current()
        up = GaugeMetricFamily(
            "idsvc_database_totals_up", "1 if the database totals below could be read"
        )
        up.add_metric([], 0 if totals is None else 1)
        yield up
        if totals is not None:
            events = CounterMetricFamily(
                "idsvc_credential_events",
                "Credential issuances, revocations, suspensions, reinstatements (audit chain)",
                labels=["action"],
            )
            for action, n in totals.credential_events.items():
                events.add_metric([action], n)
            yield events
            finished = CounterMetricFamily(
                "idsvc_webhook_deliveries",
                "Webhook deliveries finished: delivered, or failed after the last attempt",
                labels=["state"],
            )
            for state in ("delivered", "failed"):
                finished.add_metric([state], totals.webhook_deliveries.get(state, 0))
            yield finished
            pending = GaugeMetricFamily(
                "idsvc_webhook_deliveries_pending", "Webhook deliveries not yet delivered"
            )
            pending.add_metric([], totals.webhook_deliveries.get("pending", 0))
            yield pending
            attempts = CounterMetricFamily(
                "idsvc_webhook_delivery_attempts", "Webhook delivery attempts made"
            )
            attempts.add_metric([], totals.webhook_attempts)
            yield attempts
        yield from self._status_lists()

    def _status_lists(self) -> Iterator[Metric]:
        settings = self._infra.settings
        if settings.published_dir is None:
            return
        age = GaugeMetricFamily(
            "idsvc_status_list_age_seconds",
            "Seconds since the published status list was signed",
            labels=["list"],
        )
        left = GaugeMetricFamily(
            "idsvc_status_list_expiry_seconds",
            "Seconds until the published status list expires (negative: expired)",
            labels=["list"],
        )
        try:
            lists = published_lists(settings.published_dir, lifetime=settings.status_list_lifetime)
        except ValueError:
            lists = []
        now = datetime.now(UTC)
        for entry in lists:
            age.add_metric([entry.name], (now - entry.signed_at).total_seconds())
            left.add_metric([entry.name], (entry.exp - now).total_seconds())
        yield age
        yield left


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live-gauge files of workers that died (``kill -9``: uvicorn replaced them
    without telling prometheus_client), so ``livesum`` gauges sum live workers only."""
    pids: set[int] = set()
    for file in folder.glob("gauge_live*_*.db"):
        digits = file.stem.rsplit("_", 1)[-1]
        if digits.isdigit():
            pids.add(int(digits))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            prometheus_multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def exposition(database: DatabaseCollector) -> bytes:
    """The text of one scrape: every worker's metrics and the database totals."""
    folder = os.environ.get(MULTIPROC_ENV)
    registry = CollectorRegistry()
    registry.register(database)
    if not folder:  # one process: its own metrics are all there is
        return generate_latest(REGISTRY) + generate_latest(registry)
    _forget_dead_workers(Path(folder))
    prometheus_multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
