"""The use cases, one method each, over one database and one set of issuer keys.

The CLI and the API build one ``IdService`` per process (``IdService.from_settings``) and call
exactly one method per command or route, passing ``now``. Each method is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardio.qr import QrSize, version_for
from idsvc.audit import chain as audit
from idsvc.config import DEFAULT_ISSUER as DEFAULT_ISSUER  # re-exported for callers
from idsvc.config import Settings
from idsvc.credentials import issuers
from idsvc.credentials.issuance import (
    IssuancePolicy,
    KeyAttestation,
    PendingIssuance,
    abandon_issuance,
    begin_issuance,
    confirm_issuance,
    eligible_servant,
    issue_credential,
)
from idsvc.credentials.issuers import Issuer
from idsvc.credentials.publication import JwksDocuments, Published, StatusListTokens
from idsvc.credentials.state import change_credential_state, get_credential
from idsvc.credentials.status_lists import (
    StatusListNotFound,
    list_by_name,
    status_at,
    status_list_token,
)
from idsvc.errors import NotInitialised
from idsvc.formats.claim169 import keys_by_hint
from idsvc.register import records as register
from idsvc.storage.db import (
    Database,
    SchemaOutdated,
    check_connection,
    require_current_schema,
    upgrade,
)
from idsvc.storage.tables import CivilServantRow, CredentialRow, StatusListRow
from idsvc.verification.rules import StatusUnavailable, VerificationResult, verify_credential
from idsvc.verification.sources import IssuerSource, verifier_sources
from keys.ca import IssuerCA
from keys.jwk import PublicKey
from keys.keyring import FileBackend, KeyRing, Pkcs11Backend
from keys.signer import Signer

PassphraseSource = Callable[[], bytes]


@dataclass(frozen=True)
class CredentialView:
    id: str
    employee_id: str
    state: str
    kid: str
    card_serial: str
    issued_at: datetime
    expires_at: datetime
    token: str
    state_reason: str | None
    qr_text: str | None = None  # the printed Claim 169 QR of the same credential

    @property
    def qr(self) -> QrSize | None:
        """QR version and payload size of ``qr_text`` at error correction M."""
        return version_for(self.qr_text) if self.qr_text else None

    @classmethod
    def of(cls, row: CredentialRow) -> CredentialView:
        return cls(
            row.id,
            row.employee_id,
            row.state,
            row.kid,
            row.card_serial,
            row.issued_at,
            row.expires_at,
            row.token,
            row.state_reason,
            row.qr_text,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "credential_id": self.id,
            "employee_id": self.employee_id,
            "state": self.state,
            "kid": self.kid,
            "card_serial": self.card_serial,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "state_reason": self.state_reason,
            "token": self.token,
            "qr_text": self.qr_text,
            "qr_version": self.qr.version if self.qr else None,
        }


class LocalTrust:
    """Trust in every issuer of this deployment, from their key rings' public keys."""

    def __init__(self, all_issuers: list[Issuer]) -> None:
        self._keys: dict[str, tuple[str, PublicKey]] = {}
        for issuer in all_issuers:
            for kid, key in issuer.ring.public_keys().items():
                self._keys[kid] = (issuer.iss, key)
        self._hints = keys_by_hint(self._keys)

    def key_for(self, kid: str) -> tuple[str, PublicKey]:
        return self._keys[kid]

    def key_for_hint(self, hint: str) -> tuple[str, PublicKey]:
        return self._hints[hint]


class DbStatus:
    def __init__(self, session: Session) -> None:
        self._session = session

    def status_of(self, uri: str, idx: int, *, iss: str, now: datetime) -> int:
        try:
            return status_at(self._session, uri, idx)
        except StatusListNotFound as exc:
            raise StatusUnavailable(uri) from exc


class DbHolders:
    def __init__(self, session: Session) -> None:
        self._session = session

    def employment_status(self, employee_id: str) -> str | None:
        row = self._session.get(CivilServantRow, employee_id)
        return None if row is None else row.status


class IdService:
    def __init__(
        self, settings: Settings, db: Database, passphrase: PassphraseSource | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self._passphrase = passphrase
        self.rings = issuers.KeyRings(settings.keys_dir)
        self._schema_checked = False
        self._signers: dict[str, Signer] = {}
        self._status_tokens = StatusListTokens(settings.status_list_lifetime)
        self._jwks_documents = JwksDocuments()

    @classmethod
    def from_settings(
        cls, settings: Settings, passphrase: PassphraseSource | None = None
    ) -> IdService:
        return cls(settings, Database(settings.resolved_database_url), passphrase)

    # -- keys ---------------------------------------------------------------------------------
    @cached_property
    def key_backend(self) -> FileBackend | Pkcs11Backend:
        s = self.settings
        if s.pkcs11_module:
            if not s.pkcs11_token or s.pkcs11_pin is None:
                raise NotInitialised("IDSVC_PKCS11_TOKEN and IDSVC_PKCS11_PIN must be set")
            return Pkcs11Backend(s.pkcs11_module, s.pkcs11_token, s.pkcs11_pin.get_secret_value())
        if self._passphrase is None:
            raise NotInitialised("no key passphrase: set IDSVC_KEY_PASSPHRASE(_FILE)")
        return FileBackend(self._passphrase())

    def issuer(self, session: Session, slug: str = DEFAULT_ISSUER) -> Issuer:
        return issuers.load_issuer(session, self.rings, slug)

    def signer(self, issuer: Issuer) -> Signer:
        # Decrypting a key file costs ~0.5 ms (PBKDF2); keep each active key once loaded.
        kid = issuer.ring.active().kid
        signer = self._signers.get(kid)
        if signer is None:
            signer = self._signers[kid] = issuer.ring.signer(self.key_backend)
        return signer

    def ca(self, issuer: Issuer) -> IssuerCA:
        return issuer.ring.issuer_ca(self.key_backend)

    @property
    def policy(self) -> IssuancePolicy:
        return IssuancePolicy(
            validity=timedelta(days=self.settings.credential_days),
            status_list_size=self.settings.status_list_size,
            public_url=self.settings.public_url,
            qr_date_of_birth=self.settings.qr_date_of_birth,
            attestation_ca_file=self.settings.attestation_ca_file,
            require_attestation=self.settings.require_attestation,
        )

    def _ready(self) -> None:
        # Checked once per process: reading the migration scripts costs ~4 ms, and a schema
        # does not go backwards under a running service (a dead database still fails loudly
        # at the next transaction).
        if self._schema_checked:
            return
        try:
            require_current_schema(self.db.engine)
        except SchemaOutdated as exc:
            raise NotInitialised(str(exc)) from exc
        self._schema_checked = True

    # -- use cases ----------------------------------------------------------------------------
    def init(
        self, *, now: datetime, actor: str, slug: str = DEFAULT_ISSUER, iss: str | None = None
    ) -> tuple[Issuer, bool]:
        """Create or upgrade the schema; create the issuer and its keys if missing."""
        self.settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        upgrade(self.db.engine)
        self._schema_checked = True
        directory = self.settings.keys_dir / issuers.check_slug(slug)
        created = False
        with self.db.transaction() as session:
            row = issuers.register_issuer(
                session,
                iss=iss or self.settings.issuer,
                slug=slug,
                name=self.settings.issuer_name,
                actor=actor,
                now=now,
            )
            if not KeyRing.exists(directory):
                ring = KeyRing.create(
                    directory,
                    alg=self.settings.key_alg or "ES256",
                    now=now,
                    backend=self.key_backend,
                    ca_name=row.name,
                )
                created = True
                audit.record(
                    session,
                    at=now,
                    actor=actor,
                    action="key.create",
                    target_type="issuer",
                    target_id=slug,
                    details={"kid": ring.active().kid, "alg": ring.active().alg},
                )
            return issuers.load_issuer(session, self.rings, slug), created

    def import_hr(
        self,
        data: bytes | BinaryIO,
        *,
        source_name: str,
        actor: str,
        now: datetime,
        progress: Callable[[int], None] | None = None,
    ) -> register.ImportReport:
        self._ready()
        with self.db.transaction() as session:
            return register.import_hr(
                session,
                data,
                source_name=source_name,
                actor=actor,
                now=now,
                progress=progress,
                max_file_bytes=self.settings.hr_max_file_mb * 1024 * 1024,
            )

    def correct_status(
        self,
        employee_id: str,
        status: str,
        *,
        status_date: date,
        reason: str,
        actor: str,
        now: datetime,
    ) -> tuple[str, str]:
        """An audited HR status correction (see ``register.correct_status``)."""
        self._ready()
        with self.db.transaction() as session:
            return register.correct_status(
                session,
                employee_id,
                status,
                status_date=status_date,
                reason=reason,
                actor=actor,
                now=now,
            )

    def issue(
        self,
        employee_id: str,
        *,
        actor: str,
        now: datetime,
        issuer_slug: str = DEFAULT_ISSUER,
        qr_photo: bool = False,
    ) -> CredentialView:
        self._ready()
        with self.db.transaction() as session:
            issuer = self.issuer(session, issuer_slug)
            row = issue_credential(
                session,
                employee_id=employee_id,
                issuer=issuer,
                signer=self.signer(issuer),
                policy=self.policy,
                actor=actor,
                now=now,
                qr_photo=qr_photo,
            )
            return CredentialView.of(row)

    def change_state(
        self, credential_id: str, action: str, *, reason: str, actor: str, now: datetime
    ) -> CredentialView:
        self._ready()
        with self.db.transaction() as session:
            row = change_credential_state(
                session, credential_id, action, reason=reason, actor=actor, now=now
            )
            return CredentialView.of(row)

    def credential(self, credential_id: str) -> CredentialView:
        self._ready()
        with self.db.transaction() as session:
            return CredentialView.of(get_credential(session, credential_id))

    def credentials_of(self, employee_id: str) -> list[CredentialView]:
        self._ready()
        with self.db.transaction() as session:
            register.get_servant(session, employee_id)
            rows = session.execute(
                select(CredentialRow)
                .where(CredentialRow.employee_id == employee_id)
                .order_by(CredentialRow.issued_at)
            ).scalars()
            return [CredentialView.of(r) for r in rows]

    def verify(
        self, token: str, *, now: datetime, card_key: PublicKey | None = None
    ) -> VerificationResult:
        self._ready()
        with self.db.transaction() as session:
            trust = LocalTrust(issuers.load_issuers(session, self.rings))
            return verify_credential(
                token,
                trust=trust,
                status=DbStatus(session),
                holders=DbHolders(session),
                now=now,
                card_key=card_key,
            )

    def rotate_key(
        self, *, actor: str, now: datetime, issuer_slug: str = DEFAULT_ISSUER
    ) -> tuple[str, str]:
        """Make a new signing key active; return (old kid, new kid)."""
        self._ready()
        with self.db.transaction() as session:
            return self.rotate_key_in(session, issuer_slug=issuer_slug, actor=actor, now=now)

    def rotate_key_in(
        self, session: Session, *, issuer_slug: str, actor: str, now: datetime
    ) -> tuple[str, str]:
        """``rotate_key`` inside the caller's transaction (the centre's approved rotation)."""
        issuer = self.issuer(session, issuer_slug)
        old = issuer.ring.active().kid
        # IDSVC_KEY_ALG, when set, is the algorithm of the new key (keep it otherwise).
        entry = issuer.ring.rotate(self.key_backend, now=now, alg=self.settings.key_alg)
        audit.record(
            session,
            at=now,
            actor=actor,
            action="key.rotate",
            target_type="issuer",
            target_id=issuer_slug,
            details={"old_kid": old, "new_kid": entry.kid, "alg": entry.alg},
        )
        return old, entry.kid

    def key_entries(self, issuer_slug: str = DEFAULT_ISSUER) -> list[Any]:
        self._ready()
        with self.db.transaction() as session:
            return list(self.issuer(session, issuer_slug).ring.entries())

    def jwks(self, issuer_slug: str = DEFAULT_ISSUER) -> dict[str, Any]:
        self._ready()
        with self.db.transaction() as session:
            return self.issuer(session, issuer_slug).ring.jwks()

    def jwks_document(self, issuer_slug: str = DEFAULT_ISSUER) -> Published:
        """The JWKS as served (bytes and content tag), kept until the key ring changes."""
        self._ready()
        return self._jwks_documents.document(self.db, self.rings, issuer_slug)

    def verifier_sources(self) -> list[IssuerSource]:
        """Every issuer and status list an offline verifier must download (the web app)."""
        self._ready()
        with self.db.transaction() as session:
            return verifier_sources(session)

    def status_list_token(self, name: str, *, now: datetime) -> str:
        self._ready()
        with self.db.transaction() as session:
            return self._sign_status_list(session, list_by_name(session, name), now)

    def status_list_document(self, name: str, *, now: datetime) -> Published:
        """The signed status list as served, re-signed only when its content or the minute
        (``now``, minute-aligned by the caller) moved; see ``idsvc.credentials.publication``."""
        self._ready()

        def sign(session: Session, list_row: StatusListRow) -> str:
            return self._sign_status_list(session, list_row, now)

        return self._status_tokens.token(self.db, name, now=now, sign=sign)

    def _sign_status_list(self, session: Session, list_row: StatusListRow, now: datetime) -> str:
        issuer = next(
            i for i in issuers.load_issuers(session, self.rings) if i.id == list_row.issuer_id
        )
        return status_list_token(
            session,
            list_row,
            self.signer(issuer),
            iss=issuer.iss,
            now=now,
            ttl=self.settings.status_list_ttl,
            lifetime=self.settings.status_list_lifetime,
        )

    def verify_audit(self) -> audit.AuditCheck:
        self._ready()
        with self.db.transaction() as session:
            return audit.verify_chain(session)

    # -- card desk (the centre's half of the issuance protocol) ---------------------------------
    def begin_card_issuance(
        self,
        employee_id: str,
        *,
        card_key: EllipticCurvePublicKey,
        card_uuid: uuid.UUID,
        actor: str,
        now: datetime,
        issuer_slug: str = DEFAULT_ISSUER,
        attestation: KeyAttestation | None = None,
    ) -> PendingIssuance:
        self._ready()
        with self.db.transaction() as session:
            issuer = self.issuer(session, issuer_slug)
            return begin_issuance(
                session,
                attestation=attestation,
                employee_id=employee_id,
                issuer=issuer,
                signer=self.signer(issuer),
                policy=self.policy,
                actor=actor,
                now=now,
                card_key=card_key,
                card_uuid=card_uuid,
                ca=self.ca(issuer),
            )

    def check_eligible(self, employee_id: str) -> None:
        self._ready()
        with self.db.transaction() as session:
            eligible_servant(session, employee_id)

    def confirm_issuance(self, credential_id: str, *, actor: str, now: datetime) -> CredentialView:
        with self.db.transaction() as session:
            return CredentialView.of(confirm_issuance(session, credential_id, actor=actor, now=now))

    def abandon_issuance(
        self, credential_id: str, *, reason: str, actor: str, now: datetime
    ) -> None:
        with self.db.transaction() as session:
            abandon_issuance(session, credential_id, reason=reason, actor=actor, now=now)

    def ca_certificates(self) -> list[x509.Certificate]:
        self._ready()
        with self.db.transaction() as session:
            return [i.ring.ca_certificate() for i in issuers.load_issuers(session, self.rings)]

    def ca_certificate(self, issuer_slug: str = DEFAULT_ISSUER) -> x509.Certificate:
        self._ready()
        with self.db.transaction() as session:
            return self.issuer(session, issuer_slug).ring.ca_certificate()

    def health(self) -> dict[str, str]:
        self._ready()
        check_connection(self.db.engine)
        return {"status": "ok"}
