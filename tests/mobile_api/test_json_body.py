"""``mobile_api.json_body``'s parsers on their own: the strict rules hold wherever in a large
body the offence is, and a body only checked (``check_strict``) is refused for exactly what a
parsed one (``loads_strict``) is."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mobile_api.json_body import MAX_DEPTH, DuplicateMember, TooDeep, check_strict, loads_strict

Parse = Callable[[bytes], object]
BATCH = [{"employee_id": f"KH-{i:06d}", "account": f"{i:012d}"} for i in range(10_000)]


@pytest.mark.parametrize("parse", [loads_strict, check_strict])
def test_the_first_duplicate_member_is_named(parse: Parse) -> None:
    for text, name in (
        ('{"a": 1, "b": 2, "b": 3, "a": 4}', "'b'"),
        ('{"items": [{"x": 1}, {"y": 1, "y": 2}]}', "'y'"),
        ('{"k": {"k": 1}, "k": 2}', "'k'"),  # the same name at two levels is fine; twice, not
    ):
        with pytest.raises(DuplicateMember, match=f"duplicate member name {name}"):
            parse(text.encode())
    # One item of a full payroll batch, far down the body.
    body = json.dumps({"items": BATCH}).encode()
    late = body.replace(b'"KH-009998",', b'"KH-009998", "account": "1",', 1)
    with pytest.raises(DuplicateMember, match="'account'"):
        parse(late)


@pytest.mark.parametrize("parse", [loads_strict, check_strict])
def test_constants_depth_and_syntax_are_refused(parse: Parse) -> None:
    for text in ('{"a": NaN}', "[1, Infinity]", '{"a": [-Infinity]}'):
        with pytest.raises(DuplicateMember, match="is not JSON"):
            parse(text.encode())
    with pytest.raises(TooDeep):
        parse(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    for bad in (b'{"a": 1,}', b"\xff", b'{"a": 1} x'):
        with pytest.raises(ValueError):
            parse(bad)


def test_a_clean_body_parses_to_its_value_or_passes_the_check() -> None:
    body = json.dumps({"items": BATCH, "nested": [{"a": {"a": [1.5, None, True]}}]}).encode()
    assert loads_strict(body) == json.loads(body)
    check_strict(body)  # no exception
