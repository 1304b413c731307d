"""Builds a compact JWS (RFC 7515 §7.1) from a keys Signer, so that independent JOSE
libraries can check the raw signatures our signers produce."""

from __future__ import annotations

import base64
import json
from typing import Any

from keys.signer import Signer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_compact(signer: Signer, payload: dict[str, Any], *, typ: str = "JWT") -> str:
    header = {"alg": signer.alg, "kid": signer.kid, "typ": typ}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(payload, separators=(",", ":")).encode())
    )
    return signing_input + "." + _b64(signer.sign(signing_input.encode("ascii")))
