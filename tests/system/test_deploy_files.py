"""The production example in deploy/ and the container files, checked by the real tools where
they exist on a CI machine: ``nginx -t`` and ``systemd-analyze verify``. (Docker itself cannot
run here: the compose file and the Dockerfile are checked as documents.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("idsvc-*.*"))


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install {package}", pytrace=False)
    return found


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=subject == issuer[0], path_length=None), True)
        .sign(issuer[1], hashes.SHA256())
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = _tool("nginx", "nginx")
    etc = tmp_path / "etc"
    (etc / "tls").mkdir(parents=True)
    for name in ("id.example.gov", "banks.id.example.gov"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(name, key, (name, key))
        (etc / "tls" / f"{name}.fullchain.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
        )
        (etc / "tls" / f"{name}.key.pem").write_bytes(_pem_key(key))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Banks CA", ca_key, ("Banks CA", ca_key))
    (etc / "tls" / "banks-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(datetime.now(UTC))
        .next_update(datetime.now(UTC) + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    (etc / "tls" / "banks-ca.crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    shutil.copy(DEPLOY / "nginx" / "nginx-proxy.conf", etc / "nginx-proxy.conf")
    site = (DEPLOY / "nginx" / "idsvc.conf").read_text()
    site = site.replace("/etc/idsvc/", f"{etc}/").replace("/var/lib/idsvc", str(tmp_path))
    (tmp_path / "idsvc.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp} include {tmp_path}/idsvc.conf; }}\n"
    )
    proc = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr
    # The header idsvc trusts is overwritten on every path: set from a verified client
    # certificate on the banks' name, emptied on the public one.
    assert site.count("proxy_set_header X-Client-Cert $idsvc_client_cert;") == 1
    assert site.count('proxy_set_header X-Client-Cert "";') == 2
    assert "SUCCESS $ssl_client_escaped_cert;" in site
    assert "ssl_verify_client on;" in site


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze", "systemd")
    names = {u.name for u in UNITS}
    assert {"idsvc-api.service", "idsvc-webhooks.service", "idsvc-publish.service"} <= names
    assert {"idsvc-sweep.timer", "idsvc-publish.timer", "idsvc-backup.timer"} <= names
    for unit in UNITS:
        text = unit.read_text()
        # CI has no /opt/idsvc, no idsvc user and no credentials: stand those in, keep the rest.
        text = text.replace("/opt/idsvc/.venv/bin/idsvc", "/bin/true")
        text = re.sub(r"^(User|Group)=idsvc$", r"\1=root", text, flags=re.M)
        text = re.sub(r"^EnvironmentFile=.*$", "EnvironmentFile=-/nonexistent", text, flags=re.M)
        (tmp_path / unit.name).write_text(text)
    proc = subprocess.run(
        [analyze, "verify", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    api = (DEPLOY / "systemd" / "idsvc-api.service").read_text()
    assert "idsvc serve --host 127.0.0.1 --port 8000 --workers" in api
    assert "User=idsvc" in api and "NoNewPrivileges=yes" in api


def test_compose_file_starts_idsvc_with_postgresql() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert {"postgres", "init", "idsvc"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        if image:
            assert re.search(r":\d+\.\d+[\w.-]*$|@sha256:[0-9a-f]{64}$", image), (name, image)
        env = service.get("environment", {})
        for key, value in env.items():
            assert not re.search(r"PASSWORD$|PASSPHRASE$|_PIN$", key), (name, key)
            if "://" in str(value):
                assert urlsplit(str(value)).password is None, (name, key)  # not in a URL
    api = services["idsvc"]
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert api["environment"]["IDSVC_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert all(p.startswith("127.0.0.1:") for p in api["ports"])
    assert set(doc["secrets"]) >= {"key-passphrase", "postgres-password"}


def test_dockerfile_pins_its_base_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert bases
    for base in bases:
        assert re.search(r":\d+\.\d+\.\d+-[\w-]+$|@sha256:[0-9a-f]{64}$", base), base
    after_last_from = text.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", after_last_from, flags=re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert "HEALTHCHECK" in after_last_from
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".idsvc", ".venv", ".git", "*.pem"} <= set(ignored)  # no keys or data in the image
