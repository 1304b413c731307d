"""What face detection costs a desk photo: OpenCV's Haar cascades on a 12-megapixel phone photo.

```
.venv/bin/python bench/bench_face_crop.py [--rounds 5]
```

Prints, each against a baseline from the same run:
- the installed size of opencv-python-headless and numpy, against Pillow's;
- the import time of ``cv2`` + ``numpy`` in a fresh interpreter, against ``PIL.Image``'s (and
  whether ``import idsvc.register.photos`` pulls them in: it must not);
- detection on the photo (scaled down to ``DETECT_LONG_SIDE``) with each frontal-face cascade,
  and the whole ``normalise_photo``, against decoding the same JPEG.

The photo is the tests' real portrait (tests/data/faces) pasted off-centre into a 4000 x 3000
launch-pad scene, JPEG quality 90.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idsvc.register import face_finder
from idsvc.register.photos import normalise_photo

FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
CASCADES = (
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt.xml",
)


def phone_photo() -> bytes:
    with Image.open(FACES / "rocket.jpg") as rocket:
        scene = rocket.convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR)
    with Image.open(FACES / "astronaut.jpg") as astronaut:
        person = astronaut.convert("RGB").resize((1280, 1280), Image.Resampling.LANCZOS)
    scene.paste(person, (2600, 300))
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=90)
    return out.getvalue()


def installed_mb(dist: str) -> float:
    paths = (Path(str(f.locate())) for f in metadata.distribution(dist).files or [])
    return sum(path.stat().st_size for path in paths if path.exists()) / 1e6


def import_seconds(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
        for _ in range(5)
    ]
    return statistics.median(runs)


def median_seconds(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    pillow = installed_mb("pillow")
    print(f"installed: pillow {pillow:.0f} MB (1.0)")
    for dist in ("opencv-python-headless", "numpy"):
        size = installed_mb(dist)
        print(f"installed: {dist} {size:.0f} MB ({size / pillow:.1f} x pillow)")

    base = import_seconds("import PIL.Image")
    heavy = import_seconds("import cv2, numpy")
    print(f"import: PIL.Image {base * 1000:.0f} ms (1.0)")
    print(f"import: cv2 + numpy {heavy * 1000:.0f} ms ({heavy / base:.1f} x PIL.Image)")
    lazy = subprocess.run(
        [sys.executable, "-c", "import sys, idsvc.register.photos; print('cv2' in sys.modules)"],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.strip()
    print(f"import idsvc.register.photos loads cv2: {lazy}")

    data = phone_photo()

    def decode() -> Image.Image:
        with Image.open(io.BytesIO(data)) as image:
            return ImageOps.exif_transpose(image).convert("RGB")

    decode_s = median_seconds(decode, args.rounds)
    print(f"\n12 MP JPEG ({len(data) / 1e6:.1f} MB), median of {args.rounds}:")
    print(f"  decode                     {decode_s * 1000:7.0f} ms  1.00")
    photo = decode()
    face_finder.find_faces(photo)  # load the cascade once, outside the timing
    for cascade in CASCADES:
        face_finder.CASCADE = cascade
        face_finder._classifier.cache_clear()
        found = face_finder.find_faces(photo)
        took = median_seconds(lambda: face_finder.find_faces(photo), args.rounds)
        name = cascade.removeprefix("haarcascade_").removesuffix(".xml")
        print(
            f"  detect {name:<20}{took * 1000:7.0f} ms  {took / decode_s:.2f}  faces {len(found)}"
        )
    face_finder.CASCADE = CASCADES[0]
    face_finder._classifier.cache_clear()
    whole = median_seconds(lambda: normalise_photo(data), args.rounds)
    print(f"  normalise_photo (all)      {whole * 1000:7.0f} ms  {whole / decode_s:.2f}")


if __name__ == "__main__":
    main()
