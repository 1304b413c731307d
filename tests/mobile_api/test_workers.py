"""``idsvc serve --workers 2`` on loopback, SQLite and PostgreSQL: nothing that must be shared
lives in one worker's memory.

Which worker answers a connection is found from ``/proc`` (the server-side socket of our
connection and the worker process holding it), so each check provably crosses workers.
"""

from __future__ import annotations

import base64
import time

from idsvc.clients.api_clients import ApiClients
from idsvc.services import Services
from tests.support.serve import ANONYMOUS_LIMIT, SYNC, Served, service_now
from tests.support.settings import ACTIVE_EMPLOYEE
from tests.support.virtual_card import issue_card


def _start_of_a_window() -> bool:
    """Rate limits count per wall-clock minute: start the counting part well inside one.
    Return whether it waited."""
    if time.time() % 60 > 40:
        time.sleep(60 - time.time() % 60 + 0.5)
        return True
    return False


def test_state_is_shared_across_workers(service: Services, served: Served) -> None:
    a, b = served.two_workers()
    assert a.worker != b.worker

    # A challenge made on one worker verifies on the other, once; replays fail on both.
    card = issue_card(service, ACTIVE_EMPLOYEE, 20000001)
    status, ch = a.call("POST", "/v1/card-challenges")
    assert status == 201
    answer = {
        "challenge_id": ch["challenge_id"],
        "certificate": base64.b64encode(card.certificate).decode(),
        "credential": card.credential,
        "signature": base64.b64encode(card.sign(base64.b64decode(ch["nonce"]))).decode(),
    }
    status, result = b.call("POST", "/v1/card-verifications", answer)
    assert (status, result["valid"], result["reasons"]) == (200, True, [])
    for conn in (a, b):
        status, result = conn.call("POST", "/v1/card-verifications", answer)
        assert (status, result["reasons"]) == (200, ["CHALLENGE_INVALID"])

    # A disabled client is refused on its next request, whichever worker gets it.
    clients = ApiClients(service.infra.db)
    _, secret = clients.add("Ministry Admin", ["admin"], service_now())
    auth = {"authorization": f"Bearer {secret}"}
    path = f"/v1/holders/{ACTIVE_EMPLOYEE}/checks"
    assert a.call("GET", path, headers=auth)[0] == 200
    assert b.call("GET", path, headers=auth)[0] == 200
    clients.disable("Ministry Admin", service_now())
    assert b.call("GET", path, headers=auth)[0] == 401
    assert a.call("GET", path, headers=auth)[0] == 401
    # The card check was logged by the worker that served it (write-behind: ≤ 1 s), and is
    # read on the other. (The refused replays name no one: their credential was not checked.)
    clients.enable("Ministry Admin", service_now())
    time.sleep(1.5)
    status, log = a.call("GET", path, headers=auth)
    assert [(c["kind"], c["result"]) for c in log["checks"]] == [("card", "valid")]

    # The anonymous rate limit is one budget for the address across both workers.
    if _start_of_a_window():
        # The server closes keep-alive connections idle for 5 s: connect to both again.
        for conn in (a, b):
            conn.http.close()
        a, b = served.two_workers()
    answers = []
    for i in range(ANONYMOUS_LIMIT + 2):
        conn = a if i % 2 else b
        answers.append(conn.call("POST", "/v1/verifications", {"credential": card.credential})[0])
        time.sleep(SYNC * 1.5)
    allowed = answers.index(429)
    assert answers == [200] * allowed + [429] * (len(answers) - allowed)
    # The card checks above spent 4 of the budget, unless a new minute began since.
    assert allowed in (ANONYMOUS_LIMIT - 4, ANONYMOUS_LIMIT)
