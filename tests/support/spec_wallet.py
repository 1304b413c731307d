"""A wallet written from the specifications alone, to test the server's phone credential.

It reads OpenID4VCI 1.0, RFC 9901 (SD-JWT), SD-JWT VC (draft) and OpenID4VP 1.0 a second
time, independently of the server: it imports nothing of ``idsvc``, ``keys``, ``cardio`` or
``mobile_api`` (only the standard library, httpx and cryptography), so a misreading of a spec
on the server side shows up here as a disagreement instead of being shared. Every issued
credential is also checked by the OpenWallet Foundation's ``sd-jwt`` library. The formats
(JWS, X.509 chains, SD-JWT and its key binding) are in ``tests/support/spec_sd_jwt.py``.

A rule of a spec that the server breaks raises ``SpecViolation`` naming the rule; an error
answer that a spec defines (``{"error": ...}``) raises ``Refused``, which the tests expect for
bad input. URLs are taken exactly as the specs derive them (metadata at the well-known location
of the identifier, endpoints from metadata); ``Loopback`` routes the service's public https
origin to the test server, as a TLS-terminating proxy would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.spec_sd_jwt import (
    Held,
    HolderKey,
    SpecViolation,
    b64u,
    check_chain,
    check_sd_jwt_vc,
    jwk_of,
    jws_parts,
    jws_verify,
    parse_json,
    public_key_of_jwk,
    require,
    require_https,
    same_key,
    unb64u,
    with_kb,
)

PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
REQUEST_TYP = "oauth-authz-req+jwt"
SELF_ISSUED = "https://self-issued.me/v2"
SD_FORMATS = ("dc+sd-jwt", "vc+sd-jwt")
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")  # OpenID4VP §5.2: nonce and state characters
_ERROR_TEXT = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")  # RFC 6749 §5.2


class Refused(Exception):
    """The server answered with an error a spec defines: ``status`` and ``error`` code."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status, self.error, self.description = status, error, description


# -- URLs and HTTP --------------------------------------------------------------------------


def well_known(identifier: str, name: str) -> str:
    """The well-known URL of ``identifier``: ``/.well-known/<name>`` inserted between the host
    and the path, any terminating ``/`` of the path removed (OpenID4VCI §12.2.2, RFC 8414 §3,
    SD-JWT VC, JWT VC Issuer Metadata)."""
    parts = urlsplit(require_https(identifier, "identifier"))
    require(not parts.query and not parts.fragment, f"query or fragment in {identifier}")
    path = parts.path.rstrip("/")
    return urlunsplit(("https", parts.netloc, f"/.well-known/{name}{path}", "", ""))


class Loopback(httpx.BaseTransport):
    """Sends requests for ``origin`` (the service's public https origin) to ``base`` (the test
    server), keeping the Host header: the proxy in front of the service, in one object. No
    keep-alive: each request is a new connection, which the kernel hands to either worker, so
    a step that depends on an earlier one (a nonce, a token) crosses workers."""

    def __init__(self, origin: str, base: str) -> None:
        self.origin, self.base = urlsplit(origin), urlsplit(base)
        self.inner = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (url.scheme, url.netloc.decode()) != (self.origin.scheme, self.origin.netloc):
            raise httpx.ConnectError(f"the wallet may not reach {url} in the tests")
        request.url = url.copy_with(
            scheme=self.base.scheme, host=self.base.hostname, port=self.base.port
        )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _json_answer(r: httpx.Response, what: str) -> dict[str, Any]:
    media = r.headers.get("content-type", "").split(";")[0].strip()
    require(media == "application/json", f"{what}: Content-Type {media!r}, not application/json")
    body = parse_json(r.content, what)
    require(isinstance(body, dict), f"{what}: not a JSON object")
    return body  # type: ignore[no-any-return]


def _no_store(r: httpx.Response, what: str) -> None:
    cache = r.headers.get("cache-control", "")
    require("no-store" in cache.lower(), f"{what}: Cache-Control must include no-store: {cache!r}")


def _oauth_error(r: httpx.Response, what: str, codes: Iterable[str]) -> Refused:
    """An RFC 6749 §5.2 style error answer, checked: the ``Refused`` to raise."""
    require(r.status_code in (400, 401, 403), f"{what}: error status {r.status_code}: {r.text}")
    body = _json_answer(r, f"{what} error")
    error, description = body.get("error"), body.get("error_description")
    require(error in set(codes), f"{what}: error {error!r} is not one of {sorted(codes)}")
    require(
        description is None or (isinstance(description, str) and _ERROR_TEXT.match(description)),
        f"{what}: error_description must be ASCII without quote or backslash: {description!r}",
    )
    return Refused(r.status_code, str(error), description)


TOKEN_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
)
CREDENTIAL_ERRORS = (
    "invalid_credential_request",
    "unknown_credential_configuration",
    "unknown_credential_identifier",
    "invalid_proof",
    "invalid_nonce",
    "invalid_encryption_parameters",
    "credential_request_denied",
)
BEARER_ERRORS = ("invalid_request", "invalid_token", "insufficient_scope")


# -- OpenID4VCI: offer, metadata, token, nonce, credential ----------------------------------


@dataclass(frozen=True)
class Offer:
    credential_issuer: str
    configuration_ids: tuple[str, ...]
    pre_authorized_code: str
    tx_code: dict[str, Any] | None
    authorization_server: str | None


def parse_offer_uri(uri: str, http: httpx.Client | None = None) -> Offer:
    """OpenID4VCI §4.1: ``openid-credential-offer://?credential_offer=<JSON>`` (or by reference,
    ``credential_offer_uri``, fetched with ``http``)."""
    parts = urlsplit(uri)
    require(parts.scheme == "openid-credential-offer", f"offer scheme {parts.scheme!r}")
    query = parse_qs(parts.query, strict_parsing=True)
    require(len(query) == 1, "§4.1: exactly one of credential_offer / credential_offer_uri")
    if "credential_offer_uri" in query:
        require(http is not None, "offer by reference needs a client")
        assert http is not None
        r = http.get(require_https(query["credential_offer_uri"][0], "credential_offer_uri"))
        offer = _json_answer(r, "credential offer")
    else:
        (text,) = query["credential_offer"]
        offer = parse_json(text.encode(), "credential_offer")
    require(isinstance(offer, dict), "§4.1.1: the offer is a JSON object")
    issuer = require_https(offer.get("credential_issuer"), "§4.1.1 credential_issuer")
    ids: Any = offer.get("credential_configuration_ids")
    require(
        isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids),
        "§4.1.1: credential_configuration_ids is a non-empty array of strings",
    )
    require(len(set(ids)) == len(ids), "§4.1.1: credential_configuration_ids are unique")
    grant: Any = (offer.get("grants") or {}).get(PRE_AUTHORIZED)
    require(isinstance(grant, dict), "the offer has no pre-authorized code grant")
    code = grant.get("pre-authorized_code")
    require(isinstance(code, str) and code, "§4.1.1: pre-authorized_code is REQUIRED")
    tx: Any = grant.get("tx_code")
    if tx is not None:
        require(isinstance(tx, dict), "§4.1.1: tx_code is an object")
        require(tx.get("input_mode", "numeric") in ("numeric", "text"), "§4.1.1: input_mode")
        require(isinstance(tx.get("length", 1), int), "§4.1.1: tx_code length is an integer")
        require(len(tx.get("description", "")) <= 300, "§4.1.1: description ≤ 300 characters")
    return Offer(issuer, tuple(ids), code, tx, grant.get("authorization_server"))


@dataclass(frozen=True)
class Issuer:
    """What discovery found: the issuer and authorization-server metadata."""

    metadata: dict[str, Any]
    as_metadata: dict[str, Any]

    @property
    def identifier(self) -> str:
        return str(self.metadata["credential_issuer"])

    def configuration(self, configuration_id: str) -> dict[str, Any]:
        return dict(self.metadata["credential_configurations_supported"][configuration_id])


@dataclass(frozen=True)
class Token:
    access_token: str
    token_type: str
    body: dict[str, Any]

    @property
    def authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class SpecWallet:
    http: httpx.Client
    key: HolderKey = field(default_factory=HolderKey)
    trust_anchors: Sequence[x509.Certificate] = ()
    clock: Callable[[], float] = time.time
    # SD-JWT VC (Issuer Verification Key Discovery) lets an issuer use x5c, JWT VC Issuer
    # Metadata, or both; x5c is checked when it is there, and this makes it mandatory.
    require_x5c: bool = False

    # -- Discovery (OpenID4VCI §12.2, RFC 8414 §3) --

    def discover(self, offer: Offer) -> Issuer:
        r = self.http.get(
            well_known(offer.credential_issuer, "openid-credential-issuer"),
            headers={"Accept": "application/json", "Accept-Language": "en"},
        )
        require(r.status_code == 200, f"§12.2.2: issuer metadata answered {r.status_code}")
        meta = _json_answer(r, "issuer metadata")
        require(
            meta.get("credential_issuer") == offer.credential_issuer,
            "§12.2.4: credential_issuer must be identical to the identifier the metadata "
            f"was fetched for: {meta.get('credential_issuer')!r} != {offer.credential_issuer!r}",
        )
        require_https(meta.get("credential_endpoint"), "§12.2.4 credential_endpoint")
        require_https(meta.get("nonce_endpoint"), "§12.2.4 nonce_endpoint (we need c_nonce)")
        configs: Any = meta.get("credential_configurations_supported")
        require(isinstance(configs, dict) and configs, "§12.2.4: configurations REQUIRED")
        for cid in offer.configuration_ids:
            require(cid in configs, f"§4.1.1: offered configuration {cid!r} not in metadata")
            self._check_configuration(cid, configs[cid])
        servers = meta.get("authorization_servers")
        if servers is None:
            as_id = offer.credential_issuer
        else:
            require(isinstance(servers, list) and servers, "§12.2.4: non-empty array")
            hint = offer.authorization_server
            require(hint is None or hint in servers, "§4.1.1: authorization_server not listed")
            as_id = hint or servers[0]
        r = self.http.get(well_known(as_id, "oauth-authorization-server"))
        require(r.status_code == 200, f"RFC 8414 §3: AS metadata answered {r.status_code}")
        as_meta = _json_answer(r, "authorization server metadata")
        require(as_meta.get("issuer") == as_id, "RFC 8414 §3.3: issuer must be identical")
        require_https(as_meta.get("token_endpoint"), "RFC 8414 token_endpoint")
        grants = as_meta.get("grant_types_supported")
        require(grants is None or PRE_AUTHORIZED in grants, "AS does not list the grant")
        # OpenID4VCI §12.3: default false, and this wallet has no client_id to send.
        require(
            as_meta.get("pre-authorized_grant_anonymous_access_supported") is True,
            "§12.3: pre-authorized_grant_anonymous_access_supported must be true for a "
            "wallet without client authentication",
        )
        return Issuer(meta, as_meta)

    def _check_configuration(self, cid: str, config: dict[str, Any]) -> None:
        fmt = config.get("format")
        require(fmt in SD_FORMATS, f"{cid}: format {fmt!r}")
        require(isinstance(config.get("vct"), str), f"§A.3.2: {cid} needs vct")
        methods = config.get("cryptographic_binding_methods_supported")
        require(isinstance(methods, list) and "jwk" in methods, f"{cid}: binding method jwk")
        jwt_proof: Any = (config.get("proof_types_supported") or {}).get("jwt")
        require(isinstance(jwt_proof, dict), f"§12.2.4: {cid}: proof_types_supported.jwt")
        algs = jwt_proof.get("proof_signing_alg_values_supported")
        require(isinstance(algs, list) and "ES256" in algs, f"{cid}: ES256 proofs")
        signing = config.get("credential_signing_alg_values_supported")
        require(signing is None or (isinstance(signing, list) and signing), f"{cid}: signing algs")

    def type_metadata(self, held: Held) -> dict[str, Any]:
        """SD-JWT VC, Type Metadata: the document at the ``vct`` URL, fully processed against
        the credential (Claim Metadata: each claim's ``sd`` and ``mandatory``, display)."""
        vct = str(held.payload["vct"])
        r = self.http.get(require_https(vct, "vct"))
        require(r.status_code == 200, f"type metadata at vct answered {r.status_code}")
        doc = _json_answer(r, "type metadata")
        if "vct#integrity" in held.payload:
            algorithm, _, digest = str(held.payload["vct#integrity"]).partition("-")
            actual = base64.b64encode(hashlib.new(algorithm, r.content).digest()).decode()
            require(
                actual == digest,
                "SD-JWT VC, Integrity of Referenced Documents: vct#integrity does not match",
            )
        require(doc.get("vct") == vct, "SD-JWT VC, Type Metadata Format: vct must match")
        require("extends" not in doc, "this wallet does not follow extends")
        for shown in doc.get("display", []):
            require({"locale", "name"} <= set(shown), "SD-JWT VC, Display Metadata: locale, name")
        disclosed = {d.name for d in held.disclosures}
        for claim in doc.get("claims", []):
            path = claim.get("path")
            require(isinstance(path, list) and path, "SD-JWT VC, Claim Path: path")
            for shown in claim.get("display", []):
                require(
                    {"locale", "label"} <= set(shown),
                    "SD-JWT VC, Claim Display Metadata: locale, label",
                )
            if len(path) != 1 or not isinstance(path[0], str):
                continue  # this credential has top-level claims only
            name, sd = path[0], claim.get("sd", "allowed")
            rule = "SD-JWT VC, Claim Selective Disclosure Metadata"
            require(sd in ("always", "allowed", "never"), f"{rule}: sd {sd!r}")
            require(
                not (sd == "always" and name in held.payload),
                f"{rule}: {name} must be selectively disclosable",
            )
            require(
                not (sd == "never" and name in disclosed),
                f"{rule}: {name} must not be selectively disclosable",
            )
            require(
                not claim.get("mandatory") or name in held.claims,
                f"SD-JWT VC, Claim Mandatory Metadata: mandatory claim {name} is missing",
            )
        return doc

    # -- Token endpoint (OpenID4VCI §6, RFC 6749 §5) --

    def token(self, issuer: Issuer, offer: Offer, tx_code: str | None, **extra: str) -> Token:
        form = {"grant_type": PRE_AUTHORIZED, "pre-authorized_code": offer.pre_authorized_code}
        if tx_code is not None:
            form["tx_code"] = tx_code
        form |= extra  # RFC 6749 §3.2: the server MUST ignore parameters it does not know
        r = self.http.post(issuer.as_metadata["token_endpoint"], data=form)
        if r.status_code != 200:
            raise _oauth_error(r, "token endpoint", TOKEN_ERRORS)
        body = _json_answer(r, "token response")
        _no_store(r, "RFC 6749 §5.1 token response")
        require(isinstance(body.get("access_token"), str), "RFC 6749 §5.1: access_token")
        token_type = body.get("token_type")
        require(
            isinstance(token_type, str) and token_type.lower() == "bearer",
            f"RFC 6749 §5.1: token_type {token_type!r} (this wallet uses Bearer, no DPoP)",
        )
        expires = body.get("expires_in")
        require(expires is None or (isinstance(expires, int) and expires > 0), "expires_in")
        require("authorization_details" not in body, "no authorization_details were asked for")
        return Token(body["access_token"], str(token_type), body)

    # -- Nonce endpoint (OpenID4VCI §7) --

    def nonce(self, issuer: Issuer) -> str:
        r = self.http.post(issuer.metadata["nonce_endpoint"], content=b"")
        require(200 <= r.status_code < 300, f"§7.2: nonce endpoint answered {r.status_code}")
        body = _json_answer(r, "nonce response")
        _no_store(r, "OpenID4VCI §7.2 nonce response")
        c_nonce = body.get("c_nonce")
        require(isinstance(c_nonce, str) and c_nonce, "§7.2: c_nonce is REQUIRED")
        return str(c_nonce)

    # -- Proof and credential endpoint (OpenID4VCI §8, Appendix F.1) --

    def proof(
        self,
        issuer: Issuer,
        nonce: str | None,
        *,
        aud: str | None = None,
        iat: float | None = None,
        typ: str = PROOF_TYP,
        key: HolderKey | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        """A ``jwt`` key proof (Appendix F.1): no ``iss`` (anonymous pre-authorized access)."""
        key = key or self.key
        head = {"typ": typ, "alg": "ES256", "jwk": key.jwk} | (header or {})
        claims: dict[str, Any] = {
            "aud": issuer.identifier if aud is None else aud,
            "iat": int(self.clock() if iat is None else iat),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return key.sign(head, claims)

    def credential_response(
        self, issuer: Issuer, token: Token | None, body: dict[str, Any] | bytes
    ) -> httpx.Response:
        headers = {} if token is None else dict(token.authorization)
        endpoint = issuer.metadata["credential_endpoint"]
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
            return self.http.post(endpoint, content=body, headers=headers)
        return self.http.post(endpoint, json=body, headers=headers)

    def request_credential(
        self,
        issuer: Issuer,
        token: Token | None,
        configuration_id: str,
        proofs: Sequence[str] | None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = {"credential_configuration_id": configuration_id}
        if proofs is not None:
            body["proofs"] = {"jwt": list(proofs)}
        r = self.credential_response(issuer, token, body | (extra or {}))
        if r.status_code == 401:
            challenge = r.headers.get("www-authenticate", "")
            require(
                challenge.lower().startswith("bearer"),
                f"RFC 6750 §3: a 401 carries WWW-Authenticate: Bearer, got {challenge!r}",
            )
            found = re.search(r'error="([^"]+)"', challenge)
            raise Refused(401, found.group(1) if found else "", challenge)
        if r.status_code != 200:
            raise _oauth_error(r, "credential endpoint", CREDENTIAL_ERRORS + BEARER_ERRORS)
        answer = _json_answer(r, "credential response")
        creds: Any = answer.get("credentials")
        require(
            isinstance(creds, list) and len(creds) == 1 and isinstance(creds[0], dict),
            "§8.3: credentials is an array of objects, one per proof",
        )
        require("transaction_id" not in answer, "§8.3: credentials and transaction_id exclude")
        credential = creds[0].get("credential")
        require(isinstance(credential, str), "Appendix A.3.4: an SD-JWT VC is a string")
        return str(credential)

    # -- Receiving the SD-JWT VC (RFC 9901 §7.1, SD-JWT VC, Verification and Processing) --

    def receive(self, issuer: Issuer, configuration_id: str, credential: str) -> Held:
        config = issuer.configuration(configuration_id)
        held = check_sd_jwt_vc(
            credential,
            issuer_key=self.issuer_key,
            typ=str(config["format"]),
            now=self.clock(),
        )
        require(held.payload["vct"] == config["vct"], "the credential's vct is not the metadata's")
        cnf = held.payload.get("cnf")
        require(
            isinstance(cnf, dict) and same_key(cnf.get("jwk") or {}, self.key.jwk),
            "SD-JWT VC, Registered JWT Claims: cnf.jwk must be the key the wallet proved",
        )
        return held

    def issuer_key(self, header: dict[str, Any], payload: dict[str, Any]) -> Any:
        return public_key_of_jwk(self.issuer_jwk(header, payload, x5c=True))

    def issuer_jwk(
        self, header: dict[str, Any], payload: dict[str, Any], *, x5c: bool
    ) -> dict[str, Any]:
        """The issuer's key for a JWT: by ``kid`` from the JWT VC Issuer Metadata of ``iss``
        (SD-JWT VC, JWT VC Issuer Metadata), and with ``x5c``, the same key certified by a valid
        chain (Issuer Verification Key Discovery and Validation)."""
        iss = require_https(payload.get("iss"), "SD-JWT VC, JWT VC Issuer Metadata: iss")
        r = self.http.get(well_known(iss, "jwt-vc-issuer"))
        require(r.status_code == 200, f"SD-JWT VC: jwt-vc-issuer answered {r.status_code}")
        meta = _json_answer(r, "JWT VC Issuer Metadata")
        require(
            meta.get("issuer") == iss,
            "SD-JWT VC, Issuer Metadata Validation: issuer must be identical to iss",
        )
        require(
            ("jwks" in meta) != ("jwks_uri" in meta),
            "SD-JWT VC, Issuer Metadata Response: jwks xor jwks_uri",
        )
        jwks = meta.get("jwks")
        if jwks is None:
            jwks = _json_answer(self.http.get(require_https(meta["jwks_uri"], "jwks_uri")), "JWKS")
        kid = header.get("kid")
        require(isinstance(kid, str), "SD-JWT VC: the issuer JWT names its key by kid")
        found = [k for k in jwks.get("keys", []) if k.get("kid") == kid]
        require(len(found) == 1, f"kid {kid!r} is not (once) in the issuer's JWKS")
        chain = header.get("x5c")
        if chain is None:
            require(not (x5c and self.require_x5c), "the issuer JWT carries no x5c chain")
        else:
            leaf = check_chain(chain, self.trust_anchors, self.clock())
            require(
                same_key(jwk_of(leaf.public_key()), found[0]),  # type: ignore[arg-type]
                "x5c[0] does not certify the key the JWKS publishes under this kid",
            )
        return dict(found[0])

    def status(self, held: Held) -> int:
        """Token Status List: the credential's status value (0 valid, 1 invalid, …)."""
        ref = held.payload["status"]["status_list"]
        uri = require_https(ref["uri"], "status_list.uri")
        r = self.http.get(uri, headers={"Accept": "application/statuslist+jwt"})
        require(r.status_code == 200, f"status list answered {r.status_code}")
        media = r.headers.get("content-type", "").split(";")[0]
        require(media == "application/statuslist+jwt", f"status list media type {media!r}")
        header, payload, _, _ = jws_parts(r.text)
        require(header.get("typ") == "statuslist+jwt", "Token Status List: typ statuslist+jwt")
        # The list is the credential issuer's: its key comes from the same metadata.
        jwk = self.issuer_jwk(header, payload | {"iss": held.iss}, x5c=False)
        header, payload = jws_verify(r.text, public_key_of_jwk(jwk))
        require(payload.get("sub") == uri, "Token Status List: sub must be the list's uri")
        lst = payload["status_list"]
        bits = lst["bits"]
        require(bits in (1, 2, 4, 8), "Token Status List: bits is 1, 2, 4 or 8")
        data = zlib.decompress(unb64u(lst["lst"]))
        index = ref["idx"] * bits
        require(index // 8 < len(data), "status index beyond the list")
        return int((data[index // 8] >> (index % 8)) & ((1 << bits) - 1))


# -- OpenID4VP 1.0 --------------------------------------------------------------------------


@dataclass(frozen=True)
class VpRequest:
    """A checked request object: its claims and the certificate that signed it."""

    client_id: str
    claims: dict[str, Any]
    leaf: x509.Certificate

    @property
    def nonce(self) -> str:
        return str(self.claims["nonce"])

    @property
    def state(self) -> str | None:
        return self.claims.get("state")

    def asked(self, vct: str) -> tuple[str, list[str]]:
        """The DCQL credential query this credential answers and the claim names it asks for
        (OpenID4VP §6, §6.4.1: claims, or the first claim set)."""
        query = self.claims["dcql_query"]
        require(isinstance(query.get("credentials"), list), "§6: dcql credentials")
        for cq in query["credentials"]:
            require(re.fullmatch(r"[A-Za-z0-9_-]+", cq.get("id", "")), "§6.1: query id chars")
            values = (cq.get("meta") or {}).get("vct_values")
            if cq.get("format") not in SD_FORMATS or not values or vct not in values:
                continue
            claims = cq.get("claims") or []
            for c in claims:
                path = c.get("path")
                require(isinstance(path, list) and len(path) == 1, f"§7: path {path!r}")
            wanted = [c["path"] for c in claims]
            if cq.get("claim_sets"):  # §6.4.1: ids are then REQUIRED; the first set is preferred
                by_id = {c["id"]: c["path"] for c in claims}
                wanted = [by_id[i] for i in cq["claim_sets"][0]]
            return str(cq["id"]), [str(p[0]) for p in wanted]
        raise SpecViolation(f"no DCQL credential query for vct {vct}")


def open_request(
    http: httpx.Client, uri: str, *, now: float, anchors: Sequence[x509.Certificate] = ()
) -> VpRequest:
    """OpenID4VP §5, §5.9.3 (x509_hash), JAR (RFC 9101): fetch and check the request object."""
    parts = urlsplit(uri)
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    client_id, request_uri = query.get("client_id"), query.get("request_uri")
    require(client_id and request_uri, "RFC 9101 §5.2: client_id and request_uri")
    assert client_id and request_uri
    method = query.get("request_uri_method", "get")
    require(method in ("get", "post"), "§5.1: request_uri_method")
    r = http.get(
        require_https(request_uri, "request_uri"),
        headers={"Accept": "application/oauth-authz-req+jwt"},
        follow_redirects=False,
    )
    require(r.status_code == 200, f"§5.10.1: request_uri answered {r.status_code}")
    media = r.headers.get("content-type", "").split(";")[0].strip()
    require(media == "application/oauth-authz-req+jwt", f"§5.10.1: media type {media!r}")
    header, _, _, _ = jws_parts(r.text)
    require(header.get("typ") == REQUEST_TYP, f"§5: typ {header.get('typ')!r}")
    require(client_id.startswith("x509_hash:"), f"client_id prefix: {client_id}")
    chain = header.get("x5c")
    require(isinstance(chain, list) and chain, "§5.9.3: x509_hash requests carry x5c")
    leaf = check_chain(chain, anchors, now)  # §5.9.3: the wallet validates the chain
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    expected = "x509_hash:" + b64u(hashlib.sha256(leaf_der).digest())
    require(client_id == expected, "§5.9.3: client_id is not the hash of x5c[0]")
    header, claims = jws_verify(r.text, leaf.public_key())
    require(claims.get("client_id") == client_id, "§5.10.1: client_id claim must be identical")
    require(claims.get("response_type") == "vp_token", "§5: response_type vp_token")
    require(claims.get("response_mode") == "direct_post", "§8.2: response_mode direct_post")
    require_https(claims.get("response_uri"), "§8.2: response_uri")
    require("redirect_uri" not in claims, "§8.2: no redirect_uri with direct_post")
    require(claims.get("aud") == SELF_ISSUED, f"§5.8: aud {claims.get('aud')!r}")
    nonce, state = claims.get("nonce"), claims.get("state")
    require(isinstance(nonce, str) and _URL_SAFE.match(nonce), "§5.2: nonce URL-safe")
    require(state is None or (isinstance(state, str) and _URL_SAFE.match(state)), "§5.2: state")
    require(isinstance(claims.get("dcql_query"), dict), "§5.1: dcql_query")
    require("scope" not in claims, "§5.1: dcql_query and scope exclude each other")
    require("transaction_data" not in claims, "§5.1: this wallet supports no transaction_data")
    # §5.1 and §5.9.3: with x509_hash all verifier metadata comes from client_metadata, and
    # vp_formats_supported is REQUIRED there (the wallet has no other way to learn it).
    formats = (claims.get("client_metadata") or {}).get("vp_formats_supported") or {}
    require(
        any(f in formats for f in SD_FORMATS),
        "§5.1/§11.1: client_metadata.vp_formats_supported must list dc+sd-jwt",
    )
    exp = claims.get("exp")
    require(exp is None or (isinstance(exp, int) and exp > now), "request object expired")
    return VpRequest(client_id, claims, leaf)


def respond(
    http: httpx.Client, request: VpRequest, vp_token: dict[str, list[str]] | str
) -> httpx.Response:
    """OpenID4VP §8.2: POST the answer form-encoded to ``response_uri`` (no redirects)."""
    form = {"vp_token": vp_token if isinstance(vp_token, str) else json.dumps(vp_token)}
    if request.state is not None:
        form["state"] = request.state
    return http.post(request.claims["response_uri"], data=form, follow_redirects=False)


def answer(
    http: httpx.Client,
    key: HolderKey,
    request: VpRequest,
    held: Held,
    *,
    now: float,
    names: Iterable[str] | None = None,
    aud: str | None = None,
    nonce: str | None = None,
) -> tuple[httpx.Response, str]:
    """Present exactly what the DCQL query asks (or ``names``) with a KB-JWT; the response and
    the presentation sent."""
    query_id, asked = request.asked(str(held.payload["vct"]))
    presentation = with_kb(
        key,
        held.sd_jwt(asked if names is None else names),
        aud=request.client_id if aud is None else aud,
        nonce=request.nonce if nonce is None else nonce,
        iat=now,
    )
    return respond(http, request, {query_id: [presentation]}), presentation


def check_response_ok(r: httpx.Response) -> dict[str, Any]:
    """OpenID4VP §8.2: a processed response is 200 application/json with an object."""
    require(r.status_code == 200, f"§8.2: response_uri answered {r.status_code}: {r.text}")
    body = _json_answer(r, "response_uri answer")
    if "redirect_uri" in body:
        require(isinstance(body["redirect_uri"], str), "§8.2: redirect_uri is a string")
    return body
