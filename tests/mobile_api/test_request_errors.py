"""What a caller typing curl by hand gets for a broken body: plain words, never its own input."""

from __future__ import annotations

from tests.support.http import Api, assert_problem

JSON = {"content-type": "application/json"}


def test_broken_json_is_named_with_its_position(web: Api) -> None:
    r = web.http.post("/v1/verifications", content=b'{"credential": "eyJsecret', headers=JSON)
    body = assert_problem(r, 422, "INVALID_REQUEST")
    assert body["detail"].startswith("the body is not valid JSON (error at character ")
    assert "eyJsecret" not in r.text


def test_a_missing_field_is_still_named(web: Api) -> None:
    r = web.http.post("/v1/verifications", content=b'{"token": "x"}', headers=JSON)
    body = assert_problem(r, 422, "INVALID_REQUEST")
    assert body["detail"] == "body.credential: Field required"
