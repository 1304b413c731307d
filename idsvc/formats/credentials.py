"""The civil-servant credential as a JWT: its claims, its media type, and the holder view.

Claims: ``iss``, ``sub`` (employee id), ``jti``, ``iat``, ``nbf``, ``exp``, ``cnf``
(RFC 7800, the card's public key when the credential is bound to a card), ``status`` (IETF Token
Status List reference) and the holder claims below. Dates are ISO strings, names stay in their
own script (NFC) and the payload is serialised as UTF-8, not ``\\u`` escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

CREDENTIAL_TYP = "civil-servant-credential+jwt"

# The phone credential's (SD-JWT VC, docs/wallet.md) selectively disclosable claims, by the
# card's names for them: shown to a verifier only when the holder chooses to; the rest of its
# claims stay visible. What the issuer hides, an official may ask for, and a verifier shows.
DISCLOSABLE: Final = (
    "name",
    "name_latin",
    "birthdate",
    "ministry",
    "ministry_local",
    "unit",
    "position",
    "position_local",
    "grade",
    "category",
    "photo",
)

HOLDER_CLAIMS = (
    "name",
    "name_latin",
    "birthdate",
    "ministry",
    "unit",
    "position",
    "grade",
    "category",
    "card_serial",
)


@dataclass(frozen=True)
class Holder:
    """What the credential says about its holder."""

    employee_id: str
    name: str
    name_latin: str
    birthdate: date
    ministry: str
    unit: str
    position: str
    grade: str
    category: str
    card_serial: str

    def claims(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "name_latin": self.name_latin,
            "birthdate": self.birthdate.isoformat(),
            "ministry": self.ministry,
            "unit": self.unit,
            "position": self.position,
            "grade": self.grade,
            "category": self.category,
            "card_serial": self.card_serial,
        }

    def minimal(self) -> dict[str, str]:
        """What a verifier is shown: enough to match a face, nothing more."""
        return {
            "employee_id": self.employee_id,
            "name": self.name,
            "name_latin": self.name_latin,
            "ministry": self.ministry,
            "position": self.position,
            "category": self.category,
            "card_serial": self.card_serial,
        }

    @classmethod
    def from_claims(cls, payload: dict[str, Any]) -> Holder:
        """Read the holder claims; raises ``ValueError`` naming the first bad claim."""
        sub, values = _holder_claims(payload)
        return cls(
            employee_id=sub,
            name=values["name"],
            name_latin=values["name_latin"],
            birthdate=date.fromisoformat(values["birthdate"]),
            ministry=values["ministry"],
            unit=values["unit"],
            position=values["position"],
            grade=values["grade"],
            category=values["category"],
            card_serial=values["card_serial"],
        )


# The claims of ``Holder.minimal`` other than the employee id (``sub``), in its order.
_MINIMAL_CLAIMS = ("name", "name_latin", "ministry", "position", "category", "card_serial")


def _holder_claims(payload: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """``sub`` and the holder claims, each checked to be a string (``sub`` not empty), and
    ``birthdate`` an ISO date; raises ``ValueError`` naming the first bad claim."""
    values: dict[str, str] = {}
    for claim in HOLDER_CLAIMS:
        value = payload.get(claim)
        if type(value) is not str:
            raise ValueError(f"claim {claim!r} missing or not a string")
        values[claim] = value
    sub = payload.get("sub")
    if type(sub) is not str or not sub:
        raise ValueError("claim 'sub' missing")
    date.fromisoformat(values["birthdate"])
    return sub, values


def holder_view(payload: dict[str, Any]) -> dict[str, str]:
    """``Holder.from_claims(payload).minimal()`` with the same checks, without building the
    ``Holder``: every verification reads it, and the dataclass cost more than the checks."""
    sub, values = _holder_claims(payload)
    view = {"employee_id": sub}
    for claim in _MINIMAL_CLAIMS:
        view[claim] = values[claim]
    return view


def credential_claims(
    *,
    iss: str,
    jti: str,
    holder: Holder,
    issued_at: datetime,
    expires_at: datetime,
    status_uri: str,
    status_idx: int,
    cnf_jwk: dict[str, Any] | None,
) -> dict[str, Any]:
    iat = int(issued_at.timestamp())
    claims: dict[str, Any] = {
        "iss": iss,
        "sub": holder.employee_id,
        "jti": jti,
        "iat": iat,
        "nbf": iat,
        "exp": int(expires_at.timestamp()),
        **holder.claims(),
        "status": {"status_list": {"idx": status_idx, "uri": status_uri}},
    }
    if cnf_jwk is not None:
        claims["cnf"] = {"jwk": cnf_jwk}
    return claims
