"""idsvc.photos on SQLite and PostgreSQL: a desk photo is normalised, stored, audited; every bad
input is refused with its own message and leaves the stored photo and the audit log as they
were."""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import zlib

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select

from idsvc.errors import PhotoMissing, PhotoRejected, UnknownEmployee
from idsvc.photos import (
    FACE_SIZE,
    MAX_PHOTO_BYTES,
    QR_PHOTO_MAX_BYTES,
    QR_PHOTO_TARGET_BYTES,
    Photos,
    normalise_photo,
)
from idsvc.service import IdService
from idsvc.storage.db import alembic_config, make_engine, upgrade
from idsvc.storage.tables import AuditEventRow, Base
from tests.card_print_support import portrait_bytes
from tests.conftest import NOW

PERSON = "LA-MOHA-000101"


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def _audit_count(service: IdService) -> int:
    with service.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)


def test_store_normalises_and_audits(service: IdService) -> None:
    photos = Photos(service.db)
    info = photos.store(PERSON, portrait_bytes(), actor="desk-7", now=NOW)
    assert (info.width, info.height) == FACE_SIZE
    face = photos.face_image(PERSON)
    assert hashlib.sha256(face).hexdigest() == info.sha256
    with Image.open(io.BytesIO(face)) as image:
        assert image.format == "JPEG" and image.size == FACE_SIZE and image.mode == "RGB"
    thumbnail, media_type = photos.qr_photo(PERSON)
    assert media_type == "image/webp"
    assert len(thumbnail) <= QR_PHOTO_TARGET_BYTES <= QR_PHOTO_MAX_BYTES
    with Image.open(io.BytesIO(thumbnail)) as small:
        assert small.format == "WEBP" and small.width <= 48
    with service.db.transaction() as session:
        event = session.scalars(
            select(AuditEventRow).where(AuditEventRow.action == "photo.store")
        ).one()
        assert (event.actor, event.target_id) == ("desk-7", PERSON)
        assert event.details == {"sha256": info.sha256, "previous_sha256": None}
    # a new photo replaces the old one, and the audit links the two
    second = photos.store(PERSON, portrait_bytes("PNG", (700, 700)), actor="desk-7", now=NOW)
    assert second.sha256 != info.sha256
    with service.db.transaction() as session:
        events = session.scalars(
            select(AuditEventRow).where(AuditEventRow.action == "photo.store")
        ).all()
        assert [e.details["previous_sha256"] for e in events] == [None, info.sha256]
    assert service.verify_audit().events >= 2


def test_crop_keeps_the_centre_of_a_wide_photo_and_the_top_of_a_tall_one() -> None:
    wide = Image.new("RGB", (1600, 900), "white")
    wide.paste((255, 0, 0), (700, 350, 900, 550))  # a red square in the middle
    out = io.BytesIO()
    wide.save(out, "PNG")
    face = Image.open(io.BytesIO(normalise_photo(out.getvalue()).face_jpeg))
    red = face.getpixel((FACE_SIZE[0] // 2, FACE_SIZE[1] // 2))
    assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60
    tall = Image.new("RGB", (600, 2000), "white")
    tall.paste((0, 0, 255), (0, 0, 600, 300))  # the head end
    tall.paste((0, 255, 0), (0, 1700, 600, 2000))  # the far end, cropped away
    out = io.BytesIO()
    tall.save(out, "JPEG")
    face = Image.open(io.BytesIO(normalise_photo(out.getvalue()).face_jpeg))
    top, bottom = face.getpixel((210, 5)), face.getpixel((210, FACE_SIZE[1] - 5))
    assert isinstance(top, tuple) and top[2] > 200 and top[0] < 60
    assert isinstance(bottom, tuple) and bottom[0] > 200  # white: the green end is cropped away


def test_transparency_is_flattened_on_white_and_exif_rotation_applied() -> None:
    clear = Image.new("RGBA", (300, 400), (0, 0, 0, 0))
    out = io.BytesIO()
    clear.save(out, "PNG")
    face = Image.open(io.BytesIO(normalise_photo(out.getvalue()).face_jpeg))
    assert face.getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=3)
    # a phone photo stored sideways (EXIF orientation 6 = rotate 90 degrees clockwise to view)
    sideways = Image.new("RGB", (1200, 900), "white")
    sideways.paste((255, 0, 0), (0, 0, 300, 900))  # the left edge becomes the top when upright
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    sideways.save(out, "JPEG", exif=exif)
    upright = Image.open(io.BytesIO(normalise_photo(out.getvalue()).face_jpeg))
    top = upright.getpixel((FACE_SIZE[0] // 2, 5))
    assert isinstance(top, tuple) and top[0] > 200 and top[1] < 60


BAD = [
    (b"name,photo\nSomphone,none\n", "not an image"),
    (b"GIF89a" + bytes(40), "a GIF file: only JPEG or PNG"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), "a WebP file"),
    (b"%PDF-1.7\n", "a PDF file"),
    (bytes(4) + b"ftypheic" + bytes(20), "HEIC/AVIF"),
    (portrait_bytes()[:3000], "damaged or truncated"),
    (portrait_bytes(size=(200, 200)), "too small: 200 x 200 pixels"),
    (_png_declaring(7000, 7000), "too large: 7000 x 7000 pixels"),
    (_png_declaring(40000, 40000), "decompression bomb"),
    (b"\xff\xd8\xff" + bytes(MAX_PHOTO_BYTES), "too large: 10,485,763 bytes"),
]


def test_bad_photos_are_refused_and_change_nothing(service: IdService) -> None:
    photos = Photos(service.db)
    good = photos.store(PERSON, portrait_bytes(), actor="desk", now=NOW)
    events = _audit_count(service)
    for data, message in BAD:
        with pytest.raises(PhotoRejected, match=message) as refused:
            photos.store(PERSON, data, actor="desk", now=NOW)
        assert refused.value.exit_code == 20
        assert photos.info(PERSON) == good, message
        assert _audit_count(service) == events, message


def test_unknown_person_and_missing_photo(service: IdService) -> None:
    photos = Photos(service.db)
    with pytest.raises(UnknownEmployee):
        photos.store("XX-NOBODY-1", portrait_bytes(), actor="desk", now=NOW)
    with pytest.raises(PhotoMissing, match="idsvc photo") as missing:
        photos.face_image("KH-MCS-010002")
    assert missing.value.exit_code == 20
    with pytest.raises(UnknownEmployee):
        photos.qr_photo("XX-NOBODY-1")


def test_migration_0006_matches_the_table_and_goes_down_and_up(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                if "photos" in repr(d)
            ]
        assert diff == []
        command.downgrade(alembic_config(engine), "0005")
        assert "photos" not in sqlalchemy.inspect(engine).get_table_names()
        upgrade(engine)
        assert "photos" in sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b""]),
    st.binary(max_size=600),
    st.integers(min_value=0, max_value=4000),
)
def test_any_damage_is_a_clear_refusal(prefix: bytes, noise: bytes, cut: int) -> None:
    # Real headers followed by garbage, or a real photo cut short and patched: whatever the
    # decoder meets, the caller gets PhotoRejected (exit 20), never another exception.
    real = _SMALL_JPEG if prefix.startswith(b"\xff") else _SMALL_PNG
    for data in (prefix + noise, real[:cut] + noise):
        with contextlib.suppress(PhotoRejected):
            normalise_photo(data)


_SMALL_JPEG = portrait_bytes(size=(300, 400))
_SMALL_PNG = portrait_bytes("PNG", (300, 400))
