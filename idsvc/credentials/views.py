"""What the use cases answer about one credential (``CredentialView``): the stored row as the
CLI, the API and the desks show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cardio.qr import QrSize, version_for
from idsvc.storage.tables import CredentialRow


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
    kind: str = "card"  # or "phone": an SD-JWT VC in the holder's wallet

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
            row.kind,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "credential_id": self.id,
            "employee_id": self.employee_id,
            "kind": self.kind,
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
