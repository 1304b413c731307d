"""The composition root: ``Services.from_settings(settings)``, built once per process by the CLI
(``idsvc.cli.common.services``) and by the API app (``mobile_api.app.create_app``).

It holds the shared infrastructure (``idsvc.credentials.infrastructure``: settings, database,
issuer key rings and signers, readiness) and exposes one object per
feature, each built on first use so that a command loads only what it needs (``idsvc verify``
never imports the desk or bank code):

- ``register``: HR imports, HR sync, HR status corrections (``idsvc.register.use_cases``)
- ``credentials``: issuers and keys, issuance, credential state, status lists
  (``idsvc.credentials.use_cases``)
- ``verification``: verifying credentials, the API's cached verifier, card challenges
  (``idsvc.verification.use_cases``)
- ``audit``: the audit chain (``idsvc.audit.use_cases``)
- ``staff``: operators, logins, approvals (``idsvc.staff.use_cases``)
- ``desks``: the centre's side of desk requests (``idsvc.desks.gateway``)
- ``bank``: payroll checks, change feed, webhooks (``idsvc.bank.use_cases``)
- ``operations``: schema, backup and restore, sweeping, publication, health
  (``idsvc.operations.use_cases``)
- ``reports``: the monthly payroll-controls report (``idsvc.reports.use_cases``)
- ``wallet``: the phone credential, presentation requests, the holder's own page
  (``idsvc.wallet.use_cases``)

``PERFORMERS`` is the one table of what performs each sensitive action, whether at once or once
a second person approved it (``idsvc.staff.maker_checker``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING

from idsvc.config import Settings
from idsvc.credentials.infrastructure import Infrastructure, PassphraseSource

# Every feature is imported where it is built, the performers' too: `idsvc verify` loads the
# verification feature alone (tests/idsvc/cli/test_imports.py).
if TYPE_CHECKING:
    from idsvc.audit.use_cases import Audit
    from idsvc.bank.use_cases import Bank
    from idsvc.credentials.use_cases import Credentials
    from idsvc.desks.gateway import DeskGateway
    from idsvc.operations.use_cases import Operations
    from idsvc.register.use_cases import Register
    from idsvc.reports.use_cases import Reports
    from idsvc.staff.maker_checker import MakerChecker, Perform
    from idsvc.staff.use_cases import Staff
    from idsvc.verification.rules import VerificationResult
    from idsvc.verification.use_cases import Verification
    from idsvc.wallet.use_cases import Wallet

    PERFORMERS: Mapping[str, Perform]


@cache
def _performers() -> Mapping[str, Perform]:
    from idsvc.credentials.use_cases import (
        perform_declare_lost,
        perform_key_rotation,
        perform_revoke,
    )
    from idsvc.register.use_cases import perform_hr_correction
    from idsvc.staff.use_cases import perform_operator_change

    # approval action (IDSVC_APPROVAL_REQUIRED) -> the one function that performs it
    return {
        "revoke": perform_revoke,
        "reissue_after_loss": perform_declare_lost,
        "hr_correction": perform_hr_correction,
        "key_rotation": perform_key_rotation,
        "operator_change": perform_operator_change,
    }


def __getattr__(name: str) -> object:
    # ``PERFORMERS`` is built on first use (PEP 562), with the features it names.
    if name == "PERFORMERS":
        return _performers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Services:
    def __init__(self, infra: Infrastructure) -> None:
        self.infra = infra
        self.settings = infra.settings
        self._bank_lock = threading.Lock()
        self._bank: Bank | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, passphrase: PassphraseSource | None = None
    ) -> Services:
        """``passphrase`` is asked only when a key is first used."""
        return cls(Infrastructure.from_settings(settings, passphrase))

    def build_for_serving(self) -> None:
        """Build what a server's requests use before the first one arrives, rather than by two
        request threads at once: every feature, the cached verifier, the card challenges and
        readiness. The bank is left to its first use (it may have to create its secret)."""
        _ = (self.register, self.credentials, self.audit, self.staff, self.desks, self.wallet)
        _ = (self.verification.challenges, self.operations.readiness)

    @cached_property
    def gate(self) -> MakerChecker:
        from idsvc.staff.maker_checker import MakerChecker

        return MakerChecker(self.infra, _performers())

    @cached_property
    def register(self) -> Register:
        from idsvc.register.use_cases import Register

        return Register(self.infra, self.gate)

    @cached_property
    def credentials(self) -> Credentials:
        from idsvc.credentials.use_cases import Credentials

        return Credentials(self.infra, self.gate)

    @cached_property
    def verification(self) -> Verification:
        from idsvc.verification.use_cases import Verification

        return Verification(self.infra)

    @cached_property
    def audit(self) -> Audit:
        from idsvc.audit.use_cases import Audit

        return Audit(self.infra.db, self.infra.require_ready)

    @cached_property
    def staff(self) -> Staff:
        from idsvc.staff.use_cases import Staff

        return Staff(self.infra, self.gate)

    @cached_property
    def desks(self) -> DeskGateway:
        from idsvc.desks.gateway import DeskGateway

        return DeskGateway(
            self.infra,
            gate=self.gate,
            staff=self.staff,
            credentials=self.credentials,
            register=self.register,
            verification=self.verification,
        )

    @property
    def bank(self) -> Bank:
        """Built on first use, under a lock (it may create the server secret); raises
        ``ServerSecretError`` while the secret is unusable, and is built again on the next call."""
        with self._bank_lock:
            if self._bank is None:
                from idsvc.bank.use_cases import Bank

                self._bank = Bank(self.infra, self._verify_online)
            return self._bank

    def _verify_online(self, text: str, now: datetime) -> VerificationResult:
        return self.verification.online.check(text, now=now)

    @cached_property
    def operations(self) -> Operations:
        from idsvc.operations.use_cases import Operations

        return Operations(self.infra)

    @cached_property
    def reports(self) -> Reports:
        from idsvc.reports.use_cases import Reports

        return Reports(self.infra)

    @cached_property
    def wallet(self) -> Wallet:
        from idsvc.wallet.use_cases import Wallet

        return Wallet(self.infra, self.credentials, self.verification)
