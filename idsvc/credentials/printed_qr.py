"""The printed form of a credential: its Claim 169 QR text, made by the same issuance as the JWT.

``make_printed_qr`` turns a register row and the issuance's shared facts (credential id, status
slot, expiry, issuer key) into QR text and refuses one a card cannot carry
(``QrPayloadTooLarge``, exit 18). ``qr_text_from_image`` reads QR text back from a photo or scan
for ``idsvc verify --image``. The format itself is ``idsvc.formats.claim169``
(docs/claim169.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from cardio import qr
from cardio.errors import QrTooLarge
from cardio.qr_scan import MAX_IMAGE_BYTES, QrScanError, read_qr_texts
from idsvc.errors import QrImageUnreadable, QrPayloadTooLarge
from idsvc.formats.claim169 import Face, PrintedCredential, encode, looks_printed
from idsvc.formats.credentials import Holder
from idsvc.formats.jws import JwsSigner

__all__ = ["PrintedQr", "make_printed_qr", "qr_text_from_image"]


@dataclass(frozen=True)
class PrintedQr:
    text: str
    version: int  # QR version at error correction M
    payload_bytes: int  # characters of base45 text (one byte each in the QR)


def make_printed_qr(
    holder: Holder,
    *,
    sex: str,
    iss: str,
    credential_id: str,
    issued_at: datetime,
    expires_at: datetime,
    status_uri: str,
    status_idx: int,
    signer: JwsSigner,
    birth_date: date | None,
    face: bytes | None,
) -> PrintedQr:
    """Sign the Claim 169 form of a credential; refuse it if no card could carry the QR."""
    iat = int(issued_at.timestamp())
    credential = PrintedCredential(
        credential_id=credential_id,
        issuer=iss,
        issued_at=iat,
        expires_at=int(expires_at.timestamp()),
        employee_id=holder.employee_id,
        name_latin=holder.name_latin,
        name_local=holder.name,
        sex=sex or None,
        date_of_birth=birth_date,
        ministry=holder.ministry,
        position=holder.position,
        category=holder.category,
        card_serial=holder.card_serial,
        status_uri=status_uri,
        status_idx=status_idx,
        face=Face(face) if face is not None else None,
    )
    text = encode(credential, signer)
    try:
        size = qr.require_card_size(text)
    except QrTooLarge as exc:
        raise QrPayloadTooLarge(
            f"the printed QR for {holder.employee_id} would need QR version {exc.version} "
            f"({len(text)} characters); a card carries at most version {exc.limit}. "
            "Issue it without --qr-photo, or shorten the register's ministry or position text."
        ) from None
    return PrintedQr(text=text, version=size.version, payload_bytes=size.payload_bytes)


def qr_text_from_image(data: bytes) -> str:
    """The credential QR in a PNG/JPEG photo or scan; ``QrImageUnreadable`` with the cause."""
    try:
        texts = read_qr_texts(data)
    except QrScanError as exc:
        raise QrImageUnreadable(str(exc)) from None
    # A photo of a card may catch other codes too (a payment QR beside it): prefer ours.
    for text in texts:
        if looks_printed(text.strip()):
            return text
    if texts:
        return texts[0]
    raise QrImageUnreadable(
        "no QR code found in the image: photograph the code flat, in focus, filling a third "
        f"of the picture (files up to {MAX_IMAGE_BYTES // (1024 * 1024)} MiB)"
    )
