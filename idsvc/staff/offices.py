"""Offices: which people an operator may act for.

People belong to the office HR records for them (the ``office`` column of an HR export or
record); operators and desks to the office they were created with. An operator acts only for
the people of their own office: issuing, printing and photos at a desk, revocation, re-issue
after loss, HR corrections, and *deciding* (approving, rejecting, even listing) the approvals
that ask for those. An operator of office ``*`` (``NATIONAL_OFFICE``) has national scope: they
act for the people of every office, and they alone act for people whose office HR has not
recorded. The centre console acting as its configured operator (no ``--operator``) is
national too: it is the centre itself.

The same rule covers the centre's own business: an admin changes only operators of their own
office, and only a national admin adds or changes a national operator (an office admin must
not be able to hand themselves the country); key rotation is national (the issuer key signs
for every office). ``*`` is valid for operators only: a desk stands in one office, HR files a
person under a real office, and so a national operator works at the centre console.

A refusal is ``NotPermitted`` naming the rule and the operator's own office, never the other
office. It is the same for a person of another office, one with no office recorded and an id
that is nobody's (an id must not tell whether, or where, a person exists). Each refusal is
audited (``office.refused``: who, from which desk, what, on whom). Credential ids are random:
one that is unknown goes on to the action's own "unknown credential" answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.errors import NotPermitted
from idsvc.staff.operators import NATIONAL_OFFICE, Actor
from idsvc.storage.desk_tables import ApprovalRow, OperatorRow
from idsvc.storage.tables import CivilServantRow, CredentialRow

# What an operator does to a person, by what the action's target names.
ON_EMPLOYEE = frozenset({"issue", "print", "photo", "reissue_after_loss", "hr_correction"})
ON_CREDENTIAL = frozenset({"revoke"})
ON_OPERATOR = frozenset({"operator_change"})
NATIONAL_ONLY = frozenset({"key_rotation"})


def _person_office(session: Session, action: str, target: str) -> tuple[bool, str | None]:
    """(found, office) of the person ``target`` names for ``action``."""
    if action in ON_CREDENTIAL:
        found = session.execute(
            select(CivilServantRow.office)
            .join(CredentialRow, CredentialRow.employee_id == CivilServantRow.employee_id)
            .where(CredentialRow.id == target)
        ).first()
    else:
        found = session.execute(
            select(CivilServantRow.office).where(CivilServantRow.employee_id == target)
        ).first()
    return (found is not None, found[0] if found is not None else None)


def in_scope(
    session: Session, actor: Actor, action: str, target: str, params: Mapping[str, Any]
) -> bool:
    """Whether ``actor``'s office lets them do ``action`` on ``target`` (no audit)."""
    if actor.national:
        return True
    if action in NATIONAL_ONLY:
        return False
    if action in ON_OPERATOR:
        if params.get("op") == "add":
            return params.get("office") == actor.office
        office = session.execute(
            select(OperatorRow.office).where(OperatorRow.name == target)
        ).scalar_one_or_none()
        return office is None or office == actor.office  # unknown: the change says so itself
    if action in ON_EMPLOYEE or action in ON_CREDENTIAL:
        found, office = _person_office(session, action, target)
        if not found and action in ON_CREDENTIAL:
            return True
        return office is not None and office == actor.office
    raise NotPermitted(f"unknown action {action!r}")


def _rule(actor: Actor, action: str, target: str) -> str:
    who = f"operator {actor.name} (office {actor.office})"
    if action in NATIONAL_ONLY:
        return f"{who} may not {_words(action)}: it is national, for an operator of office '*'"
    if action in ON_OPERATOR:
        return (
            f"{who} may change only operators of office {actor.office}: operators of other "
            "offices, and national ones, are changed by a national admin (office '*')"
        )
    what = "credential" if action in ON_CREDENTIAL else "person"
    return (
        f"{who} may {_words(action)} only for people of office {actor.office}, and "
        f"{what} {target} is not of that office: a person of another office, or with no "
        "office recorded, is for that office's operators or a national one (office '*')"
    )


def _words(action: str) -> str:
    return {"print": "print cards", "photo": "store photos", "issue": "issue cards"}.get(
        action, action.replace("_", " ")
    )


def refusal(
    session: Session,
    actor: Actor,
    action: str,
    target: str,
    params: Mapping[str, Any],
    *,
    now: datetime,
) -> NotPermitted | None:
    """The refusal when ``actor`` may not do ``action`` on ``target``, audited in ``session``
    (the caller commits, then raises it), or None."""
    if in_scope(session, actor, action, target, params):
        return None
    audit.record(
        session,
        at=now,
        actor=actor.audit_name,
        action="office.refused",
        target_type="operator" if action in ON_OPERATOR else "employee",
        target_id=target[:128],
        details={"action": action, "operator_office": actor.office, "desk": actor.desk},
    )
    return NotPermitted(_rule(actor, action, target))


def approval_refusal(
    session: Session, actor: Actor, approval_id: str, *, now: datetime
) -> NotPermitted | None:
    """``refusal`` for deciding an approval: the approver must be of the office its action
    would act in. An unknown id goes on to the approval's own answer."""
    row = session.get(ApprovalRow, approval_id)
    if row is None:
        return None
    return refusal(session, actor, row.action, row.target, row.params, now=now)


__all__ = ["NATIONAL_OFFICE", "approval_refusal", "in_scope", "refusal"]
