"""The API on a real uvicorn server on a free loopback port (``tests.support.http``), with its
clock fixed at ``NOW`` so results do not depend on the wall clock: over the ``service`` fixture
(SQLite and PostgreSQL: ``api``) or over SQLite alone (``web``). Remote desks against a centre
(``world``: ``tests.support.desk_world``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsvc.credentials.views import CredentialView
from idsvc.services import Services
from tests.support.http import Api, api_for
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, SAMPLE_CSV, make_service, make_settings


@pytest.fixture
def api(service: Services) -> Iterator[Api]:
    with api_for(service) as a:
        yield a


@pytest.fixture
def credential(service: Services) -> CredentialView:
    return service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Api]:
    """The API over SQLite only, for HTTP-level behaviour that does not depend on the database
    (request validation, limits, content types, routing, OpenAPI)."""
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'web.sqlite3'}"))
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW
    )
    with api_for(svc) as a:
        yield a
    svc.infra.db.dispose()


@pytest.fixture
def web_credential(web: Api) -> CredentialView:
    return web.service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)
