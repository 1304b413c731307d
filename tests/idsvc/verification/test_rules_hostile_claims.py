"""Issue 6, defects 1 and 2: tokens signed by the issuer with absurd dates or status indices are
MALFORMED, never an internal error and never VALID; plus the property that ``verify_credential``
answers every signed JSON payload. Real keys, real signatures, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idsvc.formats.credentials import CREDENTIAL_TYP
from idsvc.services import Services
from idsvc.verification.rules import Reason, numeric_date
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

ACTIVE = "LA-MOHA-000101"


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    loaded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return loaded


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(service: Services, claims: dict[str, Any]) -> str:
    """Sign with the issuer's key. JSON is written here with ``\\u`` escapes (our signer writes
    UTF-8, which cannot carry a lone surrogate), so any JSON text a hostile issuer-side bug
    could produce is reachable."""
    with service.infra.db.transaction() as session:
        signer = service.infra.signer(service.infra.issuer(session))
    header = {"alg": signer.alg, "kid": signer.kid, "typ": CREDENTIAL_TYP}
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(signer.sign(signing_input.encode("ascii")))


@pytest.fixture
def genuine(service: Services) -> dict[str, Any]:
    """The claims of a real credential of an active person, as the issuer signed them."""
    return _claims(service.credentials.issue(ACTIVE, actor="desk", now=NOW).token)


def test_dates_outside_the_range_are_malformed(service: Services, genuine: dict[str, Any]) -> None:
    for claim in ("exp", "nbf", "iat"):
        for value in (10**20, 10**12, -(10**14), 2**63, -(2**63) - 1):
            result = service.verification.verify(_sign(service, genuine | {claim: value}), now=NOW)
            assert (result.valid, result.reasons) == (False, (Reason.MALFORMED,)), (claim, value)


def test_iat_equal_to_nbf_in_value_but_not_an_integer_is_malformed(
    service: Services, genuine: dict[str, Any]
) -> None:
    # An iat equal to a valid nbf is not checked again, unless it is not an integer like it.
    without_nbf = {name: value for name, value in genuine.items() if name != "nbf"}
    for claims in (
        genuine | {"iat": True, "nbf": 1},
        genuine | {"iat": 1.0, "nbf": 1},
        without_nbf | {"iat": 10**20},
        without_nbf | {"iat": None},
    ):
        result = service.verification.verify(_sign(service, claims), now=NOW)
        assert (result.valid, result.reasons) == (False, (Reason.MALFORMED,)), claims
    same = genuine | {"iat": genuine["nbf"]}
    assert service.verification.verify(_sign(service, same), now=NOW).valid


def test_dates_at_the_edge_of_the_range_still_work(
    service: Services, genuine: dict[str, Any]
) -> None:
    # Year 9999 is a date: far-future expiry verifies, and comparing it with leeway must not
    # overflow either.
    far = int(numeric_date(253402300799, "exp").timestamp())
    assert service.verification.verify(_sign(service, genuine | {"exp": far}), now=NOW).valid
    assert service.verification.verify(_sign(service, genuine | {"nbf": far}), now=NOW).reasons == (
        Reason.NOT_YET_VALID,
    )


def test_numeric_date_raises_value_error_for_out_of_range_and_non_integers() -> None:
    assert numeric_date(0, "exp").isoformat() == "1970-01-01T00:00:00+00:00"
    for bad in (10**20, -(10**14), True, 1.5, "1", None, [1]):
        with pytest.raises(ValueError, match="exp"):
            numeric_date(bad, "exp")


def test_index_wider_than_the_database_integer_is_malformed(
    service: Services, genuine: dict[str, Any]
) -> None:
    for idx in (2**31, 2**31 - 1, 2**63, 2**64, 10**30):
        claims = json.loads(json.dumps(genuine))
        claims["status"]["status_list"]["idx"] = idx
        result = service.verification.verify(_sign(service, claims), now=NOW)
        assert (result.valid, result.reasons) == (False, (Reason.MALFORMED,)), idx


def test_index_at_or_beyond_the_list_size_is_never_valid(
    service: Services, genuine: dict[str, Any]
) -> None:
    size = service.settings.status_list_size
    for idx, expected_valid in ((size - 1, True), (size, False), (size + 1, False)):
        claims = json.loads(json.dumps(genuine))
        claims["status"]["status_list"]["idx"] = idx
        result = service.verification.verify(_sign(service, claims), now=NOW)
        assert result.valid is expected_valid, (idx, result.reasons)
        if not expected_valid:
            assert result.reasons == (Reason.MALFORMED,)


def test_text_that_cannot_be_stored_or_sent_is_malformed(
    service: Services, genuine: dict[str, Any]
) -> None:
    for edit in ({"sub": "LA-MOHA-000101\x00"}, {"jti": "x\x00"}, {"name": "\ud800"}):
        result = service.verification.verify(_sign(service, genuine | edit), now=NOW)
        assert result.reasons == (Reason.MALFORMED,), edit


def test_cli_verify_exits_1_not_70_for_out_of_range_claims(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "home", sqlite_url)
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="s.csv", actor="hr", now=NOW)
    try:
        claims = _claims(svc.credentials.issue(ACTIVE, actor="desk", now=NOW).token)
        bad_exp = _sign(svc, claims | {"exp": 10**20})
        claims["status"]["status_list"]["idx"] = 2**63
        bad_idx = _sign(svc, claims)
    finally:
        svc.infra.db.dispose()
    cli = Cli(tmp_path / "home", sqlite_url)
    cli.env |= {
        "IDSVC_ISSUER": settings.issuer,
        "IDSVC_PUBLIC_URL": settings.public_url,
        "IDSVC_STATUS_LIST_SIZE": str(settings.status_list_size),
    }
    for token in (bad_exp, bad_idx):
        r = cli("verify", "--json", token)
        assert r.returncode == 1, r.stderr
        assert json.loads(r.stdout)["reasons"] == ["MALFORMED"]


# -- property: any JSON the issuer signs gets an answer ------------------------------------------

_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_CLAIMS = (
    "iss", "sub", "jti", "iat", "nbf", "exp", "status", "cnf", "name", "name_latin",
    "birthdate", "ministry", "unit", "position", "grade", "category", "card_serial",
)  # fmt: skip
_edit = st.one_of(st.just("keep"), st.just("drop"), _json)
_status_edit = st.fixed_dictionaries(
    {"status_list": st.fixed_dictionaries({"idx": _json_scalar, "uri": _json_scalar})}
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.fixed_dictionaries({claim: _edit for claim in _CLAIMS}),
    status_edit=st.none() | _status_edit,
    extra=st.dictionaries(st.text(max_size=6), _json, max_size=2),
    whole=st.none() | st.dictionaries(st.text(max_size=6), _json, max_size=4),
)
def test_verify_answers_every_payload_the_issuer_signs(
    service: Services,
    genuine: dict[str, Any],
    edits: dict[str, Any],
    status_edit: dict[str, Any] | None,
    extra: dict[str, Any],
    whole: dict[str, Any] | None,
) -> None:
    if whole is not None:
        claims = whole
    else:
        claims = dict(genuine) | extra
        for claim, edit in edits.items():
            if edit == "drop":
                claims.pop(claim, None)
            elif edit != "keep":
                claims[claim] = edit
        if status_edit is not None:
            claims["status"] = status_edit
    result = service.verification.verify(_sign(service, claims), now=NOW + timedelta(minutes=1))
    # An answer, never an exception; and VALID only for the claims as issued.
    assert isinstance(result.reasons, tuple)
    json.dumps(result.as_dict(), ensure_ascii=False).encode("utf-8")
    if result.valid:
        for claim in ("iss", "sub", "jti", "exp", "status"):
            assert claims.get(claim) == genuine[claim]


def test_status_list_names_that_are_not_ours_are_not_found(service: Services) -> None:
    from idsvc.credentials.status_lists import StatusListNotFound

    for name in ("abc\x00def", "../x", "x" * 65, "ສົມ"):
        with pytest.raises(StatusListNotFound):
            service.credentials.status_list_token(name, now=NOW)
