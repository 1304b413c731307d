"""The desk's HTTP client of the centre: enrolment, operator login, and ``IssuanceCentre``
(check, begin, confirm, abandon) over the routes of ``mobile_api.routes.desk``.

Every request is signed with the desk key (``Desk-Proof``, a fresh ``jti`` each time). A
problem+json answer becomes the domain error it names (``HOLDER_NOT_ELIGIBLE`` →
``HolderNotEligible`` ...), so the desk's commands report it as at the centre. A network
failure becomes ``CentreUnreachable``, which says that nothing went live and that running the
same command again is safe (the centre never makes anything live without a confirm, and
confirm is idempotent). Standard library HTTP (urllib): no extra dependency on the desk.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from cardio.card_face import CardFaceData
from cardio.images import ImageRefused
from idsvc import errors
from idsvc.credentials.handover import KeyAttestation, PendingIssuance
from idsvc.credentials.printed_qr import PrintedQr
from idsvc.desk_client.identity import DeskIdentity, DeskKeySigner, DeskSession
from idsvc.formats.credentials import Holder
from idsvc.formats.desk_proof import HEADER, sign_proof
from idsvc.register.photo_rule import PHOTO_RULE
from idsvc.verification.rules import Reason, VerificationResult
from keys.jwk import public_jwk

Clock = Callable[[], datetime]

_ERRORS: dict[str, type[errors.IdsvcError]] = {
    cls.code: cls
    for cls in (
        errors.HolderNotEligible,
        errors.WalletOfferRefused,
        errors.InvalidTransition,
        errors.IssuanceNotPending,
        errors.LoginRefused,
        errors.OperatorLocked,
        errors.SessionInvalid,
        errors.NotPermitted,
        errors.DeskRefused,
        errors.DeskRequestInvalid,
        errors.EnrolmentRefused,
        errors.ApprovalNotPending,
        errors.UnknownApproval,
        errors.SelfApproval,
        errors.CardIssuanceFailed,
        errors.KeyNotAttested,
        errors.CardFaceFailed,
        errors.PhotoRejected,
        errors.PhotoMissing,
        errors.CorrectionRefused,
    )
}


def error_from_problem(status: int, body: bytes) -> errors.IdsvcError:
    """The domain error a centre's error answer (problem+json, or anything else) stands for."""
    try:
        problem = json.loads(body)
        code = str(problem.get("code", "HTTP_ERROR"))
        text = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    except (ValueError, AttributeError):
        code, text = "HTTP_ERROR", f"the centre answered HTTP {status}"
    kind = _ERRORS.get(code)
    if kind is not None:
        error = kind.__new__(kind)
        errors.IdsvcError.__init__(error, text)
        return error
    # A code the desk has no class for keeps the centre's code and text; its class says what
    # kind of answer it was, which is all the CLI's exit-code table needs.
    if code == errors.UnknownEmployee.code:
        unknown = errors.UnknownEmployee.__new__(errors.UnknownEmployee)
        errors.IdsvcError.__init__(unknown, f"centre: {text}")
        return unknown
    if code.startswith("UNKNOWN_"):
        return errors.CentreNotFound(code, f"centre: {text}")
    if status == 503:
        return errors.CentreUnavailable(code, f"centre: {text} ({code})")
    return errors.CentreProblem(code, f"centre: {text} ({code})")


WIPE_REPORTS_PATH = "/v1/desk/card-wipe-reports"
# Requests sent before the offline wipes are reported: enrolment (not a desk yet) and the report.
_UNREPORTED_PATHS = frozenset({"/v1/desk/enrolment", WIPE_REPORTS_PATH})


def _wipe_notice(found: dict[str, Any]) -> str:
    said = (
        f"reported to the centre: card {found.get('card_uuid') or '(no card id)'} wiped "
        f"offline at {str(found['wiped_at'])[:16]}Z"
    )
    credential, state = found.get("credential_id"), found.get("credential_state")
    if credential is None:
        return said + "; no credential was read from it"
    if state in ("live", "suspended"):
        return (
            f"{said}; its credential {credential} is still {state}: revoke it "
            f'(`idsvc revoke {credential} --reason "card wiped"`)'
        )
    return f"{said}; its credential {credential} is {state or 'unknown at the centre'}"


def _approval(approval_id: str) -> str:
    """An approval id as a path segment: a UUID, so nothing typed can change the path."""
    try:
        return str(uuid.UUID(approval_id))
    except ValueError:
        raise errors.UnknownApproval(approval_id[:40]) from None


class CentreClient:
    def __init__(
        self,
        identity: DeskIdentity,
        *,
        clock: Clock,
        centre_url: str | None = None,
        timeout: float = 30.0,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.identity = identity
        self._clock = clock
        self._url = centre_url
        self._signer: DeskKeySigner | None = None
        self._timeout = timeout
        self._notice = notice or (lambda _: None)
        self.calls = 0

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self.identity.config()["centre"]
        if not self._url.startswith(("https://", "http://")):
            raise errors.DeskRefused("the centre URL must start with https:// (or http://)")
        return self._url.rstrip("/")

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        session: DeskSession | None = None,
    ) -> Any:
        if path not in _UNREPORTED_PATHS and self.identity.wipes_path.exists():
            self.report_wipes()  # the centre hears of offline wipes at the first chance
        data = b"" if body is None else json.dumps(body).encode()
        signer = self._signer or self.identity.signer()
        proof = sign_proof(
            signer,
            method=method,
            path=path,
            body=data,
            now=self._clock(),
            jti=secrets.token_urlsafe(18),
        )
        headers = {HEADER: proof, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if session is not None:
            headers["Desk-Session"] = session.token
        # The scheme is checked in ``url`` (http or https only), hence the S310 waivers.
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=data if body is not None else None, method=method,
            headers=headers,
        )  # fmt: skip
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                raw = response.read()
            return json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raise error_from_problem(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise errors.CentreUnreachable(
                f"no answer from the centre at {self.url} ({type(exc).__name__}). Nothing went "
                "live. Check the network link, then run the same command again (safe)."
            ) from exc

    # -- enrolment and login ------------------------------------------------------------------
    def enrol(self, code: str, *, re_enrol: bool = False) -> dict[str, Any]:
        """Enrol with a one-time code. An enrolled desk refuses unless ``re_enrol``; the new
        key is held in memory until the centre has accepted it, then stored (see
        ``DeskIdentity.save_enrolment``): a refused enrolment changes no file."""
        self.identity.check_may_enrol(re_enrol=re_enrol)
        signer = self.identity.new_key()
        self._signer = signer
        try:
            answer: dict[str, Any] = self._call(
                "POST", "/v1/desk/enrolment", {"code": code, "public_jwk": signer.jwk}
            )
        finally:
            self._signer = None  # until stored, the key signs nothing but its enrolment
        ca_der = base64.b64decode(answer["ca_certificate"])
        self.identity.save_enrolment(signer, self.url, answer, ca_der)
        return answer

    def login(self, operator: str, password: str, otp: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "POST", "/v1/desk/sessions", {"operator": operator, "password": password, "otp": otp}
        )
        self.identity.save_session(
            DeskSession(
                answer["session"], answer["operator"], datetime.fromisoformat(answer["expires_at"])
            )
        )
        return answer

    def logout(self) -> None:
        session = self.identity.session(now=self._clock())
        try:
            self._call("DELETE", "/v1/desk/sessions/current", session=session)
        finally:
            self.identity.clear_session()

    def _session(self) -> DeskSession:
        return self.identity.session(now=self._clock())

    def desk_state(self) -> dict[str, Any]:
        """What the centre says of this desk (and of the local session, if there is one): an
        authenticated call, so a disabled desk or an ended session shows as such."""
        try:
            session: DeskSession | None = self._session()
        except errors.DeskRefused:
            session = None  # nobody signed in here (or the session expired): the desk alone
        state: dict[str, Any] = self._call("GET", "/v1/desk/state", session=session)
        if session is not None and state.get("operator") is None:
            self.identity.clear_session()  # ended at the centre: the token is worthless
        return state

    def report_wipes(self) -> list[dict[str, Any]]:
        """Send the offline wipes recorded here; forget them once the centre has recorded them
        and say what it found (a credential still live is named, for a registrar)."""
        reports = self.identity.wipe_reports()
        if not reports:
            return []
        found: list[dict[str, Any]] = self._call("POST", WIPE_REPORTS_PATH, {"reports": reports})
        self.identity.clear_wipe_reports({r["report_id"] for r in found})
        for r in found:
            self._notice(_wipe_notice(r))
        return found

    # -- IssuanceCentre -----------------------------------------------------------------------
    def check_eligible(self, employee_id: str) -> None:
        self._call(
            "POST", "/v1/desk/eligibility", {"employee_id": employee_id}, session=self._session()
        )

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
        body: dict[str, Any] = {
            "employee_id": employee_id,
            "card_jwk": public_jwk(card_key),
            "card_uuid": str(card_uuid),
        }
        if attestation is not None:
            body["key_attestation"] = {
                "certificate": base64.b64encode(attestation.certificate).decode("ascii"),
                "signer": base64.b64encode(attestation.signer).decode("ascii"),
            }
        a: dict[str, Any] = self._call("POST", "/v1/desk/issuances", body, session=self._session())
        self.identity.save_pending(a["credential_id"], employee_id, "begun")
        holder = dict(a["holder"])
        holder["birthdate"] = date.fromisoformat(holder["birthdate"])
        return PendingIssuance(
            credential_id=a["credential_id"],
            employee_id=a["employee_id"],
            token=a["token"],
            card_serial=a["card_serial"],
            card_uuid=a["card_uuid"],
            card_certificate_der=base64.b64decode(a["card_certificate"]),
            holder=Holder(**holder),
            pending_until=datetime.fromisoformat(a["pending_until"]),
            issuer_code=a["issuer_code"],
            qr=PrintedQr(**a["qr"]),
        )

    def confirm_issuance(self, credential_id: str, *, actor: str, now: datetime) -> Any:
        """Confirm; the card is finished by now, so a dropped link leaves a step to resume."""
        pending = self.identity.pending()
        if pending is not None and pending["credential_id"] == credential_id:
            self.identity.save_pending(credential_id, pending["employee_id"], "confirming")
        answer = self._call(
            "POST", f"/v1/desk/issuances/{credential_id}/confirmation", session=self._session()
        )
        self.identity.clear_pending()
        return answer

    def abandon_issuance(
        self, credential_id: str, *, reason: str, actor: str, now: datetime
    ) -> None:
        self._call(
            "POST",
            f"/v1/desk/issuances/{credential_id}/abandonment",
            {"reason": reason[:200]},
            session=self._session(),
        )
        self.identity.clear_pending()

    # -- the card at the desk ---------------------------------------------------------------
    def verify_card(
        self, token: str, card_key: EllipticCurvePublicKey | None
    ) -> VerificationResult:
        """The centre's verdict on a credential read from a card (bound to the card's key)."""
        body: dict[str, Any] = {"credential": token}
        if card_key is not None:
            body["card_jwk"] = public_jwk(card_key)
        a: dict[str, Any] = self._call(
            "POST", "/v1/desk/verifications", body, session=self._session()
        )
        return VerificationResult(
            valid=bool(a["valid"]),
            status=str(a["status"]),
            reasons=tuple(Reason(r) for r in a["reasons"]),
            holder=a.get("holder"),
            credential_id=a.get("credential_id"),
            issuer=a.get("issuer"),
            expires_at=datetime.fromisoformat(a["expires_at"]) if a.get("expires_at") else None,
        )

    def card_face_data(self, employee_id: str) -> CardFaceData:
        a: dict[str, Any] = self._call(
            "POST", "/v1/desk/card-faces", {"employee_id": employee_id}, session=self._session()
        )
        return CardFaceData(
            employee_id=a["employee_id"],
            name_local=a["name_local"],
            name_latin=a["name_latin"],
            ministry=a["ministry"],
            position=a["position"],
            expires=date.fromisoformat(a["expires"]),
            issuer_name=a["issuer_name"],
            issuer_uri=a["issuer_uri"],
            card_serial=a["card_serial"],
            qr_text=a["qr_text"],
            photo_jpeg=base64.b64decode(a["photo_jpeg"]),
            ministry_local=a.get("ministry_local"),
            position_local=a.get("position_local"),
            issuer_name_local=a.get("issuer_name_local"),
        )

    def allow_wipe(
        self, *, credential_id: str | None, card_uuid: str | None, revoke_reason: str | None
    ) -> dict[str, Any]:
        """Ask before wiping: the centre checks the role, audits, and revokes if asked."""
        answer: dict[str, Any] = self._call(
            "POST",
            "/v1/desk/card-wipes",
            {
                "credential_id": credential_id,
                "card_uuid": card_uuid,
                "revoke_reason": revoke_reason,
            },
            session=self._session(),
        )
        return answer

    # -- sensitive actions (200 done, or 202 waiting for approval) -----------------------------
    def _action(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("POST", path, body, session=self._session())
        return answer

    def revoke(self, credential_id: str, *, reason: str) -> dict[str, Any]:
        return self._action(
            "/v1/desk/revocations", {"credential_id": credential_id, "reason": reason}
        )

    def declare_lost(self, employee_id: str, *, reason: str) -> dict[str, Any]:
        return self._action("/v1/desk/losses", {"employee_id": employee_id, "reason": reason})

    def correct_status(
        self, employee_id: str, *, status: str, reason: str, status_date: date | None
    ) -> dict[str, Any]:
        return self._action(
            "/v1/desk/corrections",
            {
                "employee_id": employee_id,
                "status": status,
                "reason": reason,
                "status_date": None if status_date is None else status_date.isoformat(),
            },
        )

    def wallet_offer(self, employee_id: str) -> dict[str, Any]:
        """A phone credential offer: ``{"offer_uri", "tx_code", "expires_at"}``."""
        return self._action("/v1/desk/wallet-offers", {"employee_id": employee_id})

    def store_photo(self, employee_id: str, data: bytes) -> dict[str, Any]:
        try:
            PHOTO_RULE.check_size(len(data))  # the centre would refuse it after the upload
        except ImageRefused as exc:
            raise errors.PhotoRejected(str(exc)) from None
        return self._action(
            "/v1/desk/photos",
            {"employee_id": employee_id, "photo": base64.b64encode(data).decode("ascii")},
        )

    # -- approvals ----------------------------------------------------------------------------
    def approvals(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._call(
            "GET", "/v1/desk/approvals", session=self._session()
        )
        return listed

    def approve(self, approval_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "POST", f"/v1/desk/approvals/{_approval(approval_id)}/approval", session=self._session()
        )
        return answer

    def reject(self, approval_id: str, *, reason: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "POST",
            f"/v1/desk/approvals/{_approval(approval_id)}/rejection",
            {"reason": reason},
            session=self._session(),
        )
        return answer
