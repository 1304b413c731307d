"""Find the one face in a desk photo, so that the card's portrait is cropped around it.

Detection is OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_alt2.xml``, shipped
inside the ``opencv-python-headless`` wheel: no model file of our own to vendor). It runs on a
grey copy scaled down to at most ``DETECT_LONG_SIDE`` pixels: a 12-megapixel phone photo costs
about as much as a webcam frame, and a face big enough to print is still far above the
cascade's 20-pixel window. OpenCV (and numpy) are imported on the first photo, not with
``idsvc``: the CLI's start-up and the API's workers never pay for them otherwise.

OpenCV 5 dropped the Haar cascades (no ``cv2.CascadeClassifier``, no ``cv2/data/*.xml``); its
face detector is the YuNet network, whose model we would have to ship. pyproject.toml therefore
asks for OpenCV 4, and an OpenCV without the cascade (5, a broken install, none at all) is
``FaceDetectorUnavailable`` naming the version found, not an ``AttributeError``.

The cascade returns a square box from the brows to below the mouth. Where the eyes, crown and
chin sit relative to that box (``EYE_LINE``, ``EYE_SPAN``, ``HEAD_HEIGHT``) was measured on
the test portraits (``tests/data/faces``) with OpenCV's eye cascade and by hand; the crop only
needs them to a few per cent.

A desk photo shows one person, near enough to print: no face, two faces, or a face with fewer
than ``MIN_EYE_DISTANCE`` pixels between the eyes is ``PhotoRejected``. Faces less than half
as wide as the largest one (someone far behind, a face on a poster) are ignored: they are
neither the holder nor a reason to refuse the holder's photo.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from idsvc.errors import FaceDetectorUnavailable, PhotoRejected

if TYPE_CHECKING:
    import cv2

DETECT_LONG_SIDE = 800
MIN_EYE_DISTANCE = 90  # ISO/IEC 19794-5's minimum for a full frontal image, in source pixels
CASCADE = "haarcascade_frontalface_alt2.xml"
OPENCV_WANTED = "OpenCV 4: pip install 'opencv-python-headless>=4.14,<5'"
EYE_LINE = 0.38  # eye centres, as a share of the box height below its top
EYE_SPAN = 0.45  # eye centre to eye centre, as a share of the box width
HEAD_HEIGHT = 1.5  # chin to crown (skull, not hair), in box heights
BACKGROUND_FACE = 0.5  # a face narrower than this share of the largest one is ignored
_MIN_BOX = 30  # in the scaled-down copy: below this the cascade mostly finds texture

_detect_lock = threading.Lock()


@dataclass(frozen=True)
class FoundFace:
    """A detected face, in pixels of the upright photo it was found in."""

    left: float
    top: float
    width: float
    height: float

    @property
    def centre_x(self) -> float:
        return self.left + self.width / 2

    @property
    def eye_y(self) -> float:
        return self.top + EYE_LINE * self.height

    @property
    def eye_distance(self) -> float:
        return EYE_SPAN * self.width

    @property
    def head_height(self) -> float:
        return HEAD_HEIGHT * self.height


def find_faces(image: Image.Image) -> list[FoundFace]:
    """Every frontal face the cascade sees, largest first (none is an empty list)."""
    classifier = _classifier()  # first: it says so when this OpenCV cannot detect faces
    import cv2
    import numpy as np

    width, height = image.size
    scale = max(1.0, max(width, height) / DETECT_LONG_SIDE)
    small = image
    if scale > 1:
        size = (max(1, round(width / scale)), max(1, round(height / scale)))
        small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    grey = np.asarray(small.convert("L"))
    grey = cv2.equalizeHist(grey)  # webcam photos are often dim or back-lit
    with _detect_lock:  # one shared classifier: OpenCV does not promise it is thread-safe
        boxes = classifier.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(_MIN_BOX, _MIN_BOX)
        )
    faces = [
        FoundFace(float(x) * scale, float(y) * scale, float(w) * scale, float(h) * scale)
        for x, y, w, h in boxes
    ]
    return sorted(faces, key=lambda face: face.width, reverse=True)


def the_face(image: Image.Image) -> FoundFace:
    """The holder's face; ``PhotoRejected`` unless there is exactly one, big enough."""
    faces = find_faces(image)
    if not faces:
        raise PhotoRejected(
            "no face found: the photo must show the holder's face, upright, looking at the "
            "camera, evenly lit and not covered"
        )
    largest = faces[0]
    near = [face for face in faces if face.width >= BACKGROUND_FACE * largest.width]
    if len(near) > 1:
        raise PhotoRejected(
            f"{len(near)} faces found: a card photo shows one person only, alone in the frame"
        )
    if largest.eye_distance < MIN_EYE_DISTANCE:
        raise PhotoRejected(
            f"face too small: about {largest.eye_distance:.0f} pixels between the eyes "
            f"(at least {MIN_EYE_DISTANCE}); move closer or use a higher resolution"
        )
    return largest


@functools.cache
def _classifier() -> cv2.CascadeClassifier:
    try:
        import cv2
    except ImportError as exc:
        raise FaceDetectorUnavailable(
            f"OpenCV is not installed ({exc}); the face finder needs {OPENCV_WANTED}"
        ) from exc
    found = f"OpenCV {getattr(cv2, '__version__', '(unknown version)')}"
    if not hasattr(cv2, "CascadeClassifier"):
        raise FaceDetectorUnavailable(
            f"{found} has no Haar-cascade face detector (cv2.CascadeClassifier, removed in "
            f"OpenCV 5); the face finder needs {OPENCV_WANTED}"
        )
    # the cascades ship in the wheel, in cv2/data (cv2.data.haarcascades, untyped)
    classifier = cv2.CascadeClassifier(str(Path(cv2.__file__).parent / "data" / CASCADE))
    if classifier.empty():
        raise FaceDetectorUnavailable(
            f"{found} did not load its {CASCADE}; the face finder needs {OPENCV_WANTED}"
        )
    return classifier
