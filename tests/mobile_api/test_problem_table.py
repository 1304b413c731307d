"""The one error → HTTP answer table (mobile_api/problems.py): every domain error has a row of
its family, the desk routes declare every status their errors can get, the statuses the docs
give for a problem code are the table's, and the answers on the wire are the ones clients know.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idsvc import errors
from idsvc.staff.secrets import OperatorSecretsError, SealKeyProblem
from idsvc.storage.errors import ConcurrentUpdate, DatabaseMissing
from mobile_api import problems
from mobile_api.desk_requests import ERRORS as DESK_ERRORS
from tests.support.error_classes import import_everything, subclasses, unplaced

ROOT = Path(__file__).parents[2]


def test_every_domain_error_has_a_row_of_its_family() -> None:
    import_everything()
    assert unplaced(errors.IdsvcError, problems.resolve) == []


def domain_classes() -> list[type[BaseException]]:
    import_everything()
    return [errors.IdsvcError, *subclasses(errors.IdsvcError)]


def test_each_code_names_one_class() -> None:
    owners: dict[str, list[str]] = {}
    for kind in domain_classes():
        if "code" in vars(kind):
            owners.setdefault(str(vars(kind)["code"]), []).append(kind.__qualname__)
    assert {code: names for code, names in owners.items() if len(names) > 1} == {}


def status_of_code() -> dict[str, int]:
    """The status the table answers for each problem code it can give."""
    found = {
        str(getattr(kind, "code")): problems.ANSWERS[listed].status  # noqa: B009 - any class
        for kind in domain_classes()
        if (listed := problems.resolve(kind)) is not None and problems.ANSWERS[listed].code is None
    }
    return found | {a.code: a.status for a in problems.ANSWERS.values() if a.code is not None}


def documented_pairs(text: str) -> set[tuple[int, str]]:
    """(status, code) pairs the prose states: "404 `UNKNOWN_CREDENTIAL`", "`400 INVALID_CURSOR`",
    or "401 (bad proof, `LOGIN_REFUSED`, `SESSION_INVALID`)"."""
    pairs = {
        (int(status), code)
        for status, code in re.findall(r"\b([45]\d\d) `?([A-Z][A-Z0-9_]{2,})\b", text)
    }
    for status, inside in re.findall(r"\b([45]\d\d) \(([^)]*)\)", text):
        pairs |= {(int(status), code) for code in re.findall(r"`([A-Z][A-Z0-9_]{2,})`", inside)}
    return pairs


def mismatches(text: str, table: dict[str, int]) -> list[str]:
    return sorted(
        f"docs say {status} {code}, the table answers {table[code]}"
        for status, code in documented_pairs(text)
        if code in table and table[code] != status
    )


def docs_text() -> str:
    paths = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    paths += (ROOT / "mobile_api" / "routes").glob("*.py")  # the OpenAPI descriptions
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(paths))


def test_the_docs_give_each_problem_code_the_status_of_the_table() -> None:
    table = status_of_code()
    text = docs_text()
    checked = {code for _, code in documented_pairs(text) if code in table}
    assert mismatches(text, table) == []
    # The check has something to bite on (a doc rewrite that drops every pair fails here).
    assert {"UNKNOWN_CREDENTIAL", "INVALID_CURSOR", "OPERATOR_LOCKED"} <= checked, checked


def test_the_docs_check_catches_a_wrong_status() -> None:
    table = status_of_code()
    said = "answers 410 `UNKNOWN_CREDENTIAL`, or 401 (bad proof, `LOGIN_REFUSED`, `NOT_PERMITTED`)"
    assert mismatches(said, table) == [
        "docs say 401 NOT_PERMITTED, the table answers 403",
        "docs say 410 UNKNOWN_CREDENTIAL, the table answers 404",
    ]


def test_the_desk_routes_declare_every_status_their_errors_can_get() -> None:
    import_everything()
    families = (errors.DeskError, errors.OperatorError, errors.ApprovalError, OperatorSecretsError)
    statuses = {
        problems.ANSWERS[listed].status
        for family in families
        for kind in [family, *subclasses(family)]
        if (listed := problems.resolve(kind)) is not None
    }
    assert statuses - set(DESK_ERRORS) == set()


ANSWERED: list[tuple[Exception, int, str, str, str | None, str | None]] = [
    # error, status, code, title, detail, Retry-After
    (errors.UnknownCredential("c-1"), 404, "UNKNOWN_CREDENTIAL", "no such credential", None, None),
    (errors.UnknownEmployee("LA-1"), 404, "UNKNOWN_EMPLOYEE", "no such employee", None, None),
    (errors.HolderNotEligible("retired"), 409, "HOLDER_NOT_ELIGIBLE", "retired", None, None),
    (
        errors.NotInitialised("x"),
        503,
        "NOT_INITIALISED",
        "the service is not initialised",
        None,
        None,
    ),
    (
        errors.InvalidCursor(),
        400,
        "INVALID_CURSOR",
        "bad change-feed request",
        "the cursor is not one this feed handed out",
        None,
    ),
    (
        errors.InvalidPayrollBatch("empty"),
        422,
        "INVALID_PAYROLL_BATCH",
        "payroll batch invalid",
        "empty",
        None,
    ),
    (
        errors.IdempotencyConflict(),
        422,
        "IDEMPOTENCY_CONFLICT",
        "HR records refused",
        "this Idempotency-Key was used with a different request body",
        None,
    ),
    (errors.InvalidWebhook("bad URL"), 409, "INVALID_WEBHOOK", "bad URL", None, None),
    (errors.OperatorLocked("try later"), 423, "OPERATOR_LOCKED", "locked", "try later", None),
    (errors.LoginRefused("wrong"), 401, "LOGIN_REFUSED", "not authenticated", "wrong", None),
    (
        errors.DeskRequestInvalid("stale"),
        401,
        "DESK_REQUEST_INVALID",
        "not authenticated",
        "stale",
        None,
    ),
    (errors.NotPermitted("role"), 403, "NOT_PERMITTED", "refused", "role", None),
    (errors.EnrolmentRefused("used"), 403, "ENROLMENT_REFUSED", "refused", "used", None),
    (errors.UnknownDesk("d"), 404, "UNKNOWN_DESK", "not found", "no desk 'd'", None),
    (errors.UnknownApproval("a"), 404, "UNKNOWN_APPROVAL", "not found", "no approval 'a'", None),
    (errors.SelfApproval("own"), 409, "SELF_APPROVAL", "refused", "own", None),
    (
        SealKeyProblem("/etc/x is world-readable"),
        503,
        "OPERATOR_SECRETS",
        "operator sign-in is not configured at the centre",
        None,
        None,
    ),
    (ConcurrentUpdate("deadlock"), 409, "CONCURRENT_UPDATE", "concurrent update", "deadlock", "1"),
    (
        DatabaseMissing("/srv/db"),
        503,
        "DATABASE_UNAVAILABLE",
        "the register is temporarily unavailable",
        None,
        "5",
    ),
    (ValueError("a bug"), 500, "INTERNAL", "internal error", None, None),
]


@pytest.fixture(scope="module")
def raising() -> TestClient:
    """An app with the problem handlers and one route that raises the error it is given."""
    app = FastAPI()
    problems.install(app)
    by_index = [error for error, *_ in ANSWERED]

    @app.get("/raise/{index}")
    def raise_it(index: int) -> None:
        raise by_index[index]

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("index", "status", "code", "title", "detail", "retry_after"),
    [(i, *row[1:]) for i, row in enumerate(ANSWERED)],
    ids=[type(row[0]).__name__ for row in ANSWERED],
)
def test_the_wire_answer_of_each_row(
    raising: TestClient,
    index: int,
    status: int,
    code: str,
    title: str,
    detail: str | None,
    retry_after: str | None,
) -> None:
    response = raising.get(f"/raise/{index}")
    assert response.status_code == status
    assert response.headers["content-type"] == problems.PROBLEM
    assert response.headers.get("retry-after") == retry_after
    body = response.json()
    assert body["code"] == code
    assert body["type"] == f"urn:idsvc:problem:{code.lower()}"
    assert body["title"] == title
    assert body.get("detail") == detail
