"""Operator, approval and sensitive-action commands at the centre console.

``idsvc operators add|list|disable|enable|reset-totp|set-password``, ``idsvc approvals
list|approve|reject``, ``idsvc declare-lost`` and ``idsvc correct-status``.

Secrets never come from arguments. With ``--password-stdin`` every password the command needs
is read from standard input, one per line, in this order: the acting operator's (when
``--operator`` is given), then the new one (``add``, ``set-password``). Without it, the command
prompts (hidden input).
"""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from idsvc.cli.app import app
from idsvc.cli.common import (
    EmployeeArg,
    JsonOpt,
    OperatorOpt,
    OtpOpt,
    PasswordStdinOpt,
    ReasonOpt,
    console,
    now,
    print_json,
    services,
)
from idsvc.cli.errors import reported
from idsvc.errors import InvalidOperator

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from idsvc.staff.maker_checker import Pending
    from idsvc.staff.operators import Actor, Enrolment, OperatorView
    from idsvc.staff.use_cases import Staff

operators_app = typer.Typer(help="Operator accounts (people who work the desks).")
approvals_app = typer.Typer(help="Maker-checker: actions waiting for a second person.")
operators_app.info.no_args_is_help = True
approvals_app.info.no_args_is_help = True
app.add_typer(operators_app, name="operators")
app.add_typer(approvals_app, name="approvals")


def read_secret(label: str, *, from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidOperator(f"--password-stdin: no line for the {label} on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidOperator(f"no terminal to ask for the {label}: use --password-stdin")
    return str(typer.prompt(label.capitalize(), hide_input=True, confirmation_prompt=confirm))


def acting(
    staff: Staff, operator: str | None, otp: str | None, password_stdin: bool
) -> Actor | None:
    """The operator this command acts as, after a full login; None: the console itself (a
    sensitive action then asks the approval policy whether the console may act alone)."""
    if operator is None:
        return None
    password = read_secret(f"password of {operator}", from_stdin=password_stdin)
    if otp is None:
        if not sys.stdin.isatty():
            raise InvalidOperator("--otp CODE is required with --operator")
        otp = str(typer.prompt(f"One-time code of {operator}"))
    return staff.authenticate(operator, password, otp, now=now())


def required_actor(staff: Staff, operator: str | None, otp: str | None, stdin: bool) -> Actor:
    actor = acting(staff, operator, otp, stdin)
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
    from idsvc.staff.maker_checker import Pending

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
    from idsvc.staff.maker_checker import Pending
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
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Create an operator; prints the TOTP enrolment (otpauth://) URI once."""
    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        password = read_secret(f"new password of {name}", from_stdin=password_stdin, confirm=True)
        result = svc.staff.add_operator(
            name, role=role, office=office, password=password, by=by, now=now()
        )
        _report(result, "")


@operators_app.command("list")
def operators_list(json_out: JsonOpt = False) -> None:
    """List operators (name, role, office, enabled, locked)."""
    with reported():
        views = services().staff.list_operators()
        if json_out:
            print_json(
                [
                    {
                        "name": v.name,
                        "role": v.role,
                        "office": v.office,
                        "enabled": v.enabled,
                        "locked_until": v.locked_until.isoformat() if v.locked_until else None,
                    }
                    for v in views
                ]
            )
            return
        table = Table("name", "role", "office", "enabled", "locked until")
        for v in views:
            locked = f"{v.locked_until:%Y-%m-%d %H:%M}Z" if v.locked_until else ""
            table.add_row(v.name, v.role, escape(v.office), "yes" if v.enabled else "no", locked)
        console.print(table)


def _toggle(name: str, enabled: bool, operator: str | None, otp: str | None, stdin: bool) -> None:
    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, stdin)
        result = svc.staff.set_operator_enabled(name, enabled=enabled, by=by, now=now())
        _report(result, f"operator {name} {'enabled' if enabled else 'disabled'}")


@operators_app.command("disable")
def operators_disable(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Disable an operator; their open sessions end at once."""
    _toggle(name, False, operator, otp, password_stdin)


@operators_app.command("enable")
def operators_enable(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Enable an operator again (also lifts a lockout)."""
    _toggle(name, True, operator, otp, password_stdin)


@operators_app.command("reset-totp")
def operators_reset_totp(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Give an operator a new second factor (lost phone); prints the new otpauth:// URI once."""
    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        _report(svc.staff.reset_totp(name, by=by, now=now()), "")


@operators_app.command("set-password")
def operators_set_password(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Set an operator's password (ends their sessions, lifts a lockout)."""
    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        password = read_secret(f"new password of {name}", from_stdin=password_stdin, confirm=True)
        result = svc.staff.set_password(name, password=password, by=by, now=now())
        _report(result, f"password of {name} changed; their sessions ended")


@approvals_app.command("list")
def approvals_list(
    state: Annotated[
        str | None, typer.Option(help="pending, done, rejected or expired (default: all)")
    ] = "pending",
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List approvals (a supervisor or admin)."""
    with reported():
        svc = services()
        by = required_actor(svc.staff, operator, otp, password_stdin)
        views = svc.staff.list_approvals(by=by, state=state, now=now())
        if json_out:
            print_json([v.as_dict() for v in views])
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
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve (a second person: supervisor or admin); the action is performed now."""
    with reported():
        svc = services()
        by = required_actor(svc.staff, operator, otp, password_stdin)
        view, once = svc.staff.approve(approval_id, by=by, now=now())
        if json_out:
            print_json(view.as_dict() | {"otpauth_uri": once or None})
            return
        console.print(f"approved and done: {escape(view.outcome or '')}")
        if once:
            console.print("Enrol the one-time-code app now (shown only this once):")
            print(once)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: str,
    reason: ReasonOpt,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Reject a pending approval; nothing is done."""
    with reported():
        svc = services()
        by = required_actor(svc.staff, operator, otp, password_stdin)
        view = svc.staff.reject(approval_id, by=by, reason=reason, now=now())
        console.print(f"approval {view.id} rejected")


@app.command("declare-lost")
def declare_lost(
    employee_id: EmployeeArg,
    reason: Annotated[str, typer.Option(help="what happened (kept in the audit log)")],
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Re-issue after loss, step 1: revoke the person's live card so a new one can be issued."""
    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        result = svc.credentials.declare_lost(employee_id, reason=reason, by=by, now=now())
        report_outcome(result)


@app.command("correct-status")
def correct_status(
    employee_id: EmployeeArg,
    status: Annotated[str, typer.Option(help="active, suspended, retired, dismissed, deceased")],
    reason: ReasonOpt,
    status_date: Annotated[
        str | None, typer.Option(help="date of the status, YYYY-MM-DD (default: today)")
    ] = None,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Correct a person's HR status by hand (their credentials follow at once)."""
    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        when = None
        if status_date is not None:
            try:
                when = date.fromisoformat(status_date)
            except ValueError:
                raise typer.BadParameter("use YYYY-MM-DD", param_hint="--status-date") from None
        result = svc.register.correct_status(
            employee_id, status=status, reason=reason, by=by, now=now(), status_date=when
        )
        report_outcome(result)
