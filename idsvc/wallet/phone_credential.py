"""The phone credential (kind ``phone``): an SD-JWT VC of the same register facts as the card,
signed by the same issuer key and ``kid``, bound to the wallet's key (``cnf.jwk``), with a slot
in the same Token Status Lists; and the metadata a wallet reads to ask for it.

Issuing one goes through the card's own rules (``idsvc.credentials.issuance``): the holder is
locked and must be active (``eligible_servant``), ``exp`` is capped by the contract's end
(``credential_expiry``), the status index is drawn with a retry on a clash
(``add_in_free_slot``), and ``go_live`` supersedes only the person's previous phone credential,
never the card. Two configurations carry the same content: ``civil_servant_sd_jwt``
(``dc+sd-jwt``, SD-JWT VC's current media type) and ``civil_servant_vc_sd_jwt`` (``vc+sd-jwt``,
for wallets that still ask for the older one); the ``typ`` header follows the one asked for.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.credentials.issuance import (
    IssuancePolicy,
    add_in_free_slot,
    credential_expiry,
    eligible_servant,
    go_live,
    new_card_serial,
)
from idsvc.credentials.issuers import Issuer
from idsvc.errors import HolderNotEligible, PhotoMissing, UnknownEmployee, WalletRequestRefused
from idsvc.formats.credentials import DISCLOSABLE
from idsvc.formats.jws import JwsSigner
from idsvc.formats.openid4vci import PRE_AUTHORIZED_GRANT
from idsvc.formats.sd_jwt import issue_sd_jwt
from idsvc.register import photos
from idsvc.storage.tables import CivilServantRow, CredentialRow
from keys.backends import KeyBackend
from keys.signer import Signer

# configuration id -> its format, which is also the issuer JWT's typ header
CONFIGURATIONS: Final = {
    "civil_servant_sd_jwt": "dc+sd-jwt",
    "civil_servant_vc_sd_jwt": "vc+sd-jwt",
}
VCT_PATH: Final = "/v1/wallet/types/civil-servant"
DECOYS: Final = 3  # RFC 9901 §4.2.5: hides how many optional claims the person has

CREDENTIAL_NAMES: Final = {
    "en": "Civil servant ID",
    "lo": "ບັດປະຈຳຕົວລັດຖະກອນ",
    "km": "អត្តសញ្ញាណប័ណ្ណមន្ត្រីរាជការ",
}
# Claim labels: English for all, Lao and Khmer where the web verifier already has the word.
CLAIM_LABELS: Final[dict[str, dict[str, str]]] = {
    "name": {"en": "Name", "lo": "ຊື່", "km": "ឈ្មោះ"},
    "name_latin": {"en": "Name (Latin letters)"},
    "birthdate": {"en": "Date of birth", "lo": "ວັນເດືອນປີເກີດ", "km": "ថ្ងៃខែឆ្នាំកំណើត"},
    "ministry": {"en": "Ministry", "lo": "ກະຊວງ", "km": "ក្រសួង"},
    "ministry_local": {"en": "Ministry (national script)"},
    "unit": {"en": "Unit"},
    "position": {"en": "Position", "lo": "ຕຳແໜ່ງ", "km": "មុខតំណែង"},
    "position_local": {"en": "Position (national script)"},
    "grade": {"en": "Grade"},
    "category": {"en": "Category"},
    "photo": {"en": "Photo", "lo": "ຮູບ", "km": "រូបថត"},
}


def vct_of(public_url: str) -> str:
    """The credential type (``vct``): a URL where its type metadata is served."""
    return public_url.rstrip("/") + VCT_PATH


def phone_claims(
    servant: CivilServantRow,
    *,
    iss: str,
    jti: str,
    vct: str,
    issued_at: datetime,
    expires_at: datetime,
    status_uri: str,
    status_idx: int,
    cnf_jwk: dict[str, Any],
    photo: str,
) -> dict[str, Any]:
    """The SD-JWT VC's claims before selective disclosure (``DISCLOSABLE`` become disclosures);
    the names and dates are the card JWT's, ``jti`` the credential's id as on the card."""
    iat = int(issued_at.timestamp())
    claims: dict[str, Any] = {
        "iss": iss,
        "sub": servant.employee_id,
        "jti": jti,
        "vct": vct,
        "iat": iat,
        "nbf": iat,
        "exp": int(expires_at.timestamp()),
        "cnf": {"jwk": cnf_jwk},
        "status": {"status_list": {"idx": status_idx, "uri": status_uri}},
        "name": servant.name_local,
        "name_latin": servant.name_latin,
        "birthdate": servant.date_of_birth.isoformat(),
        "ministry": servant.ministry,
        "unit": servant.unit,
        "position": servant.position,
        "grade": servant.grade,
        "category": servant.category,
        "photo": photo,
    }
    # Absent rather than null: a wallet shows no empty line for what HR has not recorded.
    if servant.ministry_local:
        claims["ministry_local"] = servant.ministry_local
    if servant.position_local:
        claims["position_local"] = servant.position_local
    return claims


def issuer_x5c(issuer: Issuer, signer: Signer, backend: KeyBackend, *, now: datetime) -> list[str]:
    """The ``x5c`` header (RFC 7515 §4.1.6: base64 DER, leaf first): the signing key's
    certificate, then the issuer CA's, so that a wallet that trusts the ministry's CA (a trusted
    list) can check who issued the credential; wallets that do not find the same key by ``kid``
    in ``/.well-known/jwt-vc-issuer``. The leaf names ``iss`` in its SAN; ``backend`` is used
    once, to certify a key made before keys had certificates."""
    chain = issuer.ring.certificate_chain(signer.kid, backend, now=now, issuer_uri=issuer.iss)
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain]


def issue_phone_credential(
    session: Session,
    *,
    employee_id: str,
    configuration_id: str,
    holder_jwk: dict[str, Any],
    issuer: Issuer,
    signer: JwsSigner,
    x5c: list[str] | None,
    policy: IssuancePolicy,
    actor: str,
    now: datetime,
) -> CredentialRow:
    """Sign and make live the person's phone credential, bound to ``holder_jwk``; the caller's
    transaction holds the person's lock until it commits. ``WalletRequestRefused``
    (``credential_request_denied``) when the register no longer lets them hold one."""
    typ = CONFIGURATIONS[configuration_id]
    try:
        servant = eligible_servant(session, employee_id)
        expires_at = credential_expiry(servant, now, policy.validity)
        face = photos.face_image(session, employee_id)
    except (HolderNotEligible, UnknownEmployee, PhotoMissing) as exc:
        # Between the offer and now, HR or a registrar changed the person: nothing is issued.
        raise WalletRequestRefused("credential_request_denied", str(exc)) from None
    photo = photos.verifier_picture(face)
    credential_id = str(uuid.uuid4())
    serial = new_card_serial()
    vct = vct_of(policy.public_url)
    header = None if x5c is None else {"x5c": x5c}

    def build(list_id: int, idx: int, uri: str) -> CredentialRow:
        claims = phone_claims(
            servant,
            iss=issuer.iss,
            jti=credential_id,
            vct=vct,
            issued_at=now,
            expires_at=expires_at,
            status_uri=uri,
            status_idx=idx,
            cnf_jwk=holder_jwk,
            photo=photo,
        )
        token = issue_sd_jwt(claims, DISCLOSABLE, signer, typ=typ, header=header, decoys=DECOYS)
        return CredentialRow(
            id=credential_id,
            issuer_id=issuer.id,
            employee_id=employee_id,
            kid=signer.kid,
            kind="phone",
            state="pending",
            status_list_id=list_id,
            status_idx=idx,
            card_serial=serial,
            card_uuid=None,
            cnf_jwk=holder_jwk,
            card_certificate=None,
            token=token,
            qr_text=None,
            issued_at=now,
            expires_at=expires_at,
            pending_until=now,
            state_changed_at=now,
            issued_by=actor,
        )

    row = add_in_free_slot(session, issuer_id=issuer.id, policy=policy, now=now, build=build)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="credential.begin",
        target_type="credential",
        target_id=credential_id,
        details={
            "employee_id": employee_id,
            "kid": signer.kid,
            "card": False,
            "kind": "phone",
            "format": typ,
        },
    )
    return go_live(session, row, actor=actor, now=now)


# -- metadata a wallet reads --------------------------------------------------------------------


def _display(labels: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": text, "locale": locale} for locale, text in labels.items()]


def credential_issuer_metadata(
    *, public_url: str, issuer_name: str, issuer_name_local: tuple[str, str] | None, alg: str
) -> dict[str, Any]:
    """OpenID4VCI 1.0 §12.2.4: the credential issuer metadata. ``issuer_name_local`` is
    (locale, name) of the issuer's name in the national script, when configured."""
    base = public_url.rstrip("/")
    issuer_display = [{"name": issuer_name, "locale": "en"}]
    if issuer_name_local is not None:
        issuer_display.append({"name": issuer_name_local[1], "locale": issuer_name_local[0]})
    claims = [{"path": [name], "display": _display(CLAIM_LABELS[name])} for name in DISCLOSABLE]
    display = [
        {"name": CREDENTIAL_NAMES[locale], "locale": locale, "background_color": "#12355b",
         "text_color": "#ffffff"}
        for locale in CREDENTIAL_NAMES
    ]  # fmt: skip
    configurations = {
        configuration_id: {
            "format": fmt,
            "vct": vct_of(base),
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": [alg],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
            "credential_metadata": {"display": display, "claims": claims},
            # Wallets written to the drafts before 1.0 read these at the top level.
            "display": display,
        }
        for configuration_id, fmt in CONFIGURATIONS.items()
    }
    return {
        "credential_issuer": base,
        "credential_endpoint": f"{base}/v1/wallet/credential",
        "nonce_endpoint": f"{base}/v1/wallet/nonce",
        "display": issuer_display,
        "credential_configurations_supported": configurations,
    }


def authorization_server_metadata(*, public_url: str) -> dict[str, Any]:
    """RFC 8414 metadata of the token endpoint: the pre-authorized code grant only, with no
    client authentication (the holder's wallet is not a registered client)."""
    base = public_url.rstrip("/")
    return {
        "issuer": base,
        "token_endpoint": f"{base}/v1/wallet/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": [],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


def type_metadata(*, public_url: str) -> dict[str, Any]:
    """SD-JWT VC type metadata, served at the ``vct`` URL."""
    return {
        "vct": vct_of(public_url),
        "name": CREDENTIAL_NAMES["en"],
        "description": "A civil servant's identity as the HR register holds it, with the "
        "ministry's signature; revocation through the issuer's Token Status List.",
        "display": [{"locale": locale, "name": name} for locale, name in CREDENTIAL_NAMES.items()],
        "claims": [
            {
                "path": [name],
                "display": [
                    {"locale": locale, "label": label}
                    for locale, label in CLAIM_LABELS[name].items()
                ],
                "sd": "always",
            }
            for name in DISCLOSABLE
        ],
    }
