"""The limits of a holder's photo, apart from the code that stores photos.

A desk checks a photo against the same rule before it uploads it (``idsvc.desk_client``), and
a desk holds no database: this module imports neither the register nor the storage layer.
"""

from __future__ import annotations

from cardio.images import ImageRule

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_PIXELS = 40_000_000  # a 40-megapixel camera; a decoded RGB image of ~120 MB at most

# The one rule for opening a person's image (cardio.images), with a photo's limits.
PHOTO_RULE = ImageRule("photo", max_bytes=MAX_PHOTO_BYTES, max_pixels=MAX_PHOTO_PIXELS)
