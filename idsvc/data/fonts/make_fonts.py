"""Cut the page's Lao and Khmer fonts down to their scripts, as WOFF2 (run once; the results
are committed, with their hashes in mobile_api/static/verify/VENDOR.md):

    pip install --target /tmp/fonttools fonttools==4.68.0 brotli==1.2.1
    PYTHONPATH=/tmp/fonttools .venv/bin/python idsvc/data/fonts/make_fonts.py

fonttools is not a project dependency: only this one-off step needs it. The source fonts are
Debian's fonts-noto-core (OFL 1.1). Each subset keeps its script's whole Unicode block, the
joiners and the dotted circle, and every OpenType layout feature, so that any name shapes as
it does with the full font (Khmer subscripts and vowel signs are GSUB/GPOS work); Latin comes
from the phone's own fonts. The web verifier serves these files and idsvc's HTML controls
report embeds them (one copy of each).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NOTO = Path("/usr/share/fonts/truetype/noto")
HERE = Path(__file__).resolve().parent
COMMON = "U+0020,U+00A0,U+200B-200D,U+25CC"
FONTS = {
    "NotoSansLao-Regular": "U+0E80-0EFF",
    "NotoSansKhmer-Regular": "U+1780-17FF,U+19E0-19FF",
}


def main() -> None:
    for name, ranges in FONTS.items():
        # A subprocess keeps fonttools (not a project dependency) out of mypy's and ruff's view;
        # every argument is a constant of this file.
        subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "fontTools.subset",
                str(NOTO / f"{name}.ttf"),
                f"--unicodes={ranges},{COMMON}",
                "--layout-features=*",
                "--flavor=woff2",
                "--no-hinting",
                f"--output-file={HERE / f'{name}.woff2'}",
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
