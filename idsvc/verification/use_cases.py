"""The verification feature over this deployment's own register: the pure rules of
``idsvc.verification.rules`` fed from the database (issuers' keys, status lists, holders).

``verify`` reads the database for each check (the CLI). The API uses ``online``, the cached
verifier that also writes the who-checked log (``idsvc.verification.online``), and
``challenges``, the card-authentication challenges; both are built on first use, so a
command that only verifies does not load them. ``LocalTrust``, ``DbStatus`` and ``DbHolders``
are the database sources both build on.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from idsvc.audit.who_checked import CheckLog
from idsvc.credentials import issuers
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.credentials.issuers import Issuer
from idsvc.credentials.status_lists import StatusListNotFound, status_at
from idsvc.formats.claim169 import keys_by_hint
from idsvc.storage.tables import CivilServantRow
from idsvc.verification.rules import StatusUnavailable, VerificationResult, verify_credential
from idsvc.verification.sources import IssuerSource, verifier_sources
from keys.jwk import PublicKey

if TYPE_CHECKING:
    from idsvc.verification.card_challenges import CardChallenges
    from idsvc.verification.online import OnlineVerifier


class Verification:
    def __init__(self, infra: Infrastructure) -> None:
        self.infra = infra

    @cached_property
    def check_log(self) -> CheckLog:
        """The who-checked log, write-behind every ``IDSVC_CHECK_LOG_FLUSH`` seconds."""
        return CheckLog(self.infra.db, flush_interval=self.infra.settings.check_log_flush)

    @cached_property
    def online(self) -> OnlineVerifier:
        from idsvc.verification.online import OnlineVerifier

        return OnlineVerifier(self.infra, check_log=self.check_log)

    @cached_property
    def challenges(self) -> CardChallenges:
        from idsvc.verification.card_challenges import CardChallenges

        return CardChallenges(self.infra, self.online)

    def verify(
        self, token: str, *, now: datetime, card_key: PublicKey | None = None
    ) -> VerificationResult:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            trust = LocalTrust(issuers.load_issuers(session, self.infra.rings))
            return verify_credential(
                token,
                trust=trust,
                status=DbStatus(session),
                holders=DbHolders(session),
                now=now,
                card_key=card_key,
            )

    def verifier_sources(self) -> list[IssuerSource]:
        """Every issuer and status list an offline verifier must download (the web app)."""
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return verifier_sources(session)


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
