"""What the ``idsvc`` command modules share, written once: the clock, the two consoles, the
settings and the services builder, JSON output, the progress bar, and the options several
commands take.

Every ``idsvc`` run imports this module, so it imports nothing heavy at the top (pydantic,
SQLAlchemy, cryptography, ... come inside the functions that need them:
tests/idsvc/cli/test_imports.py). tests/idsvc/cli/test_cli_layout.py keeps the clock here alone.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

    from idsvc.config import Settings
    from idsvc.services import Services
    from idsvc.verification.rules import VerificationResult

# What a command prints goes to stdout (``console``; ``print`` for what scripts capture);
# progress, notices and errors go to stderr. Neither wraps a long line: a message stays one
# line in a log, and a pasted id stays whole.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def now() -> datetime:
    """The command's clock: timezone-aware UTC."""
    return datetime.now(UTC)


def print_json(value: object, *, indent: int | None = None) -> None:
    """``--json`` output: one JSON document on stdout, UTF-8 as it is (names keep accents)."""
    print(json.dumps(value, ensure_ascii=False, indent=indent))


def print_verdict(result: VerificationResult) -> None:
    """A verification's first line: VALID, or the status and its reasons, in colour."""
    colour = "green" if result.valid else "red"
    reasons = f" ({', '.join(result.reasons)})" if result.reasons else ""
    console.print(f"[bold {colour}]{result.status.upper()}[/]{reasons}")


def progress_bar() -> Progress:
    """A bar on stderr that disappears when done: what stdout carries stays clean."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def passphrase_source(settings: Settings) -> bytes:
    """The issuer key passphrase: from the settings, else asked on a terminal."""
    from idsvc.config import key_passphrase

    prompt = (
        (lambda: str(typer.prompt("Issuer key passphrase", hide_input=True)))
        if sys.stdin.isatty()
        else None
    )
    return key_passphrase(settings, prompt)


# The settings of this process, with what they were read from: (working folder, IDSVC_*).
_read: tuple[tuple[str, tuple[tuple[str, str], ...]], Settings] | None = None


def command_settings() -> Settings:
    """The settings (``load_settings``), built once per process: the desk routing, the root
    callback's check and the command all read them (building them costs ~2 ms each time).
    Read again only if the environment or the working folder (the default home) changed, as
    between the commands a test runs in one process."""
    global _read
    from idsvc.config import load_settings

    source = (
        os.getcwd(),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("IDSVC_"))),
    )
    if _read is None or _read[0] != source:
        _read = (source, load_settings())
    return _read[1]


def services() -> Services:
    """The services (``idsvc.services``), built from the settings once per command; the
    passphrase is asked only if a key needs it."""
    from idsvc.services import Services

    settings = command_settings()
    return Services.from_settings(settings, lambda: passphrase_source(settings))


def actor(settings: Settings) -> str:
    """Who the audit log names for a command run at the centre console."""
    return settings.operator


# -- options and arguments that several commands take -----------------------------------------
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
IssuerOpt = Annotated[str, typer.Option("--issuer", help="issuer slug")]
EmployeeArg = Annotated[str, typer.Argument(help="employee id in the register, e.g. KH-MCS-010002")]
CredentialArg = Annotated[
    str, typer.Argument(help="credential id: the first column of `idsvc credentials EMPLOYEE_ID`")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")]
OperatorOpt = Annotated[
    str | None, typer.Option("--operator", help="act as this operator (password and --otp)")
]
OtpOpt = Annotated[str | None, typer.Option("--otp", help="the operator's current one-time code")]
# A bare flag: without a name typer also offers a `--no-…` twin, which only confuses.
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="read password(s) from stdin, one per line")
]
DefaultKeyOpt = Annotated[
    bool,
    typer.Option(
        "--default-management-key", help="use the PIV test management key (training cards only)"
    ),
]
NewPinOpt = Annotated[str | None, typer.Option(help="set this card PIN")]
NewPukOpt = Annotated[str | None, typer.Option(help="set this card PUK")]
