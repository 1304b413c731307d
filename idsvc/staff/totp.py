"""One-time codes for operators: TOTP (RFC 6238) over HOTP (RFC 4226), written from the RFCs.

Parameters are the ones every authenticator app supports without asking: HMAC-SHA-1, 6
digits, 30-second steps, T0 = 0. A code is accepted for the current step and one step either
side (clock drift of a phone), and a step once used is never accepted again for that operator
(RFC 6238 §5.2): the caller stores the returned step and passes it back as ``last_used_step``.

Pure: ``now`` is a parameter, secrets are bytes; storage of the secret is the caller's job
(``idsvc.staff.secrets`` encrypts it at rest).

    TotpError
    └── TotpRejected   the code is malformed, wrong, outside the window, or already used
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_SECONDS = 30
WINDOW = 1  # steps accepted either side of the current one
SECRET_BYTES = 20  # 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226 §4


class TotpError(Exception):
    """Base of TOTP errors."""


class TotpRejected(TotpError):
    pass


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 §5.3: HMAC over the 8-byte counter, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def step_at(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return int(now.timestamp()) // STEP_SECONDS


def code_at(key: bytes, now: datetime) -> str:
    return hotp(key, step_at(now))


def check_code(key: bytes, code: str, *, now: datetime, last_used_step: int | None) -> int:
    """Return the step ``code`` belongs to; raise ``TotpRejected`` if it is not acceptable.

    Every candidate step is compared (constant time each), so the time taken does not tell
    which step matched.
    """
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        raise TotpRejected(f"a one-time code is {DIGITS} digits")
    current = step_at(now)
    matched: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(hotp(key, step).encode(), code.encode()) and matched is None:
            matched = step
    if matched is None:
        raise TotpRejected("wrong one-time code")
    if last_used_step is not None and matched <= last_used_step:
        raise TotpRejected("this one-time code was already used; wait for the next one")
    return matched


def secret_base32(key: bytes) -> str:
    return base64.b32encode(key).decode("ascii").rstrip("=")


def provisioning_uri(key: bytes, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/`` URI authenticator apps read from a QR code (Key Uri Format)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode(
        {
            "secret": secret_base32(key),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
