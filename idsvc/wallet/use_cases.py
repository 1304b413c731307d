"""The wallet feature: phone credentials, presentation requests, the holder's own page.

``Wallet`` is built once per process by the composition root (``Services.wallet``); the CLI
and the API call its methods, each taking ``now``.
"""

from __future__ import annotations

from idsvc.credentials.infrastructure import Infrastructure
from idsvc.credentials.use_cases import Credentials
from idsvc.verification.use_cases import Verification


class Wallet:
    def __init__(
        self, infra: Infrastructure, credentials: Credentials, verification: Verification
    ) -> None:
        self.infra = infra
        self.credentials = credentials
        self.verification = verification
