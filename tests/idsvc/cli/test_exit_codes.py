"""The one error → exit-code table (idsvc/cli/errors.py) against what the operator reads: the
README's exit-code table and `idsvc --help`. Every code the CLI can end with is documented in
both, nothing documented is missing from the table, and every domain error has a row of its
family (none falls through to the root's catch-all or to 70 by accident).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cardio.errors import CardRemoved, WrongPin
from idsvc.cli.errors import EXIT_INTERNAL, OUTCOMES, exit_code_for, exit_code_of, exit_codes
from idsvc.cli.errors import resolve as resolve_exit
from idsvc.errors import (
    CentreNotFound,
    CentreProblem,
    CentreUnavailable,
    IdsvcError,
    OperatorLocked,
    PhotoMissing,
    QrImageUnreadable,
)
from idsvc.staff.secrets import SealBroken
from idsvc.storage.errors import DatabaseMissing, SchemaOutdated
from keys.errors import KeyFileExists, WrongPassphrase
from tests.support.error_classes import import_everything, unplaced

README = Path(__file__).parents[3] / "README.md"


def readme_codes(text: str) -> set[int]:
    """The codes in the first column of the table under the README's "Exit codes" heading."""
    section = re.search(r"^## Exit codes\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## Exit codes' section"
    return {int(code) for code in re.findall(r"^\| *(\d+) *\|", section.group(1), re.M)}


def help_codes(text: str) -> set[int]:
    """The codes listed after "Exit codes:" in the root command's help ("N meaning · N ...")."""
    flat = " ".join(text.split())
    found = re.search(r"Exit codes:(.*)", flat)
    assert found, "`idsvc --help` lists no exit codes"
    return {int(code) for code in re.findall(r"(?:^|·)\s*(\d+)\s", found.group(1))}


def table_codes() -> set[int]:
    return {code for code, _ in exit_codes().values()} | set(OUTCOMES)


def root_help() -> str:
    from idsvc.cli.main import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_readme_documents_exactly_the_codes_of_the_table() -> None:
    documented = readme_codes(README.read_text(encoding="utf-8"))
    assert sorted(documented - table_codes()) == [], "documented but in no row of the table"
    assert sorted(table_codes() - documented) == [], "in the table but not in README.md"


def test_idsvc_help_lists_exactly_the_codes_of_the_table() -> None:
    listed = help_codes(root_help())
    assert sorted(listed - table_codes()) == [], "listed by --help but in no row of the table"
    assert sorted(table_codes() - listed) == [], "in the table but not listed by --help"


def test_the_checks_catch_a_missing_or_an_extra_code() -> None:
    text = README.read_text(encoding="utf-8")
    without_27 = re.sub(r"^\| 27 \|.*\n", "", text, flags=re.M)
    assert readme_codes(text) - readme_codes(without_27) == {27}
    assert 99 in readme_codes(text.replace("| 27 |", "| 99 |\n| 27 |", 1))
    said = "Exit codes: 0 ok · 1 credential not valid · 2 usage error · 70 internal error (bug)."
    assert help_codes(said) == {0, 1, 2, 70}
    assert help_codes(said.replace("· 2 usage error ", "")) == {0, 1, 70}


def test_every_domain_error_has_a_row_of_its_family() -> None:
    import_everything()
    assert unplaced(IdsvcError, resolve_exit) == []


def test_the_coverage_check_catches_a_class_without_a_row() -> None:
    # A small tree of its own, so that no stray class joins the real one for later tests.
    class Root(Exception):
        pass

    class Listed(Root):
        pass

    class Stray(Root):
        pass

    class Child(Listed):
        pass

    table = {Root: 1, Listed: 2}

    def resolve(kind: type[BaseException]) -> type[BaseException] | None:
        return next((base for base in kind.__mro__ if base in table), None)

    assert unplaced(Root, resolve) == [f"{__name__}.{Stray.__qualname__}"]


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (OperatorLocked("locked for 15 min"), 24, "locked for 15 min"),  # nearest: OperatorError
        (PhotoMissing("LA-1"), 20, "no photo for 'LA-1': take one with `idsvc photo`"),
        (QrImageUnreadable("no QR code found"), 18, "no QR code found"),
        (SealBroken("sealed secret does not open"), 3, "sealed secret does not open"),
        (CentreNotFound("UNKNOWN_DESK", "centre: no desk"), 6, "centre: no desk"),
        (CentreUnavailable("NOT_INITIALISED", "centre: down"), 10, "centre: down"),
        (CentreProblem("SELF_APPROVAL_X", "centre: no"), 26, "centre: no"),
        (DatabaseMissing("no database at /x"), 10, "no database at /x"),
        (SchemaOutdated("schema behind"), 10, "schema behind"),
        (WrongPassphrase("bad tag"), 12, "wrong key passphrase"),
        (KeyFileExists("/k exists"), 13, "issuer key: /k exists"),
        (WrongPin(2), 15, "card: wrong PIN: 2 attempt(s) left"),
        (
            CardRemoved("reader reset"),
            17,
            "card removed or reset: reader reset. Re-insert the card",
        ),
    ],
)
def test_errors_take_the_row_of_their_nearest_listed_class(
    error: Exception, code: int, message: str
) -> None:
    got_code, got_message = exit_code_for(error)
    assert got_code == code
    assert got_message.startswith(message)


def test_an_error_no_row_fits_is_an_internal_error_that_names_only_its_type() -> None:
    code, message = exit_code_for(ValueError("secret value 1234"))
    assert code == EXIT_INTERNAL == exit_code_of(ValueError)
    assert message == "internal error (ValueError); run with IDSVC_DEBUG=1"


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (409, {"code": "HOLDER_NOT_ELIGIBLE", "title": "retired"}, 5, "retired"),
        (404, {"code": "UNKNOWN_EMPLOYEE", "title": "no such employee"}, 4, "centre: no such"),
        (404, {"code": "UNKNOWN_CREDENTIAL", "title": "no such credential"}, 6, "centre: no such"),
        (404, {"code": "UNKNOWN_DESK", "title": "not found", "detail": "no desk 'd'"}, 6, "centre"),
        (503, {"code": "DATABASE_UNAVAILABLE", "title": "down"}, 10, "centre: down (DATABASE"),
        (409, {"code": "A_NEW_CODE", "title": "no"}, 26, "centre: no (A_NEW_CODE)"),
        (502, "<html>bad gateway</html>", 26, "centre: the centre answered HTTP 502 (HTTP_ERROR)"),
    ],
)
def test_a_desk_ends_with_the_code_of_what_the_centre_answered(
    status: int, body: dict[str, str] | str, code: int, message: str
) -> None:
    from idsvc.desk_client.centre_client import error_from_problem

    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    got_code, got_message = exit_code_for(error_from_problem(status, raw))
    assert (got_code, got_message[: len(message)]) == (code, message)
