"""The root ``idsvc`` command group and the groups that several command modules fill.

Each command module imports ``app`` (or ``keys_app``, ``audit_app``) and registers its commands
when it is imported. The root group imports a module only when one of its entries is used
(``ROOT_COMMANDS``), and builds only the entries used (idsvc/cli/lazy_groups.py): ``idsvc
verify`` imports core_commands and builds one command; ``idsvc --help`` imports every module
and builds each group's help line, not the group's commands.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer import _click  # Typer's own Click, the type of the commands a group holds

from idsvc.cli.desk_routing import DeskRoutedGroup
from idsvc.cli.errors import reported
from idsvc.cli.lazy_groups import BuiltOnUse, build_entry, entries

# Every root command and group, in the order `idsvc --help` lists them (Typer's order:
# commands, then groups), with the modules of idsvc/cli that register it (`audit` is filled by
# two). tests/idsvc/cli/test_lazy_groups.py checks it against what the modules register.
ROOT_COMMANDS: dict[str, tuple[str, ...]] = {
    "init": ("core_commands",),
    "import-hr": ("core_commands",),
    "issue": ("core_commands",),
    "verify": ("core_commands",),
    "revoke": ("core_commands",),
    "suspend": ("core_commands",),
    "reinstate": ("core_commands",),
    "credentials": ("core_commands",),
    "serve": ("core_commands",),
    "readers": ("card_commands",),
    "backup": ("ops_commands",),
    "restore": ("ops_commands",),
    "sweep": ("ops_commands",),
    "publish": ("ops_commands",),
    "declare-lost": ("operator_commands",),
    "correct-status": ("operator_commands",),
    "photo": ("print_commands",),
    "card-face": ("print_commands",),
    "keys": ("core_commands",),
    "audit": ("core_commands", "client_commands"),
    "card": ("card_commands",),
    "virtual-card": ("card_commands",),
    "db": ("ops_commands",),
    "operators": ("operator_commands",),
    "approvals": ("operator_commands",),
    "webhooks": ("webhook_commands",),
    "clients": ("client_commands",),
    "desks": ("desk_commands",),
    "desk": ("desk_commands",),
    "report": ("report_commands",),
    "wallet": ("wallet_commands",),
    "corrections": ("correction_commands",),
}


def _root_entry(name: str) -> _click.Command:
    for module in ROOT_COMMANDS[name]:
        importlib.import_module(f"idsvc.cli.{module}")
    return build_entry(app, entries(app)[name])


class RootGroup(DeskRoutedGroup):
    """The root ``idsvc`` group: each entry is imported and built when first used."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Typer built what was registered when it built this group: in the `idsvc` process
        # only the empty `keys` and `audit` (no command module is imported yet). Where the
        # modules were imported before (tests), dropping its build costs time, never a command.
        self.commands = BuiltOnUse(list(ROOT_COMMANDS), _root_entry)


app = typer.Typer(
    cls=RootGroup,  # on an enrolled desk each command goes by the desk routing table
    help="Civil-servant ID service: register, credentials, cards, verification.",
    # The codes of idsvc/cli/errors.py's table, as README.md's exit-code table lists them
    # (tests/idsvc/cli/test_exit_codes.py holds the three together).
    epilog="Exit codes: 0 ok · 1 credential not valid · 2 usage error · 3 not initialised or "
    "configuration invalid · 4 unknown employee · 5 holder not eligible · 6 unknown credential · "
    "7 invalid state change · 8 some HR rows rejected · 9 HR file unreadable · 10 database "
    "unavailable · 11 card issuance failed · 12 wrong key passphrase · 13 key file problem · "
    "14 HSM problem · 15 card or reader problem · 16 audit chain broken · 17 card removed "
    "mid-operation · 18 printed QR refused · 19 HR status correction refused · 20 photo or card "
    "face refused · 21 API client refused · 22 payroll, change feed or webhook request refused "
    "· 23 operation refused · 24 operator refused · 25 approval refused · 26 desk refused · "
    "27 OpenCV cannot detect faces · 28 correction request refused · 70 internal error. "
    "README.md says more of each.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Issuer signing keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


@app.callback()
def _private_files() -> None:
    """Files idsvc creates (database, keys, card state) hold personal data or secrets."""
    os.umask(0o077)
    # Every setting is checked before any command runs, whatever the command uses: a bad
    # value is exit 3 naming the variable, not a crash in the middle of the work.
    if "--help" not in sys.argv[1:]:
        from idsvc.cli.common import command_settings

        with reported():
            command_settings()
