"""The ``idsvc`` command line: each command reads settings and the clock, calls one use case,
prints.

Exit codes: the one table is in idsvc/cli/errors.py; `idsvc --help` lists them (the root
group's epilog in idsvc/cli/app.py), README.md explains each.
"""

# The console script (`idsvc = "idsvc.cli.main:app"`). The root group lives in
# idsvc/cli/app.py; each module below registers its commands on it when imported, and
# `idsvc --help` lists them in this order. They import only light modules at the top: the heavy
# libraries load inside the commands that use them (tests/idsvc/cli/test_imports.py).

# isort: off
from idsvc.cli import core_commands  # init, import-hr, issue, verify, revoke, ..., serve
from idsvc.cli import card_commands  # readers, card, virtual-card
from idsvc.cli import ops_commands  # db, backup, restore, sweep, publish
from idsvc.cli import operator_commands  # operators, approvals, declare-lost, correct-status
from idsvc.cli import print_commands  # photo, card-face
from idsvc.cli import webhook_commands  # webhooks
from idsvc.cli import client_commands  # clients, audit who-checked|purge-checks
from idsvc.cli import desk_commands  # desks at the centre, desk on a desk
from idsvc.cli import report_commands  # report controls
from idsvc.cli import wallet_commands  # wallet offer
from idsvc.cli import correction_commands  # corrections (the holders' reports of errors)

# isort: on
from idsvc.cli.app import app

COMMAND_MODULES = (
    core_commands,
    card_commands,
    ops_commands,
    operator_commands,
    print_commands,
    webhook_commands,
    client_commands,
    desk_commands,
    report_commands,
    wallet_commands,
    correction_commands,
)

__all__ = ["COMMAND_MODULES", "app"]
