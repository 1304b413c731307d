"""One place that turns every known error into a one-line message and a distinct exit code.

No traceback reaches the operator; ``IDSVC_DEBUG=1`` shows it for developers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import typer
from rich.markup import escape

from idsvc.cli.common import err_console
from idsvc.storage.errors import BadDatabaseUrl, DatabaseUnavailable, StorageError
from keys import errors as key_errors

# Exits that no error class stands for: a command that did its work says how it went.
EXIT_OK = 0
EXIT_INVALID = 1  # `verify`: the credential is not valid
EXIT_USAGE = 2  # Click's own: a bad option or argument
EXIT_HR_ROWS_REJECTED = 8  # `import-hr`: done, but some rows were rejected
EXIT_INTERNAL = 70  # a bug: no row below fits (EX_SOFTWARE)
OUTCOMES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INVALID: "credential not valid",
    EXIT_USAGE: "usage error",
    EXIT_HR_ROWS_REJECTED: "HR import done, some rows rejected",
    EXIT_INTERNAL: "internal error",
}

EXIT_HR_FILE = 9
EXIT_DATABASE = 10
EXIT_WRONG_PASSPHRASE = 12
EXIT_KEY_FILE = 13
EXIT_HSM = 14
EXIT_CARD = 15
EXIT_AUDIT_BROKEN = 16
EXIT_CARD_REMOVED = 17

Message = Callable[[BaseException], str]


@cache
def exit_codes() -> dict[type[BaseException], tuple[int, Message]]:
    """The one error → exit-code table: each listed class with its exit status and its one-line
    message. An error takes the row of the nearest listed class among its bases (``resolve``),
    so a subclass goes with its family unless it has a row of its own. README.md's exit-code
    table and the root command's help list the same codes (tests/idsvc/cli/test_exit_codes.py).
    """
    # Built at the first error, not at start-up: the card and audit modules pull in the PIV
    # stack and SQLAlchemy, the settings pydantic, and an exception of their types means they
    # are loaded already.
    from cardio import errors as card_errors
    from idsvc import errors
    from idsvc.audit.chain import AuditChainBroken
    from idsvc.config import PassphraseMissing
    from idsvc.formats.hr_csv import HrFileError
    from idsvc.staff.secrets import OperatorSecretsError

    own: Message = str  # a domain error's message is written for the operator
    return {
        # The root is never raised itself: every family below has its own row (tested).
        errors.IdsvcError: (1, own),
        errors.NotInitialised: (3, own),
        errors.UnknownIssuer: (3, own),
        errors.ConfigurationInvalid: (3, own),
        OperatorSecretsError: (3, own),
        PassphraseMissing: (3, own),
        BadDatabaseUrl: (3, own),
        errors.UnknownEmployee: (4, own),
        errors.HolderNotEligible: (5, own),
        errors.WalletOfferRefused: (5, own),
        errors.WalletRequestRefused: (1, own),  # the OpenID4VCI endpoints only
        errors.UnknownCredential: (6, own),
        errors.CentreNotFound: (6, own),
        errors.InvalidTransition: (7, own),
        errors.IssuanceNotPending: (7, own),
        HrFileError: (EXIT_HR_FILE, lambda e: f"HR file refused: {e}"),
        DatabaseUnavailable: (EXIT_DATABASE, own),
        StorageError: (EXIT_DATABASE, own),
        errors.CentreUnavailable: (EXIT_DATABASE, own),  # at a desk: the centre's 503
        errors.CardIssuanceFailed: (11, own),
        key_errors.WrongPassphrase: (EXIT_WRONG_PASSPHRASE, lambda e: "wrong key passphrase"),
        key_errors.KeysError: (EXIT_KEY_FILE, lambda e: f"issuer key: {e}"),
        key_errors.HsmError: (EXIT_HSM, lambda e: f"HSM: {e}"),
        card_errors.CardError: (EXIT_CARD, lambda e: f"card: {e}"),
        errors.CardNotIssued: (EXIT_CARD, own),
        AuditChainBroken: (EXIT_AUDIT_BROKEN, own),
        card_errors.CardRemoved: (
            EXIT_CARD_REMOVED,
            lambda e: f"card removed or reset: {e}. Re-insert the card and retry (retry is safe).",
        ),
        errors.PrintedQrError: (18, own),
        errors.CorrectionRefused: (19, own),
        errors.PrintRefused: (20, own),
        errors.ApiClientError: (21, own),
        errors.RateLimited: (21, own),
        errors.BankApiError: (22, own),
        errors.OperationRefused: (23, own),
        errors.OperatorError: (24, own),
        errors.ApprovalError: (25, own),
        errors.DeskError: (26, own),
        errors.CentreProblem: (26, own),  # at a desk: any other refusal from the centre
        errors.FaceDetectorUnavailable: (27, own),
        errors.HolderError: (28, own),  # correction requests (`corrections`)
    }


def resolve(kind: type[BaseException]) -> type[BaseException] | None:
    """The nearest class of ``exit_codes()`` among ``kind``'s bases (None: not listed)."""
    table = exit_codes()
    return next((base for base in kind.__mro__ if base in table), None)


def exit_code_of(kind: type[BaseException]) -> int:
    listed = resolve(kind)
    return EXIT_INTERNAL if listed is None else exit_codes()[listed][0]


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    listed = resolve(type(exc))
    if listed is None:
        return EXIT_INTERNAL, f"internal error ({type(exc).__name__}); run with IDSVC_DEBUG=1"
    code, message = exit_codes()[listed]
    return code, message(exc)


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except (
        KeyboardInterrupt,
        SystemExit,
        typer.Exit,
        typer.Abort,  # (Typer carries its own Click: the `click` package's classes never come)
    ):
        raise
    except Exception as exc:
        if os.environ.get("IDSVC_DEBUG"):
            raise
        code, message = exit_code_for(exc)
        err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
        sys.exit(code)
