"""``/readyz`` goes 503 (naming the check) while the database is gone and back to 200 after,
on a real ``idsvc serve --workers 2``; the readiness checks one by one, in process."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from idsvc.operations.readiness import Readiness
from idsvc.services import Services
from tests.support.serve import Launch, Server
from tests.support.settings import NOW, make_service


def answers(server: Server, times: int = 6) -> list[tuple[int, dict[str, object]]]:
    """Several probes on new connections, so both workers answer some."""
    found = []
    for _ in range(times):
        r = server.get("/readyz")
        assert r.headers.get("retry-after") == ("5" if r.status_code == 503 else None)
        found.append((r.status_code, r.json()))
    return found


def database_ok(body: dict[str, object]) -> bool:
    checks = body["checks"]
    assert isinstance(checks, dict)
    return bool(checks["database"]["ok"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_readyz_fails_while_the_sqlite_file_is_gone(service: Services, start: Launch) -> None:
    server: Server = start(IDSVC_READINESS_CACHE="0")
    assert all(code == 200 for code, _ in answers(server))
    database = Path(str(service.infra.db.engine.url.database))
    aside = database.with_name("moved-away.sqlite3")
    database.rename(aside)
    try:
        down = answers(server)
        assert all(code == 503 and not database_ok(body) for code, body in down), down
        assert server.get("/healthz").status_code == 200  # alive all the same
    finally:
        aside.rename(database)
    assert all(code == 200 for code, _ in answers(server))


class Forwarder:
    """A TCP relay to PostgreSQL that the test can cut: a database "on a dead port" for one
    idsvc instance, while the shared server keeps running for everyone else."""

    def __init__(self, target: tuple[str, int], port: int = 0) -> None:
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(32)
        self.port: int = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone leaves it listening.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def relayed(service: Services) -> Iterator[tuple[Forwarder, str]]:
    url = make_url(service.settings.resolved_database_url)
    relay = Forwarder((url.host or "127.0.0.1", url.port or 5432))
    yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    relay.cut()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_readyz_fails_while_postgresql_is_unreachable(
    relayed: tuple[Forwarder, str], start: Launch
) -> None:
    relay, url = relayed
    server: Server = start(IDSVC_DATABASE_URL=url, IDSVC_READINESS_CACHE="0")
    assert all(code == 200 for code, _ in answers(server))
    relay.cut()
    down = answers(server)
    assert all(code == 503 and not database_ok(body) for code, body in down), down
    assert server.get("/healthz").status_code == 200
    back = Forwarder(relay.target, relay.port)  # the same port answers again
    try:
        assert all(code == 200 for code, _ in answers(server))
    finally:
        back.cut()


# -- the checks one by one, in process --------------------------------------------------------


def test_each_check_is_named_and_cached(service: Services) -> None:
    readiness = Readiness(service.infra, cache_seconds=5)
    report = readiness.report(now=NOW)
    assert report.ready, report.as_dict()
    assert [c.name for c in report.checks] == [
        "database",
        "migrations",
        "signing_key",
        "status_lists",
    ]
    assert readiness.report(now=NOW + timedelta(seconds=4)) is report  # cached
    assert readiness.report(now=NOW + timedelta(seconds=6)) is not report


def test_a_wrong_key_passphrase_fails_signing_key(service: Services) -> None:
    wrong = Services.from_settings(service.settings, lambda: b"not the passphrase at all")
    report = Readiness(wrong.infra, cache_seconds=0).report(now=NOW)
    checks = {c.name: c for c in report.checks}
    assert not report.ready and not checks["signing_key"].ok
    assert checks["database"].ok and checks["migrations"].ok
    assert "not the passphrase" not in json.dumps(report.as_dict())


def test_an_old_schema_fails_migrations(service: Services) -> None:
    with service.infra.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    report = Readiness(service.infra, cache_seconds=0).report(now=NOW)
    checks = {c.name: c for c in report.checks}
    assert not checks["migrations"].ok and "0001" in checks["migrations"].detail


def test_published_lists_near_expiry_fail(service: Services, tmp_path: Path) -> None:
    folder = tmp_path / "public"
    folder.mkdir()
    lifetime = service.settings.status_list_lifetime.total_seconds()
    settings = service.settings.model_copy(update={"published_dir": folder})
    svc = make_service(settings)

    def with_exp(seconds_left: float) -> dict[str, object]:
        exp = int((NOW + timedelta(seconds=seconds_left)).timestamp())
        index = {"status_lists": {"1": {"uri": "u", "exp": exp, "bits_sha256": "0"}}}
        (folder / "index.json").write_text(json.dumps(index))
        report = Readiness(svc.infra, cache_seconds=0).report(now=NOW)
        return {c.name: c.ok for c in report.checks}

    assert with_exp(lifetime * 0.8)["status_lists"]  # freshly published: most of it left
    assert not with_exp(lifetime * 0.2)["status_lists"]  # the publisher has stopped re-signing
    assert not with_exp(-60)["status_lists"]  # expired
    (folder / "index.json").unlink()  # publishing was configured but never ran
    missing = {c.name: c for c in Readiness(svc.infra, cache_seconds=0).report(now=NOW).checks}
    assert not missing["status_lists"].ok and "index.json" in missing["status_lists"].detail
