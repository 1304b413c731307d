"""The credentials feature: issuers and their keys, issuance (direct and the card protocol),
credential state, status lists and the published key sets. One method per command or route,
one transaction each, ``now`` passed in.

Revocation, re-issue after loss and key rotation are sensitive: they go through the
maker-checker gate (``idsvc.staff.maker_checker``), which performs them with the ``perform_*``
functions below, whether at once or once approved.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc import DEFAULT_ISSUER
from idsvc.audit import chain as audit
from idsvc.credentials import issuers
from idsvc.credentials.handover import KeyAttestation, PendingIssuance
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.credentials.issuance import (
    IssuancePolicy,
    abandon_issuance,
    begin_issuance,
    confirm_issuance,
    eligible_servant,
    issue_credential,
)
from idsvc.credentials.issuers import Issuer
from idsvc.credentials.publication import JwksDocuments, Published, StatusListTokens
from idsvc.credentials.state import change_credential_state, get_credential
from idsvc.credentials.status_lists import list_by_name, status_list_token
from idsvc.credentials.views import CredentialView
from idsvc.errors import NotPermitted
from idsvc.register import records as register
from idsvc.staff import approval_actions
from idsvc.staff.maker_checker import Done, MakerChecker, Pending
from idsvc.staff.operators import Actor
from idsvc.storage.db import upgrade
from idsvc.storage.tables import LIVE_STATES, CredentialRow, StatusListRow
from keys.keyring import KeyRing

STATE_ROLES = frozenset({"issuer", "supervisor"})  # who may ask to revoke


class Credentials:
    def __init__(
        self, infra: Infrastructure, gate: MakerChecker, *, card_issuer: str = DEFAULT_ISSUER
    ) -> None:
        self.infra = infra
        self.settings = infra.settings
        self.gate = gate
        self.card_issuer = card_issuer  # the issuer of card issuances (the protocol names none)
        self._status_tokens = StatusListTokens(infra.settings.status_list_lifetime)
        self._jwks_documents = JwksDocuments()

    @property
    def policy(self) -> IssuancePolicy:
        s = self.settings
        return IssuancePolicy(
            validity=timedelta(days=s.credential_days),
            status_list_size=s.status_list_size,
            public_url=s.public_url,
            qr_date_of_birth=s.qr_date_of_birth,
            attestation_ca_file=s.attestation_ca_file,
            require_attestation=s.require_attestation,
        )

    # -- the issuer -------------------------------------------------------------------------
    def init(
        self, *, now: datetime, actor: str, slug: str = DEFAULT_ISSUER, iss: str | None = None
    ) -> tuple[Issuer, bool]:
        """Create or upgrade the schema; create the issuer and its keys if missing."""
        infra = self.infra
        self.settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        upgrade(infra.db.engine)
        infra.mark_ready()
        directory = self.settings.keys_dir / issuers.check_slug(slug)
        created = False
        with infra.db.transaction() as session:
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
                    backend=infra.key_backend,
                    ca_name=row.name,
                    issuer_uri=row.iss,
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
            return issuers.load_issuer(session, infra.rings, slug), created

    # -- issuance ---------------------------------------------------------------------------
    def issue(
        self,
        employee_id: str,
        *,
        actor: str,
        now: datetime,
        issuer_slug: str = DEFAULT_ISSUER,
        qr_photo: bool = False,
    ) -> CredentialView:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            issuer = self.infra.issuer(session, issuer_slug)
            row = issue_credential(
                session,
                employee_id=employee_id,
                issuer=issuer,
                signer=self.infra.signer(issuer),
                policy=self.policy,
                actor=actor,
                now=now,
                qr_photo=qr_photo,
            )
            return CredentialView.of(row)

    def check_eligible(self, employee_id: str) -> None:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            eligible_servant(session, employee_id)

    def for_card_issuer(self, issuer_slug: str) -> Credentials:
        """This feature issuing cards for ``issuer_slug`` (``idsvc issue --reader --issuer``)."""
        return Credentials(self.infra, self.gate, card_issuer=issuer_slug)

    def begin_card_issuance(
        self,
        employee_id: str,
        *,
        card_key: EllipticCurvePublicKey,
        card_uuid: uuid.UUID,
        actor: str,
        now: datetime,
        attestation: KeyAttestation | None = None,
    ) -> PendingIssuance:
        """The centre's half of card issuance, step 1 (``idsvc.desk_client.cards``)."""
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            issuer = self.infra.issuer(session, self.card_issuer)
            return begin_issuance(
                session,
                attestation=attestation,
                employee_id=employee_id,
                issuer=issuer,
                signer=self.infra.signer(issuer),
                policy=self.policy,
                actor=actor,
                now=now,
                card_key=card_key,
                card_uuid=card_uuid,
                ca=self.infra.ca(issuer),
            )

    def confirm_issuance(self, credential_id: str, *, actor: str, now: datetime) -> CredentialView:
        with self.infra.db.transaction() as session:
            return CredentialView.of(confirm_issuance(session, credential_id, actor=actor, now=now))

    def abandon_issuance(
        self, credential_id: str, *, reason: str, actor: str, now: datetime
    ) -> None:
        with self.infra.db.transaction() as session:
            abandon_issuance(session, credential_id, reason=reason, actor=actor, now=now)

    # -- state ------------------------------------------------------------------------------
    def change_state(
        self,
        credential_id: str,
        action: Literal["suspend", "reinstate"],
        *,
        reason: str,
        actor: str,
        now: datetime,
    ) -> CredentialView:
        """Suspend or reinstate (revocation is ``revoke``: it may need a second person)."""
        if action not in ("suspend", "reinstate"):
            raise ValueError(f"{action!r}: only suspend and reinstate change state here")
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            row = change_credential_state(
                session, credential_id, action, reason=reason, actor=actor, now=now
            )
            return CredentialView.of(row)

    def revoke(
        self, credential_id: str, *, reason: str, by: Actor | None, now: datetime
    ) -> CredentialView | Pending:
        if not reason.strip():
            raise NotPermitted("a reason is required")
        done = self.gate.act(
            "revoke", credential_id, {"reason": reason}, by=by, roles=STATE_ROLES, now=now
        )
        return done if isinstance(done, Pending) else done.value

    def declare_lost(
        self, employee_id: str, *, reason: str, by: Actor | None, now: datetime
    ) -> str | Pending:
        """Re-issue after loss, step 1: revoke the person's live cards so a new one can be
        issued (the approval action ``reissue_after_loss``)."""
        done = self.gate.act(
            "reissue_after_loss",
            employee_id,
            {"reason": reason},
            by=by,
            roles=approval_actions.ACTIONS["reissue_after_loss"],
            now=now,
        )
        return done if isinstance(done, Pending) else done.outcome

    def credential(self, credential_id: str) -> CredentialView:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return CredentialView.of(get_credential(session, credential_id))

    def credentials_of(self, employee_id: str) -> list[CredentialView]:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            register.get_servant(session, employee_id)
            rows = session.execute(
                select(CredentialRow)
                .where(CredentialRow.employee_id == employee_id)
                .order_by(CredentialRow.issued_at)
            ).scalars()
            return [CredentialView.of(r) for r in rows]

    # -- keys -------------------------------------------------------------------------------
    def rotate_key(
        self, *, issuer_slug: str = DEFAULT_ISSUER, by: Actor | None, now: datetime
    ) -> tuple[str, str] | Pending:
        """Make a new signing key active; return (old kid, new kid), or the pending request."""
        done = self.gate.act(
            "key_rotation",
            issuer_slug,
            {},
            by=by,
            roles=approval_actions.ACTIONS["key_rotation"],
            now=now,
        )
        return done if isinstance(done, Pending) else done.value

    def key_entries(self, issuer_slug: str = DEFAULT_ISSUER) -> list[Any]:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return list(self.infra.issuer(session, issuer_slug).ring.entries())

    def jwks(self, issuer_slug: str = DEFAULT_ISSUER) -> dict[str, Any]:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return self.infra.issuer(session, issuer_slug).ring.jwks()

    def jwks_document(self, issuer_slug: str = DEFAULT_ISSUER) -> Published:
        """The JWKS as served (bytes and content tag), kept until the key ring changes."""
        self.infra.require_ready()
        return self._jwks_documents.document(self.infra.db, self.infra.rings, issuer_slug)

    def ca_certificates(self) -> list[x509.Certificate]:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return [
                i.ring.ca_certificate() for i in issuers.load_issuers(session, self.infra.rings)
            ]

    def ca_certificate(self, issuer_slug: str = DEFAULT_ISSUER) -> x509.Certificate:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return self.infra.issuer(session, issuer_slug).ring.ca_certificate()

    # -- status lists -----------------------------------------------------------------------
    def status_list_token(self, name: str, *, now: datetime) -> str:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return self._sign_status_list(session, list_by_name(session, name), now)

    def status_list_document(self, name: str, *, now: datetime) -> Published:
        """The signed status list as served, re-signed only when its content or the minute
        (``now``, minute-aligned by the caller) moved; see ``idsvc.credentials.publication``."""
        self.infra.require_ready()

        def sign(session: Session, list_row: StatusListRow) -> str:
            return self._sign_status_list(session, list_row, now)

        return self._status_tokens.token(self.infra.db, name, now=now, sign=sign)

    def _sign_status_list(self, session: Session, list_row: StatusListRow, now: datetime) -> str:
        issuer = next(
            i for i in issuers.load_issuers(session, self.infra.rings) if i.id == list_row.issuer_id
        )
        return status_list_token(
            session,
            list_row,
            self.infra.signer(issuer),
            iss=issuer.iss,
            now=now,
            ttl=self.settings.status_list_ttl,
            lifetime=self.settings.status_list_lifetime,
        )


# -- the sensitive actions, as performed (at once or once approved) -----------------------------
def perform_revoke(
    infra: Infrastructure,
    session: Session,
    credential_id: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Done:
    row = change_credential_state(
        session, credential_id, "revoke", reason=params["reason"], actor=actor, now=now
    )
    return Done(f"credential {row.id} revoked", CredentialView.of(row))


def perform_declare_lost(
    infra: Infrastructure,
    session: Session,
    employee_id: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Done:
    live = (
        session.execute(
            select(CredentialRow.id).where(
                CredentialRow.employee_id == employee_id,
                CredentialRow.kind == "card",  # a lost card; a lost phone is revoked on its own
                CredentialRow.state.in_(LIVE_STATES),
            )
        )
        .scalars()
        .all()
    )
    for credential_id in live:
        change_credential_state(
            session,
            credential_id,
            "revoke",
            reason=f"lost: {params['reason']}",
            actor=actor,
            now=now,
        )
    return Done(
        f"{len(live)} credential(s) of {employee_id} revoked as lost; a new card may be issued"
    )


def perform_key_rotation(
    infra: Infrastructure,
    session: Session,
    issuer_slug: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Done:
    issuer = infra.issuer(session, issuer_slug)
    old = issuer.ring.active().kid
    # IDSVC_KEY_ALG, when set, is the algorithm of the new key (keep it otherwise).
    entry = issuer.ring.rotate(
        infra.key_backend, now=now, alg=infra.settings.key_alg, issuer_uri=issuer.iss
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="key.rotate",
        target_type="issuer",
        target_id=issuer_slug,
        details={"old_kid": old, "new_kid": entry.kid, "alg": entry.alg},
    )
    return Done(f"rotated: {old} retired, {entry.kid} active", (old, entry.kid))
