"""idsvc.formats.status_list against the draft's worked examples, bombs and hostile claims."""

from __future__ import annotations

import base64
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idsvc.formats.status_list import (
    STATUSLIST_TYP,
    InvalidReference,
    Status,
    StatusIndexError,
    StatusList,
    StatusListError,
    StatusListExpired,
    StatusListFormatError,
    StatusListSubjectMismatch,
    StatusListTooLarge,
    parse_reference,
    parse_status_list_claims,
    reference_claim,
    status_list_claims,
)

URI = "https://id.example.gov/statuslists/1"

# Origin: draft-ietf-oauth-status-list-02, section 4 "Status List" (1 bit per entry) and
# section 9.1 "Status List Token with 2-Bit Status Values" (the same two examples stay in
# section 4.1 of later revisions, up to -17). Entries, packed bytes and "lst" are the draft's.
SPEC_1BIT_STATUSES = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
SPEC_1BIT_BYTES = bytes([0xB9, 0xA3])
SPEC_1BIT_JSON = {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}
SPEC_2BIT_STATUSES = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
SPEC_2BIT_BYTES = bytes([0xC9, 0x44, 0xF9])
SPEC_2BIT_JSON = {"bits": 2, "lst": "eNo76fITAAPfAgc"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- the draft's examples -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "statuses", "packed", "json_form"),
    [
        (1, SPEC_1BIT_STATUSES, SPEC_1BIT_BYTES, SPEC_1BIT_JSON),
        (2, SPEC_2BIT_STATUSES, SPEC_2BIT_BYTES, SPEC_2BIT_JSON),
    ],
    ids=["1-bit", "2-bit"],
)
def test_spec_example_encode(
    bits: int, statuses: list[int], packed: bytes, json_form: dict[str, Any]
) -> None:
    lst = StatusList(len(statuses), bits=bits)
    for idx, value in enumerate(statuses):
        lst.set(idx, value)
    assert lst.to_bytes() == packed
    assert lst.encode() == json_form


@pytest.mark.parametrize(
    ("statuses", "packed", "json_form"),
    [
        (SPEC_1BIT_STATUSES, SPEC_1BIT_BYTES, SPEC_1BIT_JSON),
        (SPEC_2BIT_STATUSES, SPEC_2BIT_BYTES, SPEC_2BIT_JSON),
    ],
    ids=["1-bit", "2-bit"],
)
def test_spec_example_decode(statuses: list[int], packed: bytes, json_form: dict[str, Any]) -> None:
    lst = StatusList.decode(json_form)
    assert lst.to_bytes() == packed
    assert [lst.get(i) for i in range(len(statuses))] == statuses
    assert len(lst) == len(statuses)


def test_bit_order_index_zero_is_least_significant() -> None:
    lst = StatusList(8, bits=2)
    lst.set(0, Status.SUSPENDED)
    assert lst.to_bytes()[0] == 0b0000_0010
    lst.set(3, Status.INVALID)
    assert lst.to_bytes()[0] == 0b0100_0010
    lst.set(4, 3)
    assert lst.to_bytes() == bytes([0b0100_0010, 0b0000_0011])


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_set_get_round_trip_every_width(bits: int) -> None:
    size = 1000
    lst = StatusList(size, bits=bits)
    top = (1 << bits) - 1
    expected = [(i * 7919) % (top + 1) for i in range(size)]
    for i, v in enumerate(expected):
        lst.set(i, v)
    assert [lst.get(i) for i in range(size)] == expected
    again = StatusList.decode(lst.encode())
    assert [again.get(i) for i in range(size)] == expected
    assert again == lst


def test_overwrite_does_not_touch_neighbours() -> None:
    lst = StatusList(4, bits=2)
    for i in range(4):
        lst.set(i, 3)
    lst.set(1, Status.VALID)
    assert [lst.get(i) for i in range(4)] == [3, 0, 3, 3]


def test_new_list_is_all_valid_and_compresses_well() -> None:
    lst = StatusList(131_072)  # the default list size: 32 KiB of 2-bit entries
    assert lst.bits == 2 and lst.size == 131_072 and len(lst.to_bytes()) == 32_768
    assert lst.get(131_071) == Status.VALID
    assert len(lst.encode()["lst"]) < 100


def test_status_values() -> None:
    assert (Status.VALID, Status.INVALID, Status.SUSPENDED) == (0, 1, 2)


def test_encode_uses_zlib_level_9_and_unpadded_base64url() -> None:
    lst = StatusList(10_000, bits=2)
    for i in range(0, 10_000, 37):
        lst.set(i, Status.INVALID)
    out = lst.encode()
    assert "=" not in out["lst"] and "+" not in out["lst"] and "/" not in out["lst"]
    raw = base64.urlsafe_b64decode(out["lst"] + "==")
    assert raw[:2] == b"\x78\xda"  # ZLIB header announcing maximum compression
    assert raw == zlib.compress(lst.to_bytes(), 9)


# --- argument errors (issuer-side bugs) ---------------------------------------------------


@pytest.mark.parametrize("bits", [0, 3, 5, 16, True])
def test_bad_bits(bits: int) -> None:
    with pytest.raises(ValueError):
        StatusList(8, bits=bits)


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_bad_size(size: Any) -> None:
    with pytest.raises(ValueError):
        StatusList(size)


def test_value_too_wide_for_bits() -> None:
    lst = StatusList(8, bits=1)
    lst.set(0, Status.INVALID)
    with pytest.raises(ValueError):
        lst.set(0, Status.SUSPENDED)
    with pytest.raises(ValueError):
        lst.set(0, -1)
    with pytest.raises(ValueError):
        lst.set(0, True)


@pytest.mark.parametrize("idx", [-1, 8, 10**9, True, "1"])
def test_index_out_of_range(idx: Any) -> None:
    lst = StatusList(8)
    with pytest.raises(StatusIndexError):
        lst.get(idx)
    with pytest.raises(IndexError):
        lst.set(idx, 0)


# --- decoding hostile input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        {"lst": "eNrbuRgAAhcBXQ"},
        {"bits": 3, "lst": "eNrbuRgAAhcBXQ"},
        {"bits": "1", "lst": "eNrbuRgAAhcBXQ"},
        {"bits": True, "lst": "eNrbuRgAAhcBXQ"},
        {"bits": 1},
        {"bits": 1, "lst": 5},
    ],
)
def test_decode_bad_structure(obj: Any) -> None:
    with pytest.raises(StatusListFormatError):
        StatusList.decode(obj)


@pytest.mark.parametrize(
    "lst",
    [
        "eNrbuRgAAhcBXQ==",  # padding
        "eNrbuRgAAhcB+Q",  # standard alphabet
        "eNrb uRgAAhcBXQ",  # space
        "eNrbuRgAAhcBX",  # impossible length
        "AAAA",  # not ZLIB
        b64(zlib.compress(b"\x01\x02")[:-3]),  # truncated
        b64(zlib.compress(b"\x01\x02") + b"junk"),  # trailing bytes
        b64(zlib.compress(b"")),  # empty list
    ],
    ids=["padding", "plus", "space", "length", "not-zlib", "truncated", "trailing", "empty"],
)
def test_decode_bad_lst(lst: str) -> None:
    with pytest.raises(StatusListFormatError):
        StatusList.decode({"bits": 1, "lst": lst})


@pytest.fixture(scope="module")
def bomb_100mb() -> str:
    """100 MB of zeros, ZLIB-compressed (≈100 KB), built in chunks to spare memory."""
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(100)]
    parts.append(packer.flush())
    return b64(b"".join(parts))


def test_decompression_bomb_is_refused_fast(bomb_100mb: str) -> None:
    start = time.perf_counter()
    with pytest.raises(StatusListTooLarge):
        StatusList.decode({"bits": 2, "lst": bomb_100mb})
    assert time.perf_counter() - start < 0.5


def test_bomb_with_a_small_lst_is_refused() -> None:
    lst = b64(zlib.compress(bytes(2_000_000), 9))  # ~2 KB that inflates to 2 MB
    assert len(lst) < 4000
    with pytest.raises(StatusListTooLarge):
        StatusList.decode({"bits": 2, "lst": lst})


def test_max_bytes_boundary() -> None:
    exact = {"bits": 8, "lst": b64(zlib.compress(bytes(4096), 9))}
    assert len(StatusList.decode(exact, max_bytes=4096)) == 4096
    with pytest.raises(StatusListTooLarge):
        StatusList.decode(exact, max_bytes=4095)


def test_overlong_lst_is_refused_before_decoding() -> None:
    with pytest.raises(StatusListTooLarge):
        StatusList.decode({"bits": 1, "lst": "A" * 20_000}, max_bytes=1000)


def test_incompressible_list_at_the_limit_is_accepted() -> None:
    import os

    raw = os.urandom(65_536)
    lst = StatusList.decode({"bits": 1, "lst": b64(zlib.compress(raw, 9))}, max_bytes=65_536)
    assert lst.to_bytes() == raw


# --- list token claims --------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
IAT = int(NOW.timestamp())


def claims(**overrides: Any) -> dict[str, Any]:
    lst = StatusList(16, bits=1)
    lst.set(3, Status.INVALID)
    base = status_list_claims(
        lst, uri=URI, iat=IAT, exp=IAT + 86_400, ttl=3600, iss="https://id.example.gov"
    )
    base.update(overrides)
    return base


def test_claims_shape() -> None:
    lst = StatusList(16, bits=1)
    out = status_list_claims(lst, uri=URI, iat=IAT, exp=IAT + 60, ttl=30)
    assert out == {
        "sub": URI,
        "iat": IAT,
        "exp": IAT + 60,
        "ttl": 30,
        "status_list": lst.encode(),
    }
    assert STATUSLIST_TYP == "statuslist+jwt"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"exp": IAT},
        {"ttl": 0},
        {"iat": float(IAT)},
        {"uri": ""},
    ],
)
def test_claims_argument_errors(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"uri": URI, "iat": IAT, "exp": IAT + 60, "ttl": 30} | kwargs
    with pytest.raises(ValueError):
        status_list_claims(StatusList(8), **args)


@pytest.mark.parametrize("now", [NOW, IAT, float(IAT)], ids=["datetime", "int", "float"])
def test_parse_claims(now: datetime | int | float) -> None:
    lst = parse_status_list_claims(claims(), expected_uri=URI, now=now)
    assert lst.get(3) == Status.INVALID and lst.get(2) == Status.VALID


def test_parse_claims_expired() -> None:
    payload = claims()
    with pytest.raises(StatusListExpired):
        parse_status_list_claims(payload, expected_uri=URI, now=NOW + timedelta(days=2))
    with pytest.raises(StatusListExpired):  # exp is the first instant that is too late
        parse_status_list_claims(payload, expected_uri=URI, now=payload["exp"])
    parse_status_list_claims(payload, expected_uri=URI, now=payload["exp"] - 1)


def test_parse_claims_sub_mismatch() -> None:
    with pytest.raises(StatusListSubjectMismatch):
        parse_status_list_claims(claims(), expected_uri=URI + "0", now=NOW)
    with pytest.raises(StatusListError):
        parse_status_list_claims(claims(sub=URI.upper()), expected_uri=URI, now=NOW)


def test_parse_claims_issuer() -> None:
    parse_status_list_claims(
        claims(), expected_uri=URI, now=NOW, expected_iss="https://id.example.gov"
    )
    with pytest.raises(StatusListSubjectMismatch):
        parse_status_list_claims(claims(), expected_uri=URI, now=NOW, expected_iss="https://x")


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": None},
        {"exp": None},
        {"exp": "tomorrow"},
        {"exp": True},
        {"iat": None},
        {"ttl": 0},
        {"ttl": -5},
        {"status_list": None},
        {"status_list": {"bits": 2, "lst": "!!"}},
    ],
)
def test_parse_claims_format_errors(overrides: dict[str, Any]) -> None:
    payload = claims(**overrides)
    for key, value in overrides.items():
        if value is None:
            del payload[key]
    with pytest.raises(StatusListFormatError):
        parse_status_list_claims(payload, expected_uri=URI, now=NOW)


def test_parse_claims_passes_max_bytes_on() -> None:
    payload = claims(status_list={"bits": 2, "lst": b64(zlib.compress(bytes(5000), 9))})
    with pytest.raises(StatusListTooLarge):
        parse_status_list_claims(payload, expected_uri=URI, now=NOW, max_bytes=4096)


def test_parse_claims_refuses_naive_now() -> None:
    with pytest.raises(ValueError):
        parse_status_list_claims(claims(), expected_uri=URI, now=datetime(2026, 1, 1))


# --- references in credentials ------------------------------------------------------------


def test_reference_round_trip() -> None:
    claim = reference_claim(URI, 48_213)
    assert claim == {"status_list": {"idx": 48_213, "uri": URI}}
    assert parse_reference(claim) == (URI, 48_213)


def test_reference_ignores_extension_members() -> None:
    claim = {"status_list": {"idx": 0, "uri": URI, "x": 1}, "other_mechanism": {}}
    assert parse_reference(claim) == (URI, 0)


@pytest.mark.parametrize(
    "claim",
    [
        None,
        "https://id.example.gov/statuslists/1#3",
        {},
        {"status_list": [0, URI]},
        {"status_list": {"uri": URI}},
        {"status_list": {"idx": -1, "uri": URI}},
        {"status_list": {"idx": 1.0, "uri": URI}},
        {"status_list": {"idx": True, "uri": URI}},
        {"status_list": {"idx": "3", "uri": URI}},
        {"status_list": {"idx": 3}},
        {"status_list": {"idx": 3, "uri": 5}},
        {"status_list": {"idx": 3, "uri": ""}},
        {"status_list": {"idx": 3, "uri": "statuslists/1"}},
        {"status_list": {"idx": 3, "uri": "ftp://id.example.gov/1"}},
        {"status_list": {"idx": 3, "uri": "https://id.example.gov/a b"}},
        {"status_list": {"idx": 3, "uri": "https://id.example.gov/\n"}},
        {"status_list": {"idx": 3, "uri": "https://" + "a" * 3000}},
    ],
)
def test_parse_reference_rejects(claim: Any) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(claim)


def test_parse_reference_remembers_only_good_uris() -> None:
    # The good URI is remembered (its urlsplit check skipped next time); a bad one never is,
    # so it is refused however often it comes, right after the good one too.
    bad = {"status_list": {"idx": 3, "uri": "ftp://id.example.gov/1"}}
    for _ in range(3):
        assert parse_reference({"status_list": {"idx": 3, "uri": URI}}) == (URI, 3)
        with pytest.raises(InvalidReference):
            parse_reference(bad)


@pytest.mark.parametrize(("uri", "idx"), [("", 0), ("relative/1", 0), (URI, -1), (URI, True)])
def test_reference_claim_argument_errors(uri: str, idx: int) -> None:
    with pytest.raises(ValueError):
        reference_claim(uri, idx)


def test_one_exception_tree() -> None:
    for exc in (
        StatusListFormatError,
        StatusListTooLarge,
        StatusListExpired,
        StatusListSubjectMismatch,
        StatusIndexError,
        InvalidReference,
    ):
        assert issubclass(exc, StatusListError)
