"""What each ``idsvc`` command does on an enrolled remote desk: one table, consulted in one place.

A desk has no database, no register and no issuer key (docs/desks.md). On a machine with
``$IDSVC_HOME/desk/desk.json``, the root command group (``DeskRoutedGroup``) looks the command
line up in ``DESK_ROUTES`` when it resolves it, before any option is parsed or any database is
opened. An entry (found by the longest matching command path) is one of:

- ``Through(("desk", "revoke"))``: the request goes to the centre as that desk command does,
  as the operator signed in at this desk. ``--operator``, ``--otp`` and ``--password-stdin``
  are refused there: at a desk the operator signs in once, with ``idsvc desk login``;
- ``RUNS_ON_DESK``: the command goes through the centre itself (``issue --reader``, ``card …``,
  ``card-face``, ``photo``, ``verify``, the ``desk`` commands);
- ``LOCAL``: the command needs neither the centre nor a database (readers, the virtual card);
- ``Centre(hint)``: a centre command; refused with a message naming the centre and, where a
  desk can do something close, which desk command does it (exit 26).

A command with no entry is refused as a centre command, so a new command can never open a
database on a desk by accident; tests/mobile_api/test_desk_serve_cli.py walks every command of
``idsvc --help`` and checks each has its own entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from typer import _click  # Typer's own Click, named in the signature overridden below
from typer.core import TyperGroup

from idsvc.cli.errors import reported
from idsvc.errors import DeskRefused, InvalidOperator

if TYPE_CHECKING:  # imported where used: the settings load pydantic, the desk cryptography
    from idsvc.desk_client.identity import DeskIdentity

Path = tuple[str, ...]


@dataclass(frozen=True)
class Through:
    """Run the desk command at ``path`` instead (same arguments)."""

    path: Path


@dataclass(frozen=True)
class Centre:
    """A centre command; ``hint`` says what a desk can do instead (may be empty)."""

    hint: str = ""


RUNS_ON_DESK: Final = "runs on a desk"
LOCAL: Final = "local"
Route = Through | Centre | str

_READ_CARD = "a desk reads a card's credential with `idsvc card read --reader READER`"

DESK_ROUTES: dict[Path, Route] = {
    # the desk's own commands, and those that go through the centre themselves
    ("desk",): RUNS_ON_DESK,
    ("issue",): RUNS_ON_DESK,
    ("verify",): RUNS_ON_DESK,
    ("card",): RUNS_ON_DESK,
    ("card-face",): RUNS_ON_DESK,
    ("photo",): RUNS_ON_DESK,
    ("readers",): LOCAL,
    ("virtual-card",): LOCAL,
    # the same request as the desk command, by the signed-in operator
    ("revoke",): Through(("desk", "revoke")),
    ("declare-lost",): Through(("desk", "declare-lost")),
    ("correct-status",): Through(("desk", "correct-status")),
    ("approvals", "list"): Through(("desk", "approvals", "list")),
    ("approvals", "approve"): Through(("desk", "approvals", "approve")),
    ("approvals", "reject"): Through(("desk", "approvals", "reject")),
    ("wallet", "offer"): Through(("desk", "wallet-offer")),
    # centre only
    ("init",): Centre(),
    ("import-hr",): Centre("HR exports are loaded into the register"),
    ("suspend",): Centre(
        "from a desk, a registrar corrects the HR status: `idsvc correct-status EMPLOYEE "
        "--status suspended --reason …`, or an issuer revokes: `idsvc revoke ID --reason …`"
    ),
    ("reinstate",): Centre(
        "from a desk, a registrar corrects the HR status: `idsvc correct-status EMPLOYEE "
        "--status active --reason …`"
    ),
    ("credentials",): Centre(_READ_CARD),
    ("serve",): Centre(),
    ("backup",): Centre(),
    ("restore",): Centre(),
    ("sweep",): Centre(),
    ("publish",): Centre(),
    ("keys",): Centre(),
    ("audit",): Centre(),
    ("db",): Centre(),
    ("operators",): Centre("an operator signs in at this desk with `idsvc desk login`"),
    ("webhooks",): Centre(),
    ("clients",): Centre(),
    ("report",): Centre(),
    ("desks",): Centre("this desk's own state: `idsvc desk status`"),
    ("corrections",): Centre(),
}

_OPERATOR_OPTIONS = ("--operator", "--otp", "--password-stdin")


def route_of(path: Path) -> Route:
    """The entry for a command path (longest prefix); no entry: a centre command."""
    for end in range(len(path), 0, -1):
        found = DESK_ROUTES.get(path[:end])
        if found is not None:
            return found
    return Centre()


def _enrolled_desk() -> DeskIdentity | None:
    from idsvc.cli.common import command_settings
    from idsvc.desk_client.folder import desk_config

    try:
        home = command_settings().home
    except Exception:  # a bad setting: the root callback reports it, naming the variable
        return None
    if not desk_config(home).exists():
        return None
    from idsvc.desk_client.identity import DeskIdentity

    return DeskIdentity(home)


def enrolled_desk() -> bool:
    """Whether this machine is an enrolled remote desk (then `idsvc issue --reader`, `verify`,
    ... go to the centre). Here rather than in desk_commands.py: `idsvc verify` asks it and
    need not import the desk commands (~60 M instructions)."""
    from idsvc.cli.common import command_settings
    from idsvc.desk_client.folder import desk_config

    with reported():
        return desk_config(command_settings().home).exists()
    raise AssertionError("reported() exits on any error")  # pragma: no cover


def _refusal(path: Path, identity: DeskIdentity, route: Centre) -> str:
    with reported():
        desk = identity.config()["desk"]
    said = (
        f"`idsvc {' '.join(path)}` is a centre command: this machine is desk {desk}, with no "
        "database or register; run it at the centre"
    )
    return f"{said} ({route.hint})" if route.hint else said


class DeskRoutedGroup(TyperGroup):
    """The root ``idsvc`` group: on an enrolled desk, every command goes by ``DESK_ROUTES``."""

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is None or name is None:
            return name, command, rest
        identity = _enrolled_desk()
        if identity is None:
            return name, command, rest
        path: Path = (name,)
        leaf: Any = command
        while isinstance(leaf, TyperGroup) and rest and leaf.get_command(ctx, rest[0]):
            path, leaf, rest = (*path, rest[0]), leaf.get_command(ctx, rest[0]), rest[1:]
        if isinstance(leaf, TyperGroup):
            return name, command, args[1:]  # a group alone: its help or usage error
        route = route_of(path)
        if isinstance(route, Centre):
            with reported():
                raise DeskRefused(_refusal(path, identity, route))
        if isinstance(route, Through):
            with reported():
                if any(a.split("=", 1)[0] in _OPERATOR_OPTIONS for a in rest):
                    raise InvalidOperator(
                        "on a desk the operator signed in with `idsvc desk login` acts: drop "
                        "--operator, --otp and --password-stdin"
                    )
            target: Any = self
            for part in route.path:
                target = target.get_command(ctx, part)
            return " ".join(path), target, rest
        return name, command, args[1:]
