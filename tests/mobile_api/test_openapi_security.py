"""Issue 15: ``/openapi.json`` says how to authenticate, route by route, and says what the
server enforces: each operation's declared scope is checked against the server's answers
(401 without credentials, 403 naming that scope for a client without it), not against the
table the declaration comes from."""

from __future__ import annotations

import re
from typing import Any

from tests.support.http import Api
from tests.support.payroll import add_client

DESK_TAG = "remote desks"  # signed with the desk's key (Desk-Proof), not a bearer secret
WALLET_TOKEN = "wallet_access_token"


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _call(api: Api, method: str, path: str, headers: dict[str, str]) -> Any:
    url = re.sub(r"\{[^}]+\}", "x", path)
    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
    return api.http.request(method.upper(), url, json=body, headers=headers)


def test_the_bearer_scheme_is_declared(web: Api) -> None:
    schema = web.http.get("/openapi.json").json()
    bearer = schema["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    # The mTLS mapping is told where a bank's integrator looks for it.
    assert "X-Client-Cert" in bearer["description"]
    # The vendored /docs page reads this schema: a declared scheme gives it "Authorize".
    assert "/openapi.json" in web.http.get("/docs").text


def test_each_operation_declares_the_scope_the_server_enforces(web: Api) -> None:
    schema = web.http.get("/openapi.json").json()
    _, outsider = add_client(web.service, "Verifier App", "verify")  # no route requires verify
    other = {"authorization": f"Bearer {outsider}"}
    required: dict[str, str] = {}
    own_token: dict[str, str] = {}
    for path, method, op in _operations(schema):
        security = op.get("security")
        anonymous = _call(web, method, path, {})
        if security is not None and list(security[0]) != ["bearer"]:
            # A token of the route's own protocol (OpenID4VCI's access token, RFC 6750), not
            # an API client's secret: no scope to check, but nobody is served without it.
            assert len(security) == 1 and not next(iter(security[0].values())), (path, security)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            own_token[f"{method} {path}"] = next(iter(security[0]))
        elif security is not None:
            assert len(security) == 1 and list(security[0]) == ["bearer"], (path, security)
            (scope,) = security[0]["bearer"]
            required[f"{method} {path}"] = scope
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            refused = _call(web, method, path, other)
            assert refused.status_code == 403, (path, refused.text)
            assert f'scope="{scope}"' in refused.headers["www-authenticate"]
        elif DESK_TAG not in op.get("tags", []):
            # Anonymous callers are served (or refused for other reasons than who they are),
            # and so is a client without any of the scopes.
            assert anonymous.status_code not in (401, 403), (path, anonymous.text)
            assert _call(web, method, path, other).status_code not in (401, 403), path
    assert required == {
        "post /v1/payroll/checks": "payroll",
        "get /v1/payroll/changes": "payroll",
        "post /v1/hr/records": "hr:write",
        "get /v1/holders/{employee_id}/checks": "admin",
        "get /v1/reports/controls": "admin",
        "get /metrics": "admin",
        "post /v1/wallet/offers": "admin",
        "get /v1/corrections": "admin",
        "post /v1/corrections/{request_id}/decision": "admin",
    }
    assert own_token["post /v1/wallet/credential"] == WALLET_TOKEN
    holder_routes = (
        "get /v1/holder/me",
        "get /v1/holder/who-checked",
        "post /v1/holder/corrections",
    )
    assert {own_token[r] for r in holder_routes} == {"holderSession"}
    # Open to anyone, a client may still authenticate there: nothing is declared as needed.
    assert "security" not in schema["paths"]["/v1/verifications"]["post"]
