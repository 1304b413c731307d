"""The root ``idsvc`` command group and the groups that several command modules fill.

Each command module imports ``app`` (or ``keys_app``, ``audit_app``) and registers its commands
when it is imported; idsvc/cli/main.py imports them all, in the order ``idsvc --help`` lists.
"""

from __future__ import annotations

import os
import sys

import typer

from idsvc.cli.desk_routing import DeskRoutedGroup
from idsvc.cli.errors import reported

app = typer.Typer(
    cls=DeskRoutedGroup,  # on an enrolled desk each command goes by the desk routing table
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
