"""Printed QR size: payload bytes and QR version (ECC M) per record, against the JWT of the
same record as the baseline measured in the same run.

    python bench/bench_qr_payload.py [--alg ES256|EdDSA] [--people 1000] [--quiet]

Two registers: the sample register (idsvc/data/hr_sample.csv), every record listed, and a
synthetic register of ``--people`` persons with long names in both scripts (Lao or Khmer, and
Latin) and long ministry/unit/position texts. Each record is signed for real (a fresh key), as
issuance does it: both the JWT and the Claim 169 QR, with the status list on the issuer's host
(``https://id.<ministry>.gov.xx/status-lists/<16 hex>``) and, for comparison, on another host
(``http://127.0.0.1:8000``, the out-of-the-box ``IDSVC_PUBLIC_URL``), and with an ``iss`` that
is the issuer's host alone (``https://id.mcs.gov.kh``: a deployment's choice, not the default
``.../issuers/default``). First, where the bytes of a typical Lao and a typical Khmer record go,
field by field (CBOR bytes of key and value). Goal: version ≤ 13 for a typical record (no
photo). Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import uuid
import zlib
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cardio.qr import version_for
from idsvc.formats.base45 import b45decode
from idsvc.formats.claim169 import PrintedCredential, encode
from idsvc.formats.credentials import CREDENTIAL_TYP, Holder, credential_claims
from idsvc.formats.hr_csv import parse_hr_csv
from idsvc.formats.jws import sign_compact
from keys.file_signer import FileSigner

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, tzinfo=UTC)
ISS = "https://id.mcs.gov.kh/issuers/default"
SAME_HOST = "https://id.mcs.gov.kh"
OTHER_HOST = "http://127.0.0.1:8000"


def _row(
    holder: Holder, sex: str, birth: date | None, status_base: str, iss: str = ISS
) -> PrintedCredential:
    return PrintedCredential(
        credential_id=str(uuid.uuid4()),
        issuer=iss,
        issued_at=int(NOW.timestamp()),
        expires_at=int((NOW + timedelta(days=1825)).timestamp()),
        employee_id=holder.employee_id,
        name_latin=holder.name_latin,
        name_local=holder.name,
        sex=sex or None,
        date_of_birth=birth,
        ministry=holder.ministry,
        position=holder.position,
        category=holder.category,
        card_serial=holder.card_serial,
        status_uri=f"{status_base}/status-lists/{secrets.token_hex(8)}",
        status_idx=random.randrange(131072),
    )


def _jwt(holder: Holder, signer: FileSigner, status_base: str, iss: str = ISS) -> str:
    claims = credential_claims(
        iss=iss,
        jti=str(uuid.uuid4()),
        holder=holder,
        issued_at=NOW,
        expires_at=NOW + timedelta(days=1825),
        status_uri=f"{status_base}/status-lists/{secrets.token_hex(8)}",
        status_idx=random.randrange(131072),
        cnf_jwk=None,
    )
    return sign_compact(claims, signer, typ=CREDENTIAL_TYP)


def _serial() -> str:
    return "".join(random.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(12))


def sample_people() -> list[tuple[Holder, str, date]]:
    data = (ROOT / "idsvc" / "data" / "hr_sample.csv").read_bytes()
    people = []
    for r in parse_hr_csv(data, today=NOW.date()).records:
        holder = Holder(
            employee_id=r.employee_id,
            name=r.name_local,
            name_latin=r.name_latin,
            birthdate=r.date_of_birth,
            ministry=r.ministry,
            unit=r.unit,
            position=r.position,
            grade=r.grade,
            category=str(r.category),
            card_serial=_serial(),
        )
        people.append((holder, r.sex, r.date_of_birth))
    return people


_LAO = [chr(c) for c in range(0x0E81, 0x0EAE)] + ["ະ", "າ", "ິ", "ີ", "ຸ", "ູ", "ົ", "່", "້"]
_KHM = [chr(c) for c in range(0x1780, 0x17A2)] + ["ា", "ិ", "ី", "ុ", "ូ", "េ", "ោ", "្"]
_SYLLABLES = [
    *("som", "phone", "keo", "ma", "ny", "boun", "chan", "sok", "chantha", "vong"),
    *("phou", "thon", "sisa", "vath", "rith", "dara", "sophea", "vanna", "kham", "lay"),
]
_MINISTRIES = [
    "Ministry of Education, Youth and Sport",
    "Ministry of Economy and Finance",
    "Ministry of Home Affairs",
    "Ministry of Posts and Telecommunications",
    "Ministry of Agriculture, Forestry and Fisheries",
]
_UNITS = [
    "Department of Civil Service Management and Personnel Development",
    "Provincial Office of Education, Vientiane Capital",
    "General Department of Budget and Public Financial Management",
    "District Health Office, Savannakhet Province",
    "Department of Planning, Statistics and International Cooperation",
]
_POSITIONS = ["Deputy Director General", "Senior Technical Officer", "Head of Office",
              "Primary School Teacher", "Chief of Administration Section"]  # fmt: skip


def _latin_name(rng: random.Random) -> str:
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).title()
             for _ in range(rng.randint(2, 3))]  # fmt: skip
    return " ".join(words)


def synthetic_people(count: int) -> list[tuple[Holder, str, date]]:
    rng = random.Random(169)
    people = []
    for n in range(count):
        lao = n % 2 == 0
        letters = _LAO if lao else _KHM
        local = " ".join(
            "".join(rng.choice(letters) for _ in range(rng.randint(6, 12))) for _ in range(2)
        )
        holder = Holder(
            employee_id=f"{'LA' if lao else 'KH'}-MOEYS-{n:06d}",
            name=local,
            name_latin=_latin_name(rng),
            birthdate=date(1960 + n % 40, 1 + n % 12, 1 + n % 28),
            ministry=rng.choice(_MINISTRIES),
            unit=rng.choice(_UNITS),
            position=rng.choice(_POSITIONS),
            grade=rng.choice(["K5", "B2", "A1", "C3"]),
            category=rng.choice(["civil_servant", "contract_official", "contract_teacher"]),
            card_serial=_serial(),
        )
        people.append((holder, rng.choice("MF"), holder.birthdate))
    return people


def measure(
    people: list[tuple[Holder, str, date]],
    signer: FileSigner,
    *,
    birth: bool,
    base: str,
    iss: str = ISS,
) -> list[tuple[str, int, int, int, int, int]]:
    """(employee id, COSE bytes, zlib bytes, QR chars, QR version, JWT version) per person."""
    rows = []
    for holder, sex, born in people:
        text = encode(_row(holder, sex, born if birth else None, base, iss), signer)
        compressed = b45decode(text)
        cose = zlib.decompress(compressed)
        jwt_version = version_for(_jwt(holder, signer, base, iss)).version
        qr_version = version_for(text).version
        rows.append(
            (holder.employee_id, len(cose), len(compressed), len(text), qr_version, jwt_version)
        )
    return rows


def _size(value: object) -> int:
    return len(cbor2.dumps(value, canonical=True))


def breakdown(holder: Holder, sex: str, signer: FileSigner) -> None:
    """Where one record's bytes go: each claim (key and value), the header, the signature."""
    text = encode(_row(holder, sex, None, SAME_HOST), signer)
    compressed = b45decode(text)
    cose = zlib.decompress(compressed)
    protected, _, payload, signature = cbor2.loads(cose).value
    claims = cbor2.loads(payload)
    parts: list[tuple[str, int]] = [
        ("protected header (alg, kid hint)", _size(protected)),
        ("signature", _size(signature)),
        ("COSE framing (tag, array, {}, payload head)", len(cose) - len(payload)
         - _size(protected) - _size(signature)),
        ("claims map head", len(payload) - sum(_size(k) + _size(v) for k, v in claims.items())),
    ]  # fmt: skip
    names = {1: "iss", 4: "exp", 5: "nbf", 6: "iat", 7: "cti", 169: "169", -65537: "-65537"}
    for key, value in claims.items():
        if isinstance(value, dict):
            parts.append((f"{names[key]} key and map head", _size(key) + _size(value)
                          - sum(_size(k) + _size(v) for k, v in value.items())))  # fmt: skip
            parts += [(f"  {names[key]}/{k}", _size(k) + _size(v)) for k, v in value.items()]
        else:
            parts.append((names.get(key, str(key)), _size(key) + _size(value)))
    print(f"{holder.employee_id}: COSE {len(cose)} bytes, zlib {len(compressed)}, "
          f"QR text {len(text)} chars, version {version_for(text).version}")  # fmt: skip
    assert sum(size for _, size in parts) == len(cose)
    for name, size in parts:
        print(f"    {name:46} {size:4}")


def summary(name: str, rows: list[tuple[str, int, int, int, int, int]]) -> None:
    chars = [r[3] for r in rows]
    versions = Counter(r[4] for r in rows)
    jwt_versions = Counter(r[5] for r in rows)
    ratio = statistics.median(r[4] / r[5] for r in rows)
    print(
        f"{name}: {len(rows)} records; QR text {min(chars)}/{int(statistics.median(chars))}/"
        f"{max(chars)} chars (min/median/max); QR versions {dict(sorted(versions.items()))}; "
        f"≤13: {sum(v for k, v in versions.items() if k <= 13)}; JWT versions "
        f"{dict(sorted(jwt_versions.items()))}; QR/JWT version ratio (median) {ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alg", default="ES256", choices=["ES256", "EdDSA"])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--quiet", action="store_true", help="summaries only")
    args = parser.parse_args()
    random.seed(7)
    with tempfile.TemporaryDirectory() as folder:
        signer = FileSigner.generate_in(Path(folder), args.alg, b"bench passphrase, not secret")
        sample = sample_people()
        rows = measure(sample, signer, birth=False, base=SAME_HOST)
        if not args.quiet:
            lao = next(p for p in sample if p[0].employee_id.startswith("LA-"))
            khmer = next(p for p in sample if p[0].employee_id == "KH-MCS-010002")
            for holder, sex, _ in (lao, khmer):
                breakdown(holder, sex, signer)
            print(f"{'employee id':18} {'COSE':>5} {'zlib':>5} {'chars':>5} {'QR v':>4} "
                  f"{'JWT v':>5}   (ECC M, {args.alg}, no photo, no birth date)")  # fmt: skip
            for row in rows:
                print(f"{row[0]:18} {row[1]:5} {row[2]:5} {row[3]:5} {row[4]:4} {row[5]:5}")
        summary("sample register, status list on the issuer host", rows)
        summary(
            "sample register, status list on another host",
            measure(sample, signer, birth=False, base=OTHER_HOST),
        )
        summary(
            f"sample register, iss = the issuer host alone ({SAME_HOST})",
            measure(sample, signer, birth=False, base=SAME_HOST, iss=SAME_HOST),
        )
        summary(
            "sample register, with birth date (IDSVC_QR_DATE_OF_BIRTH)",
            measure(sample, signer, birth=True, base=SAME_HOST),
        )
        synthetic = synthetic_people(args.people)
        summary(
            f"synthetic register ({args.people}, long names, both scripts)",
            measure(synthetic, signer, birth=False, base=SAME_HOST),
        )


if __name__ == "__main__":
    main()
