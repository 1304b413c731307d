"""Desk commands: ``readers``, ``issue --reader``, ``card read|verify|wipe``, ``virtual-card``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from idsvc import DEFAULT_ISSUER
from idsvc.cli.app import app
from idsvc.cli.common import (
    DefaultKeyOpt,
    JsonOpt,
    command_settings,
    console,
    err_console,
    now,
    print_json,
    print_verdict,
    services,
)
from idsvc.cli.errors import EXIT_INVALID, reported
from idsvc.errors import NotInitialised

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from cardio.pcsc import PcscTransport
    from idsvc.config import Settings
    from idsvc.desk_client.cards import CardSecrets
    from idsvc.services import Services

# The PIV test management key every blank card ships with (SP 800-73 test cards, YubiKey).
PIV_TEST_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

card_app = typer.Typer(help="Read, verify and wipe cards.", no_args_is_help=True)
virtual_app = typer.Typer(help="The virtual PIV card for training and tests.", no_args_is_help=True)
app.add_typer(card_app, name="card")
app.add_typer(virtual_app, name="virtual-card")

ReaderOpt = Annotated[str, typer.Option("--reader", help="reader name (or a unique part of it)")]


def card_secrets(
    settings: Settings,
    *,
    default_management_key: bool,
    new_pin: str | None = None,
    new_puk: str | None = None,
) -> CardSecrets:
    from cardio.piv import ManagementKeyType
    from idsvc.desk_client.cards import CardSecrets

    key_type = ManagementKeyType[settings.management_key_type.upper()]
    if default_management_key:
        key = PIV_TEST_MANAGEMENT_KEY
    elif settings.management_key is not None:
        try:
            key = bytes.fromhex(settings.management_key.get_secret_value())
        except ValueError as exc:
            raise NotInitialised("IDSVC_MANAGEMENT_KEY is not hex") from exc
    else:
        raise NotInitialised(
            "no card management key: set IDSVC_MANAGEMENT_KEY (hex), or pass "
            "--default-management-key for training cards that still have the PIV test key"
        )
    return CardSecrets(key, key_type, new_pin=new_pin, new_puk=new_puk)


def open_reader(reader: str) -> PcscTransport:
    """The card in this PC/SC reader (a context manager: the card is released at its end)."""
    from cardio.pcsc import PcscTransport  # pyscard only where a reader is used

    return PcscTransport.open(reader)


def issue_to_card(
    svc: Services,
    employee_id: str,
    *,
    reader: str,
    issuer: str,
    default_management_key: bool,
    new_pin: str | None,
    new_puk: str | None,
    json_out: bool,
) -> None:
    secrets = card_secrets(
        svc.settings,
        default_management_key=default_management_key,
        new_pin=new_pin,
        new_puk=new_puk,
    )
    ca = svc.credentials.ca_certificate(issuer)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        from idsvc.desk_client.cards import ISSUE_STEPS, personalise_card

        task = bar.add_task("connect", total=len(ISSUE_STEPS))

        def step(name: str) -> None:
            bar.update(task, description=name, completed=ISSUE_STEPS.index(name))

        with open_reader(reader) as transport:
            issued = personalise_card(
                transport,
                svc.credentials.for_card_issuer(issuer),
                employee_id=employee_id,
                card_secrets=secrets,
                ca_certificate=ca,
                verify_url_base=svc.settings.resolved_verify_url,
                actor=svc.settings.operator,
                now=now(),
                progress=step,
            )
        bar.update(task, completed=len(ISSUE_STEPS))
    if json_out:
        print_json(issued.__dict__)
    else:
        console.print(
            f"card [bold]{issued.card_serial}[/] issued: credential {issued.credential_id}, "
            f"card {issued.card_uuid} ({issued.commands_sent} commands)"
        )
        console.print(f"  tap-to-verify URL: {issued.verify_url}")
        from cardio.qr import version_for

        size = version_for(issued.qr_text)
        console.print(f"  printed QR: version {size.version} (ECC M), {size.payload_bytes} bytes")


@app.command("readers")
def readers(json_out: JsonOpt = False) -> None:
    """List PC/SC readers, whether a card is present, and whether it answers as PIV."""
    with reported():
        from cardio.errors import CardError
        from cardio.pcsc import PcscTransport, list_readers
        from cardio.piv import PivSession

        rows: list[dict[str, str | bool | None]] = []
        for info in list_readers():
            piv = None
            if info.card_present:
                try:
                    with PcscTransport.open(info.name) as t:
                        session = PivSession(t)
                        piv = "PIV" + (
                            f" (v{'.'.join(map(str, session.version))})" if session.version else ""
                        )
                except CardError as exc:
                    piv = f"not PIV ({type(exc).__name__})"
            rows.append(
                {
                    "reader": info.name,
                    "card": info.card_present,
                    "atr": info.atr,
                    "application": piv,
                }
            )
        if json_out:
            print_json(rows)
            return
        table = Table("reader", "card", "ATR", "application")
        for r in rows:
            table.add_row(
                str(r["reader"]),
                "yes" if r["card"] else "no",
                str(r["atr"] or ""),
                str(r["application"] or ""),
            )
        console.print(table)


def _report(report, json_out: bool, *, challenged: bool) -> None:  # type: ignore[no-untyped-def]
    out = report.result.as_dict() | {
        "certificate_subject": report.certificate_subject,
        "challenge_checked": report.challenge_checked,
        "card_uuid": report.card_uuid,
        "commands_sent": report.commands_sent,
    }
    if json_out:
        print_json(out)
    else:
        print_verdict(report.result)
        console.print(f"  card: {report.card_uuid or '-'}")
        console.print(f"  certificate: {escape(report.certificate_subject or '-')}")
        # `card read` does not challenge the card: say so, rather than "not passed" (a failure).
        if not challenged:
            challenge = "not run (`idsvc card verify` challenges the card)"
        else:
            challenge = "passed" if report.challenge_checked else "failed"
        console.print(f"  challenge: {challenge}")
        for key, value in (report.result.holder or {}).items():
            console.print(f"  {key}: {escape(value)}")
    if not report.result.valid:
        raise typer.Exit(EXIT_INVALID)


def _inspect(reader: str, *, challenge: bool, json_out: bool) -> None:
    from idsvc.cli.desk_routing import enrolled_desk

    if enrolled_desk():  # a remote desk: the centre checks the credential
        from idsvc.cli.desk_card_commands import inspect_through_centre

        with reported():
            report = inspect_through_centre(reader, challenge=challenge)
        _report(report, json_out, challenged=challenge)
        return
    with reported():
        from idsvc.desk_client.cards import inspect_card

        svc = services()
        cas = svc.credentials.ca_certificates()
        with open_reader(reader) as transport:
            report = inspect_card(
                transport,
                ca_certificates=cas,
                check_token=lambda token, key: svc.verification.verify(
                    token, now=now(), card_key=key
                ),
                now=now(),
                challenge=challenge,
            )
    _report(report, json_out, challenged=challenge)


@card_app.command("read")
def card_read(reader: ReaderOpt, json_out: JsonOpt = False) -> None:
    """Show what is on the card, verified (holder, credential status, certificate chain)."""
    _inspect(reader, challenge=False, json_out=json_out)


@card_app.command("verify")
def card_verify(reader: ReaderOpt, json_out: JsonOpt = False) -> None:
    """Anti-cloning check: the card signs a fresh challenge with its own key."""
    _inspect(reader, challenge=True, json_out=json_out)


OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="with no register and no centre to ask: wipe anyway, report it later (the "
        "credential stays live until then)",
    ),
]


@card_app.command("wipe")
def card_wipe(
    reader: ReaderOpt,
    default_management_key: DefaultKeyOpt = False,
    revoke_reason: Annotated[
        str | None, typer.Option(help="also revoke the credential on the card, with this reason")
    ] = None,
    offline: OfflineOpt = False,
) -> None:
    """Remove the credential, certificate and printed data from a card (the CHUID stays).

    At the centre the register records it; at an enrolled desk the centre allows and records
    it first. With neither, it is refused unless --offline (then reported at the next contact).
    """
    with reported():
        settings = command_settings()
        secrets = card_secrets(settings, default_management_key=default_management_key)
        from idsvc.cli.desk_routing import enrolled_desk

        svc = None if enrolled_desk() else _register()
        if svc is not None:
            removed = _wipe_at_centre(svc, reader, secrets, revoke_reason)
            console.print("wiped: " + ", ".join(removed))
            return
        from idsvc.cli.desk_card_commands import wipe_away_from_register

        done = wipe_away_from_register(
            lambda: open_reader(reader),
            secrets=secrets,
            revoke_reason=revoke_reason,
            offline=offline,
            home=settings.home,
        )
        if done.answer is not None and done.answer["state"] == "pending_approval":
            console.print(
                f"revocation waiting for approval {done.answer['approval']['approval_id']}"
            )
        elif done.answer is not None and done.answer.get("credential"):
            console.print(f"credential {done.answer['credential']['credential_id']} revoked")
        console.print("wiped: " + ", ".join(done.removed))
        if done.report is not None:
            credential = done.report["credential_id"] or "(none read from the card)"
            console.print(
                "offline: the wipe is kept here and reported at this machine's next request to "
                f"the centre; until a registrar revokes it, credential {credential} stays live"
            )


def _register() -> Services | None:
    """The register on this machine, or None when there is none (no database, or one that
    was never initialised): a wipe then needs the centre or --offline."""
    from idsvc.storage.errors import DatabaseMissing

    svc = services()
    try:
        svc.operations.health()
    except (DatabaseMissing, NotInitialised):
        return None
    return svc


def _wipe_at_centre(
    svc: Services, reader: str, secrets: CardSecrets, revoke_reason: str | None
) -> list[str]:
    """At the centre: revoke first if asked (the one revocation: refused here when it needs a
    second person's approval), and audit the wipe, once the card's management key has been
    accepted and before anything on the card is deleted."""
    from idsvc.desk_client.cards import CardOnHand, wipe_card
    from idsvc.desks.gateway import record_wipe

    def decide(card: CardOnHand) -> None:
        result = None if card.token is None else svc.verification.verify(card.token, now=now())
        credential_id = None if result is None else result.credential_id
        if revoke_reason and result and credential_id and "REVOKED" not in result.reasons:
            svc.credentials.revoke(credential_id, reason=revoke_reason, by=None, now=now())
            console.print(f"credential {credential_id} revoked")
        with svc.infra.db.transaction() as session:
            record_wipe(
                session,
                actor=svc.settings.operator,
                card_uuid=card.card_uuid,
                credential_id=credential_id,
                desk=None,
                now=now(),
            )

    with open_reader(reader) as transport:
        return wipe_card(transport, secrets, before=decide)


def _state_file(state: Path | None) -> Path:
    if state is not None:
        return state
    return command_settings().home / "virtual-card" / "card-0.json"


StateOpt = Annotated[Path | None, typer.Option("--state", help="card state file")]
VReaderOpt = Annotated[int, typer.Option("--reader", help="vpcd reader 0 or 1")]


def _virtual(command: str, reader: int, state: Path | None, *extra: str) -> None:
    from cardio.virtual.__main__ import main as virtual_main

    path = _state_file(state)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    code = virtual_main([command, "--reader", str(reader), "--state", str(path), *extra])
    if code:
        raise typer.Exit(code)


@virtual_app.command("start")
def virtual_start(reader: VReaderOpt = 0, state: StateOpt = None) -> None:
    """Insert the virtual card (starts pcscd if needed); its data survives stop/start."""
    _virtual("start", reader, state)


@virtual_app.command("stop")
def virtual_stop(reader: VReaderOpt = 0, state: StateOpt = None) -> None:
    """Pull the virtual card (and stop pcscd if `start` started it)."""
    _virtual("stop", reader, state)


@virtual_app.command("status")
def virtual_status(reader: VReaderOpt = 0, state: StateOpt = None) -> None:
    """Is the virtual card running and seen by pcscd?"""
    _virtual("status", reader, state)


__all__ = ["DEFAULT_ISSUER", "issue_to_card"]
