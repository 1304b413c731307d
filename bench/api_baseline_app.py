"""The baseline of ``bench_api_verify.py``: a bare FastAPI endpoint that only decodes the token
with stock PyJWT (ES256, key preloaded from the JWKS file in ``BENCH_JWKS``). Not part of idsvc.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jwt
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    credential: str


def create_app() -> FastAPI:
    with open(os.environ["BENCH_JWKS"], encoding="utf-8") as f:
        keys = {k["kid"]: jwt.PyJWK(k).key for k in json.load(f)["keys"]}
    app = FastAPI()

    @app.post("/bare")
    def bare(body: Body) -> dict[str, Any]:
        kid = jwt.get_unverified_header(body.credential)["kid"]
        claims = jwt.decode(body.credential, keys[kid], algorithms=["ES256"])
        return {"valid": True, "sub": claims["sub"]}

    return app
