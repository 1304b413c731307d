"""Holder photos: validate and normalise what a desk captured, store it, hand it to printing.

``store_photo`` takes the bytes of a JPEG or PNG and refuses, before decoding any pixel, what is
not one (``PhotoRejected``; the one rule for a person's image, ``cardio.images``, with
``PHOTO_RULE``'s limits): too many bytes, an unknown or other format (GIF, WebP, HEIC, PDF),
too many pixels (a decompression bomb declares a huge size in a tiny file; the size is read from
the header, the pixels are never inflated), too few pixels for a printed face, a truncated file.
A refused photo leaves the stored one untouched: the write happens only after every check.

Normalising: EXIF orientation applied, transparency flattened on white, then cropped around
the face that ``idsvc.register.face_finder`` detects, to passport geometry (ICAO 9303 / ISO/IEC
19794-5
style): aspect 35:45, the head (chin to crown) ``HEAD_SHARE`` of the height, the eyes
``EYES_FROM_BOTTOM`` of the height up from the bottom, the face centred across. Where the photo
is too tight for that (a face near an edge, a close-up) the missing part is white. Then resized
to ``FACE_SIZE``. No face, more than one, or one too small to print is ``PhotoRejected`` like
any other bad photo: desk photos come from webcams and phones, and the crop, not the desk,
frames the face.

Two images are kept: the face for the card (JPEG, ``face_image``) and a grey WebP thumbnail for
a QR (``qr_photo``; Claim 169 field 62), aimed at ``QR_PHOTO_TARGET_BYTES`` so that a record
with its photo still fits a card's QR, and never over ``QR_PHOTO_MAX_BYTES`` (2 KB). Changes
are audited (``photo.store``), with the image's hash, never the image.

Session functions (``store_photo``, ``face_image``, ``qr_photo``, ``photo_info``) run inside the
caller's transaction; ``Photos`` wraps them for the CLI, one transaction each.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageOps
from sqlalchemy.orm import Session

from cardio.images import ImageRefused, open_image
from idsvc.audit import chain as audit
from idsvc.errors import PhotoMissing, PhotoRejected
from idsvc.register import face_finder
from idsvc.register import records as register
from idsvc.register.photo_rule import PHOTO_RULE
from idsvc.storage.db import Database
from idsvc.storage.photo_tables import PhotoRow

MIN_PHOTO_SIZE = (240, 300)  # a 20 x 25 mm face at 300 dpi
FACE_SIZE = (420, 540)  # 35:45; ~480 dpi in the card's 22 x 28 mm photo box
FACE_JPEG_QUALITY = 90
HEAD_SHARE = 0.72  # chin to crown, of the face image's height (ICAO: 70-80 %)
EYES_FROM_BOTTOM = 0.57  # the eye line, of the height up from the bottom (ICAO: 55-60 %)
QR_PHOTO_SIZES = ((48, 62), (40, 52), (32, 41), (24, 31))
QR_PHOTO_TARGET_BYTES = 400
QR_PHOTO_MAX_BYTES = 2048  # Claim 169's limit for field 62
QR_PHOTO_MEDIA_TYPE = "image/webp"
VERIFIER_PICTURE_SIZE = (140, 180)  # 35:45, a third of the printed face
VERIFIER_PICTURE_QUALITY = 70


@dataclass(frozen=True)
class Portrait:
    """A normalised photo, ready to store."""

    face_jpeg: bytes
    width: int
    height: int
    qr_image: bytes
    qr_media_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.face_jpeg).hexdigest()


@dataclass(frozen=True)
class PhotoInfo:
    employee_id: str
    width: int
    height: int
    face_bytes: int
    qr_bytes: int
    qr_media_type: str
    sha256: str
    updated_at: datetime

    def as_dict(self) -> dict[str, str | int]:
        """The form on the wire (desk API) and in ``idsvc photo --json``."""
        return {
            "employee_id": self.employee_id,
            "width": self.width,
            "height": self.height,
            "face_bytes": self.face_bytes,
            "qr_photo_bytes": self.qr_bytes,
            "qr_photo_type": self.qr_media_type,
            "sha256": self.sha256,
        }


# -- pure part: bytes in, portrait out -------------------------------------------------------


def normalise_photo(data: bytes) -> Portrait:
    """Validate and normalise a desk photo; ``PhotoRejected`` names what is wrong."""
    try:
        image = open_image(data, PHOTO_RULE)
    except ImageRefused as exc:
        raise PhotoRejected(str(exc)) from None
    width, height = image.size
    if width < MIN_PHOTO_SIZE[0] or height < MIN_PHOTO_SIZE[1]:
        raise PhotoRejected(
            f"photo too small: {width} x {height} pixels "
            f"(at least {MIN_PHOTO_SIZE[0]} x {MIN_PHOTO_SIZE[1]} for a printed face)"
        )
    upright = _flatten(ImageOps.exif_transpose(image))
    found = face_finder.the_face(upright)
    face = _passport_crop(upright, found).resize(FACE_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    face.save(out, "JPEG", quality=FACE_JPEG_QUALITY, optimize=True)
    return Portrait(
        out.getvalue(), FACE_SIZE[0], FACE_SIZE[1], _qr_thumbnail(face), QR_PHOTO_MEDIA_TYPE
    )


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _passport_crop(image: Image.Image, found: face_finder.FoundFace) -> Image.Image:
    height = round(found.head_height / HEAD_SHARE)
    width = height * FACE_SIZE[0] // FACE_SIZE[1]
    left = round(found.centre_x - width / 2)
    top = round(found.eye_y - (1 - EYES_FROM_BOTTOM) * height)
    box = (left, top, left + width, top + height)
    if left >= 0 and top >= 0 and box[2] <= image.width and box[3] <= image.height:
        return image.crop(box)
    # Too tight: Pillow would fill outside the photo with black; a passport background is light.
    framed = Image.new("RGB", (width, height), "white")
    inside = (max(left, 0), max(top, 0), min(box[2], image.width), min(box[3], image.height))
    framed.paste(image.crop(inside), (inside[0] - left, inside[1] - top))
    return framed


def verifier_picture(face_jpeg: bytes) -> str:
    """The face as a verifier shows it next to the result: a ``data:`` URI of a small colour
    JPEG (``VERIFIER_PICTURE_SIZE``, a few KB), big enough to compare with the person in
    front of the official, small enough to ride in every answer."""
    with Image.open(io.BytesIO(face_jpeg), formats=["JPEG"]) as face:
        face.draft("RGB", VERIFIER_PICTURE_SIZE)  # decode at reduced scale: cheaper
        small = face.convert("RGB").resize(VERIFIER_PICTURE_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=VERIFIER_PICTURE_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _qr_thumbnail(face: Image.Image) -> bytes:
    # Claim 169 allows 2 KB, but a QR holds ~880 bytes at version 24 (the card limit) and a
    # record itself needs 400-530 (bench/bench_qr_payload.py): so aim at QR_PHOTO_TARGET_BYTES,
    # trading quality first (a busy background costs bytes, a plain one does not), then size.
    grey = ImageOps.autocontrast(face.convert("L"), cutoff=1)
    smallest = b""
    for size in QR_PHOTO_SIZES:
        small = grey.resize(size, Image.Resampling.LANCZOS)
        for quality in (50, 35, 20, 10):
            out = io.BytesIO()
            small.save(out, "WEBP", quality=quality, method=6)
            if out.tell() <= QR_PHOTO_TARGET_BYTES:
                return out.getvalue()
            smallest = out.getvalue()
    if len(smallest) > QR_PHOTO_MAX_BYTES:  # pragma: no cover - 32x41 grey at q10 is < 1 KB
        raise PhotoRejected("the photo cannot be made small enough for a QR")
    return smallest


# -- use cases inside a transaction --------------------------------------------------------------


def store_photo(
    session: Session, employee_id: str, data: bytes, *, actor: str, now: datetime
) -> PhotoInfo:
    """Validate, normalise and store (replacing any previous photo); audited."""
    register.get_servant(session, employee_id)  # UnknownEmployee before looking at the bytes
    portrait = normalise_photo(data)
    row = session.get(PhotoRow, employee_id)
    previous = None if row is None else row.sha256
    if row is None:
        row = PhotoRow(employee_id=employee_id)
        session.add(row)
    row.face_jpeg = portrait.face_jpeg
    row.width = portrait.width
    row.height = portrait.height
    row.qr_image = portrait.qr_image
    row.qr_media_type = portrait.qr_media_type
    row.sha256 = portrait.sha256
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="photo.store",
        target_type="civil_servant",
        target_id=employee_id,
        details={"sha256": portrait.sha256, "previous_sha256": previous},
    )
    return _info(row)


def _row(session: Session, employee_id: str) -> PhotoRow:
    row = session.get(PhotoRow, employee_id)
    if row is None:
        register.get_servant(session, employee_id)
        raise PhotoMissing(employee_id)
    return row


def face_image(session: Session, employee_id: str) -> bytes:
    """The face for the card (JPEG, 35:45); ``PhotoMissing`` if none was taken."""
    return _row(session, employee_id).face_jpeg


def qr_photo(session: Session, employee_id: str) -> tuple[bytes, str]:
    """The QR thumbnail (bytes, media type), at most ``QR_PHOTO_MAX_BYTES``."""
    row = _row(session, employee_id)
    return row.qr_image, row.qr_media_type


def photo_info(session: Session, employee_id: str) -> PhotoInfo:
    return _info(_row(session, employee_id))


def _info(row: PhotoRow) -> PhotoInfo:
    return PhotoInfo(
        row.employee_id,
        row.width,
        row.height,
        len(row.face_jpeg),
        len(row.qr_image),
        row.qr_media_type,
        row.sha256,
        row.updated_at,
    )


class Photos:
    """The photo use cases for the CLI and the API: one transaction each."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def store(self, employee_id: str, data: bytes, *, actor: str, now: datetime) -> PhotoInfo:
        with self._db.transaction() as session:
            return store_photo(session, employee_id, data, actor=actor, now=now)

    def face_image(self, employee_id: str) -> bytes:
        with self._db.transaction() as session:
            return face_image(session, employee_id)

    def qr_photo(self, employee_id: str) -> tuple[bytes, str]:
        with self._db.transaction() as session:
            return qr_photo(session, employee_id)

    def info(self, employee_id: str) -> PhotoInfo:
        with self._db.transaction() as session:
            return photo_info(session, employee_id)
