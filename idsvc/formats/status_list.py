"""IETF OAuth Token Status List (draft-ietf-oauth-status-list): the list, its JSON form, the
claims of a ``statuslist+jwt`` and the ``status`` claim of a referenced credential.

A list holds one ``bits``-wide value per credential. Index 0 is the least significant bits of
byte 0 (the draft's "Status List" section); the bytes are ZLIB-compressed (level 9, as the draft
recommends) and base64url-encoded without padding into ``lst``. Signing and verifying the
token is ``idsvc.formats.jws``'s job; this module builds and checks what goes inside.

Errors raised when reading lists, list tokens and references::

    StatusListError
    ├── StatusListFormatError     bad ``bits``, bad base64url, bad ZLIB data, missing or
    │                             ill-typed members, an empty list
    ├── StatusListTooLarge        decompresses to more than ``max_bytes`` (ZLIB bomb)
    ├── StatusListExpired         the list token's ``exp`` has passed
    ├── StatusListSubjectMismatch the list token's ``sub`` is not the URI it was fetched for
    ├── StatusIndexError          an index outside the list (also an ``IndexError``)
    └── InvalidReference          a credential's ``status`` claim is not a usable reference

Building a list with bad arguments (``bits`` 3, a value too wide for ``bits``) raises
``ValueError``: that is a bug on the issuing side, not hostile input.
"""

from __future__ import annotations

import binascii
import re
import zlib
from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum
from typing import Any, Final, TypeGuard
from urllib.parse import urlsplit

__all__ = [
    "ALLOWED_BITS",
    "DEFAULT_MAX_BYTES",
    "STATUSLIST_TYP",
    "InvalidReference",
    "Status",
    "StatusIndexError",
    "StatusList",
    "StatusListError",
    "StatusListExpired",
    "StatusListFormatError",
    "StatusListSubjectMismatch",
    "StatusListTooLarge",
    "parse_reference",
    "parse_status_list_claims",
    "reference_claim",
    "status_list_claims",
]

STATUSLIST_TYP: Final = "statuslist+jwt"
ALLOWED_BITS: Final = (1, 2, 4, 8)
DEFAULT_MAX_BYTES: Final = 1_048_576
_ZLIB_LEVEL: Final = 9
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_PAD: Final = ("", None, "==", "=")


class Status(IntEnum):
    """Status Type values registered by the draft (0x03 and up are application-specific)."""

    VALID = 0
    INVALID = 1
    SUSPENDED = 2


class StatusListError(Exception):
    """Base of every error raised by this module when reading."""


class StatusListFormatError(StatusListError):
    pass


class StatusListTooLarge(StatusListError):
    pass


class StatusListExpired(StatusListError):
    pass


class StatusListSubjectMismatch(StatusListError):
    pass


class StatusIndexError(StatusListError, IndexError):
    pass


class InvalidReference(StatusListError):
    pass


def _b64url_encode(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=")
    return encoded.replace("+", "-").replace("/", "_")


def _b64url_decode(text: str) -> bytes:
    pad = _PAD[len(text) % 4]
    if _B64URL_RE.fullmatch(text) is None or pad is None:
        raise StatusListFormatError("lst is not unpadded base64url")
    try:
        return binascii.a2b_base64(text.replace("-", "+").replace("_", "/") + pad, strict_mode=True)
    except binascii.Error as exc:
        raise StatusListFormatError("lst is not unpadded base64url") from exc


def _is_int(value: object) -> TypeGuard[int]:
    # JSON true/false arrive as bool, which is an int subclass in Python.
    return type(value) is int


class StatusList:
    """A fixed-size array of ``bits``-wide status values, all ``VALID`` at first.

    ``size`` is the number of entries; the byte array is rounded up to whole bytes, so a
    decoded list may be a little longer than the one that was encoded (the draft carries no
    size: the length is implied by the bytes).
    """

    __slots__ = ("_bits", "_data", "_mask", "_per_byte", "_size")

    def __init__(self, size: int, bits: int = 2) -> None:
        if not _is_int(bits) or bits not in ALLOWED_BITS:
            raise ValueError(f"bits must be one of {ALLOWED_BITS}, not {bits!r}")
        if not _is_int(size) or size <= 0:
            raise ValueError(f"size must be a positive int, not {size!r}")
        self._bits = bits
        self._mask = (1 << bits) - 1
        self._per_byte = 8 // bits
        self._size = size
        self._data = bytearray(-(-size // self._per_byte))

    @classmethod
    def from_bytes(cls, data: bytes, bits: int) -> StatusList:
        """A list over an uncompressed byte array (every entry of every byte counts)."""
        if not data:
            raise ValueError("a status list needs at least one byte")
        lst = cls(len(data) * (8 // bits), bits)
        lst._data[:] = data
        return lst

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def _locate(self, idx: int) -> tuple[int, int]:
        if not _is_int(idx) or not 0 <= idx < self._size:
            raise StatusIndexError(f"index {idx!r} outside a list of {self._size}")
        byte, slot = divmod(idx, self._per_byte)
        return byte, slot * self._bits

    def get(self, idx: int) -> int:
        byte, shift = self._locate(idx)
        return (self._data[byte] >> shift) & self._mask

    def set(self, idx: int, value: int) -> None:
        if not _is_int(value) and not isinstance(value, Status):
            raise ValueError(f"status value must be an int, not {value!r}")
        if not 0 <= value <= self._mask:
            raise ValueError(f"status value {value} does not fit in {self._bits} bits")
        byte, shift = self._locate(idx)
        self._data[byte] = (self._data[byte] & ~(self._mask << shift)) | (int(value) << shift)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return self._bits == other._bits and self._data == other._data

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"StatusList(size={self._size}, bits={self._bits})"

    def encode(self) -> dict[str, Any]:
        """The JSON form: ``{"bits": n, "lst": base64url(zlib(bytes))}``."""
        return {"bits": self._bits, "lst": _b64url_encode(zlib.compress(self._data, _ZLIB_LEVEL))}

    @classmethod
    def decode(cls, obj: object, *, max_bytes: int = DEFAULT_MAX_BYTES) -> StatusList:
        """Read the JSON form, refusing anything that inflates beyond ``max_bytes``."""
        if not isinstance(obj, Mapping):
            raise StatusListFormatError("status_list is not an object")
        bits = obj.get("bits")
        if not _is_int(bits) or bits not in ALLOWED_BITS:
            raise StatusListFormatError("bits must be 1, 2, 4 or 8")
        lst = obj.get("lst")
        if type(lst) is not str:
            raise StatusListFormatError("lst missing or not a string")
        # Even incompressible data grows by only a few bytes per 64 KiB in ZLIB, so a longer lst
        # cannot hold a list within max_bytes; refusing it early skips decoding junk.
        if len(lst) > (max_bytes + max_bytes // 8192 + 64) * 4 // 3 + 4:
            raise StatusListTooLarge(f"lst is too long for {max_bytes} bytes")
        compressed = _b64url_decode(lst)
        inflater = zlib.decompressobj()
        try:
            # The output cap is what defuses a ZLIB bomb: never inflate more than one byte past
            # the limit, however small the input.
            data = inflater.decompress(compressed, max_bytes + 1)
            overflow = len(data) > max_bytes
            while not overflow and inflater.unconsumed_tail and not inflater.eof:
                overflow = bool(inflater.decompress(inflater.unconsumed_tail, 1))
        except zlib.error as exc:
            raise StatusListFormatError("lst is not valid ZLIB data") from exc
        if overflow:
            raise StatusListTooLarge(f"status list inflates beyond {max_bytes} bytes")
        if not inflater.eof:
            raise StatusListFormatError("lst ZLIB stream is truncated")
        if inflater.unused_data:
            raise StatusListFormatError("trailing bytes after the ZLIB stream")
        if not data:
            raise StatusListFormatError("status list is empty")
        return cls.from_bytes(data, bits)


def _numeric_date(value: datetime | int | float, what: str) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} must be timezone-aware")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a datetime or seconds since the epoch")
    return float(value)


def status_list_claims(
    lst: StatusList,
    *,
    uri: str,
    iat: int,
    exp: int,
    ttl: int,
    iss: str | None = None,
) -> dict[str, Any]:
    """Claims of a Status List Token: ``sub`` is the URI the token is served at.

    ``iss`` is REQUIRED by the draft when the referenced credentials carry one (ours do).
    """
    for name, value in (("iat", iat), ("exp", exp), ("ttl", ttl)):
        if not _is_int(value):
            raise ValueError(f"{name} must be an int (NumericDate seconds)")
    if exp <= iat:
        raise ValueError("exp must be after iat")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    if not uri:
        raise ValueError("uri is required")
    claims: dict[str, Any] = {}
    if iss is not None:
        claims["iss"] = iss
    claims.update(sub=uri, iat=iat, exp=exp, ttl=ttl, status_list=lst.encode())
    return claims


def parse_status_list_claims(
    payload: Mapping[str, Any],
    *,
    expected_uri: str,
    now: datetime | int | float,
    max_bytes: int = DEFAULT_MAX_BYTES,
    expected_iss: str | None = None,
) -> StatusList:
    """Check the claims of a verified ``statuslist+jwt`` and return its list.

    ``exp`` is required here although the draft makes it optional: a list that never expires
    could be replayed forever to hide a revocation. Expired means ``now >= exp`` (RFC 7519
    §4.1.4). The signature and ``typ`` are checked by the caller (``idsvc.formats.jws``).
    """
    now_s = _numeric_date(now, "now")
    sub = payload.get("sub")
    if type(sub) is not str:
        raise StatusListFormatError("sub missing or not a string")
    if sub != expected_uri:
        raise StatusListSubjectMismatch("status list token is for another URI")
    if expected_iss is not None and payload.get("iss") != expected_iss:
        raise StatusListSubjectMismatch("status list token is from another issuer")
    iat, exp, ttl = payload.get("iat"), payload.get("exp"), payload.get("ttl", 1)
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise StatusListFormatError("iat missing or not a number")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise StatusListFormatError("exp missing or not a number")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        raise StatusListFormatError("ttl must be a positive number")
    if now_s >= exp:
        raise StatusListExpired("status list token has expired")
    return StatusList.decode(payload.get("status_list"), max_bytes=max_bytes)


def reference_claim(uri: str, idx: int) -> dict[str, Any]:
    """The value of a credential's ``status`` claim pointing at entry ``idx`` of ``uri``."""
    _check_uri(uri, ValueError)
    if not _is_int(idx) or idx < 0:
        raise ValueError(f"idx must be a non-negative int, not {idx!r}")
    return {"status_list": {"idx": idx, "uri": uri}}


# The URIs a reference named that passed ``_check_uri``: credentials of one list share its URI,
# and the check (urlsplit) costs more than the rest of a reference's parse. Bounded, so hostile
# input cannot grow it; only good URIs are kept, so every bad one still gets the full check.
_GOOD_URIS: set[str] = set()
_GOOD_URIS_MAX: Final = 256


def parse_reference(claim: object) -> tuple[str, int]:
    """``(uri, idx)`` from a credential's ``status`` claim; other members are ignored."""
    # type() is dict first: isinstance against the Mapping ABC costs more, and JSON gives dicts.
    if type(claim) is not dict and not isinstance(claim, Mapping):
        raise InvalidReference("status claim is not an object")
    ref = claim.get("status_list")
    if type(ref) is not dict and not isinstance(ref, Mapping):
        raise InvalidReference("status claim has no status_list object")
    idx, uri = ref.get("idx"), ref.get("uri")
    if type(idx) is not int or idx < 0:  # _is_int inline: bool (JSON true) is refused
        raise InvalidReference("status_list.idx must be a non-negative integer")
    if type(uri) is not str:
        raise InvalidReference("status_list.uri missing or not a string")
    if uri not in _GOOD_URIS:
        _check_uri(uri, InvalidReference)
        if len(_GOOD_URIS) >= _GOOD_URIS_MAX:
            _GOOD_URIS.clear()
        _GOOD_URIS.add(uri)
    return uri, idx


def _check_uri(uri: object, error: type[Exception]) -> None:
    if type(uri) is not str or not uri or len(uri) > 2048:
        raise error("uri must be a non-empty string of at most 2048 characters")
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        raise error("uri must be printable ASCII without spaces")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. "http://[x/": an unclosed IPv6 literal
        raise error("uri is not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise error("uri must be an absolute http(s) URL")
