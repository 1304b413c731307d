"""The bank feature: payroll checks, the change feed and webhooks, over the server keys
(``idsvc.bank.server_secret``), which are read, or made, on first use.

Payroll checks verify presented credentials with the verifier the composition root gives
(``idsvc.services``: the API's cached verifier).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from idsvc.bank.change_feed import ChangeFeed
from idsvc.bank.payroll import CredentialVerifier, PayrollChecks
from idsvc.bank.payroll_controls import PayrollControls
from idsvc.bank.server_secret import ServerKeys, load_server_secret
from idsvc.bank.webhooks import Webhooks
from idsvc.credentials.infrastructure import Infrastructure


class Bank:
    def __init__(self, infra: Infrastructure, verify: CredentialVerifier) -> None:
        self.infra = infra
        self._verify = verify
        # Read now: a missing or unreadable secret fails the feature's construction
        # (``ServerSecretError``), not a request half-way.
        self.keys = ServerKeys.from_secret(
            load_server_secret(infra.settings.resolved_server_secret_file, create=True)
        )

    @cached_property
    def payroll(self) -> PayrollChecks:
        return PayrollChecks(
            self.infra.db,
            account_key=self.keys.account_key,
            account_window=timedelta(days=self.infra.settings.payroll_account_window_days),
            verify_credential=self._verify,
            controls=PayrollControls.from_settings(self.infra.settings),
        )

    @cached_property
    def changes(self) -> ChangeFeed:
        return ChangeFeed(self.infra.db)

    @cached_property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.infra.db, self.keys)
