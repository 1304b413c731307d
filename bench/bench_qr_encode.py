"""QR encoders on the card's payloads: encodes per second, each against ``qrcode`` in one run.

    .venv/bin/python bench/bench_qr_encode.py [--seconds 1.5] [--rounds 5]

Payloads: the printed Claim 169 texts of every person of the sample register (issued in a temp
home: init, HR import, one issuance each; not timed), the same ones issued with a QR photo, and
synthetic base45 texts of 450 characters (version 13, the goal for a typical record). Every
encoder gets the same payloads at error correction M in the same rounds, interleaved; the median
round is reported (encodes per CPU second: what one core does alone, even on a shared machine),
and ``× qrcode`` is the median of the per-round ratios.

Rows:
- ``qrcode`` (the library the product card names): ``QRCode.make(fit=True)`` + ``get_matrix``,
  i.e. the module matrix with its automatic mask choice. The baseline.
- ``qrcode PNG``: the same plus ``make_image()`` saved as PNG (Pillow), the library's usual
  path.
- ``segno``: ``segno.make(...).matrix``, automatic mask; ``segno mask 0``: fixed mask (skips
  the mask evaluation: faster, but a symbol with a worse penalty score).
- ``zxing-cpp (cardio.qr.encode)``: the C++ writer as ``cardio.qr.encode`` uses it, including
  the capacity check and the copy into a Python module matrix.
- ``cardio.qr encode+render``: plus drawing the symbol at 300 dpi with the quiet zone, as the
  card face does.

Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import qrcode
import segno

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cardio import qr

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
SAMPLE = Path(__file__).resolve().parent.parent / "idsvc" / "data" / "hr_sample.csv"


def register_payloads() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(employee id, QR text) for each active person of the sample register, without and with
    a QR photo (issued in a temp home; the photo is the tests' real portrait: the photo
    store needs a face it can detect)."""
    from idsvc.config import Settings
    from idsvc.register.photos import Photos
    from idsvc.services import Services
    from tests.support.card_print import portrait_bytes

    now = datetime.now(UTC)
    plain: list[tuple[str, str]] = []
    with_photo: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=f"sqlite:///{home}/bench.sqlite3",
            key_passphrase="bench passphrase, not secret",
        )
        svc = Services.from_settings(settings, lambda: b"bench passphrase, not secret")
        svc.credentials.init(now=now, actor="bench")
        svc.register.import_hr(SAMPLE.read_bytes(), source_name=SAMPLE.name, actor="bench", now=now)
        portrait = portrait_bytes(size=(600, 800))
        for line in SAMPLE.read_text(encoding="utf-8").splitlines()[1:]:
            employee_id, status = line.split(",")[0], line.split(",")[10]
            if status != "active":
                continue
            view = svc.credentials.issue(employee_id, actor="bench", now=now)
            assert view.qr_text
            plain.append((employee_id, view.qr_text))
            Photos(svc.infra.db).store(employee_id, portrait, actor="bench", now=now)
            view = svc.credentials.issue(employee_id, actor="bench", now=now, qr_photo=True)
            assert view.qr_text
            with_photo.append((employee_id, view.qr_text))
        svc.infra.db.dispose()
    return plain, with_photo


def synthetic(count: int, length: int = 450) -> list[str]:
    rng = random.Random(45)
    return ["".join(rng.choice(BASE45) for _ in range(length)) for _ in range(count)]


def with_qrcode(text: str) -> object:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    return code.get_matrix()


def with_qrcode_png(text: str) -> object:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)  # Pillow image factory (Pillow is installed), PNG
    return out


def with_segno(text: str) -> object:
    return segno.make(text, error="M", boost_error=False, micro=False).matrix


def with_segno_mask0(text: str) -> object:
    return segno.make(text, error="M", boost_error=False, micro=False, mask=0).matrix


def with_cardio(text: str) -> object:
    return qr.encode(text)


def with_cardio_render(text: str) -> object:
    return qr.render(qr.encode(text), qr.module_dots(300))


ENCODERS: list[tuple[str, Callable[[str], object]]] = [
    ("qrcode", with_qrcode),
    ("qrcode PNG", with_qrcode_png),
    ("segno", with_segno),
    ("segno mask 0", with_segno_mask0),
    ("zxing-cpp (cardio.qr.encode)", with_cardio),
    ("cardio.qr encode+render", with_cardio_render),
]


def rate(fn: Callable[[str], object], payloads: Sequence[str], seconds: float) -> float:
    """Encodes per CPU second of this process (what one core does alone, even on a shared
    machine), cycling through ``payloads`` for about ``seconds`` of wall-clock time."""
    done = 0
    start, cpu = time.perf_counter(), time.process_time()
    while True:
        for text in payloads:
            fn(text)
        done += len(payloads)
        if time.perf_counter() - start >= seconds:
            return done / max(time.process_time() - cpu, 1e-9)


def run(payloads: Sequence[str], seconds: float, rounds: int) -> dict[str, tuple[float, float]]:
    """name -> (median encodes/s, median per-round ratio against qrcode)."""
    rates: dict[str, list[float]] = {name: [] for name, _ in ENCODERS}
    for _ in range(rounds):
        for name, fn in ENCODERS:
            rates[name].append(rate(fn, payloads, seconds))
    base = rates["qrcode"]
    return {
        name: (
            statistics.median(values),
            statistics.median(v / b for v, b in zip(values, base, strict=True)),
        )
        for name, values in rates.items()
    }


def print_rates(title: str, payloads: Sequence[str], seconds: float, rounds: int) -> None:
    sizes = sorted({qr.version_for(t).version for t in payloads})
    chars = [len(t) for t in payloads]
    print(
        f"\n{title}: {len(payloads)} payloads, {min(chars)}-{max(chars)} characters, "
        f"QR versions {sizes[0]}-{sizes[-1]} (ECC M)"
    )
    print(f"{'encoder':32} {'per CPU s':>10} {'ms CPU':>8} {'× qrcode':>9}")
    for name, (per_second, ratio) in run(payloads, seconds, rounds).items():
        print(f"{name:32} {per_second:10.1f} {1000 / per_second:8.2f} {ratio:8.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per encoder per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plain, with_photo = register_payloads()
    print("sample register: payload characters and QR version (ECC M) per person")
    for (employee_id, text), (_, photo_text) in zip(plain, with_photo, strict=True):
        a, b = qr.version_for(text), qr.version_for(photo_text)
        print(
            f"  {employee_id:18} {a.payload_bytes:5} chars v{a.version:<3}"
            f"  with QR photo {b.payload_bytes:5} chars v{b.version}"
        )
    print_rates("sample register", [t for _, t in plain], args.seconds, args.rounds)
    print_rates("sample register, QR photo", [t for _, t in with_photo], args.seconds, args.rounds)
    print_rates("synthetic v13", synthetic(12), args.seconds, args.rounds)


if __name__ == "__main__":
    main()
