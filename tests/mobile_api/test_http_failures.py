"""When the database or the keys fail, callers get a problem+json with a stable code and a
generic text: no stack trace, no SQL, no driver name, no file path, no database URL."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from idsvc.services import Services
from keys.keyring import MANIFEST_NAME
from tests.support.http import Api, api_for, assert_problem
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, SAMPLE_CSV, make_service, make_settings

LEAKS = (
    "Traceback",
    'File "',
    "sqlite",
    "psycopg",
    "postgres",
    "OperationalError",
    "SELECT",
    "127.0.0.1:1",
    "keyring",
    "KeyRingError",
    ".py",
)


def assert_no_leak(text: str, *also: str) -> None:
    for needle in (*LEAKS, *also):
        assert needle.lower() not in text.lower(), (needle, text)


def ready_service(home: Path, url: str) -> Services:
    # No caches, no write-behind: every request touches the database, as these tests need
    # (with caches a verification within the cache bound is still answered, by design).
    exact = {"verify_cache_ttl": 0, "rate_limit_sync": 0, "check_log_flush": 0}
    svc = make_service(make_settings(home, url, **exact))
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW
    )
    return svc


def test_sqlite_database_gone_is_503(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    svc = ready_service(tmp_path / "home", f"sqlite:///{db_dir / 'idsvc.sqlite3'}")
    token = svc.credentials.issue(ACTIVE_EMPLOYEE, actor="test", now=NOW).token
    with api_for(svc) as api:
        assert (
            api.http.post("/v1/verifications", json={"credential": token}).json()["valid"] is True
        )
        shutil.rmtree(db_dir)  # the volume went away ...
        svc.infra.db.dispose()  # ... and the pooled connections with it
        requests = [
            api.http.get("/health"),
            api.http.get("/.well-known/jwks.json"),
            api.http.get("/status-lists/0123456789abcdef"),
            api.http.post("/v1/verifications", json={"credential": token}),
        ]
    for r in requests:
        body = assert_problem(r, 503, "DATABASE_UNAVAILABLE")
        assert set(body) == {"type", "title", "status", "code"}
        assert r.headers["retry-after"].isdigit()
        assert r.headers["cache-control"] == "no-store"
        assert_no_leak(r.text, str(tmp_path))
    svc.infra.db.dispose()


def test_postgres_unreachable_is_503(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = "postgresql+psycopg://dbuser:s3cret-pw@127.0.0.1:1/register"
    svc = make_service(make_settings(tmp_path / "home", url))
    with api_for(svc) as api:
        requests = [
            api.http.get("/health"),
            api.http.post("/v1/verifications", json={"credential": "a.b.c"}),
        ]
    for r in requests:
        assert_problem(r, 503, "DATABASE_UNAVAILABLE")
        assert_no_leak(r.text, "s3cret-pw", "dbuser")
    assert "database unavailable" in caplog.text
    assert "s3cret-pw" not in caplog.text
    svc.infra.db.dispose()


def test_uninitialised_database_is_503_without_paths(tmp_path: Path) -> None:
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'new.sqlite3'}"))
    with api_for(svc) as api:
        r = api.http.get("/health")
    assert_problem(r, 503, "NOT_INITIALISED")
    assert_no_leak(r.text, str(tmp_path), "alembic")
    svc.infra.db.dispose()


def test_internal_error_is_generic_500_and_the_server_keeps_serving(
    service: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = service.credentials.issue(ACTIVE_EMPLOYEE, actor="test", now=NOW).token
    manifest = service.settings.keys_dir / "default" / MANIFEST_NAME
    good = manifest.read_bytes()
    with api_for(service) as api:
        manifest.write_text('{"not": "a key ring"}')  # a broken deployment, not a bad request
        broken = [
            api.http.get("/.well-known/jwks.json"),
            api.http.post("/v1/verifications", json={"credential": token}),
        ]
        health = api.http.get("/health")
        manifest.write_bytes(good)
        repaired = api.http.post("/v1/verifications", json={"credential": token})
    for r in broken:
        body = assert_problem(r, 500, "INTERNAL")
        assert body == {
            "type": "urn:idsvc:problem:internal",
            "title": "internal error",
            "status": 500,
            "code": "INTERNAL",
        }
        assert r.headers["cache-control"] == "no-store"
        assert_no_leak(r.text, str(service.settings.home))
    assert health.status_code == 200
    assert repaired.status_code == 200 and repaired.json()["valid"] is True
    # The operator's log says what and where, but not the message (paths, data) or a traceback.
    assert "internal error: KeyRingError in GET /.well-known/jwks.json" in caplog.text
    assert "internal error: KeyRingError in POST /v1/verifications" in caplog.text
    assert "Traceback" not in caplog.text
    assert str(service.settings.home) not in caplog.text
    assert token not in caplog.text


def test_unknown_issuer_leaks_no_path(web: Api) -> None:
    r = web.http.get("/issuers/nope/jwks.json")
    assert r.status_code >= 400
    assert r.headers["content-type"] == "application/problem+json"
    assert_no_leak(r.text, str(web.service.settings.home), "nope")


def test_unknown_issuer_is_404(web: Api) -> None:
    r = web.http.get("/issuers/nope/jwks.json")
    assert_problem(r, 404, "UNKNOWN_ISSUER")
