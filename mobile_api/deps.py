"""Request-scoped dependencies every route module shares: one per feature of the services
(``idsvc.services.Services``), the clock, JSON bodies.

``create_app`` builds the services once per worker and keeps them on ``app.state.services``;
these functions hand a route the one feature it uses as an ``Annotated`` dependency. They are
``async def`` on purpose: they do no I/O, and FastAPI runs a plain ``def`` dependency in its
thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from idsvc.audit.who_checked import CheckLog
from idsvc.config import Settings
from idsvc.credentials.use_cases import Credentials as CredentialsFeature
from idsvc.desks.gateway import DeskGateway
from idsvc.operations.use_cases import Operations as OperationsFeature
from idsvc.register.use_cases import Register as RegisterFeature
from idsvc.reports.use_cases import Reports as ReportsFeature
from idsvc.services import Services
from idsvc.verification.card_challenges import CardChallenges
from idsvc.verification.online import OnlineVerifier
from idsvc.verification.use_cases import Verification as VerificationFeature
from idsvc.wallet.use_cases import Wallet as WalletFeature
from mobile_api.json_body import is_json

Clock = Callable[[], datetime]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_settings(request: Request) -> Settings:
    return services_of(request).settings


async def get_register(request: Request) -> RegisterFeature:
    return services_of(request).register


async def get_credentials(request: Request) -> CredentialsFeature:
    return services_of(request).credentials


async def get_verification(request: Request) -> VerificationFeature:
    return services_of(request).verification


async def get_verifier(request: Request) -> OnlineVerifier:
    return services_of(request).verification.online


async def get_challenges(request: Request) -> CardChallenges:
    return services_of(request).verification.challenges


async def get_check_log(request: Request) -> CheckLog:
    return services_of(request).verification.check_log


async def get_desks(request: Request) -> DeskGateway:
    return services_of(request).desks


async def get_operations(request: Request) -> OperationsFeature:
    return services_of(request).operations


async def get_reports(request: Request) -> ReportsFeature:
    return services_of(request).reports


async def get_wallet(request: Request) -> WalletFeature:
    return services_of(request).wallet


def now_of(request: Request) -> datetime:
    """The app's clock (``create_app(clock=...)``) read once: what ``Now`` hands a route."""
    clock: Clock = request.app.state.clock
    return clock()


async def get_now(request: Request) -> datetime:
    return now_of(request)


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``*+json``)."""
    if not is_json(request.headers.get("content-type", "")):
        raise HTTPException(415, "send the body as application/json")


AppSettings = Annotated[Settings, Depends(get_settings)]
Register = Annotated[RegisterFeature, Depends(get_register)]
Credentials = Annotated[CredentialsFeature, Depends(get_credentials)]
Verification = Annotated[VerificationFeature, Depends(get_verification)]
Verifier = Annotated[OnlineVerifier, Depends(get_verifier)]
Challenges = Annotated[CardChallenges, Depends(get_challenges)]
Checks = Annotated[CheckLog, Depends(get_check_log)]
Desks = Annotated[DeskGateway, Depends(get_desks)]
Operations = Annotated[OperationsFeature, Depends(get_operations)]
Reports = Annotated[ReportsFeature, Depends(get_reports)]
Wallet = Annotated[WalletFeature, Depends(get_wallet)]
Now = Annotated[datetime, Depends(get_now)]
JsonBody = Depends(require_json)
