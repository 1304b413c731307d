"""The actions maker-checker knows, and who may ask for each: the vocabulary of
``IDSVC_APPROVAL_REQUIRED``.

A module of its own, importing nothing, because the settings check that vocabulary every time
they are read (``idsvc.config``), on a desk and in ``idsvc verify`` too: importing
``idsvc.staff.approvals`` for it loaded SQLAlchemy and Alembic, half a second, everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# action -> roles that may ask for it
ACTIONS: Final[Mapping[str, frozenset[str]]] = {
    "reissue_after_loss": frozenset({"issuer"}),
    "revoke": frozenset({"issuer", "supervisor"}),
    "hr_correction": frozenset({"registrar"}),
    "key_rotation": frozenset({"admin"}),
    "operator_change": frozenset({"admin"}),
}
