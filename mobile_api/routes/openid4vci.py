"""The phone credential over OpenID4VCI 1.0 (docs/wallet.md): the metadata a wallet reads, the
token endpoint (pre-authorized code grant), the nonce and credential endpoints, the type
metadata at the ``vct`` URL, and the admin's ``POST /v1/wallet/offers``.

The OAuth and OpenID endpoints answer errors as their specs say, ``{"error",
"error_description"}`` with ``Cache-Control: no-store`` (RFC 6749 §5.2, RFC 6750 §3, OpenID4VCI
§8.3.1.2), never problem+json; what the app refuses before a route runs (a body too large or
nested too deep, the database down) keeps the app's problem answers. A used access token is
"expired, revoked ... or invalid" in RFC 6750's words: a second credential request with it is a
401 ``invalid_token``, like any dead token.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import JSONResponse, Response
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool

from idsvc.errors import WalletRequestRefused
from idsvc.formats.openid4vci import PRE_AUTHORIZED_GRANT
from idsvc.wallet import phone_credential
from mobile_api import problems
from mobile_api.auth import Admin
from mobile_api.deps import AppSettings, JsonBody, Now, Wallet
from mobile_api.json_body import StrictJsonRoute, is_json, loads_strict
from mobile_api.limits import PATH_LIMITS
from mobile_api.schemas.wallet import (
    CredentialResponse,
    NonceResponse,
    OfferRequest,
    OfferResponse,
    TokenResponse,
    oauth_errors,
)

router = APIRouter(tags=["wallet"], route_class=StrictJsonRoute)

TOKEN_PATH = "/v1/wallet/token"  # noqa: S105  (a path, not a secret)
NONCE_PATH = "/v1/wallet/nonce"
CREDENTIAL_PATH = "/v1/wallet/credential"
# Small bodies: a token request is a few hundred bytes, a credential request one key proof
# (at most 4 KiB). Above the depth check's own test bodies, so a deep body is still a 422.
PATH_LIMITS[TOKEN_PATH] = 8 * 1024
PATH_LIMITS[NONCE_PATH] = 8 * 1024
PATH_LIMITS[CREDENTIAL_PATH] = 16 * 1024

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Wallets written as web pages read the metadata from another origin.
METADATA_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"}
FORM = "application/x-www-form-urlencoded"


def oauth_error(exc: WalletRequestRefused) -> JSONResponse:
    """The spec's answer to a refused request: 401 + challenge for a bad access token, else 400."""
    headers = dict(NO_STORE)
    status = 400
    if exc.error == "invalid_token":
        status = 401
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=status, headers=headers)


def _refused(error: str, description: str) -> JSONResponse:
    return oauth_error(WalletRequestRefused(error, description))


# -- metadata ------------------------------------------------------------------------------------


def _own_path(settings: AppSettings, path: str) -> None:
    """404 unless ``path`` is the issuer identifier's path: the metadata of an identifier
    ``https://host/P`` is at ``/.well-known/<name>/P`` (RFC 8414 §3.1, OpenID4VCI §12.2.2)."""
    if path.strip("/") != urlsplit(settings.public_url).path.strip("/"):
        raise HTTPException(404, "no credential issuer at this path")


def _metadata(document: dict[str, Any]) -> JSONResponse:
    return JSONResponse(document, headers=METADATA_HEADERS)


_METADATA_ERRORS = problems.responses(404, 503)


@router.get("/.well-known/openid-credential-issuer", responses=_METADATA_ERRORS)
@router.get("/.well-known/openid-credential-issuer/{path:path}", responses=_METADATA_ERRORS)
def credential_issuer_metadata(settings: AppSettings, wallet: Wallet, path: str = "") -> Response:
    """The credential issuer metadata (OpenID4VCI §12.2): endpoints, the two configurations
    of the phone credential (``dc+sd-jwt``, ``vc+sd-jwt``), their claims and display names."""
    _own_path(settings, path)
    return _metadata(wallet.issuer_metadata())


@router.get("/.well-known/oauth-authorization-server", responses=_METADATA_ERRORS)
@router.get("/.well-known/oauth-authorization-server/{path:path}", responses=_METADATA_ERRORS)
def authorization_server_metadata(settings: AppSettings, path: str = "") -> Response:
    """RFC 8414 metadata: the token endpoint of the pre-authorized code grant."""
    _own_path(settings, path)
    return _metadata(phone_credential.authorization_server_metadata(public_url=settings.public_url))


@router.get("/.well-known/jwt-vc-issuer", responses=_METADATA_ERRORS)
@router.get("/.well-known/jwt-vc-issuer/{path:path}", responses=_METADATA_ERRORS)
def jwt_vc_issuer_metadata(wallet: Wallet, path: str = "") -> Response:
    """SD-JWT VC issuer metadata: ``issuer`` (the credential's ``iss``) and its ``jwks``."""
    document = wallet.jwt_vc_issuer_metadata(path)
    if document is None:
        raise HTTPException(404, "no issuer with this identifier")
    return _metadata(document)


@router.get(phone_credential.VCT_PATH, responses=problems.responses(503))
def type_metadata(settings: AppSettings) -> Response:
    """SD-JWT VC type metadata of the civil servant credential (its ``vct``)."""
    return _metadata(phone_credential.type_metadata(public_url=settings.public_url))


# -- the token endpoint --------------------------------------------------------------------------


def _form(body: bytes) -> dict[str, str] | str:
    """The form's parameters, or why it is not one (RFC 6749 §3.2: no parameter twice)."""
    try:
        parsed = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return "the body is not a form (application/x-www-form-urlencoded)"
    twice = sorted(name for name, values in parsed.items() if len(values) > 1)
    if twice:
        return f"parameter {twice[0][:40]!r} given more than once"
    return {name: values[0] for name, values in parsed.items()}


_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "pre-authorized_code", "tx_code"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": [PRE_AUTHORIZED_GRANT]},
                        "pre-authorized_code": {"type": "string"},
                        "tx_code": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post(
    TOKEN_PATH,
    response_model=TokenResponse,
    responses={**oauth_errors(400), **problems.responses(413, 422, 503)},
    openapi_extra=_FORM_BODY,
)
async def token(request: Request, wallet: Wallet, now: Now) -> Response:
    """The pre-authorized code grant (OpenID4VCI §6): the code from the offer and the
    transaction code read out at the desk give a 5-minute access token for one credential.
    Wrong, used or expired codes are ``invalid_grant``; the fifth wrong transaction code
    withdraws the offer."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        return _refused("invalid_request", f"send the token request as {FORM}")
    form = _form(await request.body())
    if isinstance(form, str):
        return _refused("invalid_request", form)
    grant_type = form.get("grant_type")
    if grant_type is None:
        return _refused("invalid_request", "grant_type is missing")
    if grant_type != PRE_AUTHORIZED_GRANT:
        return _refused("unsupported_grant_type", f"only {PRE_AUTHORIZED_GRANT} is supported")
    code = form.get("pre-authorized_code")
    if not code:
        return _refused("invalid_request", "pre-authorized_code is missing")
    tx_code = form.get("tx_code")
    if tx_code is None:
        # §6.3: a transaction code the offer asked for but the request lacks.
        return _refused("invalid_request", "tx_code is missing: this offer needs the 6-digit code")
    try:
        granted = await run_in_threadpool(wallet.token, code=code, tx_code=tx_code, now=now)
    except WalletRequestRefused as exc:
        return oauth_error(exc)
    return JSONResponse(granted.as_dict(), headers=NO_STORE)


# -- the nonce endpoint --------------------------------------------------------------------------


@router.post(NONCE_PATH, response_model=NonceResponse, responses=problems.responses(413, 503))
def nonce(wallet: Wallet, now: Now) -> Response:
    """A fresh ``c_nonce`` (OpenID4VCI §7) for one key proof: single use, 5 minutes."""
    return JSONResponse({"c_nonce": wallet.vci_nonce(now=now)}, headers=NO_STORE)


# -- the credential endpoint ---------------------------------------------------------------------


class AccessTokenScheme(SecurityBase):
    """``Authorization: Bearer <access token>`` from the token endpoint (not an API client's
    secret: its own scheme in OpenAPI)."""

    def __init__(self) -> None:
        self.scheme_name = "wallet_access_token"
        self.model = HTTPBearerModel(
            bearerFormat="OpenID4VCI access token",
            description="The access token of `POST /v1/wallet/token`: 5 minutes, one credential.",
        )

    async def __call__(self, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, value = header.strip().partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else ""


ACCESS_TOKEN = AccessTokenScheme()
AccessTokenHeader = Annotated[str | None, Security(ACCESS_TOKEN)]


def _credential_request(body: bytes) -> tuple[str, str] | WalletRequestRefused:
    """(configuration id, proof JWT) of a credential request (§8.2): ``proofs.jwt`` with one
    proof, or the older single ``proof``; else the refusal in the spec's words."""

    def bad(description: str) -> WalletRequestRefused:
        return WalletRequestRefused("invalid_credential_request", description)

    try:
        request = loads_strict(body)
    except ValueError:
        return bad("the body is not strict JSON")
    if type(request) is not dict:
        return bad("the body must be a JSON object")
    if "credential_identifier" in request:
        return bad("credential_identifier is not used here: name credential_configuration_id")
    configuration_id = request.get("credential_configuration_id")
    if type(configuration_id) is not str:
        return bad("credential_configuration_id is missing or not a string")
    proofs, proof = request.get("proofs"), request.get("proof")
    if proofs is not None and proof is not None:
        return bad("send proofs or proof, not both")
    if proofs is not None:
        jwts = proofs.get("jwt") if type(proofs) is dict else None
        if type(proofs) is not dict or set(proofs) != {"jwt"} or type(jwts) is not list:
            return WalletRequestRefused("invalid_proof", 'proofs must be {"jwt": [<proof>]}')
        if len(jwts) != 1:
            return bad("one proof, for one credential (no batch issuance)")
        return configuration_id, jwts[0] if type(jwts[0]) is str else ""
    if proof is not None:
        if type(proof) is not dict or proof.get("proof_type") != "jwt":
            return WalletRequestRefused("invalid_proof", "proof must be of proof_type jwt")
        jwt = proof.get("jwt")
        return configuration_id, jwt if type(jwt) is str else ""
    return WalletRequestRefused("invalid_proof", "the key proof is missing (proofs.jwt)")


_CREDENTIAL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["credential_configuration_id", "proofs"],
                    "properties": {
                        "credential_configuration_id": {
                            "type": "string",
                            "enum": list(phone_credential.CONFIGURATIONS),
                        },
                        "proofs": {
                            "type": "object",
                            "properties": {"jwt": {"type": "array", "items": {"type": "string"}}},
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    CREDENTIAL_PATH,
    response_model=CredentialResponse,
    responses={**oauth_errors(400, 401), **problems.responses(413, 422, 503)},
    openapi_extra=_CREDENTIAL_BODY,
)
async def credential(
    request: Request, access_token: AccessTokenHeader, wallet: Wallet, now: Now
) -> Response:
    """Issue the phone credential (OpenID4VCI §8) bound to the key of the ``jwt`` proof, whose
    ``nonce`` comes from the nonce endpoint: an SD-JWT VC with ``typ`` as the configuration
    asked for. One credential per access token."""
    if not access_token:
        # RFC 6750 §3.1: a request with no credentials at all gets the bare challenge, no
        # error code (a client that never sent a token has no token to call invalid).
        return JSONResponse(
            {"error_description": "send Authorization: Bearer <access token>"},
            status_code=401,
            headers={**NO_STORE, "WWW-Authenticate": "Bearer"},
        )
    try:
        await run_in_threadpool(wallet.check_access_token, access_token, now=now)
    except WalletRequestRefused as exc:
        return oauth_error(exc)
    if not is_json(request.headers.get("content-type")):
        return _refused("invalid_credential_request", "send the request as application/json")
    parsed = _credential_request(await request.body())
    if isinstance(parsed, WalletRequestRefused):
        return oauth_error(parsed)
    configuration_id, proof_jwt = parsed
    try:
        sd_jwt = await run_in_threadpool(
            wallet.issue_phone_credential,
            access_token,
            configuration_id=configuration_id,
            proof_jwt=proof_jwt,
            now=now,
        )
    except WalletRequestRefused as exc:
        return oauth_error(exc)
    return JSONResponse({"credentials": [{"credential": sd_jwt}]}, headers=NO_STORE)


# -- offers (an admin's API call; the console and desks have theirs) ------------------------------


@router.post(
    "/v1/wallet/offers",
    status_code=201,
    response_model=OfferResponse,
    dependencies=[JsonBody],
    responses=problems.responses(401, 403, 404, 409, 422, 503),
)
def create_offer(body: OfferRequest, caller: Admin, wallet: Wallet, now: Now) -> Response:
    """A single-use credential offer for a person's phone: the QR's URI and the transaction
    code to read out, both good for ``IDSVC_WALLET_OFFER_MINUTES``. Refused (409
    ``WALLET_OFFER_REFUSED``) for a person not active, without a photo, or whose contract ended."""
    actor = f"client:{caller.client_name or caller.client_id}"
    offer = wallet.offer(body.employee_id, actor=actor, now=now)
    return JSONResponse(offer.as_dict(), status_code=201, headers=NO_STORE)
