"""The compact encodings of the printed QR's profile version 2 (docs/claim169.md, "Size").

Each one saves bytes of a QR that must fit version 13 without losing what the JWT says: the
key's kid as an 8-byte *hint*, the card serial as the 60-bit number its 12 Crockford base32
characters spell, and the status list as its name's bytes under a base, not its whole URI.
Pure functions; bad input raises ``ValueError`` (``idsvc.formats.claim169`` turns the decoding
ones into ``MalformedClaim169``).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

__all__ = [
    "KID_HINT_BYTES",
    "STATUS_BASE",
    "STATUS_LIST",
    "STATUS_URI",
    "keys_by_hint",
    "kid_bytes",
    "kid_hint",
    "named_list_uri",
    "relative_uri",
    "serial_bytes",
    "serial_text",
    "status_reference",
]

KID_HINT_BYTES: Final = 8
# Keys of the status list in the private claim -65537 (7, the index, is the caller's).
STATUS_LIST, STATUS_URI, STATUS_BASE = 8, 9, 10
# idsvc serves a status list at <public URL>/status-lists/<hex name>
# (idsvc.credentials.status_lists).
_LISTS_SEGMENT: Final = "status-lists/"
_LIST_NAME_RE: Final = re.compile(r"(?:[0-9a-f]{2}){1,32}", re.ASCII)
MAX_LIST_NAME_BYTES: Final = 32
# Card serials are 12 Crockford base32 characters (idsvc.credentials.issuance): 60 bits, 8 bytes.
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SERIAL_RE: Final = re.compile(f"[{_CROCKFORD}]{{12}}", re.ASCII)
_SERIAL_BYTES: Final = 8
_URLSAFE: Final = str.maketrans("+/", "-_")

_Entry = TypeVar("_Entry")


def b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode().rstrip("=").translate(_URLSAFE)


def kid_bytes(kid: str) -> bytes:
    """The JWKS kid (base64url of an RFC 7638 SHA-256 thumbprint) as its 32 raw bytes."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}", kid):
        raise ValueError("signer kid is not an RFC 7638 SHA-256 thumbprint")
    raw = binascii.a2b_base64(kid.replace("-", "+").replace("_", "/") + "=")
    if b64url(raw) != kid:
        raise ValueError("signer kid is not canonical base64url")
    return raw


def kid_hint(kid: str) -> str:
    """The printed form's hint for a JWKS kid: base64url of its thumbprint's first 8 bytes.

    ``ValueError`` for a kid that is not an RFC 7638 SHA-256 thumbprint.
    """
    return b64url(kid_bytes(kid)[:KID_HINT_BYTES])


def keys_by_hint(keys: Mapping[str, _Entry]) -> dict[str, _Entry]:
    """``{kid: entry}`` re-keyed by kid hint, for ``claim169.verify``'s ``key_for``.

    A hint two kids share selects neither (their QR texts are then ``UnknownKey``): a hint
    picks a key, it must never pick one of two. Kids that are not thumbprints have no hint.
    """
    found: dict[str, _Entry] = {}
    shared: set[str] = set()
    for kid, entry in keys.items():
        try:
            hint = kid_hint(kid)
        except ValueError:
            continue
        if hint in found:
            shared.add(hint)
        found[hint] = entry
    return {hint: entry for hint, entry in found.items() if hint not in shared}


def serial_bytes(serial: str) -> bytes:
    if not _SERIAL_RE.fullmatch(serial):
        raise ValueError("card serial is not 12 Crockford base32 characters")
    value = 0
    for char in serial:
        value = value << 5 | _CROCKFORD.index(char)
    return value.to_bytes(_SERIAL_BYTES, "big")


def serial_text(raw: bytes) -> str:
    value = int.from_bytes(raw, "big")
    # The top 4 bits must be zero: one serial, one spelling.
    if len(raw) != _SERIAL_BYTES or value >> 60:
        raise ValueError("card serial (-65537/6) is not 8 bytes of a 60-bit number")
    return "".join(_CROCKFORD[value >> shift & 31] for shift in range(55, -1, -5))


def relative_uri(uri: str, base: str) -> str:
    """``uri`` as the shortest reference that resolves against ``base`` (RFC 3986 §5): its
    path (and query) on ``base``'s scheme and host, otherwise the absolute URI."""
    target, origin = urlsplit(uri), urlsplit(base)
    if (target.scheme, target.netloc) == (origin.scheme, origin.netloc) and target.path.startswith(
        "/"
    ):
        reference = urlunsplit(("", "", target.path, target.query, target.fragment))
        if urljoin(base, reference) == uri:
            return reference
    return uri


def named_list_uri(name: bytes, base: str | None, issuer: str) -> str:
    """The list URI that a name (key 8) and a base (key 10, None: ``/``) stand for."""
    return urljoin(urljoin(issuer, "/" if base is None else base), _LISTS_SEGMENT + name.hex())


def status_reference(uri: str, issuer: str) -> dict[int, Any]:
    """The status list's entries in the private claim: its name's bytes (and the base, unless
    the lists are at the root of the issuer's host) when the URI has the shape idsvc gives it,
    else the URI as a reference against iss. The name form is used only when it gives back
    exactly ``uri``."""
    folder, segment, name = uri.rpartition(_LISTS_SEGMENT)
    if segment and folder.endswith("/") and _LIST_NAME_RE.fullmatch(name):
        base = relative_uri(folder, issuer)
        entries: dict[int, Any] = {STATUS_LIST: bytes.fromhex(name)}
        if base != "/":
            entries[STATUS_BASE] = base
        if named_list_uri(entries[STATUS_LIST], entries.get(STATUS_BASE), issuer) == uri:
            return entries
    return {STATUS_URI: relative_uri(uri, issuer)}
