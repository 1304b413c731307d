"""The HTTP API over a real loopback connection: health, keys, status lists, verification.

Credentials and status lists are checked with joserfc, an independent JOSE library, from the
JWKS fetched over HTTP only: a relying party needs nothing of ours to verify.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet
from PIL import Image

from idsvc.clients.api_clients import ApiClients
from idsvc.credentials.views import CredentialView
from idsvc.formats.status_list import STATUSLIST_TYP, Status, parse_status_list_claims
from idsvc.register.photos import VERIFIER_PICTURE_SIZE, Photos
from idsvc.services import Services
from tests.support.card_print import portrait_bytes
from tests.support.http import PROBLEM, Api, assert_problem
from tests.support.settings import NOW, OTHER_ACTIVE_EMPLOYEE

LIMIT = 64 * 1024


def fetch_keyset(api: Api) -> KeySet:
    r = api.http.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return KeySet.import_key_set(r.json())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payload_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def verify(api: Api, credential: object) -> httpx.Response:
    return api.http.post("/v1/verifications", json={"credential": credential})


# -- health and keys ---------------------------------------------------------------------------
def test_health(api: Api) -> None:
    r = api.http.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"status": "ok"}
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_jwks_alone_verifies_a_credential_with_joserfc(
    api: Api, credential: CredentialView
) -> None:
    r = api.http.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    cache = r.headers["cache-control"]
    assert "public" in cache and "max-age=" in cache
    jwks = r.json()
    assert jwks["keys"], jwks
    for key in jwks["keys"]:
        assert not {"d", "p", "q"} & set(key), "private members published"
    keyset = KeySet.import_key_set(jwks)

    token = jwt.decode(credential.token, keyset, algorithms=["ES256", "EdDSA"])
    assert token.header["kid"] == credential.kid
    assert token.claims["sub"] == credential.employee_id
    assert token.claims["jti"] == credential.id

    per_issuer = api.http.get("/issuers/default/jwks.json")
    assert per_issuer.status_code == 200
    assert per_issuer.json() == jwks
    assert per_issuer.headers["cache-control"] == cache

    # The same check rejects a credential whose claims were changed after signing.
    header, _, signature = credential.token.split(".")
    forged = payload_of(credential.token) | {"sub": OTHER_ACTIVE_EMPLOYEE}
    tampered = f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"
    with pytest.raises(BadSignatureError):
        jwt.decode(tampered, keyset, algorithms=["ES256", "EdDSA"])


# -- status lists ------------------------------------------------------------------------------
def fetch_status(api: Api, keyset: KeySet, token: str) -> int:
    """The credential's entry in its status list, fetched and checked as a relying party does."""
    ref = payload_of(token)["status"]["status_list"]
    uri, idx = ref["uri"], ref["idx"]
    name = uri.rsplit("/", 1)[-1]
    r = api.http.get(f"/status-lists/{name}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/statuslist+jwt"
    assert f"max-age={api.service.settings.status_list_ttl}" in r.headers["cache-control"]
    obj = jws.deserialize_compact(r.text, keyset, algorithms=["ES256", "EdDSA"])
    assert obj.headers()["typ"] == STATUSLIST_TYP
    claims = json.loads(obj.payload)
    lst = parse_status_list_claims(claims, expected_uri=uri, now=NOW)
    return lst.get(idx)


def test_status_list_bits_of_revoked_and_valid_credentials(
    api: Api, service: Services, credential: CredentialView
) -> None:
    other = service.credentials.issue(OTHER_ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)
    keyset = fetch_keyset(api)
    assert fetch_status(api, keyset, credential.token) == Status.VALID
    assert fetch_status(api, keyset, other.token) == Status.VALID

    service.credentials.revoke(credential.id, reason="card lost", by=None, now=NOW)
    assert fetch_status(api, keyset, credential.token) == Status.INVALID
    assert fetch_status(api, keyset, other.token) == Status.VALID

    service.credentials.change_state(other.id, "suspend", reason="inquiry", actor="test", now=NOW)
    assert fetch_status(api, keyset, other.token) == Status.SUSPENDED


def test_status_list_token_does_not_verify_under_a_foreign_key(
    api: Api, credential: CredentialView
) -> None:
    name = payload_of(credential.token)["status"]["status_list"]["uri"].rsplit("/", 1)[-1]
    r = api.http.get(f"/status-lists/{name}")
    foreign = ECKey.generate_key("P-256")
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(r.text, foreign, algorithms=["ES256"])


@pytest.mark.parametrize("name", ["0000000000000000", "%25", "_"])
def test_unknown_status_list_is_404(api: Api, credential: CredentialView, name: str) -> None:
    r = api.http.get(f"/status-lists/{name}")
    assert_problem(r, 404, "STATUS_LIST_NOT_FOUND")


# -- verification ------------------------------------------------------------------------------
def test_verify_valid(api: Api, credential: CredentialView) -> None:
    r = verify(api, credential.token)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    body = r.json()
    assert body["valid"] is True
    assert body["status"] == "valid"
    assert body["reasons"] == []
    # An anonymous caller sees names, ministry and position: no ids, never the birth date.
    assert set(body["holder"]) == {"name", "name_latin", "ministry", "position"}
    assert body["holder"]["name_latin"] == payload_of(credential.token)["name_latin"]
    assert body["credential_id"] == credential.id
    assert body["issuer"] == api.service.settings.issuer
    assert body["checked_at"] == NOW.isoformat()


def test_verify_revoked(api: Api, service: Services, credential: CredentialView) -> None:
    service.credentials.revoke(credential.id, reason="card lost", by=None, now=NOW)
    r = verify(api, credential.token)
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    assert body["status"] == "revoked"
    assert body["reasons"] == ["REVOKED"]


def test_verify_tampered(api: Api, credential: CredentialView) -> None:
    header, _, signature = credential.token.split(".")
    forged = payload_of(credential.token) | {"grade": "K9"}
    tampered = f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"
    r = verify(api, tampered)
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    assert body["reasons"] == ["BAD_SIGNATURE"]
    assert body["holder"] is None


def test_holder_photo_comes_only_with_a_verified_credential(
    api: Api, service: Services, credential: CredentialView
) -> None:
    Photos(service.infra.db).store(credential.employee_id, portrait_bytes(), actor="test", now=NOW)
    body = verify(api, credential.token).json()
    assert set(body["holder"]) == {"name", "name_latin", "ministry", "position", "photo"}
    prefix, _, data = body["holder"]["photo"].partition(",")
    assert prefix == "data:image/jpeg;base64"
    picture = base64.b64decode(data, validate=True)
    assert len(picture) < 12_000  # small enough to ride in every answer
    image = Image.open(io.BytesIO(picture), formats=["JPEG"])
    assert image.size == VERIFIER_PICTURE_SIZE
    # It is this person's stored portrait, scaled down: the face (skin: red over blue) where
    # the crop puts it, between the eyes, not the background or the hair above it.
    stored = Image.open(io.BytesIO(Photos(service.infra.db).face_image(credential.employee_id)))
    face = image.convert("RGB").getpixel((70, 70))
    same_spot = stored.convert("RGB").getpixel((210, 210))
    assert isinstance(face, tuple) and isinstance(same_spot, tuple)
    assert face[0] > face[2] + 30, face
    assert all(abs(a - b) < 20 for a, b in zip(face, same_spot, strict=True)), (face, same_spot)
    # A forged token names the same person but proves nothing: no holder, so no photo.
    header, _, signature = credential.token.split(".")
    forged = payload_of(credential.token) | {"grade": "K9"}
    tampered = verify(api, f"{header}.{b64url(json.dumps(forged).encode())}.{signature}")
    assert tampered.json()["holder"] is None
    # A client with the verify scope sees the photo too, next to the ids.
    _, secret = ApiClients(service.infra.db).add("Verifier app", ["verify"], NOW)
    scoped = api.http.post(
        "/v1/verifications",
        json={"credential": credential.token},
        headers={"authorization": f"Bearer {secret}"},
    ).json()
    assert scoped["holder"]["photo"] == body["holder"]["photo"]
    assert scoped["holder"]["employee_id"] == credential.employee_id


@pytest.mark.parametrize("garbage", ["not-a-token", "a.b.c", "....", "ey" * 50])
def test_verify_garbage(web: Api, garbage: str) -> None:
    r = verify(web, garbage)
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    assert body["reasons"] == ["MALFORMED"]


@pytest.mark.parametrize(
    "content",
    [
        b"{}",
        b'{"credential": ""}',
        b'{"credential": null}',
        b'{"credential": 42}',
        b'{"credential": ',
        b"[]",
    ],
)
def test_verify_invalid_body_is_422(web: Api, content: bytes) -> None:
    r = web.http.post(
        "/v1/verifications", content=content, headers={"content-type": "application/json"}
    )
    body = assert_problem(r, 422, "INVALID_REQUEST")
    assert r.headers["cache-control"] == "no-store"
    assert "credential" in body["detail"] or "body" in body["detail"]


def test_verify_credential_longer_than_field_limit_is_422(web: Api) -> None:
    r = verify(web, "x" * 20_000)  # under the body limit, over the field limit
    assert_problem(r, 422, "INVALID_REQUEST")


def test_body_over_64k_with_content_length_is_413(web: Api) -> None:
    content = json.dumps({"credential": "x" * (LIMIT + 1)}).encode()
    r = web.http.post(
        "/v1/verifications", content=content, headers={"content-type": "application/json"}
    )
    assert "content-length" in r.request.headers
    assert_problem(r, 413, "BODY_TOO_LARGE")


def test_body_over_64k_chunked_is_413(web: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"credential": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    r = web.http.post(
        "/v1/verifications", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "BODY_TOO_LARGE")


def test_small_chunked_body_is_accepted(web: Api, web_credential: CredentialView) -> None:
    def chunks() -> Iterator[bytes]:
        data = json.dumps({"credential": web_credential.token}).encode()
        yield data[:10]
        yield data[10:]

    r = web.http.post(
        "/v1/verifications", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is True


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_verify_wrong_content_type_is_415(
    web: Api, web_credential: CredentialView, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    content = json.dumps({"credential": web_credential.token}).encode()
    r = web.http.post("/v1/verifications", content=content, headers=headers)
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_content_type_with_charset_is_accepted(
    web: Api, web_credential: CredentialView
) -> None:
    content = json.dumps({"credential": web_credential.token}).encode()
    r = web.http.post(
        "/v1/verifications",
        content=content,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200 and r.json()["valid"] is True


def test_unknown_route_is_404_problem(web: Api) -> None:
    r = web.http.get("/v2/nothing-here")
    assert_problem(r, 404, "NOT_FOUND")


def test_wrong_method_is_405_problem(web: Api) -> None:
    r = web.http.get("/v1/verifications")
    assert_problem(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["allow"] == "POST"
    r = web.http.delete("/.well-known/jwks.json")
    assert_problem(r, 405, "METHOD_NOT_ALLOWED")


def test_openapi_documents_verify(web: Api) -> None:
    r = web.http.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    op = spec["paths"]["/v1/verifications"]["post"]
    schemas = spec["components"]["schemas"]
    body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/VerificationRequest")
    assert "credential" in schemas["VerificationRequest"]["required"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/VerificationResponse")
    for status in ("413", "415", "422", "503"):
        content = op["responses"][status]["content"]
        assert list(content) == [PROBLEM], (status, content)
        assert content[PROBLEM]["schema"]["$ref"].endswith("/ProblemResponse")
    assert {"code", "status", "title", "type"} <= set(schemas["ProblemResponse"]["required"])
    for path in ("/health", "/.well-known/jwks.json", "/status-lists/{name}"):
        assert path in spec["paths"]


def test_logs_hold_no_token_or_personal_data(
    api: Api, credential: CredentialView, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    holder = verify(api, credential.token).json()["holder"]
    header, _, signature = credential.token.split(".")
    verify(api, f"{header}.{b64url(b'{}')}.{signature}")
    api.http.post(
        "/v1/verifications",
        content=json.dumps({"credential": 7, "name": holder["name_latin"]}).encode(),
        headers={"content-type": "application/json"},
    )
    api.http.post(
        "/v1/verifications", content=credential.token, headers={"content-type": "text/plain"}
    )
    text = caplog.text
    assert "POST /v1/verifications" in text  # the access log was captured: the check below can fail
    for secret in (credential.token, signature, holder["name"], holder["name_latin"]):
        assert secret not in text
