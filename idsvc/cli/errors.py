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
from rich.console import Console
from rich.markup import escape

from idsvc.errors import IdsvcError
from idsvc.storage.errors import BadDatabaseUrl, DatabaseUnavailable, StorageError
from keys import errors as key_errors

err_console = Console(stderr=True, highlight=False)

EXIT_INVALID = 1
EXIT_HR_ROWS_REJECTED = 8
EXIT_HR_FILE = 9
EXIT_DATABASE = 10
EXIT_WRONG_PASSPHRASE = 12
EXIT_KEY_FILE = 13
EXIT_HSM = 14
EXIT_CARD = 15
EXIT_CARD_REMOVED = 17
EXIT_AUDIT_BROKEN = 16
EXIT_INTERNAL = 70

Row = tuple[type[BaseException], int, Callable[[BaseException], str]]


@cache
def _table() -> list[Row]:
    # Built at the first error, not at start-up: the card and audit modules pull in the PIV
    # stack and SQLAlchemy, the settings pydantic, and an exception of their types means they
    # are loaded already.
    from cardio import errors as card_errors
    from idsvc.audit.chain import AuditChainBroken
    from idsvc.config import PassphraseMissing
    from idsvc.formats.hr_csv import HrFileError

    return [
        (IdsvcError, -1, str),
        (PassphraseMissing, 3, str),
        (HrFileError, EXIT_HR_FILE, lambda e: f"HR file refused: {e}"),
        (DatabaseUnavailable, EXIT_DATABASE, str),
        (BadDatabaseUrl, 3, str),
        (StorageError, EXIT_DATABASE, str),
        (key_errors.WrongPassphrase, EXIT_WRONG_PASSPHRASE, lambda e: "wrong key passphrase"),
        (key_errors.HsmError, EXIT_HSM, lambda e: f"HSM: {e}"),
        (key_errors.KeysError, EXIT_KEY_FILE, lambda e: f"issuer key: {e}"),
        (
            card_errors.CardRemoved,
            EXIT_CARD_REMOVED,
            lambda e: f"card removed or reset: {e}. Re-insert the card and retry (retry is safe).",
        ),
        (card_errors.CardError, EXIT_CARD, lambda e: f"card: {e}"),
        (AuditChainBroken, EXIT_AUDIT_BROKEN, str),
    ]


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    for kind, code, message in _table():
        if isinstance(exc, kind):
            if isinstance(exc, IdsvcError):
                return exc.exit_code, str(exc)
            return code, message(exc)
    return EXIT_INTERNAL, f"internal error ({type(exc).__name__}); run with IDSVC_DEBUG=1"


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
