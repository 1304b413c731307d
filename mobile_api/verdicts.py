"""A verification's answer, shared by the routes that verify (``routes.verifications`` and
``routes.card_challenges``): who asked, as the who-checked log records it, and the result as
that caller may see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from idsvc.audit.who_checked import CheckedBy
from idsvc.verification.online import holder_for
from idsvc.verification.rules import VerificationResult
from mobile_api.auth import Caller


def checked_by(caller: Caller) -> CheckedBy:
    """The caller as the who-checked log records it (also for payroll checks)."""
    return CheckedBy(caller.client_id, caller.client_name, caller.address)


def verdict(result: VerificationResult, caller: Caller, now: datetime) -> dict[str, Any]:
    """The result as the caller may see it (``VerificationResponse``)."""
    body = result.as_dict()
    body["holder"] = holder_for(result, caller.scopes)
    body["checked_at"] = now.isoformat()
    return body
