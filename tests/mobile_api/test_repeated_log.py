"""A database outage logs one line per window and worker, not one per 503 (a real server on
loopback in front of an unreachable PostgreSQL)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mobile_api.repeated_log import RepeatedLogLine
from tests.support.http import api_for, assert_problem
from tests.support.settings import make_service, make_settings


def test_an_outage_of_many_requests_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = "postgresql+psycopg://dbuser:s3cret-pw@127.0.0.1:1/register"
    svc = make_service(make_settings(tmp_path / "home", url))
    with api_for(svc) as api:
        answers = [api.http.get("/health") for _ in range(40)]
    for r in answers:
        assert_problem(r, 503, "DATABASE_UNAVAILABLE")
    lines = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    svc.infra.db.dispose()


def test_the_next_window_starts_with_the_count_of_the_last() -> None:
    logger = logging.getLogger("test.repeated_log")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    try:
        t = [100.0]
        line = RepeatedLogLine(logger, "database unavailable", every=10, clock=lambda: t[0])
        for step in range(6):  # 0.0 .. 5.0 s: the first one is written, five are counted
            t[0] = 100.0 + step
            line.error()
        assert records == ["database unavailable"]
        t[0] = 112.0
        line.error()  # a new window: one line carrying the count of the last
        assert records[-1] == "database unavailable (5 more in the last 12 s)"
        t[0] = 113.0
        line.error()
        t[0] = 130.0
        line.error()
        assert records[-1] == "database unavailable (1 more in the last 18 s)"
        t[0] = 145.0
        line.error()  # nothing was held back: the plain line again
        assert records == [
            "database unavailable",
            "database unavailable (5 more in the last 12 s)",
            "database unavailable (1 more in the last 18 s)",
            "database unavailable",
        ]
    finally:
        logger.removeHandler(handler)
