"""What a remote desk machine keeps in its data folder (``$IDSVC_HOME/desk/``), and nothing more:

- ``desk-key.pem``   the desk's own P-256 private key (PKCS#8, 0600), made at enrolment;
- ``desk.json``      the centre's URL, the desk's name and office, the enrolment receipt;
- ``issuer-ca.pem``  the issuer CA certificate (public), to check card certificates;
- ``session.json``   the signed-in operator's session token (0600), until it expires;
- ``pending.json``   the issuance in progress (credential id and step), for ``desk retry``;
- ``pending-wipes.json`` cards wiped with ``card wipe --offline`` (0600), until the centre has
  been told (the next request to it sends them).

No issuer key, no database and no register ever land here. Errors: ``DeskRefused`` when the
folder is missing, incomplete or readable by others.

Enrolment replaces files only once the centre has accepted the new key: the key, the config
and the CA are written beside the old ones (``*.new``, fsynced), then renamed, ``desk.json``
first. That rename is the commit point: a machine stopped before it keeps its old files (the
``*.new`` are removed at the next start), one stopped after it finishes the other renames at
the next start (the staged key is recognised by the thumbprint ``desk.json`` names).
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

from idsvc.desk_client.folder import desk_config, desk_folder
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


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) and fsync it: a rename that follows cannot expose a short file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    _write_synced(tmp, data)
    os.replace(tmp, path)


def _staged(path: Path) -> Path:
    return path.with_name(path.name + ".new")


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

    def pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _thumbprint_of(pem: bytes) -> str | None:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        return None  # a staged key cut short: not the one desk.json names
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return DeskKeySigner(key).kid


@dataclass(frozen=True)
class DeskSession:
    token: str
    operator: str
    expires_at: datetime


class DeskIdentity:
    def __init__(self, home: Path) -> None:
        self.folder = desk_folder(home)
        self.key_path = self.folder / "desk-key.pem"
        self.config_path = desk_config(home)
        self.ca_path = self.folder / "issuer-ca.pem"
        self.session_path = self.folder / "session.json"
        self.pending_path = self.folder / "pending.json"
        self.wipes_path = self.folder / "pending-wipes.json"
        self._settle_enrolment()

    # -- enrolment --------------------------------------------------------------------------
    def enrolled(self) -> bool:
        return self.config_path.exists()

    def check_may_enrol(self, *, re_enrol: bool) -> None:
        """Refuse a second enrolment unless asked for on purpose, before anything is touched:
        the centre would refuse a used code, and the desk must keep working meanwhile."""
        if re_enrol or not self.enrolled():
            return
        config = self.config()
        raise DeskRefused(
            f"this machine is already desk {config['desk']} of {config['centre']}; nothing was "
            "changed. To enrol it again on purpose (new key, another centre), an admin at the "
            f"centre runs `idsvc desks new-code {config['desk']}`, then here: `idsvc desk enrol "
            "--centre URL --code CODE --re-enrol` (the old key stops working at the centre)"
        )

    def new_key(self) -> DeskKeySigner:
        """A fresh key pair for enrolment, in memory only: it replaces nothing until the centre
        has accepted it (``save_enrolment``)."""
        return DeskKeySigner(ec.generate_private_key(ec.SECP256R1()))

    def save_enrolment(
        self, signer: DeskKeySigner, centre_url: str, answer: dict[str, Any], ca_der: bytes
    ) -> None:
        """Store what the centre accepted: staged and fsynced beside the old files, then
        renamed, ``desk.json`` first (the commit point; see the module docstring)."""
        config = {
            "centre": centre_url.rstrip("/"),
            "desk": answer["name"],
            "office": answer["office"],
            "key_thumbprint": answer["key_thumbprint"],
            "receipt": answer["receipt"],
        }
        ca = x509.load_der_x509_certificate(ca_der).public_bytes(serialization.Encoding.PEM)
        files = [
            (self.key_path, signer.pem()),
            (self.ca_path, ca),
            (self.config_path, json.dumps(config, indent=2).encode()),
        ]
        try:
            for path, data in files:
                _write_synced(_staged(path), data)
            _sync_folder(self.folder)
            os.replace(_staged(self.config_path), self.config_path)  # the commit point
        except OSError as exc:
            for path, _ in files:
                _staged(path).unlink(missing_ok=True)
            raise DeskRefused(
                f"could not store the enrolment in {self.folder} ({exc.strerror}); this "
                "desk's files are as they were, but the centre holds the new key: ask for a "
                "new code and enrol again with --re-enrol"
            ) from exc
        self._settle_enrolment()
        self.clear_session()

    def _settle_enrolment(self) -> None:
        """Finish or undo an enrolment stopped part-way (see the module docstring)."""
        staged = [_staged(p) for p in (self.key_path, self.ca_path, self.config_path)]
        if not any(p.exists() for p in staged):
            return
        forward = False
        if not staged[2].exists() and staged[0].exists() and self.config_path.exists():
            try:
                named = json.loads(self.config_path.read_bytes()).get("key_thumbprint")
            except (OSError, ValueError, AttributeError):
                named = None  # unreadable: keep what is there, drop what was staged
            forward = named is not None and _thumbprint_of(staged[0].read_bytes()) == named
        elif not staged[2].exists() and not staged[0].exists():
            forward = True  # only the CA was left: the key went in after desk.json
        for path in (self.ca_path, self.key_path):
            if _staged(path).exists():
                if forward:
                    os.replace(_staged(path), path)
                else:
                    _staged(path).unlink()
        staged[2].unlink(missing_ok=True)
        _sync_folder(self.folder)

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

    # -- cards wiped without the centre (`card wipe --offline`), until it has been told --------
    def add_wipe_report(self, report: dict[str, Any]) -> None:
        _write_private(self.wipes_path, json.dumps([*self.wipe_reports(), report]).encode())

    def wipe_reports(self) -> list[dict[str, Any]]:
        if not self.wipes_path.exists():
            return []
        reports: list[dict[str, Any]] = json.loads(_read_private(self.wipes_path))
        return reports

    def clear_wipe_reports(self, report_ids: set[str]) -> None:
        """Forget the reports the centre has recorded (others, added meanwhile, stay)."""
        left = [r for r in self.wipe_reports() if r["report_id"] not in report_ids]
        if left:
            _write_private(self.wipes_path, json.dumps(left).encode())
        else:
            self.wipes_path.unlink(missing_ok=True)
