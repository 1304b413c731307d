"""Mutual TLS for banks (issue 10): an API client bound to its TLS certificate's SHA-256, the
certificate passed on by a trusted reverse proxy in ``X-Client-Cert`` (nginx's
``$ssl_client_escaped_cert``), over real HTTP on SQLite and PostgreSQL. The same header from
an address outside ``IDSVC_TRUSTED_PROXIES`` is ignored: the test sends it from 127.0.0.2."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from idsvc.clients.api_clients import ApiClients, fingerprint_of_certificate
from idsvc.config import Settings
from idsvc.errors import ApiClientError, AuthenticationFailed
from idsvc.services import Services
from tests.support.cli_runner import Cli
from tests.support.http import Api, api_for
from tests.support.settings import NOW, make_service, make_settings

FEED = "/v1/payroll/changes"  # needs the payroll scope


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # Overrides tests/conftest.py's: the test server's peer for the "proxy" is 127.0.0.1.
    return make_settings(tmp_path / "home", db_url, trusted_proxies="127.0.0.1, 10.0.0.0/8")


def _certificate(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _sha256(pem: bytes) -> str:
    return hashlib.sha256(
        x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    ).hexdigest()


def _as_nginx_sends(pem: bytes) -> str:
    # $ssl_client_escaped_cert: the PEM, URL-escaped (newlines as %0A).
    return quote(pem.decode("ascii"), safe="")


@pytest.fixture
def bank_api(service: Services) -> Iterator[Api]:
    with api_for(service) as api:
        yield api


def _get(
    api: Api,
    *,
    cert: bytes | None = None,
    secret: str | None = None,
    source: str = "127.0.0.1",
    raw_header: str | None = None,
) -> httpx.Response:
    headers = {}
    if cert is not None:
        headers["X-Client-Cert"] = _as_nginx_sends(cert)
    if raw_header is not None:
        headers["X-Client-Cert"] = raw_header
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=api.base_url, transport=transport, timeout=10.0) as http:
        return http.get(FEED, headers=headers)


def test_certificate_authenticates_its_client_through_the_trusted_proxy(
    service: Services, bank_api: Api
) -> None:
    clients = ApiClients(service.infra.db)
    bank_pem, other_pem = _certificate("Bank A"), _certificate("Bank B")
    bank, bank_secret = clients.add(
        "Bank A", ["payroll"], NOW, cert_sha256=_sha256(bank_pem).upper()
    )
    assert bank.cert_sha256 == _sha256(bank_pem)  # stored normalised
    _, plain_secret = clients.add("Bank B", ["payroll"], NOW)

    # The certificate alone, and the certificate with the same client's secret.
    assert _get(bank_api, cert=bank_pem).status_code == 200
    assert _get(bank_api, cert=bank_pem, secret=bank_secret).status_code == 200
    # The certificate with another client's secret: they disagree on who is calling.
    assert _get(bank_api, cert=bank_pem, secret=plain_secret).status_code == 401
    # The bound client's secret alone is refused: without the private key it opens nothing.
    r = _get(bank_api, secret=bank_secret)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    # A certificate that no client holds; a header that holds no certificate.
    assert _get(bank_api, cert=other_pem).status_code == 401
    assert _get(bank_api, raw_header="not%20a%20certificate").status_code == 401
    assert _get(bank_api, raw_header="%ZZ" * 10).status_code == 401
    # A client without a certificate is unchanged.
    assert _get(bank_api, secret=plain_secret).status_code == 200

    # Disabled: the certificate no longer opens anything.
    clients.disable("Bank A", NOW)
    assert _get(bank_api, cert=bank_pem).status_code == 401
    clients.enable("Bank A", NOW)
    assert _get(bank_api, cert=bank_pem).status_code == 200
    # Unbound: the secret works alone again, the certificate no longer does.
    clients.set_certificate("Bank A", None, NOW)
    assert _get(bank_api, secret=bank_secret).status_code == 200
    assert _get(bank_api, cert=bank_pem).status_code == 401


def test_certificate_header_from_an_untrusted_address_is_ignored(
    service: Services, bank_api: Api
) -> None:
    clients = ApiClients(service.infra.db)
    pem = _certificate("Bank A")
    _, secret = clients.add("Bank A", ["payroll"], NOW, cert_sha256=_sha256(pem))
    _, plain_secret = clients.add("Bank B", ["payroll"], NOW)
    assert _get(bank_api, cert=pem).status_code == 200
    # The same request from 127.0.0.2 (not a trusted proxy): as if the header were absent.
    r = _get(bank_api, cert=pem, source="127.0.0.2")
    assert r.status_code == 401
    assert _get(bank_api, raw_header="garbage", source="127.0.0.2").status_code == 401
    # ...so a forged header cannot take over another client's request either.
    assert _get(bank_api, cert=pem, secret=plain_secret, source="127.0.0.2").status_code == 200
    assert _get(bank_api, cert=pem, secret=secret, source="127.0.0.2").status_code == 401


def test_one_certificate_names_one_client(service: Services) -> None:
    clients = ApiClients(service.infra.db)
    pem = _certificate("Bank A")
    clients.add("Bank A", ["payroll"], NOW, cert_sha256=_sha256(pem))
    with pytest.raises(ApiClientError, match="registered for client 'Bank A'"):
        clients.add("Bank B", ["payroll"], NOW, cert_sha256=_sha256(pem))
    clients.add("Bank B", ["payroll"], NOW)
    with pytest.raises(ApiClientError, match="registered for client 'Bank A'"):
        clients.set_certificate("Bank B", _sha256(pem), NOW)
    assert clients.get("Bank B").cert_sha256 is None
    for bad in ("abc", "g" * 64, _sha256(pem) + "00", ""):
        with pytest.raises(ApiClientError, match="64 hex digits"):
            clients.set_certificate("Bank B", bad, NOW)
    with pytest.raises(AuthenticationFailed):
        clients.authenticate_certificate("not hex", None, NOW)


def test_trusted_proxies_setting_is_checked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    assert make_settings(tmp_path, url, trusted_proxies="127.0.0.1,::1, 10.1.0.0/16")
    with pytest.raises(ValidationError, match="not an IP address or network"):
        make_settings(tmp_path, url, trusted_proxies="127.0.0.1, nginx.internal")


def test_certificate_fingerprint_from_pem_or_der() -> None:
    pem = _certificate("Bank A")
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert fingerprint_of_certificate(pem) == fingerprint_of_certificate(der) == _sha256(pem)
    for junk in (
        b"",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\x30\x03",
    ):
        with pytest.raises(ApiClientError, match=r"not an X\.509 certificate"):
            fingerprint_of_certificate(junk)


def test_clients_cert_command(tmp_path: Path, sqlite_url: str) -> None:
    # Each command is a fresh interpreter (seconds on a busy machine): only what the command
    # line adds (reading the file, spellings of the fingerprint, errors) is run here.
    cli = Cli(tmp_path / "home", sqlite_url)
    svc = make_service(make_settings(cli.home, sqlite_url))
    svc.credentials.init(now=NOW, actor="test")
    svc.infra.db.dispose()
    pem = _certificate("Bank A")
    (tmp_path / "bank.pem").write_bytes(pem)

    added = cli(
        "clients",
        "add",
        "Bank A",
        "--scope",
        "payroll",
        "--cert",
        str(tmp_path / "bank.pem"),
        "--json",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["cert_sha256"] == _sha256(pem)

    colons = ":".join(_sha256(pem)[i : i + 2] for i in range(0, 64, 2)).upper()
    bound = cli("clients", "cert", "Bank A", "--fingerprint", colons, "--json")
    assert json.loads(bound.stdout)["cert_sha256"] == _sha256(pem)

    bad = cli("clients", "cert", "Bank A", "--fingerprint", "12:34")
    assert bad.returncode == 21 and "64 hex digits" in bad.stderr
    cleared = cli("clients", "cert", "Bank A", "--clear")
    assert cleared.returncode == 0 and "secret alone" in cleared.stderr
