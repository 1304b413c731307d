"""Operating a deployment: schema upgrades, backup and restore, static publication, sweeping.

Each module does one job and takes ``now`` and settings as parameters; ``use_cases`` binds
them to an ``IdService`` for the CLI (``idsvc/cli/ops_commands.py``).

Errors come from ``idsvc.errors`` (``OperationRefused`` and its subclasses, exit 23) and from
``idsvc.storage.db``.
"""
