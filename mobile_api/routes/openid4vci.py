"""(being written: see /tmp/lead/wallet-contract.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["wallet"])
