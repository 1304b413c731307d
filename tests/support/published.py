"""Reading what the centre published (a signed status list, a credential's status reference),
for the tests of issuance and publication."""

from __future__ import annotations

import base64
import json
from typing import Any

from idsvc.credentials.publication import Published
from idsvc.formats.status_list import parse_status_list_claims
from tests.support.settings import NOW


def claims_of(document: Published) -> dict[str, Any]:
    part = document.body.split(b".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)))
    return decoded


def status_of(document: Published, token: str) -> int:
    """The status the published list gives the credential ``token``."""
    ref = claims_of(Published(token.encode(), ""))["status"]
    uri, idx = ref["status_list"]["uri"], ref["status_list"]["idx"]
    return parse_status_list_claims(claims_of(document), expected_uri=uri, now=NOW).get(idx)


def list_name(token: str) -> str:
    """The name of the status list that holds the credential ``token``."""
    uri: str = claims_of(Published(token.encode(), ""))["status"]["status_list"]["uri"]
    return uri.rsplit("/", 1)[-1]
