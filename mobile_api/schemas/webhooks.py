"""Webhooks: ``GET /v1/webhooks/public-key``, the key that verifies their signatures."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookPublicKeyResponse(BaseModel):
    public_key: str = Field(description="whpk_<base64 Ed25519 key>: verifies v1a signatures")
    scheme: str
