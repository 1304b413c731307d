"""The ``idsvc`` command line: each command reads settings and the clock, calls one use case,
prints.

Exit codes: the one table is in idsvc/cli/errors.py; `idsvc --help` lists them (the root
group's epilog in idsvc/cli/app.py), README.md explains each.
"""

# The console script (`idsvc = "idsvc.cli.main:app"`). The root group lives in
# idsvc/cli/app.py, which imports a command module only when a command line uses one of its
# commands (its ROOT_COMMANDS table, in the order `idsvc --help` lists them). The modules import
# only light modules at the top: the heavy libraries load inside the commands that use them
# (tests/idsvc/cli/test_imports.py).

from idsvc.cli.app import app

__all__ = ["app"]
