"""The bank feature (``Services.bank``: payroll checks, change feed, webhooks) as an
``Annotated`` dependency.

It needs the server keys (``idsvc.bank.server_secret``), read from the file the settings name
when the feature is first used: while that file is unusable the bank routes answer 503 and the
rest of the API keeps working.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from idsvc.bank.use_cases import Bank as BankFeature
from idsvc.errors import ServerSecretError
from mobile_api.deps import services_of

log = logging.getLogger("mobile_api")


def get_bank(request: Request) -> BankFeature:
    # A plain ``def``: the first call may read (or create) the server secret file.
    try:
        return services_of(request).bank
    except ServerSecretError as exc:
        # The message names a file: it goes to the log, not to the caller.
        log.error("bank API unavailable: %s", exc)
        raise HTTPException(503, "the service is not configured") from exc


Bank = Annotated[BankFeature, Depends(get_bank)]
