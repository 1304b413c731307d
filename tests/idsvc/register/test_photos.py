"""idsvc.register.photos on SQLite and PostgreSQL: a desk photo is cropped around the face, stored,
audited; every bad input (no face or two included) is refused with its own message and leaves
the stored photo and the audit log as they were. Faces are real photos (tests/data/faces)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import qrcode
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from idsvc.cli.errors import exit_code_for
from idsvc.errors import PhotoMissing, PhotoRejected, UnknownEmployee
from idsvc.register.face_finder import find_faces
from idsvc.register.photo_rule import MAX_PHOTO_BYTES
from idsvc.register.photos import (
    EYES_FROM_BOTTOM,
    FACE_SIZE,
    HEAD_SHARE,
    QR_PHOTO_MAX_BYTES,
    QR_PHOTO_TARGET_BYTES,
    Photos,
    normalise_photo,
)
from idsvc.services import Services
from idsvc.storage.db import alembic_config, make_engine, upgrade
from idsvc.storage.tables import AuditEventRow, Base
from tests.support.card_print import FACES, png_declaring, portrait_bytes
from tests.support.settings import NOW

PERSON = "LA-MOHA-000101"


def _audit_count(service: Services) -> int:
    with service.infra.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)


def test_store_normalises_and_audits(service: Services) -> None:
    photos = Photos(service.infra.db)
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
    with service.infra.db.transaction() as session:
        event = session.scalars(
            select(AuditEventRow).where(AuditEventRow.action == "photo.store")
        ).one()
        assert (event.actor, event.target_id) == ("desk-7", PERSON)
        assert event.details == {"sha256": info.sha256, "previous_sha256": None}
    # a new photo replaces the old one, and the audit links the two
    second = photos.store(PERSON, portrait_bytes("PNG", (700, 700)), actor="desk-7", now=NOW)
    assert second.sha256 != info.sha256
    with service.infra.db.transaction() as session:
        events = session.scalars(
            select(AuditEventRow).where(AuditEventRow.action == "photo.store")
        ).all()
        assert [e.details["previous_sha256"] for e in events] == [None, info.sha256]
    assert service.audit.verify_chain().events >= 2


def _jpeg(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def _astronaut(scale: float) -> Image.Image:
    with Image.open(FACES / "astronaut.jpg") as image:
        size = (round(image.width * scale), round(image.height * scale))
        return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _assert_passport_framed(face_jpeg: bytes) -> None:
    """Detect again on the stored face: one face, centred across, eyes and size where the
    passport geometry puts them."""
    with Image.open(io.BytesIO(face_jpeg)) as stored:
        assert stored.size == FACE_SIZE
        (found,) = find_faces(stored)
    width, height = FACE_SIZE
    assert abs(found.centre_x - width / 2) < 0.04 * width, found
    assert abs(found.eye_y - (1 - EYES_FROM_BOTTOM) * height) < 0.04 * height, found
    assert found.head_height == pytest.approx(HEAD_SHARE * height, rel=0.12), found


def test_a_face_off_centre_in_a_wide_12_megapixel_shot_is_centred() -> None:
    # A phone's landscape shot: the person small and near the right edge of a launch pad.
    with Image.open(FACES / "rocket.jpg") as rocket:
        scene = rocket.convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR)
    scene.paste(_astronaut(2.5), (2600, 300))  # face at about x = 3160 of 4000
    portrait = normalise_photo(_jpeg(scene))
    _assert_passport_framed(portrait.face_jpeg)
    with Image.open(io.BytesIO(portrait.face_jpeg)) as stored:
        corner = stored.getpixel((5, 5))  # the astronaut's studio backdrop, not the launch pad
    assert isinstance(corner, tuple) and min(corner) > 150, corner


def test_a_face_at_the_top_edge_is_padded_with_white() -> None:
    # A close-up cut through the hair: the crown is outside the photo.
    close = _astronaut(3).crop((330, 150, 1230, 1350))
    face = normalise_photo(_jpeg(close)).face_jpeg
    _assert_passport_framed(face)
    with Image.open(io.BytesIO(face)) as stored:
        assert stored.convert("L").getpixel((FACE_SIZE[0] // 2, 3)) == pytest.approx(255, abs=4)


def test_transparency_is_flattened_on_white_and_exif_rotation_applied() -> None:
    # The backdrop left of her hair cut out (transparent black): the crop's left edge is there.
    cut_out = _astronaut(3).crop((300, 0, 1100, 1100)).convert("RGBA")
    cut_out.paste((0, 0, 0, 0), (0, 0, 180, cut_out.height))
    out = io.BytesIO()
    cut_out.save(out, "PNG")
    face = Image.open(io.BytesIO(normalise_photo(out.getvalue()).face_jpeg))
    assert face.getpixel((5, FACE_SIZE[1] // 2)) == pytest.approx((255, 255, 255), abs=4)
    # a phone photo stored sideways (EXIF orientation 6 = rotate 90 degrees clockwise to view)
    sideways = Image.open(io.BytesIO(portrait_bytes())).rotate(90, expand=True)
    with pytest.raises(PhotoRejected, match="no face found"):
        normalise_photo(_jpeg(sideways))  # the detector needs it upright: EXIF is what fixes it
    exif = Image.Exif()
    exif[0x0112] = 6
    _assert_passport_framed(normalise_photo(_jpeg(sideways, exif=exif)).face_jpeg)


def _two_people() -> bytes:
    person = _astronaut(2)
    pair = Image.new("RGB", (person.width * 2, person.height), "white")
    pair.paste(person, (0, 0))
    pair.paste(person.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (person.width, 0))
    return _jpeg(pair)


def _drawn_face() -> bytes:
    """The shape of a portrait without a face: an oval on shoulders."""
    image = Image.new("RGB", (900, 1200), (176, 196, 222))
    draw = ImageDraw.Draw(image)
    draw.ellipse((270, 144, 630, 600), fill=(198, 156, 120))
    draw.rectangle((135, 660, 765, 1200), fill=(30, 40, 90))
    return _jpeg(image)


def _qr_code() -> bytes:
    out = io.BytesIO()
    qrcode.make("KH-MCS-010001 " * 20).save(out)  # a QR presented instead of a photo
    return out.getvalue()


BAD = [
    (b"name,photo\nSomphone,none\n", "not an image"),
    (b"GIF89a" + bytes(40), "a GIF file: only JPEG or PNG"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), "a WebP file"),
    (b"%PDF-1.7\n", "a PDF file"),
    (bytes(4) + b"ftypheic" + bytes(20), "HEIC/AVIF"),
    (portrait_bytes()[:3000], "damaged or truncated"),
    (portrait_bytes(size=(200, 200)), "too small: 200 x 200 pixels"),
    (png_declaring(7000, 7000), "too large: 7000 x 7000 pixels"),
    (png_declaring(40000, 40000), "decompression bomb"),
    (b"\xff\xd8\xff" + bytes(MAX_PHOTO_BYTES), "too large: 10,485,763 bytes"),
    ((FACES / "rocket.jpg").read_bytes(), "no face found"),  # a landscape
    (_jpeg(Image.new("RGB", (1011, 638), "white")), "no face found"),  # a blank card
    (_qr_code(), "no face found"),
    (_drawn_face(), "no face found"),
    (_two_people(), "2 faces found: a card photo shows one person only"),
    ((FACES / "astronaut.jpg").read_bytes(), "face too small: about 4[0-9] pixels between"),
]


def test_bad_photos_are_refused_and_change_nothing(service: Services) -> None:
    photos = Photos(service.infra.db)
    good = photos.store(PERSON, portrait_bytes(), actor="desk", now=NOW)
    events = _audit_count(service)
    for data, message in BAD:
        with pytest.raises(PhotoRejected, match=message) as refused:
            photos.store(PERSON, data, actor="desk", now=NOW)
        assert exit_code_for(refused.value)[0] == 20
        assert photos.info(PERSON) == good, message
        assert _audit_count(service) == events, message


def test_unknown_person_and_missing_photo(service: Services) -> None:
    photos = Photos(service.infra.db)
    with pytest.raises(UnknownEmployee):
        photos.store("XX-NOBODY-1", portrait_bytes(), actor="desk", now=NOW)
    with pytest.raises(PhotoMissing, match="idsvc photo") as missing:
        photos.face_image("KH-MCS-010002")
    assert exit_code_for(missing.value)[0] == 20
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


def test_opencv_is_loaded_only_when_a_photo_is_stored() -> None:
    # The CLI and the API workers import the photo code; OpenCV and numpy (~0.3 s, ~240 MB)
    # must wait for the first photo.
    code = (
        "import sys, idsvc.register.photos, idsvc.cli.main, mobile_api.api\n"
        "print(sorted({'cv2', 'numpy'} & set(sys.modules)))\n"
        "from tests.support.card_print import portrait_bytes\n"
        "idsvc.register.photos.normalise_photo(portrait_bytes())\n"
        "print(sorted({'cv2', 'numpy'} & set(sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[3]
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    assert run.stdout.splitlines() == ["[]", "['cv2', 'numpy']"]
