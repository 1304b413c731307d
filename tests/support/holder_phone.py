"""A civil servant's phone for the tests: a phone credential issued through the wallet's own use
cases (offer → token → nonce → credential, as the OpenID4VCI endpoints call them) to a fresh
P-256 key, and presentations of it with a key-binding JWT (the holder's page, an official)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from idsvc.formats import sd_jwt
from idsvc.formats.jws import sign_compact
from idsvc.formats.openid4vci import PRE_AUTHORIZED_GRANT, PROOF_TYP, parse_offer_uri
from idsvc.register.photos import Photos
from idsvc.services import Services
from keys.file_signer import FileSigner
from keys.jwk import b64url_decode, public_jwk
from tests.support.card_print import portrait_bytes


def holder_key() -> FileSigner:
    """A phone's key: ES256, in memory (the path is never written)."""
    return FileSigner(ec.generate_private_key(ec.SECP256R1()), path=Path("phone-key.pem"))


@dataclass(frozen=True)
class Phone:
    employee_id: str
    credential: str  # the SD-JWT VC as issued: "<jwt>~<every disclosure>~"
    key: FileSigner

    @property
    def payload(self) -> dict[str, Any]:
        """The issuer JWT's payload (digests and all)."""
        payload: dict[str, Any] = json.loads(b64url_decode(self.credential.split(".")[1]))
        return payload

    @property
    def credential_id(self) -> str:
        return str(self.payload["jti"])

    def present(
        self,
        *,
        aud: str,
        nonce: str,
        now: datetime,
        disclose: tuple[str, ...] = (),
        key: FileSigner | None = None,
    ) -> str:
        """The credential with only ``disclose``'s disclosures and a KB-JWT signed by ``key``
        (by default the phone's own)."""
        kept = sd_jwt.parse(self.credential).keep(disclose).without_kb()
        return kept + sd_jwt.make_kb_jwt(kept, key or self.key, aud=aud, nonce=nonce, now=now)


def give_phone(service: Services, employee_id: str, *, now: datetime) -> Phone:
    """Store the person's photo (a phone credential carries it) and issue their phone
    credential to a new key."""
    Photos(service.infra.db).store(employee_id, portrait_bytes(), actor="test-desk", now=now)
    wallet = service.wallet
    offer = wallet.offer(employee_id, actor="test-desk", now=now)
    grant = parse_offer_uri(offer.offer_uri)["grants"][PRE_AUTHORIZED_GRANT]
    token = wallet.token(code=grant["pre-authorized_code"], tx_code=offer.tx_code, now=now)
    key = holder_key()
    proof = sign_compact(
        {
            "aud": wallet.credential_issuer,
            "iat": int(now.timestamp()),
            "nonce": wallet.vci_nonce(now=now),
        },
        key,
        typ=PROOF_TYP,
        extra_headers={"jwk": public_jwk(key.public_key())},
        include_kid=False,
    )
    credential = wallet.issue_phone_credential(
        token.access_token, configuration_id="civil_servant_sd_jwt", proof_jwt=proof, now=now
    )
    return Phone(employee_id, credential, key)
