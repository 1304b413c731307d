"""API clients and their authentication over real HTTP (SQLite and PostgreSQL).

Also the interface other route modules build on (``require_scope``, ``optional_caller``), the
rate limits counted in the database, the holder view by caller and the who-checked log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import pytest
import sqlalchemy
from fastapi import APIRouter, Depends

from idsvc.clients.api_clients import ApiClients
from idsvc.credentials.views import CredentialView
from idsvc.errors import ApiClientExists, AuthenticationFailed, InvalidScope, UnknownApiClient
from idsvc.services import Services
from mobile_api.app import create_app
from mobile_api.auth import Caller, optional_caller, require_scope
from tests.support.http import assert_problem, live_server
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, make_service, make_settings

probe = APIRouter()


@probe.get("/test/payroll")
def payroll_probe(caller: Annotated[Caller, Depends(require_scope("payroll"))]) -> dict[str, str]:
    return {"client": caller.client_name or "", "address": caller.address}


@probe.get("/test/anyone")
def anyone_probe(caller: Annotated[Caller, Depends(optional_caller)]) -> dict[str, object]:
    return {"client": caller.client_name, "scopes": sorted(caller.scopes)}


@dataclass
class Site:
    http: httpx.Client
    service: Services
    clients: ApiClients
    clock: list[datetime]

    def bearer(self, secret: str) -> dict[str, str]:
        return {"authorization": f"Bearer {secret}"}


def site_for(service: Services) -> Iterator[Site]:
    clock = [NOW]
    app = create_app(service, clock=lambda: clock[0])
    app.include_router(probe)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        yield Site(http, service, ApiClients(service.infra.db), clock)


@pytest.fixture
def site(service: Services) -> Iterator[Site]:
    yield from site_for(service)


def test_secret_is_stored_only_as_its_hash(site: Site) -> None:
    view, secret = site.clients.add("Acme Bank", ["payroll"], NOW)
    assert secret.startswith(f"idsvc_{view.id}_") and len(secret) >= 60
    engine = site.service.infra.db.engine
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sqlalchemy.text("SELECT * FROM api_clients"))]
    assert len(rows) == 1
    assert secret not in repr(rows)
    assert hashlib.sha256(secret.encode()).hexdigest() in rows[0]
    # Two clients never share a secret.
    _, other = site.clients.add("Other Bank", ["payroll"], NOW)
    assert other != secret


def test_client_use_cases_refuse_bad_input(site: Site) -> None:
    site.clients.add("Acme Bank", ["payroll", "verify"], NOW)
    with pytest.raises(ApiClientExists):
        site.clients.add("Acme Bank", ["payroll"], NOW)
    with pytest.raises(InvalidScope):
        site.clients.add("Beta", ["payroll", "root"], NOW)
    with pytest.raises(InvalidScope):
        site.clients.add("Beta", [], NOW)
    with pytest.raises(UnknownApiClient):
        site.clients.disable("nobody", NOW)
    assert [c.name for c in site.clients.list()] == ["Acme Bank"]
    for bad in ("", "idsvc_", "idsvc_zzzzzzzzzzzzzzzz_x", "Bearer x", "x" * 500):
        with pytest.raises(AuthenticationFailed):
            site.clients.authenticate(bad, NOW)


def test_missing_bad_and_unscoped_credentials(site: Site) -> None:
    _, payroll = site.clients.add("Acme Bank", ["payroll"], NOW)
    _, verifier = site.clients.add("Verifier App", ["verify"], NOW)
    r = site.http.get("/test/payroll")
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = site.http.get("/test/payroll", headers={"authorization": "Basic dXNlcjpwdw=="})
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert 'error="invalid_request"' in r.headers["www-authenticate"]
    wrong = payroll[:-1] + ("B" if payroll.endswith("A") else "A")  # never the real secret
    r = site.http.get("/test/payroll", headers=site.bearer(wrong))
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = site.http.get("/test/payroll", headers=site.bearer(verifier))
    assert_problem(r, 403, "INSUFFICIENT_SCOPE")
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = site.http.get("/test/payroll", headers=site.bearer(payroll))
    assert r.status_code == 200
    assert r.json() == {"client": "Acme Bank", "address": "127.0.0.1"}
    # optional_caller: anonymous is fine, a bad secret is not silently anonymous.
    assert site.http.get("/test/anyone").json() == {"client": None, "scopes": []}
    r = site.http.get("/test/anyone", headers=site.bearer("idsvc_0000000000000000_nope"))
    assert_problem(r, 401, "UNAUTHENTICATED")
    r = site.http.get("/test/anyone", headers=site.bearer(verifier))
    assert r.json() == {"client": "Verifier App", "scopes": ["verify"]}


def test_disable_enable_and_rotation_take_effect_on_the_next_request(site: Site) -> None:
    _, secret = site.clients.add("Acme Bank", ["payroll"], NOW)
    assert site.http.get("/test/payroll", headers=site.bearer(secret)).status_code == 200
    site.clients.disable("Acme Bank", NOW)
    assert_problem(
        site.http.get("/test/payroll", headers=site.bearer(secret)), 401, "UNAUTHENTICATED"
    )
    site.clients.enable("Acme Bank", NOW)
    assert site.http.get("/test/payroll", headers=site.bearer(secret)).status_code == 200
    _, new = site.clients.rotate_secret("Acme Bank", NOW)
    assert_problem(
        site.http.get("/test/payroll", headers=site.bearer(secret)), 401, "UNAUTHENTICATED"
    )
    assert site.http.get("/test/payroll", headers=site.bearer(new)).status_code == 200


def test_rate_limits_per_client_and_per_address(tmp_path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path / "home", sqlite_url, rate_limit_client=3, rate_limit_anonymous=2
    )
    service = make_service(settings)
    service.credentials.init(now=NOW, actor="test")
    for site in site_for(service):
        _, a = site.clients.add("A", ["payroll"], NOW)
        _, b = site.clients.add("B", ["payroll"], NOW)
        for _ in range(3):
            assert site.http.get("/test/payroll", headers=site.bearer(a)).status_code == 200
        r = site.http.get("/test/payroll", headers=site.bearer(a))
        assert_problem(r, 429, "RATE_LIMITED")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # Another client has its own budget; anonymous callers are counted per address.
        assert site.http.get("/test/payroll", headers=site.bearer(b)).status_code == 200
        assert site.http.get("/test/anyone").status_code == 200
        assert site.http.get("/test/anyone").status_code == 200
        assert_problem(site.http.get("/test/anyone"), 429, "RATE_LIMITED")
        # The next window starts afresh.
        site.clock[0] = NOW + timedelta(seconds=61)
        assert site.http.get("/test/payroll", headers=site.bearer(a)).status_code == 200
        assert site.http.get("/test/anyone").status_code == 200
    service.infra.db.dispose()


def test_a_verification_is_counted_and_refused_before_its_body_is_validated(
    tmp_path: Path, sqlite_url: str
) -> None:
    # routes.verifications solves the caller in one dependency that runs before FastAPI
    # validates the body: a malformed body still counts against the budget, and a caller over
    # it, or with a bad secret, hears 429 or 401, not 422.
    settings = make_settings(tmp_path / "home", sqlite_url, rate_limit_anonymous=2)
    service = make_service(settings)
    service.credentials.init(now=NOW, actor="test")
    for site in site_for(service):
        malformed = {"credential": 5}
        for _ in range(2):
            assert site.http.post("/v1/verifications", json=malformed).status_code == 422
        assert_problem(site.http.post("/v1/verifications", json=malformed), 429, "RATE_LIMITED")
        r = site.http.post("/v1/verify", json=malformed, headers=site.bearer("idsvc_x_nope"))
        assert r.status_code == 401
        r = site.http.post(
            "/v1/verifications", content=b"{}", headers={"content-type": "text/plain"}
        )
        assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    service.infra.db.dispose()


def test_holder_view_by_caller_and_who_checked(site: Site, credential: CredentialView) -> None:
    _, verifier = site.clients.add("Verifier App", ["verify"], NOW)
    _, admin = site.clients.add("Ministry Admin", ["admin"], NOW)
    body = {"credential": credential.token}
    anonymous = site.http.post("/v1/verifications", json=body).json()
    assert set(anonymous["holder"]) == {"name", "name_latin", "ministry", "position"}
    scoped = site.http.post("/v1/verifications", json=body, headers=site.bearer(verifier)).json()
    assert scoped["holder"]["employee_id"] == ACTIVE_EMPLOYEE
    assert {"unit", "grade", "category", "card_serial"} <= set(scoped["holder"])
    assert "birthdate" not in scoped["holder"]

    path = f"/v1/holders/{ACTIVE_EMPLOYEE}/checks"
    assert_problem(site.http.get(path), 401, "UNAUTHENTICATED")
    assert_problem(site.http.get(path, headers=site.bearer(verifier)), 403, "INSUFFICIENT_SCOPE")
    r = site.http.get(path, headers=site.bearer(admin))
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert [(c["client_name"], c["address"], c["result"]) for c in checks] == [
        ("Verifier App", None, "valid"),
        (None, "127.0.0.1", "valid"),
    ]
    assert all(c["credential_id"] == credential.id and c["kind"] == "verification" for c in checks)
    r = site.http.get("/v1/holders/NOBODY-1/checks", headers=site.bearer(admin))
    assert_problem(r, 404, "UNKNOWN_EMPLOYEE")
    # The presented token is never stored.
    with site.service.infra.db.engine.connect() as conn:
        dump = repr(conn.execute(sqlalchemy.text("SELECT * FROM holder_checks")).all())
    assert credential.token.split(".")[2] not in dump and "eyJ" not in dump
