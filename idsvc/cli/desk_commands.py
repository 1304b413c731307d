"""Desk registration at the centre (``idsvc desks add|list|disable|enable|new-code``) and the
remote desk's own commands (``idsvc desk enrol|login|logout|status|issue|retry``, the
registrar's and issuer's requests ``desk correct-status|revoke|declare-lost``, and
``desk approvals list|approve|reject``).

A remote desk keeps only its own key, the centre's address, the issuer CA certificate and the
operator's session in ``$IDSVC_HOME/desk/`` (see ``idsvc.desk_client.identity``); it never has the
issuer key, the database or the register.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from idsvc.cli.app import app
from idsvc.cli.common import (
    CredentialArg,
    DefaultKeyOpt,
    EmployeeArg,
    JsonOpt,
    NewPinOpt,
    NewPukOpt,
    OperatorOpt,
    OtpOpt,
    PasswordStdinOpt,
    ReasonOpt,
    command_settings,
    console,
    err_console,
    now,
    print_json,
    services,
)
from idsvc.cli.errors import reported
from idsvc.cli.operator_commands import acting, read_secret
from idsvc.errors import CentreUnreachable, DeskRefused, InvalidOperator, IssuanceNotPending

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from idsvc.desk_client.centre_client import CentreClient
    from idsvc.desk_client.identity import DeskIdentity
    from idsvc.desks.gateway import DeskGateway

desks_app = typer.Typer(help="Issuance desks registered at this centre.", no_args_is_help=True)
desk_app = typer.Typer(help="This machine as a remote issuance desk.", no_args_is_help=True)
app.add_typer(desks_app, name="desks")
app.add_typer(desk_app, name="desk")


def _identity() -> DeskIdentity:
    """This machine's desk folder (``$IDSVC_HOME/desk``), enrolled or not."""
    from idsvc.desk_client.identity import DeskIdentity

    return DeskIdentity(command_settings().home)


def _desks() -> DeskGateway:
    return services().desks


def centre_client() -> CentreClient:
    """This desk's client of its centre (``$IDSVC_HOME/desk``); what it reports on the way
    (offline wipes sent to the centre) goes to stderr."""
    from idsvc.desk_client.centre_client import CentreClient

    return CentreClient(_identity(), clock=now, notice=_notice)


# -- at the centre ---------------------------------------------------------------------------
@desks_app.command("add")
def desks_add(
    name: str,
    office: Annotated[str, typer.Option(help="the office (province) the desk belongs to")],
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Register a desk; prints its one-time enrolment code (shown once, expires)."""
    with reported():
        d = _desks()
        by = acting(d.staff, operator, otp, password_stdin)
        view, code = d.add_desk(name, office=office, by=by, now=now())
        console.print(f"desk [bold]{view.name}[/] registered for office {escape(view.office)}.")
        console.print(
            f"On the desk machine, before {view.enrol_code_expires_at:%Y-%m-%d %H:%M}Z, run:"
        )
        print(f"idsvc desk enrol --centre {d.settings.public_url} --code {code}")


@desks_app.command("new-code")
def desks_new_code(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """A new enrolment code (replaced machine); the desk's current key stops working now."""
    with reported():
        d = _desks()
        by = acting(d.staff, operator, otp, password_stdin)
        code = d.new_enrolment_code(name, by=by, now=now())
        print(f"idsvc desk enrol --centre {d.settings.public_url} --code {code}")


@desks_app.command("list")
def desks_list(json_out: JsonOpt = False) -> None:
    """List desks: office, enabled, enrolled, key thumbprint."""
    with reported():
        views = _desks().list_desks()
        if json_out:
            print_json([v.as_dict() for v in views])
            return
        table = Table("desk", "office", "enabled", "enrolled", "key")
        for v in views:
            table.add_row(
                v.name,
                escape(v.office),
                "yes" if v.enabled else "no",
                "yes" if v.enrolled else "waiting for enrolment",
                v.key_thumbprint or "",
            )
        console.print(table)


def _toggle(name: str, enabled: bool, operator: str | None, otp: str | None, stdin: bool) -> None:
    with reported():
        d = _desks()
        by = acting(d.staff, operator, otp, stdin)
        d.set_desk_enabled(name, enabled=enabled, by=by, now=now())
        console.print(f"desk {name} {'enabled' if enabled else 'disabled (its sessions ended)'}")


@desks_app.command("disable")
def desks_disable(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Disable a desk: its next request is refused."""
    _toggle(name, False, operator, otp, password_stdin)


@desks_app.command("enable")
def desks_enable(
    name: str,
    password_stdin: PasswordStdinOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
) -> None:
    """Enable a desk again."""
    _toggle(name, True, operator, otp, password_stdin)


# -- on the desk machine ---------------------------------------------------------------------
@desk_app.command("enrol")
def desk_enrol(
    centre_url: Annotated[str, typer.Option("--centre", help="the centre's https:// address")],
    code: Annotated[
        str | None, typer.Option(help="the one-time enrolment code (asked if not given)")
    ] = None,
    re_enrol: Annotated[
        bool,
        typer.Option(
            "--re-enrol",
            help="enrol an enrolled desk again, with a fresh code from `idsvc desks new-code`",
        ),
    ] = False,
) -> None:
    """Make this desk's key pair and enrol it at the centre with the one-time code.

    An enrolled desk refuses (nothing changed) unless --re-enrol; the new key replaces the
    old one only once the centre has accepted it."""
    with reported():
        identity = _identity()
        identity.check_may_enrol(re_enrol=re_enrol)  # before asking for anything
        if code is None:
            code = read_secret("enrolment code", from_stdin=not sys.stdin.isatty())
        from idsvc.desk_client.centre_client import CentreClient

        remote = CentreClient(identity, clock=now, centre_url=centre_url, notice=_notice)
        answer = remote.enrol(code, re_enrol=re_enrol)
        console.print(
            f"this machine is desk [bold]{answer['name']}[/] of office {escape(answer['office'])}"
            f" (key {answer['key_thumbprint']}); operators sign in with `idsvc desk login`"
        )


@desk_app.command("login")
def desk_login(
    operator: Annotated[str, typer.Option("--operator", help="your operator name")],
    password_stdin: PasswordStdinOpt = False,
    otp: OtpOpt = None,
) -> None:
    """Sign in at this desk (password and one-time code); the session is kept 0600 here."""
    with reported():
        password = read_secret(f"password of {operator}", from_stdin=password_stdin)
        if otp is None:
            if not sys.stdin.isatty():
                raise InvalidOperator("--otp CODE is required without a terminal")
            otp = str(typer.prompt("One-time code"))
        answer = centre_client().login(operator, password, otp)
        console.print(
            f"signed in as {answer['operator']} ({answer['role']}) at desk {answer['desk']}; "
            f"the session ends after {answer['idle_minutes']} idle minutes or at "
            f"{answer['expires_at'][:16]}Z"
        )


@desk_app.command("logout")
def desk_logout() -> None:
    """End the operator's session at the centre and here."""
    with reported():
        centre_client().logout()
        console.print("signed out")


@desk_app.command("status")
def desk_status() -> None:
    """Which centre and desk this is, and what the centre says now: enabled, who is signed in.

    Exit 0 when the centre answered and an operator is signed in; 26 otherwise (disabled at
    the centre, nobody signed in, or the centre cannot be reached: then the last known state
    kept here is shown)."""
    with reported():
        remote = centre_client()
        config = remote.identity.config()
        console.print(f"desk {config['desk']} (office {escape(config['office'])})")
        console.print(f"centre {config['centre']}, key {config['key_thumbprint']}")
        try:
            state = remote.desk_state()
        except CentreUnreachable as exc:
            cause = exc.__cause__
            why = str(exc) if cause is None else f"{type(cause).__name__}: {cause}"
            console.print(
                f"cannot reach the centre ({escape(why)}): last known state: "
                f"{_last_known(remote.identity)}"
            )
            raise typer.Exit(26) from None
        except DeskRefused as exc:  # the centre's answer: disabled, or the key is not its
            console.print(f"refused by the centre: {escape(str(exc))}")
            raise typer.Exit(26) from None
        if state["operator"] is None:
            said = "" if state["session"] == "none" else f" ({state['session']})"
            console.print(f"nobody signed in{escape(said)}: `idsvc desk login --operator NAME`")
            raise typer.Exit(26)
        session = remote.identity.session(now=now())
        console.print(
            f"signed in: {state['operator']} ({state['role']}) until "
            f"{session.expires_at:%H:%M}Z, confirmed by the centre"
        )


def _last_known(identity: DeskIdentity) -> str:
    try:
        session = identity.session(now=now())
    except DeskRefused:
        return "nobody signed in here"
    return f"{session.operator} signed in here until {session.expires_at:%H:%M}Z"


def _notice(text: str) -> None:
    err_console.print(escape(text))


def issue_through_centre(
    employee_id: str,
    *,
    reader: str | None,
    default_management_key: bool,
    new_pin: str | None,
    new_puk: str | None,
    json_out: bool,
    printed_qr: bool = False,
) -> None:
    """The card protocol of ``idsvc.desk_client.cards`` with the remote centre as
    ``IssuanceCentre``."""
    with reported():
        if reader is None:
            raise DeskRefused(
                "on a desk a credential is issued onto a card: `idsvc issue EMPLOYEE --reader "
                "READER` (the centre signs it); one without a card is issued at the centre"
            )
        if printed_qr:
            raise DeskRefused(
                "--qr and --qr-photo do not go with --reader: the desk prints the card's face "
                "with `idsvc card-face EMPLOYEE -o FILE`"
            )
        from idsvc.cli.card_commands import card_secrets, open_reader
        from idsvc.desk_client.cards import personalise_card
        from idsvc.desk_client.identity import desk_check_time

        settings = command_settings()
        remote = centre_client()
        secrets = card_secrets(
            settings,
            default_management_key=default_management_key,
            new_pin=new_pin,
            new_puk=new_puk,
        )
        session = remote.identity.session(now=now())
        actor = f"{session.operator}@{remote.identity.config()['desk']}"
        with open_reader(reader) as transport:
            issued = personalise_card(
                transport,
                remote,
                employee_id=employee_id,
                card_secrets=secrets,
                ca_certificate=remote.identity.ca_certificate(),
                verify_url_base=settings.resolved_verify_url,
                actor=actor,
                now=desk_check_time(now()),
            )
        if json_out:
            print_json(issued.__dict__)
        else:
            console.print(
                f"card [bold]{issued.card_serial}[/] issued through the centre: credential "
                f"{issued.credential_id}, card {issued.card_uuid}"
            )


@desk_app.command("issue")
def desk_issue(
    employee_id: EmployeeArg,
    reader: Annotated[str, typer.Option(help="personalise the card in this PC/SC reader")],
    default_management_key: DefaultKeyOpt = False,
    new_pin: NewPinOpt = None,
    new_puk: NewPukOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue a card through the centre: the centre signs, this desk writes and confirms.

    `idsvc issue EMPLOYEE_ID --reader R` does the same on an enrolled desk."""
    issue_through_centre(
        employee_id,
        reader=reader,
        default_management_key=default_management_key,
        new_pin=new_pin,
        new_puk=new_puk,
        json_out=json_out,
    )


@desk_app.command("retry")
def desk_retry() -> None:
    """After a dropped link: finish the last issuance, or say to start it again (safe)."""
    with reported():
        remote = centre_client()
        pending = remote.identity.pending()
        if pending is None:
            console.print("nothing to resume: the last issuance finished or never began")
            return
        if pending["stage"] != "confirming":
            remote.abandon_issuance(
                pending["credential_id"], reason="link dropped", actor="", now=now()
            )
            console.print(
                "the card was not finished when the link dropped; nothing went live. "
                f"Run `idsvc desk issue {pending['employee_id']} --reader ...` again."
            )
            return
        try:
            remote.confirm_issuance(pending["credential_id"], actor="", now=now())
        except IssuanceNotPending as exc:
            remote.identity.clear_pending()
            raise IssuanceNotPending(f"{exc}; issue the card again") from exc
        console.print(f"credential {pending['credential_id']} is live: the card is done")


# -- sensitive actions from the desk (the centre applies maker-checker) -----------------------
def _report_action(answer: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(answer)
        return
    if answer["state"] == "pending_approval":
        approval = answer["approval"]
        console.print(
            f"waiting for approval {approval['approval_id']} (a supervisor, not you, before "
            f"{approval['expires_at'][:16]}Z)"
        )
    elif answer.get("credential") is not None:
        credential = answer["credential"]
        console.print(f"credential {credential['credential_id']} is {credential['state']}")
    else:
        console.print(escape(str(answer.get("outcome") or "done")))


@desk_app.command("revoke")
def desk_revoke(credential_id: CredentialArg, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """Revoke a credential (issuer or supervisor); may wait for a second person's approval."""
    with reported():
        _report_action(centre_client().revoke(credential_id, reason=reason), json_out)


@desk_app.command("declare-lost")
def desk_declare_lost(
    employee_id: EmployeeArg, reason: ReasonOpt, json_out: JsonOpt = False
) -> None:
    """Re-issue after loss: revoke the person's live card as lost so a new one can be issued."""
    with reported():
        _report_action(centre_client().declare_lost(employee_id, reason=reason), json_out)


@desk_app.command("wallet-offer")
def desk_wallet_offer(
    employee_id: EmployeeArg,
    json_out: JsonOpt = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="also write the offer's QR as a PNG file"),
    ] = None,
) -> None:
    """Activate the person's phone credential (issuer): a single-use offer QR and the code to
    read out, as `idsvc wallet offer` at the centre."""
    from idsvc.cli.wallet_commands import show_offer

    with reported():
        show_offer(centre_client().wallet_offer(employee_id), json_out=json_out, png=output)


@desk_app.command("correct-status")
def desk_correct_status(
    employee_id: EmployeeArg,
    status: Annotated[str, typer.Option("--status", help="active, suspended, retired, ...")],
    reason: ReasonOpt,
    status_date: Annotated[
        datetime | None,
        typer.Option("--status-date", "--date", formats=["%Y-%m-%d"], help="effective date"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """An HR status correction (registrar); may wait for a second person's approval."""
    with reported():
        answer = centre_client().correct_status(
            employee_id,
            status=status,
            reason=reason,
            status_date=None if status_date is None else status_date.date(),
        )
        _report_action(answer, json_out)


approvals_app = typer.Typer(help="Pending approvals, decided from this desk.", no_args_is_help=True)
desk_app.add_typer(approvals_app, name="approvals")


@approvals_app.command("list")
def desk_approvals_list(
    state: Annotated[
        str, typer.Option(help="pending (the only state a desk lists; others: at the centre)")
    ] = "pending",
    json_out: JsonOpt = False,
) -> None:
    """Pending approvals (supervisor or admin)."""
    with reported():
        if state != "pending":
            raise DeskRefused(
                f"a desk lists pending approvals only; {state!r} ones are listed at the centre"
            )
        listed = centre_client().approvals()
        if json_out:
            print_json(listed)
            return
        table = Table("id", "action", "target", "asked by", "desk", "until")
        for a in listed:
            table.add_row(
                a["approval_id"],
                a["action"],
                escape(a["target"]),
                a["requested_by"],
                a["requested_desk"] or "",
                a["expires_at"][:16],
            )
        console.print(table)


@approvals_app.command("approve")
def desk_approvals_approve(approval_id: str, json_out: JsonOpt = False) -> None:
    """Approve (not your own request): the action is done now."""
    with reported():
        done = centre_client().approve(approval_id)
        if json_out:
            print_json(done)
            return
        console.print(f"approved: {escape(str(done.get('outcome') or ''))}")
        if done.get("otpauth_uri"):
            print(done["otpauth_uri"])  # shown once: the new operator's second factor


@approvals_app.command("reject")
def desk_approvals_reject(approval_id: str, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """Reject (not your own request)."""
    with reported():
        done = centre_client().reject(approval_id, reason=reason)
        if json_out:
            print_json(done)
            return
        console.print(f"rejected {done['approval_id']}")
