"""What a remote desk machine keeps in its data folder (``$IDSVC_HOME/desk/``), and nothing more:

- ``desk-key.pem``   the desk's own P-256 private key (PKCS#8, 0600), made at enrolment;
- ``desk.json``      the centre's URL, the desk's name and office, the enrolment receipt;
- ``issuer-ca.pem``  the issuer CA certificate (public), to check card certificates;
- ``session.json``   the signed-in operator's session token (0600), until it expires;
- ``pending.json``   the issuance in progress (credential id and step), for ``desk retry``.

No issuer key, no database and no register ever land here. Errors: ``DeskRefused`` when the
folder is missing, incomplete or readable by others.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from idsvc.errors import DeskRefused
from idsvc.formats.desk_proof import MAX_SKEW
from keys.jwk import public_jwk, thumbprint


def desk_check_time(now: datetime) -> datetime:
    """The time at which a remote desk checks the card certificate the centre just made.

    The certificate starts at the *centre's* clock, which may run ahead of the desk's by up to
    the skew that desk proofs allow, and the desk takes its time before begin (card key
    generation). Checking as of ``now + MAX_SKEW`` accepts exactly the clocks the centre
    accepts; the certificate's long end is unaffected.
    """
    return now + timedelta(seconds=MAX_SKEW)


def desk_folder(home: Path) -> Path:
    return home / "desk"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _read_private(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise DeskRefused(
            f"{path.name} not found in {path.parent}: enrol this desk first "
            "(`idsvc desk enrol --centre URL --code CODE`)"
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DeskRefused(f"{path} is readable by others: chmod 600 {path}")
    return path.read_bytes()


class DeskKeySigner:
    """The desk key as a JWS signer (``kid`` = RFC 7638 thumbprint, raw r||s signatures)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.jwk = public_jwk(key.public_key())
        self._kid = thumbprint(self.jwk)

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def alg(self) -> str:
        return "ES256"

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass(frozen=True)
class DeskSession:
    token: str
    operator: str
    expires_at: datetime


class DeskIdentity:
    def __init__(self, home: Path) -> None:
        self.folder = desk_folder(home)
        self.key_path = self.folder / "desk-key.pem"
        self.config_path = self.folder / "desk.json"
        self.ca_path = self.folder / "issuer-ca.pem"
        self.session_path = self.folder / "session.json"
        self.pending_path = self.folder / "pending.json"

    # -- enrolment --------------------------------------------------------------------------
    def new_key(self) -> DeskKeySigner:
        """A fresh key pair for enrolment (replaces an older one: re-enrolment)."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.key_path, pem)
        return DeskKeySigner(key)

    def save_enrolment(self, centre_url: str, answer: dict[str, Any], ca_der: bytes) -> None:
        config = {
            "centre": centre_url.rstrip("/"),
            "desk": answer["name"],
            "office": answer["office"],
            "key_thumbprint": answer["key_thumbprint"],
            "receipt": answer["receipt"],
        }
        _write_private(self.config_path, json.dumps(config, indent=2).encode())
        ca = x509.load_der_x509_certificate(ca_der)
        _write_private(self.ca_path, ca.public_bytes(serialization.Encoding.PEM))
        self.clear_session()

    # -- use ----------------------------------------------------------------------------------
    def config(self) -> dict[str, str]:
        data: dict[str, str] = json.loads(_read_private(self.config_path))
        return data

    def signer(self) -> DeskKeySigner:
        key = serialization.load_pem_private_key(_read_private(self.key_path), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise DeskRefused(f"{self.key_path} is not an EC key")
        return DeskKeySigner(key)

    def ca_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(_read_private(self.ca_path))

    def save_session(self, session: DeskSession) -> None:
        body = {
            "token": session.token,
            "operator": session.operator,
            "expires_at": session.expires_at.isoformat(),
        }
        _write_private(self.session_path, json.dumps(body).encode())

    def session(self, *, now: datetime) -> DeskSession:
        try:
            data = json.loads(_read_private(self.session_path))
        except DeskRefused as exc:
            if self.session_path.exists():
                raise
            raise DeskRefused(
                "no operator is signed in at this desk: `idsvc desk login --operator NAME`"
            ) from exc
        session = DeskSession(
            data["token"], data["operator"], datetime.fromisoformat(data["expires_at"])
        )
        if now >= session.expires_at:
            self.clear_session()
            raise DeskRefused("the operator session has expired: `idsvc desk login` again")
        return session

    def clear_session(self) -> None:
        self.session_path.unlink(missing_ok=True)

    # -- the issuance in progress (for `idsvc desk retry` after a dropped link) ----------------
    def save_pending(self, credential_id: str, employee_id: str, stage: str) -> None:
        body = {"credential_id": credential_id, "employee_id": employee_id, "stage": stage}
        _write_private(self.pending_path, json.dumps(body).encode())

    def pending(self) -> dict[str, str] | None:
        if not self.pending_path.exists():
            return None
        data: dict[str, str] = json.loads(_read_private(self.pending_path))
        return data

    def clear_pending(self) -> None:
        self.pending_path.unlink(missing_ok=True)
