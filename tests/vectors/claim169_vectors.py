"""The printed-card (Claim 169 QR) part of the verifier test vectors, made with the project's
own encoder (``idsvc.formats.claim169``) and the same fixed keys and clock as the JWTs."""

from __future__ import annotations

import io
import uuid
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import cbor2
from PIL import Image

from idsvc.formats.base45 import b45decode, b45encode
from idsvc.formats.claim169 import Face, PrintedCredential, encode, fragment_of
from idsvc.formats.jws import JwsSigner


class IssuerLike(Protocol):
    @property
    def iss(self) -> str: ...

    @property
    def signer(self) -> JwsSigner: ...

    @property
    def list_uri(self) -> str: ...


IDX_VALID, IDX_REVOKED, IDX_SUSPENDED = 17, 403, 977


def tiny_face() -> bytes:
    """A 24x32 grey PNG: a stand-in for the small face photo a card may carry in its QR."""
    image = Image.new("L", (24, 32), 180)
    for y in range(8, 20):
        for x in range(6, 18):
            image.putpixel((x, y), 90)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def printed(
    issuer: IssuerLike,
    *,
    khmer: bool,
    now: datetime,
    idx: int = IDX_VALID,
    iat_days_ago: int = 30,
    days: int = 1825,
    iss: str | None = None,
    face: bytes | None = None,
    status_uri: str | None = None,
    nbf_in: timedelta | None = None,
) -> PrintedCredential:
    iat = int((now - timedelta(days=iat_days_ago)).timestamp())
    return PrintedCredential(
        credential_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer.iss}/{iat}/{idx}/{khmer}")),
        issuer=iss or issuer.iss,
        issued_at=iat,
        expires_at=iat + days * 86_400,
        employee_id="KH-MCS-010002" if khmer else "LA-MOHA-000101",
        name_latin="Sok Chantha" if khmer else "Somphone Keomany",
        name_local="សុខ ចន្ថា" if khmer else "ສົມພອນ ແກ້ວມະນີ",
        sex="M" if khmer else "F",
        date_of_birth=None,
        ministry="Ministry of Civil Service" if khmer else "Ministry of Home Affairs",
        position="Deputy Director",
        category="civil_servant",
        card_serial="KH0001000200" if khmer else "9A0000010100",  # Crockford: no L
        status_uri=status_uri or issuer.list_uri,
        status_idx=idx,
        face=Face(face) if face else None,
        not_before=None if nbf_in is None else int((now + nbf_in).timestamp()),
    )


def _relayer(qr: str, change: Callable[[list[Any]], None]) -> str:
    """Open the QR's layers, let ``change`` edit the COSE_Sign1 array, close them again."""
    cose = cbor2.loads(zlib.decompress(b45decode(qr)))
    parts = list(cose.value)
    change(parts)
    return b45encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, parts)), 9))


def _flip_signature(parts: list[Any]) -> None:
    sig = bytearray(parts[3])
    sig[10] ^= 0x01
    parts[3] = bytes(sig)


def _edit_payload(parts: list[Any]) -> None:
    claims = cbor2.loads(parts[2])
    claims[169][4] = "Sok Chanthy"
    parts[2] = cbor2.dumps(claims, canonical=True)


def vectors(
    *,
    issuers: dict[str, IssuerLike],
    stranger: JwsSigner,
    now: datetime,
    make: Callable[..., dict[str, Any]],
) -> list[dict[str, Any]]:
    kh, la = issuers["kh"], issuers["la"]
    valid_kh = encode(printed(kh, khmer=True, now=now), kh.signer)
    valid_la = encode(printed(la, khmer=False, now=now), la.signer)
    with_face = encode(printed(kh, khmer=True, now=now, face=tiny_face()), kh.signer)
    tap_url = f"https://id.mcs.gov.kh/v/{uuid.UUID(int=7)}#{fragment_of(valid_kh)}"
    brotli_like = b45encode(b"\x1b\x00" + bytes(range(40)))

    def qr(
        name: str, text: str, context: str, status: str, reasons: list[str], **kw: Any
    ) -> dict[str, Any]:
        return make(name, text, context, status, reasons, fmt="claim169", **kw)

    return [
        qr("qr_valid_es256_khmer", valid_kh, "fresh", "valid", []),
        qr("qr_valid_eddsa_lao", valid_la, "fresh", "valid", []),
        qr("qr_valid_with_face", with_face, "fresh", "valid", []),
        qr("qr_valid_in_tap_url", tap_url, "fresh", "valid", []),
        qr(
            "qr_valid_with_nbf",  # nbf is optional (we omit it: = iat); when written, it counts
            encode(printed(kh, khmer=True, now=now, nbf_in=timedelta(days=-1)), kh.signer),
            "fresh",
            "valid",
            [],
        ),
        qr(
            "qr_not_yet_valid",
            encode(printed(kh, khmer=True, now=now, nbf_in=timedelta(minutes=10)), kh.signer),
            "fresh",
            "not_yet_valid",
            ["NOT_YET_VALID"],
        ),
        qr(
            # Lists served from another host: name (8) and that host (10), not the URI (9).
            "qr_valid_list_on_another_host",
            encode(
                printed(kh, khmer=True, now=now, status_uri=issuers["kh_elsewhere"].list_uri),
                kh.signer,
            ),
            "fresh",
            "valid",
            [],
        ),
        qr(
            # A list at a URI of another shape travels as that URI (key 9).
            "qr_status_list_elsewhere_unavailable",
            encode(
                printed(kh, khmer=True, now=now, status_uri="https://lists.example.org/l/7"),
                kh.signer,
            ),
            "fresh",
            "unknown",
            ["STATUS_UNAVAILABLE"],
            freshness="missing",
        ),
        qr(
            "qr_unknown_key_hint_clash",
            valid_kh,
            "kid_hint_clash",
            "invalid",
            ["UNKNOWN_KEY"],
            freshness=None,
        ),
        qr(
            "qr_bad_signature",
            _relayer(valid_kh, _flip_signature),
            "fresh",
            "invalid",
            ["BAD_SIGNATURE"],
            freshness=None,
        ),
        qr(
            "qr_tampered_payload",
            _relayer(valid_la, _edit_payload),
            "fresh",
            "invalid",
            ["BAD_SIGNATURE"],
            freshness=None,
        ),
        qr(
            "qr_unknown_key",
            encode(printed(kh, khmer=True, now=now), stranger),
            "fresh",
            "invalid",
            ["UNKNOWN_KEY"],
            freshness=None,
        ),
        qr(
            "qr_key_of_another_issuer",
            encode(printed(kh, khmer=True, now=now), la.signer),
            "fresh",
            "invalid",
            ["UNKNOWN_KEY"],
            freshness=None,
        ),
        qr(
            "qr_malformed_base45",
            "NOT:BASE45 %%%",
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        qr("qr_malformed_not_zlib", brotli_like, "fresh", "invalid", ["MALFORMED"], freshness=None),
        qr(
            "qr_expired",
            encode(printed(kh, khmer=True, now=now, iat_days_ago=400, days=365), kh.signer),
            "fresh",
            "expired",
            ["EXPIRED"],
        ),
        qr(
            "qr_revoked",
            encode(printed(kh, khmer=True, now=now, idx=IDX_REVOKED), kh.signer),
            "fresh",
            "revoked",
            ["REVOKED"],
        ),
        qr(
            "qr_suspended_eddsa",
            encode(printed(la, khmer=False, now=now, idx=IDX_SUSPENDED), la.signer),
            "fresh",
            "suspended",
            ["SUSPENDED"],
        ),
        qr(
            "qr_malformed_index_outside_list",
            encode(printed(kh, khmer=True, now=now, idx=5000), kh.signer),
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        qr(
            "qr_status_unavailable",
            valid_kh,
            "no_lists",
            "unknown",
            ["STATUS_UNAVAILABLE"],
            freshness="missing",
        ),
        qr(
            "qr_trust_stale",
            valid_kh,
            "eight_days_old",
            "unknown",
            ["TRUST_STALE"],
            freshness="too_old",
        ),
        qr(
            "qr_trust_stale_list_iat_in_the_future",
            valid_la,
            "list_from_the_future",
            "unknown",
            ["TRUST_STALE"],
            freshness="too_old",
        ),
    ]
