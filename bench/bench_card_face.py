"""Card faces rendered per second on one core, and the QR encoders, in one run.

    .venv/bin/python bench/bench_card_face.py [--seconds 3] [--rounds 5] [--faces 200]

Setup (not timed): ``--faces`` card records with distinct names, half Lao and half Khmer (first
and family names of the sample register recombined, so no two cards share a name line and the
renderer's line cache only helps with what really repeats on a batch: labels, ministries,
positions, the issuer), a normalised synthetic portrait, and a base45 QR text of the length of
a sample-register Claim 169 payload (680 characters, QR version 17).

Rows, interleaved over ``--rounds`` rounds, median round reported, as calls per CPU second of
this process (what one core does alone, even on a shared machine) and per wall-clock second:
- ``QR encode+render`` (``cardio.qr``): the QR part of a face. The baseline of ``× QR``.
- ``render (front+back)``: ``CardRenderer.render``: shaping and drawing every text, the photo,
  the QR, both sides at 300 dpi. **Goal: 20 faces/s or more** on one core.
- ``render + PNG``: plus ``save_png`` to memory (what ``idsvc card-face -o FILE.png`` adds).
- ``render + sheet PDF``: plus the share of an A4 sheet PDF (JPEG pages), per card.
- ``render, cold line cache``: a new renderer for every card: nothing cached but fonts.

The script runs on one thread, so it uses one core; ``--qr`` also runs ``bench_qr_encode.py``
(the encoders against ``qrcode`` on the sample register's payloads). Not a test: nothing
asserts.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cardio import qr
from cardio.card_face import CardFaceData, CardRenderer, SheetWriter, save_png
from idsvc.register.photos import normalise_photo
from tests.support.card_print import portrait_bytes

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
SAMPLE = Path(__file__).resolve().parent.parent / "idsvc" / "data" / "hr_sample.csv"


def records(count: int) -> list[CardFaceData]:
    rows = [line.split(",") for line in SAMPLE.read_text(encoding="utf-8").splitlines()[1:]]
    by_script: dict[str, list[list[str]]] = {"LA": [], "KH": []}
    for row in rows:
        by_script[row[0][:2]].append(row)
    face = normalise_photo(portrait_bytes(quality=92)).face_jpeg  # a real face: it is detected
    rng = random.Random(169)
    out: list[CardFaceData] = []
    seen: set[str] = set()
    while len(out) < count:
        script = "LA" if len(out) % 2 == 0 else "KH"
        a, b, c = (rng.choice(by_script[script]) for _ in range(3))
        # three whole words of real names: distinct lines, every cluster well formed
        local = f"{a[1].split()[0]} {b[1].split()[-1]}{c[1].split()[0]}"
        if local in seen:
            continue
        seen.add(local)
        out.append(
            CardFaceData(
                employee_id=f"{script}-BENCH-{len(out):06d}",
                name_local=local,
                name_latin=f"{a[2].split()[0]} {b[2].split()[-1]}{c[2].split()[0].lower()}",
                ministry=a[5],
                position=a[7],
                expires=date(2031, 11, 25),
                issuer_name="Ministry of Civil Service",
                issuer_uri="https://id.example.gov/issuers/default",
                card_serial=f"BENCH{len(out):07d}",
                qr_text="".join(rng.choice(BASE45) for _ in range(680)),
                photo_jpeg=face,
            )
        )
    return out


def rate(
    fn: Callable[[CardFaceData], object], data: list[CardFaceData], seconds: float
) -> tuple[float, float]:
    """(calls per wall-clock second, calls per CPU second of this process). On a shared
    machine the CPU rate is what one core would do alone; the wall rate is what this run got."""
    done = 0
    start, cpu = time.perf_counter(), time.process_time()
    while True:
        for item in data:
            fn(item)
            done += 1
            if time.perf_counter() - start >= seconds:
                return (
                    done / (time.perf_counter() - start),
                    done / max(time.process_time() - cpu, 1e-9),
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per case per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--faces", type=int, default=200)
    parser.add_argument("--qr", action="store_true", help="also run bench_qr_encode.py")
    args = parser.parse_args()
    data = records(args.faces)
    renderer = CardRenderer()
    renderer.render(data[0])  # fonts loaded once per process, as in a desk's batch
    tmp = tempfile.TemporaryDirectory()
    sheet = SheetWriter(Path(tmp.name) / "sheet.pdf", 300)

    def png(item: CardFaceData) -> object:
        out = io.BytesIO()
        save_png(renderer.render(item), out)
        return out

    def to_sheet(item: CardFaceData) -> None:
        sheet.add(renderer.render(item))

    cases: list[tuple[str, Callable[[CardFaceData], object]]] = [
        ("QR encode+render", lambda item: qr.render(qr.encode(item.qr_text), 6)),
        ("render (front+back)", renderer.render),
        ("render + PNG", png),
        ("render + sheet PDF", to_sheet),
        ("render, cold line cache", lambda item: CardRenderer().render(item)),
    ]
    wall: dict[str, list[float]] = {name: [] for name, _ in cases}
    cpu: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(args.rounds):
        for name, fn in cases:
            per_wall, per_cpu = rate(fn, data, args.seconds)
            wall[name].append(per_wall)
            cpu[name].append(per_cpu)
    sheet.close()
    tmp.cleanup()
    base = cpu["QR encode+render"]
    print(f"{len(data)} distinct cards, QR version {qr.version_for(data[0].qr_text).version}")
    print(f"{'case':26} {'per CPU s':>9} {'ms CPU':>7} {'× QR':>6} {'per wall s':>10}")
    for name, values in cpu.items():
        median = statistics.median(values)
        ratio = statistics.median(b / v for v, b in zip(values, base, strict=True))
        print(
            f"{name:26} {median:9.1f} {1000 / median:7.2f} {ratio:6.1f} "
            f"{statistics.median(wall[name]):10.1f}"
        )
    faces = statistics.median(cpu["render (front+back)"])
    verdict = "PASS" if faces >= 20 else "MISS"
    print(f"card faces on one core: {faces:.1f}/s of CPU (goal ≥ 20/s): {verdict}")
    if args.qr:
        import bench_qr_encode

        sys.argv = [sys.argv[0]]
        bench_qr_encode.main()


if __name__ == "__main__":
    main()
