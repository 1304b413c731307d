"""Operator, approval and sensitive-action commands at the centre console.

``idsvc operators add|list|disable|enable|reset-totp|set-password``, ``idsvc approvals
list|approve|reject``, ``idsvc declare-lost`` and ``idsvc correct-status``.

Secrets never come from arguments. With ``--password-stdin`` every password the command needs
is read from standard input, one per line, in this order: the acting operator's (when
``--operator`` is given), then the new one (``add``, ``set-password``). Without it, the command
prompts (hidden input).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from idsvc.cli.errors import reported
from idsvc.errors import InvalidOperator

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from idsvc.centre import Centre, Pending
    from idsvc.staff.operators import Actor, Enrolment, OperatorView

console = Console(highlight=False, soft_wrap=True)
operators_app = typer.Typer(help="Operator accounts (people who work the desks).")
approvals_app = typer.Typer(help="Maker-checker: actions waiting for a second person.")
operators_app.info.no_args_is_help = True
approvals_app.info.no_args_is_help = True

OperatorOpt = Annotated[
    str | None, typer.Option("--operator", help="act as this operator (password and --otp)")
]
OtpOpt = Annotated[str | None, typer.Option("--otp", help="the operator's current one-time code")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="read password(s) from stdin, one per line")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _now() -> datetime:
    return datetime.now(UTC)


def centre() -> Centre:
    from idsvc.centre import Centre
    from idsvc.cli.main import passphrase_source
    from idsvc.config import Settings
    from idsvc.service import IdService

    settings = Settings()
    return Centre(IdService.from_settings(settings, lambda: passphrase_source(settings)))


def read_secret(label: str, *, from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidOperator(f"--password-stdin: no line for the {label} on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidOperator(f"no terminal to ask for the {label}: use --password-stdin")
    return str(typer.prompt(label.capitalize(), hide_input=True, confirmation_prompt=confirm))


def acting(c: Centre, operator: str | None, otp: str | None, password_stdin: bool) -> Actor | None:
    """The operator this command acts as, after a full login; None: the console itself."""
    if operator is None:
        return None
    password = read_secret(f"password of {operator}", from_stdin=password_stdin)
    if otp is None:
        if not sys.stdin.isatty():
            raise InvalidOperator("--otp CODE is required with --operator")
        otp = str(typer.prompt(f"One-time code of {operator}"))
    return c.authenticate(operator, password, otp, now=_now())


def required_actor(c: Centre, operator: str | None, otp: str | None, stdin: bool) -> Actor:
    actor = acting(c, operator, otp, stdin)
    if actor is None:
        raise InvalidOperator("this command needs --operator NAME (and --otp, a password)")
    return actor


def report_pending(pending: Pending) -> None:
    a = pending.approval
    console.print(
        f"waiting for approval [bold]{a.id}[/] ({a.action} of {escape(a.target)}), until "
        f"{a.expires_at:%Y-%m-%d %H:%M}Z. A supervisor, not {a.requested_by}, runs: "
        f"idsvc approvals approve {a.id} --operator NAME"
    )


def report_outcome(result: str | Pending) -> None:
    """What a sensitive action came to: done (its one-line outcome) or held for approval."""
    from idsvc.centre import Pending

    if isinstance(result, Pending):
        report_pending(result)
    else:
        console.print(escape(result))


def report_enrolment(enrolment: Enrolment) -> None:
    op = enrolment.operator
    console.print(f"operator [bold]{op.name}[/] ({op.role}, office {escape(op.office)}) ready.")
    console.print(
        "Enrol the one-time-code app now (shown only this once; scan it as a QR or type it):"
    )
    print(enrolment.otpauth_uri)


def _report(result: Enrolment | Pending | OperatorView, done: str) -> None:
    from idsvc.centre import Pending
    from idsvc.staff.operators import Enrolment

    if isinstance(result, Pending):
        report_pending(result)
    elif isinstance(result, Enrolment):
        report_enrolment(result)
    else:
        console.print(done)


@operators_app.command("add")
def operators_add(
    name: str,
    role: Annotated[str, typer.Option(help="issuer, registrar, supervisor or admin")],
    office: Annotated[
        str,
        typer.Option(
            help="the office (province) whose people the operator acts for; '*' is national "
            "scope (every office, centre console only)"
        ),
    ],
    password_stdin: StdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Create an operator; prints the TOTP enrolment (otpauth://) URI once."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        password = read_secret(f"new password of {name}", from_stdin=password_stdin, confirm=True)
        result = c.add_operator(
            name, role=role, office=office, password=password, by=by, now=_now()
        )
        _report(result, "")


@operators_app.command("list")
def operators_list(json_out: JsonOpt = False) -> None:
    """List operators (name, role, office, enabled, locked)."""
    with reported():
        views = centre().list_operators()
        if json_out:
            print(
                json.dumps(
                    [
                        {
                            "name": v.name,
                            "role": v.role,
                            "office": v.office,
                            "enabled": v.enabled,
                            "locked_until": v.locked_until.isoformat() if v.locked_until else None,
                        }
                        for v in views
                    ],
                    ensure_ascii=False,
                )
            )
            return
        table = Table("name", "role", "office", "enabled", "locked until")
        for v in views:
            locked = f"{v.locked_until:%Y-%m-%d %H:%M}Z" if v.locked_until else ""
            table.add_row(v.name, v.role, escape(v.office), "yes" if v.enabled else "no", locked)
        console.print(table)


def _toggle(name: str, enabled: bool, operator: str | None, otp: str | None, stdin: bool) -> None:
    with reported():
        c = centre()
        by = acting(c, operator, otp, stdin)
        result = c.set_operator_enabled(name, enabled=enabled, by=by, now=_now())
        _report(result, f"operator {name} {'enabled' if enabled else 'disabled'}")


@operators_app.command("disable")
def operators_disable(
    name: str, password_stdin: StdinOpt = False, operator: OperatorOpt = None, otp: OtpOpt = None
) -> None:
    """Disable an operator; their open sessions end at once."""
    _toggle(name, False, operator, otp, password_stdin)


@operators_app.command("enable")
def operators_enable(
    name: str, password_stdin: StdinOpt = False, operator: OperatorOpt = None, otp: OtpOpt = None
) -> None:
    """Enable an operator again (also lifts a lockout)."""
    _toggle(name, True, operator, otp, password_stdin)


@operators_app.command("reset-totp")
def operators_reset_totp(
    name: str, password_stdin: StdinOpt = False, operator: OperatorOpt = None, otp: OtpOpt = None
) -> None:
    """Give an operator a new second factor (lost phone); prints the new otpauth:// URI once."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        _report(c.reset_totp(name, by=by, now=_now()), "")


@operators_app.command("set-password")
def operators_set_password(
    name: str, password_stdin: StdinOpt = False, operator: OperatorOpt = None, otp: OtpOpt = None
) -> None:
    """Set an operator's password (ends their sessions, lifts a lockout)."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        password = read_secret(f"new password of {name}", from_stdin=password_stdin, confirm=True)
        result = c.set_password(name, password=password, by=by, now=_now())
        _report(result, f"password of {name} changed; their sessions ended")


@approvals_app.command("list")
def approvals_list(
    state: Annotated[
        str | None, typer.Option(help="pending, done, rejected or expired (default: all)")
    ] = "pending",
    password_stdin: StdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List approvals (a supervisor or admin)."""
    with reported():
        c = centre()
        by = required_actor(c, operator, otp, password_stdin)
        views = c.list_approvals(by=by, state=state, now=_now())
        if json_out:
            print(json.dumps([v.as_dict() for v in views], ensure_ascii=False))
            return
        table = Table("approval", "action", "target", "state", "asked by", "desk", "expires")
        for v in views:
            table.add_row(
                v.id,
                v.action,
                escape(v.target),
                v.state,
                v.requested_by,
                v.requested_desk or "",
                f"{v.expires_at:%Y-%m-%d %H:%M}Z",
            )
        console.print(table)


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str,
    password_stdin: StdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve (a second person: supervisor or admin); the action is performed now."""
    with reported():
        c = centre()
        by = required_actor(c, operator, otp, password_stdin)
        view, once = c.approve(approval_id, by=by, now=_now())
        if json_out:
            print(json.dumps(view.as_dict() | {"otpauth_uri": once or None}, ensure_ascii=False))
            return
        console.print(f"approved and done: {escape(view.outcome or '')}")
        if once:
            console.print("Enrol the one-time-code app now (shown only this once):")
            print(once)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: str,
    reason: Annotated[str, typer.Option(help="why (kept in the audit log)")],
    password_stdin: StdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Reject a pending approval; nothing is done."""
    with reported():
        c = centre()
        by = required_actor(c, operator, otp, password_stdin)
        view = c.reject(approval_id, by=by, reason=reason, now=_now())
        console.print(f"approval {view.id} rejected")


def declare_lost(
    employee_id: str,
    reason: Annotated[str, typer.Option(help="what happened (kept in the audit log)")],
    password_stdin: StdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Re-issue after loss, step 1: revoke the person's live card so a new one can be issued."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        result = c.reissue_after_loss(employee_id, reason=reason, by=by, now=_now())
        report_outcome(result)


def correct_status(
    employee_id: str,
    status: Annotated[str, typer.Option(help="active, suspended, retired, dismissed, deceased")],
    reason: Annotated[str, typer.Option(help="why (kept in the audit log)")],
    status_date: Annotated[
        str | None, typer.Option(help="date of the status, YYYY-MM-DD (default: today)")
    ] = None,
    password_stdin: StdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Correct a person's HR status by hand (their credentials follow at once)."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        when = None
        if status_date is not None:
            try:
                when = date.fromisoformat(status_date)
            except ValueError:
                raise typer.BadParameter("use YYYY-MM-DD", param_hint="--status-date") from None
        result = c.correct_status(
            employee_id, status=status, reason=reason, by=by, now=_now(), status_date=when
        )
        report_outcome(result)


def register(app: typer.Typer) -> None:
    app.add_typer(operators_app, name="operators")
    app.add_typer(approvals_app, name="approvals")
    app.command("declare-lost")(declare_lost)
    app.command("correct-status")(correct_status)


def revoke_as_operator(
    credential_id: str,
    reason: str,
    operator: str | None,
    otp: str | None,
    password_stdin: bool,
    json_out: bool,
) -> None:
    """``idsvc revoke`` when an operator acts or maker-checker holds revocations."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        result = c.revoke(credential_id, reason=reason, by=by, now=_now())
        from idsvc.centre import Pending

        if isinstance(result, Pending):
            report_pending(result)
        elif json_out:
            print(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            console.print(f"credential {result.id} is now [bold]{result.state}[/]")


def rotate_as_operator(
    issuer: str, operator: str | None, otp: str | None, password_stdin: bool
) -> None:
    """``idsvc keys rotate`` when an operator acts or maker-checker holds key rotations."""
    with reported():
        c = centre()
        by = acting(c, operator, otp, password_stdin)
        result = c.rotate_key(issuer_slug=issuer, by=by, now=_now())
        report_outcome(result)
