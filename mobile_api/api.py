"""``api_router``: every route module of ``mobile_api/routes`` in one router.

Add a new area with its own module under ``routes/`` and one ``include_router`` line here.
"""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api.routes import (
    card_challenges,
    desk,
    desk_actions,
    health,
    holder,
    hr,
    openid4vci,
    payroll,
    presentations,
    public_keys,
    reports,
    system,
    verifications,
    verifier_page,
    who_checked,
)

api_router = APIRouter()
# The busiest route first: a request is matched against the routes in this order.
api_router.include_router(verifications.router)
api_router.include_router(system.router)
api_router.include_router(health.router)  # /healthz, /readyz, /metrics (operations)
api_router.include_router(public_keys.router)
api_router.include_router(card_challenges.router)
api_router.include_router(who_checked.router)  # the who-checked log of a person
api_router.include_router(reports.router)  # the monthly payroll-controls report
api_router.include_router(payroll.router)
api_router.include_router(hr.router)
api_router.include_router(desk.router)  # remote issuance desks (signed requests)
api_router.include_router(desk_actions.router)  # a desk's card checks, printing, registrar
api_router.include_router(openid4vci.router)  # the phone credential: OpenID4VCI, offers
api_router.include_router(presentations.router)  # asking a phone for it: OpenID4VP
api_router.include_router(holder.router)  # the holder's own page
api_router.include_router(verifier_page.router)  # the officials' web verifier, /verify/
