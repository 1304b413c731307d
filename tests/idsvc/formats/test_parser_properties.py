"""Property tests (hypothesis) for the parsers in idsvc/formats: the HR CSV, the payroll CSV,
compact JWS and the Token Status List. Round trips where an encoder exists; for arbitrary input,
only the module's documented error may come out (never IndexError, KeyError, UnicodeError,
zlib.error, binascii.Error ...). Base45 and Claim 169 have theirs in test_base45.py and
test_claim169.py. Derandomized and database-free: CI runs the same examples every time."""

from __future__ import annotations

import base64
import codecs
import contextlib
import csv
import io
import json
import zlib
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idsvc.formats.hr_csv import HrFileError, parse_hr_csv
from idsvc.formats.jws import JwsError, sign_compact, verify_compact
from idsvc.formats.payroll_csv import REQUEST_COLUMNS, PayrollCsvError, parse_payroll_csv
from idsvc.formats.status_list import (
    ALLOWED_BITS,
    StatusList,
    StatusListError,
    parse_reference,
    parse_status_list_claims,
    reference_claim,
)
from keys.file_signer import FileSigner
from tests.support.settings import PASSPHRASE, SAMPLE_CSV

PROPERTY = settings(max_examples=100, derandomize=True, database=None, deadline=None)
TODAY = date(2026, 11, 23)
TYP = "application/test+jwt"

# --- HR CSV ------------------------------------------------------------------------------


def _sample_rows() -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(SAMPLE_CSV.read_text(encoding="utf-8"))))
    return rows[0], rows[1:]


HR_HEADER, HR_ROWS = _sample_rows()
HR_BASELINE = parse_hr_csv(SAMPLE_CSV.read_bytes(), today=TODAY)


@PROPERTY
@given(
    order=st.permutations(range(len(HR_HEADER))),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    blank_lines=st.lists(st.integers(0, len(HR_ROWS)), max_size=3),
)
def test_hr_export_round_trips_whatever_its_spelling(
    order: list[int], quoting: Literal[0, 1], newline: str, bom: bool, blank_lines: list[int]
) -> None:
    # The same register written the ways spreadsheets and HR systems write it: columns in any
    # order, every cell quoted or not, CRLF or LF, a BOM, blank lines. Same records each time.
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=quoting, lineterminator=newline)
    writer.writerow([HR_HEADER[i] for i in order])
    for number, row in enumerate(HR_ROWS):
        if number in blank_lines:
            out.write(newline)
        writer.writerow([row[i] for i in order])
    data = (codecs.BOM_UTF8 if bom else b"") + out.getvalue().encode("utf-8")
    parsed = parse_hr_csv(data, today=TODAY)
    assert parsed.records == HR_BASELINE.records
    assert [(r.employee_id, r.reason) for r in parsed.rejects] == [
        (r.employee_id, r.reason) for r in HR_BASELINE.rejects
    ]


def _hr_file_or_error(data: bytes) -> None:
    try:
        result = parse_hr_csv(data, today=TODAY)
    except HrFileError:
        return
    for reject in result.rejects:
        assert isinstance(reject.reason, str) and reject.line >= 1


@PROPERTY
@given(st.binary(max_size=600))
def test_hr_any_bytes_give_records_rejects_or_hr_file_error(data: bytes) -> None:
    _hr_file_or_error(data)


@PROPERTY
@given(st.data())
def test_hr_any_damage_to_a_real_export_is_handled(data: st.DataObject) -> None:
    raw = bytearray(SAMPLE_CSV.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + 1] = data.draw(st.binary(max_size=3))
    _hr_file_or_error(bytes(raw))


@PROPERTY
@given(st.text(max_size=400))
def test_hr_any_text_after_a_good_header_is_handled(text: str) -> None:
    _hr_file_or_error((",".join(HR_HEADER) + "\n" + text).encode("utf-8", "surrogatepass"))


# --- payroll CSV -------------------------------------------------------------------------

# No lone CR: Python's csv.writer leaves it unquoted when the line terminator is "\n", which
# no spreadsheet does; what the writer quotes, the reader must give back.
_CELL = st.text(
    alphabet=st.characters(codec="utf-8", blacklist_characters="\x00\r"),
    max_size=20,
).map(str.strip)


@st.composite
def payroll_rows(draw: st.DrawFn) -> tuple[list[str], list[dict[str, str]]]:
    identifiers = ["employee_id", "card_serial", "credential"]
    columns = draw(st.permutations(list(REQUEST_COLUMNS)))
    columns = [c for c in columns if c in identifiers or draw(st.booleans())]
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = {c: draw(_CELL) for c in columns}
        rows.append({c: v for c, v in row.items() if v})
    return columns, rows


@PROPERTY
@given(
    payroll_rows(),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_payroll_csv_round_trips(
    table: tuple[list[str], list[dict[str, str]]], quoting: Literal[0, 1], newline: str, bom: bool
) -> None:
    columns, rows = table
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=quoting, lineterminator=newline)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    data = (codecs.BOM_UTF8 if bom else b"") + out.getvalue().encode("utf-8")
    # Rows whose every cell is empty are blank lines, not items.
    assert parse_payroll_csv(data) == [r for r in rows if r]


@PROPERTY
@given(st.binary(max_size=500))
def test_payroll_any_bytes_give_rows_or_payroll_csv_error(data: bytes) -> None:
    for candidate in (data, b"employee_id,account\n" + data):
        try:
            rows = parse_payroll_csv(candidate)
        except PayrollCsvError:
            continue
        assert all(set(r) <= set(REQUEST_COLUMNS) for r in rows)


# --- compact JWS -------------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
_PAYLOADS = st.dictionaries(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8), _JSON, max_size=6
)


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def signer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FileSigner:
    folder: Path = tmp_path_factory.mktemp(request.param)
    return FileSigner.generate_in(folder, request.param, PASSPHRASE.encode())


def _key_for(signer: FileSigner) -> Any:
    return lambda header: signer.public_key() if header.get("kid") == signer.kid else None


@PROPERTY
@given(payload=_PAYLOADS)
def test_jws_round_trips_any_json_object(signer: FileSigner, payload: dict[str, Any]) -> None:
    token = sign_compact(payload, signer, typ=TYP)
    verified = verify_compact(token, key_for=_key_for(signer), expected_typ=TYP)
    assert verified.payload == payload
    assert verified.header == {"alg": signer.alg, "kid": signer.kid, "typ": TYP}


def _jws_refused_or_verified(signer: FileSigner, token: str) -> None:
    with contextlib.suppress(JwsError):
        verify_compact(token, key_for=_key_for(signer), expected_typ=None)


@PROPERTY
@given(st.text(max_size=300))
def test_jws_any_text_raises_only_jws_error(signer: FileSigner, text: str) -> None:
    _jws_refused_or_verified(signer, text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@PROPERTY
@given(st.binary(max_size=120), st.binary(max_size=200), st.binary(max_size=80))
def test_jws_any_segments_raise_only_jws_error(
    signer: FileSigner, header: bytes, payload: bytes, signature: bytes
) -> None:
    _jws_refused_or_verified(signer, f"{_b64(header)}.{_b64(payload)}.{_b64(signature)}")


@PROPERTY
@given(_JSON, _JSON)
def test_jws_any_json_header_raises_only_jws_error(
    signer: FileSigner, header: Any, payload: Any
) -> None:
    # Signed for real, so a header that passes the shape checks reaches the key lookup and
    # the signature check too.
    h = _b64(json.dumps(header).encode())
    p = _b64(json.dumps(payload).encode())
    token = f"{h}.{p}.{_b64(signer.sign(f'{h}.{p}'.encode()))}"
    _jws_refused_or_verified(signer, token)


@PROPERTY
@given(st.data())
def test_jws_any_changed_character_of_a_real_token_is_refused(
    signer: FileSigner, data: st.DataObject
) -> None:
    token = sign_compact({"sub": "KH-MCS-010002", "n": 1}, signer, typ=TYP)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[at]))
    changed = token[:at] + char + token[at + 1 :]
    with pytest.raises(JwsError):
        verify_compact(changed, key_for=_key_for(signer), expected_typ=TYP)


# --- Token Status List -------------------------------------------------------------------


@st.composite
def status_lists(draw: st.DrawFn) -> tuple[int, int, dict[int, int]]:
    bits = draw(st.sampled_from(ALLOWED_BITS))
    size = draw(st.integers(1, 2000))
    values = draw(
        st.dictionaries(st.integers(0, size - 1), st.integers(0, (1 << bits) - 1), max_size=40)
    )
    return bits, size, values


@PROPERTY
@given(status_lists())
def test_status_list_round_trips(spec: tuple[int, int, dict[int, int]]) -> None:
    bits, size, values = spec
    lst = StatusList(size, bits=bits)
    for idx, value in values.items():
        lst.set(idx, value)
    decoded = StatusList.decode(json.loads(json.dumps(lst.encode())))
    assert decoded == lst
    for idx in range(size):
        assert decoded.get(idx) == values.get(idx, 0)


@PROPERTY
@given(_JSON)
def test_status_list_any_json_raises_only_status_list_error(value: Any) -> None:
    for attempt in (
        lambda: StatusList.decode(value),
        lambda: StatusList.decode({"bits": 2, "lst": value}),
        lambda: parse_reference(value),
        lambda: parse_reference({"status_list": value}),
        lambda: parse_status_list_claims(
            value if isinstance(value, dict) else {"v": value},
            expected_uri="https://id.example/status-lists/1",
            now=0,
        ),
    ):
        with contextlib.suppress(StatusListError):
            attempt()


@PROPERTY
@given(st.text(max_size=200), st.integers(-5, 2**70))
@example("http://[x/", 1)  # urlsplit raised a bare ValueError here (fixed)
@example("https://id.example/status-lists/1", 2**70)
def test_status_reference_round_trips_or_refuses(uri: str, idx: int) -> None:
    try:
        claim = reference_claim(uri, idx)
    except ValueError:
        with pytest.raises(StatusListError):
            parse_reference({"status_list": {"uri": uri, "idx": idx}})
        return
    assert parse_reference(json.loads(json.dumps(claim))) == (uri, idx)


@PROPERTY
@given(st.binary(max_size=300), st.sampled_from(ALLOWED_BITS))
def test_status_list_any_lst_bytes_raise_only_status_list_error(data: bytes, bits: int) -> None:
    for lst in (_b64(data), _b64(zlib.compress(data))):
        with contextlib.suppress(StatusListError):
            StatusList.decode({"bits": bits, "lst": lst})
