"""Pictures of a card for the browser to scan: the rendered card face (cardio.card_face) as a
PNG photo and as a Y4M video, the format Chromium's fake camera plays."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from cardio.card_face import CardFaceData, CardRenderer, both_sides
from idsvc.credentials.views import CredentialView


def _portrait_jpeg() -> bytes:
    image = Image.new("RGB", (350, 450), (200, 210, 225))
    for y in range(120, 330):
        for x in range(110, 240):
            image.putpixel((x, y), (120, 90, 70))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def card_images(credential: CredentialView, *, name_local: str, name_latin: str) -> Image.Image:
    assert credential.qr_text, "the credential has no printed QR"
    face = CardRenderer().render(
        CardFaceData(
            employee_id=credential.employee_id,
            name_local=name_local,
            name_latin=name_latin,
            ministry="Ministry of Civil Service",
            position="Officer",
            expires=credential.expires_at.date(),
            issuer_name="Ministry of Civil Service",
            issuer_uri="https://id.mcs.gov.kh",
            card_serial=credential.card_serial,
            qr_text=credential.qr_text,
            photo_jpeg=_portrait_jpeg(),
        )
    )
    return both_sides(face)


def save_photo(image: Image.Image, path: Path) -> Path:
    image.save(path, format="PNG")
    return path


def save_y4m(image: Image.Image, path: Path, size: tuple[int, int] = (1280, 720)) -> Path:
    """One 4:2:0 frame of ``image`` centred on white (Chromium loops the file)."""
    frame = Image.new("RGB", size, (255, 255, 255))
    picture = image.copy()
    picture.thumbnail(size)
    frame.paste(picture, ((size[0] - picture.width) // 2, (size[1] - picture.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (size[0] // 2, size[1] // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    header = f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"FRAME\n" + planes)
    return path
