"""``idsvc corrections list|decide``: the registrars' queue of the holders' correction requests.

A holder reports an error in their record from their own page on the phone ("report an error":
``POST /v1/holder/corrections``). The request changes nothing by itself. A registrar reads the
queue, corrects the record where it is kept (HR: the next export or sync brings the change)
and closes the request with an answer the holder reads on their next visit. Deciding is
audited (``correction.decide``) and happens once. Exit code 28 for an unknown request, one
decided already or an answer empty or too long (docs/wallet.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from idsvc.cli.app import app
from idsvc.cli.common import JsonOpt, actor, console, now, print_json, services
from idsvc.cli.errors import reported

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from idsvc.wallet.corrections import CorrectionView

corrections_app = typer.Typer(
    help="Holders' reports of errors in their record: the registrars' queue.",
    no_args_is_help=True,
)
app.add_typer(corrections_app, name="corrections")

_SHOWN_TEXT = 60  # characters of a request's text in the table; --json gives it whole


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_TEXT else flat[: _SHOWN_TEXT - 1] + "…"


@corrections_app.command("list")
def corrections_list(
    status: Annotated[
        str,
        typer.Option(
            "--status", help="open, accepted, rejected, or all", show_default=True, metavar="STATUS"
        ),
    ] = "open",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="at most N")] = 500,
    json_out: JsonOpt = False,
) -> None:
    """List correction requests, oldest first (by default the open ones: the queue)."""
    with reported():
        wallet = services().wallet
        views = wallet.correction_queue(status=None if status == "all" else status, limit=limit)
        if json_out:
            print_json([v.as_dict() for v in views])
            return
        table = Table("request", "employee", "field", "text", "status", "asked", "answer")
        for v in views:
            table.add_row(
                v.id,
                escape(v.employee_id),
                v.field,
                escape(_short(v.text)),
                v.status,
                f"{v.created_at:%Y-%m-%d %H:%M}Z",
                escape(_short(v.answer or "")),
            )
        console.print(table)
        console.print(f"{len(views)} request(s)")


@corrections_app.command("decide")
def corrections_decide(
    request_id: Annotated[str, typer.Argument(help="the request: first column of `list`")],
    answer: Annotated[
        str,
        typer.Option(
            "--answer", help="what was done or why not, for the holder (1 to 1000 characters)"
        ),
    ],
    accept: Annotated[
        bool | None,
        typer.Option(
            "--accept/--reject",
            help="accept (the record is being corrected through HR) or reject",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Accept or reject a correction request, with the answer the holder reads.

    Accepting records the decision only: correct the record through HR, and say in the answer
    what was done. A request is decided once (audited: correction.decide)."""
    if accept is None:
        raise typer.BadParameter("say --accept or --reject", param_hint="--accept/--reject")
    with reported():
        svc = services()
        view: CorrectionView = svc.wallet.decide_correction(
            request_id, accept=accept, answer=answer, actor=actor(svc.settings), now=now()
        )
        if json_out:
            print_json(view.as_dict())
            return
        console.print(f"correction request {view.id} {view.status} ({escape(view.field)})")
