"""The bank side's use cases as ``Annotated`` dependencies, built once per app on first use.

They need the server keys (``idsvc.bank.server_secret``), which this layer reads from the file the
settings name; the use cases below receive the keys, not the file.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from idsvc.bank.change_feed import ChangeFeed
from idsvc.bank.payroll import PayrollChecks
from idsvc.bank.server_secret import ServerKeys, load_server_secret
from idsvc.bank.webhooks import Webhooks
from idsvc.errors import ServerSecretError
from idsvc.register.hr_sync import HrSync
from idsvc.service import IdService
from idsvc.verification.online import OnlineVerifier
from idsvc.verification.rules import VerificationResult

_LOCK = threading.Lock()
log = logging.getLogger("mobile_api")


@dataclass(frozen=True)
class BankSide:
    payroll: PayrollChecks
    changes: ChangeFeed
    webhooks: Webhooks
    hr_sync: HrSync


def build_bank_side(service: IdService, verifier: OnlineVerifier) -> BankSide:
    settings = service.settings
    keys = ServerKeys.from_secret(
        load_server_secret(settings.resolved_server_secret_file, create=True)
    )

    def verify(text: str, now: datetime) -> VerificationResult:
        return verifier.check(text, now=now)

    return BankSide(
        payroll=PayrollChecks(
            service.db,
            account_key=keys.account_key,
            account_window=timedelta(days=settings.payroll_account_window_days),
            verify_credential=verify,
        ),
        changes=ChangeFeed(service.db),
        webhooks=Webhooks(service.db, keys),
        hr_sync=HrSync(service.db),
    )


def get_bank_side(request: Request) -> BankSide:
    state = request.app.state
    with _LOCK:
        bank: BankSide | None = getattr(state, "bank_side", None)
        if bank is None:
            try:
                bank = build_bank_side(state.service, state.verifier)
            except ServerSecretError as exc:
                # The message names a file: it goes to the log, not to the caller.
                log.error("bank API unavailable: %s", exc)
                raise HTTPException(503, "the service is not configured") from exc
            state.bank_side = bank
    return bank


Bank = Annotated[BankSide, Depends(get_bank_side)]
