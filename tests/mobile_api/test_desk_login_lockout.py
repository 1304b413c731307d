"""Desk logins over real HTTP on loopback (SQLite and PostgreSQL), issue 16: wrong names,
wrong passwords and locked accounts get one answer, and a desk that sends too many failures is
locked itself before any operator is, so the operator still signs in at another desk."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsvc.desk_client.centre_client import CentreClient
from idsvc.errors import DeskRefused, LoginRefused
from tests.support.desk_world import World


def _refused(remote: CentreClient, name: str) -> tuple[type, str]:
    with pytest.raises(LoginRefused) as info:
        remote.login(name, "wrong password!", "000000")
    return type(info.value), str(info.value)


def test_answers_alike_and_a_rogue_desk_locks_itself(world: World, tmp_path: Path) -> None:
    rogue = world.remote()
    rogue.enrol(world.code)
    _, second_code = world.desks.add_desk("vte-02", office="Vientiane", by=None, now=world.clock())
    honest = world.remote(home=tmp_path / "desk-2")
    honest.enrol(second_code)
    # The default limit is 5 for an operator, so 4 for a desk: any names count.
    answers = {_refused(rogue, name) for name in ["nobody", "somphone", "nobody", "somphone"]}
    assert answers == {
        (LoginRefused, "login refused: wrong operator name, password or one-time code")
    }
    with pytest.raises(DeskRefused, match="desk vte-01 is locked after too many failed logins"):
        world.login(rogue, "somphone")  # even the right factors: the desk is locked
    world.login(honest, "somphone")  # the operator is not: another desk signs them in
    # A locked account answers like a name that does not exist, status code and body alike.
    at = world.clock()
    for _ in range(5):
        with pytest.raises(LoginRefused):
            world.centre.staff.login("somphone", "wrong password!", "000000", now=at)
    # (The desk's client turns the problem's code into the exception's type: equal types and
    # messages mean equal status codes and bodies.)
    assert _refused(honest, "somphone") == _refused(honest, "nobody") == next(iter(answers))
