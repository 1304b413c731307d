"""The wallet feature: phone credentials, presentation requests, the holder's own page.

``Wallet`` is built once per process by the composition root (``Services.wallet``); the CLI
and the API call its methods, each taking ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from idsvc.credentials.infrastructure import Infrastructure
from idsvc.credentials.use_cases import Credentials
from idsvc.errors import WalletRequestRefused
from idsvc.verification.use_cases import Verification

if TYPE_CHECKING:
    from idsvc.wallet.corrections import CorrectionView
    from idsvc.wallet.holder import HolderSession
    from idsvc.wallet.offers import AccessToken, Offer
    from idsvc.wallet.presentations import CreatedRequest, Presentations, RequestView


class Wallet:
    def __init__(
        self, infra: Infrastructure, credentials: Credentials, verification: Verification
    ) -> None:
        self.infra = infra
        self.credentials = credentials
        self.verification = verification

    # -- issuance (OpenID4VCI; idsvc.wallet.offers, .nonces, .phone_credential) ---------------
    def offer(self, employee_id: str, *, actor: str | None, now: datetime) -> Offer:
        """A single-use credential offer for the person's phone, audited as ``actor`` (None: the
        console's operator). Who may ask is the caller's check (a desk operator's role and
        office, an admin API client). ``WalletOfferRefused`` when the person cannot have one."""
        from idsvc.wallet import offers

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return offers.create_offer(
                session,
                employee_id,
                credential_issuer=self.credential_issuer,
                lifetime=timedelta(minutes=self.infra.settings.wallet_offer_minutes),
                actor=actor or self.infra.settings.operator,
                now=now,
            )

    @property
    def credential_issuer(self) -> str:
        """The credential issuer identifier: the public URL, without a trailing slash."""
        return self.infra.settings.public_url.rstrip("/")

    def token(self, *, code: str, tx_code: str | None, now: datetime) -> AccessToken:
        """The token endpoint (pre-authorized code grant); ``WalletRequestRefused``
        (``invalid_grant``) after committing the attempt a wrong transaction code spent."""
        from idsvc.wallet import offers

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            outcome = offers.redeem(session, code=code, tx_code=tx_code, now=now)
        if isinstance(outcome, WalletRequestRefused):
            raise outcome
        return outcome

    def vci_nonce(self, *, now: datetime) -> str:
        """A ``c_nonce`` for one credential request's key proof."""
        from idsvc.wallet import nonces

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return nonces.issue(session, "vci", now)

    def check_access_token(self, access_token: str, *, now: datetime) -> None:
        """``WalletRequestRefused("invalid_token")`` unless the token can buy a credential."""
        from idsvc.wallet import offers

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            offers.check_access_token(session, access_token, now)

    def issue_phone_credential(
        self, access_token: str, *, configuration_id: str, proof_jwt: str, now: datetime
    ) -> str:
        """The credential endpoint: spend the access token, check the key proof and consume
        its nonce, issue the SD-JWT VC bound to the proof's key; one transaction, so a refusal
        stores nothing (the token stays usable after ``invalid_nonce``). Returns the SD-JWT."""
        from idsvc.formats.openid4vci import ProofError, check_proof
        from idsvc.wallet import nonces, offers, phone_credential

        if configuration_id not in phone_credential.CONFIGURATIONS:
            raise WalletRequestRefused(
                "unknown_credential_configuration",
                "credential_configuration_id must be one of "
                + ", ".join(phone_credential.CONFIGURATIONS),
            )
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            offer = offers.spend_access_token(session, access_token, now)
            try:
                proof = check_proof(proof_jwt, audience=self.credential_issuer, now=now)
            except ProofError as exc:
                raise WalletRequestRefused(exc.code, exc.description) from None
            if not nonces.consume(session, proof.nonce, "vci", now):
                raise WalletRequestRefused(
                    "invalid_nonce", "the proof's nonce is unknown, used or expired: get a new one"
                )
            issuer = self.infra.issuer(session)
            signer = self.infra.signer(issuer)
            row = phone_credential.issue_phone_credential(
                session,
                employee_id=offer.employee_id,
                configuration_id=configuration_id,
                holder_jwk=proof.jwk,
                issuer=issuer,
                signer=signer,
                x5c=phone_credential.issuer_x5c(issuer, signer, self.infra.key_backend, now=now),
                policy=self.credentials.policy,
                actor=f"wallet-offer:{offer.id}",
                now=now,
            )
            offer.credential_id = row.id
            return row.token

    def issuer_metadata(self) -> dict[str, Any]:
        """The credential issuer metadata (``/.well-known/openid-credential-issuer``)."""
        from cardio.fonts import script_of
        from idsvc.wallet import phone_credential

        s = self.infra.settings
        local = None
        if s.issuer_name_local is not None:  # the setting is checked to be Lao or Khmer
            local = ("lo" if script_of(s.issuer_name_local) == "Lao" else "km", s.issuer_name_local)
        return phone_credential.credential_issuer_metadata(
            public_url=s.public_url,
            issuer_name=s.issuer_name,
            issuer_name_local=local,
            alg=self.signing_alg(),
        )

    def signing_alg(self) -> str:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return str(self.infra.issuer(session).ring.active().alg)

    def jwt_vc_issuer_metadata(self, iss_path: str) -> dict[str, Any] | None:
        """SD-JWT VC issuer metadata (``issuer`` + ``jwks``) of our issuer whose ``iss`` has
        this path (the metadata lives at ``/.well-known/jwt-vc-issuer`` + the path of ``iss``);
        None when none has it."""
        from urllib.parse import urlsplit

        from idsvc.credentials import issuers

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            for issuer in issuers.load_issuers(session, self.infra.rings):
                if urlsplit(issuer.iss).path.strip("/") == iss_path.strip("/"):
                    return {"issuer": issuer.iss, "jwks": issuer.ring.jwks()}
        return None

    # -- presentation to an official (OpenID4VP; idsvc.wallet.presentations) ---------------
    @cached_property
    def presentations(self) -> Presentations:
        # Imported here: a command that never asks a phone does not load the verifier's code.
        from idsvc.wallet.presentations import Presentations

        return Presentations(self.infra)

    def create_presentation_request(
        self,
        claims: Sequence[str] | None,
        *,
        optional: Sequence[str] | None = None,
        requested_by: str,
        now: datetime,
    ) -> CreatedRequest:
        """A new request for these claims, required, and ``optional`` ones the holder may
        leave out (both None: the default ones); ``ClaimsRefused``."""
        return self.presentations.create(
            claims, optional=optional, requested_by=requested_by, now=now
        )

    def presentation_request_object(self, request_id: str, *, now: datetime) -> str:
        """The signed request object a wallet fetches; ``UnknownPresentationRequest`` or
        ``PresentationRefused`` (answered, expired)."""
        return self.presentations.request_object(request_id, now=now)

    def answer_presentation(
        self,
        request_id: str,
        *,
        state: str | None,
        vp_token: str | None,
        error: str | None = None,
        error_description: str | None = None,
        now: datetime,
    ) -> dict[str, Any]:
        """Verify and store a wallet's answer once; ``PresentationRefused`` otherwise."""
        return self.presentations.answer(
            request_id,
            state=state,
            vp_token=vp_token,
            error=error,
            error_description=error_description,
            now=now,
        )

    def presentation_result(
        self, request_id: str, poll_token: str | None, *, now: datetime
    ) -> RequestView:
        """The request and its result, for the holder of its poll token only."""
        return self.presentations.result(request_id, poll_token, now=now)

    # -- the holder's own page (idsvc.wallet.holder) and correction requests (.corrections) --

    def holder_nonce(self, *, now: datetime) -> tuple[str, datetime]:
        """A single-use nonce for opening a holder session, and when it expires."""
        from idsvc.wallet import holder, nonces

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return nonces.issue(session, holder.NONCE_PURPOSE, now), now + nonces.NONCE_TTL

    def open_holder_session(self, presentation: str, *, now: datetime) -> HolderSession:
        """A session of the holder's own page for a presentation of their phone credential."""
        from idsvc.credentials import issuers
        from idsvc.verification.use_cases import DbHolders, DbStatus, LocalTrust
        from idsvc.wallet import holder

        self.infra.require_ready()
        audience = holder.holder_audience(self.infra.settings.public_url)
        with self.infra.db.transaction() as session:
            return holder.open_session(
                session,
                presentation,
                trust=LocalTrust(issuers.load_issuers(session, self.infra.rings)),
                status=DbStatus(session),
                holders=DbHolders(session),
                audience=audience,
                now=now,
            )

    def holder_page(self, token: str, *, now: datetime) -> dict[str, Any]:
        """The session holder's record as the register holds it now, their credentials and
        their correction requests with the answers."""
        from idsvc.storage.tables import CivilServantRow
        from idsvc.wallet import corrections, holder

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            who = holder.holder_of(session, token, now=now)
            row = session.get(CivilServantRow, who.employee_id)
            assert row is not None  # a credential's holder: the foreign key keeps the row
            return {
                "record": holder.record_view(row),
                "credentials": holder.credential_views(session, who.employee_id),
                "corrections": [
                    c.for_holder() for c in corrections.corrections_of(session, who.employee_id)
                ],
            }

    def holder_checks(self, token: str, *, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Who checked the session holder, newest first (the who-checked log)."""
        from idsvc.wallet import holder

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            who = holder.holder_of(session, token, now=now)
        checks = self.verification.check_log.of_holder(who.employee_id, limit=limit)
        return holder.check_views(checks)

    def request_correction(
        self, token: str, *, field: str, text: str, now: datetime
    ) -> CorrectionView:
        """The session holder reports an error in ``field`` of their record."""
        from idsvc.wallet import corrections, holder

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            who = holder.holder_of(session, token, now=now)
            return corrections.request_correction(
                session,
                employee_id=who.employee_id,
                credential_id=who.credential_id,
                field=field,
                text=text,
                now=now,
            )

    def correction_queue(
        self, *, status: str | None = "open", limit: int = 500
    ) -> list[CorrectionView]:
        """The registrars' queue of correction requests, oldest first."""
        from idsvc.wallet import corrections

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return corrections.queue(session, status=status, limit=limit)

    def decide_correction(
        self, request_id: str, *, accept: bool, answer: str, actor: str, now: datetime
    ) -> CorrectionView:
        """Close a correction request as accepted or rejected, with the answer the holder reads."""
        from idsvc.wallet import corrections

        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return corrections.decide(
                session, request_id, accept=accept, answer=answer, actor=actor, now=now
            )
