"""The composition root: one performer per sensitive action, one path per action whoever asks,
and features built only when used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from idsvc.errors import NotPermitted
from idsvc.services import PERFORMERS, Services
from idsvc.staff import approval_actions
from idsvc.staff.maker_checker import Pending
from idsvc.storage.tables import AuditEventRow
from tests.support.operator_people import EMPLOYEE, People, make_centre
from tests.support.settings import NOW


def test_every_action_that_can_be_held_has_exactly_one_performer() -> None:
    assert set(PERFORMERS) == set(approval_actions.ACTIONS)


def test_features_are_built_on_first_use(tmp_path: Path, sqlite_url: str) -> None:
    services = make_centre(tmp_path / "home", sqlite_url, fresh=False)
    assert "desks" not in vars(services) and "operations" not in vars(services)
    assert services.desks is services.desks  # built once
    services.infra.db.dispose()


@pytest.fixture
def held(tmp_path: Path, db_url: str) -> Iterator[tuple[Services, People]]:
    """A centre where revocation and key rotation wait for a second person."""
    open_centre = make_centre(tmp_path / "home", db_url)
    people = People(open_centre)
    people.add("somphone", "issuer")
    people.add("root", "admin", "*")
    centre = make_centre(
        tmp_path / "home", db_url, fresh=False, approval_required="revoke,key_rotation"
    )
    people.centre = centre
    yield centre, people
    open_centre.infra.db.dispose()
    centre.infra.db.dispose()


def _actions(centre: Services) -> list[tuple[str, str]]:
    with centre.infra.db.transaction() as session:
        rows = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)).scalars()
        return [(r.action, r.actor) for r in rows]


def test_the_console_cannot_bypass_a_held_action(held: tuple[Services, People]) -> None:
    centre, people = held
    view = centre.credentials.issue(EMPLOYEE, actor="desk", now=NOW)
    with pytest.raises(NotPermitted, match="second person"):
        centre.credentials.revoke(view.id, reason="lost", by=None, now=NOW)
    with pytest.raises(NotPermitted, match="second person"):
        centre.credentials.rotate_key(by=None, now=NOW)
    assert centre.credentials.credential(view.id).state == "live"
    asked = centre.credentials.revoke(view.id, reason="lost", by=people.actor("somphone"), now=NOW)
    assert isinstance(asked, Pending)


def test_a_direct_and_an_approved_rotation_audit_the_same(
    held: tuple[Services, People], tmp_path: Path, db_url: str
) -> None:
    centre, people = held
    asked = centre.credentials.rotate_key(by=people.actor("root"), now=NOW)
    assert isinstance(asked, Pending)
    people.add("chief", "supervisor", "*")
    approved, _ = centre.staff.approve(asked.approval.id, by=people.actor("chief"), now=NOW)
    assert approved.state == "done"
    direct = make_centre(tmp_path / "home", db_url, fresh=False)
    old, new = direct.credentials.rotate_key(by=None, now=NOW)  # type: ignore[misc]
    rotations = [a for a in _actions(centre) if a[0] == "key.rotate"]
    assert len(rotations) == 2
    with centre.infra.db.transaction() as session:
        details = [
            r.details
            for r in session.execute(
                select(AuditEventRow).where(AuditEventRow.action == "key.rotate")
            ).scalars()
        ]
    # The same performer both times: the same audit details, the key's alg included.
    assert [sorted(d) for d in details] == [["alg", "new_kid", "old_kid"]] * 2
    assert details[1]["old_kid"] == old and details[1]["new_kid"] == new
    direct.infra.db.dispose()
