"""Mutual TLS end to end: the production nginx site (deploy/nginx/idsvc.conf, only its paths and
ports changed) in front of idsvc, a bank's client certificate from the banks' CA, and the
certificate's SHA-256 mapped to the bank's API client. Real nginx, real TLS, real HTTP.

- the bank's certificate alone opens the payroll API (200);
- no certificate, or one from another CA: nginx refuses the handshake's result (400);
- on the public name, a caller's own ``X-Client-Cert`` header is dropped by nginx (401).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idsvc.clients.api_clients import ApiClients, fingerprint_of_certificate
from tests.support.http import api_for
from tests.support.settings import NOW, make_service, make_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "nginx"
FEED = "/v1/payroll/changes"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _issue(name: str, by: Issued | None, *, ca: bool = False, server: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.now(UTC) - timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(by.cert.subject if by else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
        )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return Issued(key, builder.sign(by.key if by else key, hashes.SHA256()))


@dataclass
class Front:
    port: int
    ca_bundle: Path
    bank: tuple[str, str]  # (cert file, key file)
    stranger: tuple[str, str]
    bank_pem: bytes
    clients: ApiClients


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed: apt-get install nginx", pytrace=False)
    tmp = tmp_path_factory.mktemp("mtls")
    etc = tmp / "etc"
    (etc / "tls").mkdir(parents=True)
    servers = {
        name: _issue(name, None, server=True) for name in ("id.example.gov", "banks.id.example.gov")
    }
    for name, issued in servers.items():
        (etc / "tls" / f"{name}.fullchain.pem").write_bytes(issued.pem())
        (etc / "tls" / f"{name}.key.pem").write_bytes(issued.key_pem())
    banks_ca = _issue("Banks CA", None, ca=True)
    (etc / "tls" / "banks-ca.pem").write_bytes(banks_ca.pem())
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(banks_ca.cert.subject)
        .last_update(datetime.now(UTC) - timedelta(minutes=5))
        .next_update(datetime.now(UTC) + timedelta(days=1))
        .sign(banks_ca.key, hashes.SHA256())
    )
    (etc / "tls" / "banks-ca.crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    bank = _issue("Bank A payroll", banks_ca)
    stranger = _issue("Bank A payroll", _issue("Some other CA", None, ca=True))
    files = {}
    for label, issued in (("bank", bank), ("stranger", stranger)):
        (tmp / f"{label}.pem").write_bytes(issued.pem())
        (tmp / f"{label}.key").write_bytes(issued.key_pem())
        files[label] = (str(tmp / f"{label}.pem"), str(tmp / f"{label}.key"))
    bundle = tmp / "servers.pem"
    bundle.write_bytes(b"".join(s.pem() for s in servers.values()))

    home = tmp / "home"
    svc = make_service(
        make_settings(home, f"sqlite:///{tmp / 'idsvc.sqlite3'}", trusted_proxies="127.0.0.1")
    )
    svc.credentials.init(now=NOW, actor="test-admin")
    clients = ApiClients(svc.infra.db)
    clients.add("Bank A", ["payroll"], NOW, cert_sha256=fingerprint_of_certificate(bank.pem()))

    tls_port, plain_port = _free_port(), _free_port()
    with api_for(svc) as api:
        api_port = api.base_url.rsplit(":", 1)[1]
        shutil.copy(DEPLOY / "nginx-proxy.conf", etc / "nginx-proxy.conf")
        site = (DEPLOY / "idsvc.conf").read_text()
        for old, new in (
            ("/etc/idsvc/", f"{etc}/"),
            ("/var/lib/idsvc", str(tmp)),
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{api_port};"),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl;"),
            ("listen [::]:443 ssl http2;", ""),
            ("listen 80;", f"listen 127.0.0.1:{plain_port};"),
            ("listen [::]:80;", ""),
        ):
            assert old in site, old
            site = site.replace(old, new)
        (tmp / "idsvc.conf").write_text(site)
        temp = " ".join(
            f"{kind}_temp_path {tmp}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (tmp / "nginx.conf").write_text(
            f"user root;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
            f"daemon off;\nworker_processes 1;\nevents {{}}\n"
            f"http {{ access_log off; {temp} include {tmp}/idsvc.conf; }}\n"
        )
        proc = subprocess.Popen(
            [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"nginx did not start: {(tmp / 'error.log').read_text()}"
                        ) from None
                    time.sleep(0.05)
            yield Front(tls_port, bundle, files["bank"], files["stranger"], bank.pem(), clients)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    svc.infra.db.dispose()


def _get(
    front: Front, host: str, cert: tuple[str, str] | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(front.ca_bundle))
    if cert is not None:
        context.load_cert_chain(*cert)
    with httpx.Client(verify=context, timeout=10.0) as http:
        return http.get(
            f"https://127.0.0.1:{front.port}{FEED}",
            headers={"host": host, **(headers or {})},
            extensions={"sni_hostname": host},
        )


def test_bank_certificate_through_nginx_authenticates_the_client(front: Front) -> None:
    r = _get(front, "banks.id.example.gov", front.bank)
    assert r.status_code == 200, r.text
    assert "events" in r.json() or "cursor" in r.json()


def test_no_certificate_or_a_stranger_is_refused_by_nginx(front: Front) -> None:
    assert _get(front, "banks.id.example.gov", None).status_code == 400
    assert _get(front, "banks.id.example.gov", front.stranger).status_code == 400


def test_forged_header_on_the_public_name_is_dropped(front: Front) -> None:
    forged = {"x-client-cert": quote(front.bank_pem.decode(), safe="")}
    r = _get(front, "id.example.gov", None, forged)
    assert r.status_code == 401, r.text
    # The same request on the banks' name, with a stranger's TLS certificate but the bank's
    # certificate in a header: nginx answers before idsvc sees anything.
    assert _get(front, "banks.id.example.gov", front.stranger, forged).status_code == 400


def test_a_disabled_client_is_refused_even_with_its_certificate(front: Front) -> None:
    front.clients.disable("Bank A", NOW)
    try:
        assert _get(front, "banks.id.example.gov", front.bank).status_code == 401
    finally:
        front.clients.enable("Bank A", NOW)
    assert _get(front, "banks.id.example.gov", front.bank).status_code == 200
