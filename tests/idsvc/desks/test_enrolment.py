"""Enrolling a desk never bricks it (real HTTP on loopback, SQLite and PostgreSQL).

An enrolled desk refuses a second enrolment before touching anything; a deliberate one
(``re_enrol``) keeps the old files until the centre has accepted the new key; an enrolment that
fails or is killed between the centre's answer and the renames leaves the files as they were
(or, killed after ``desk.json`` went in, is finished at the next start), byte for byte.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from idsvc.desk_client import identity as desk_identity
from idsvc.desk_client.identity import DeskIdentity
from idsvc.errors import DeskRefused, EnrolmentRefused
from tests.support.desk_world import World


def snapshot(home: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``home``: its SHA-256 and mode."""
    return {
        p.relative_to(home).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mode & 0o777,
        )
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def fresh_code(world: World) -> str:
    return world.desks.new_enrolment_code("vte-01", by=None, now=world.clock())


def test_a_second_enrol_is_refused_before_anything_changes(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "somphone")
    before = snapshot(world.desk_home)
    assert set(before) == {"desk/desk-key.pem", "desk/desk.json", "desk/issuer-ca.pem",
                           "desk/session.json"}  # fmt: skip

    with pytest.raises(DeskRefused, match="already desk vte-01") as refused:
        world.remote().enrol(world.code)
    assert "idsvc desks new-code vte-01" in str(refused.value)
    assert "--re-enrol" in str(refused.value)
    assert snapshot(world.desk_home) == before
    remote.check_eligible("LA-MOHA-000101")  # the desk still works, with its session

    # On purpose, but with the used code: the centre refuses, and still nothing changed.
    with pytest.raises(EnrolmentRefused):
        world.remote().enrol(world.code, re_enrol=True)
    assert snapshot(world.desk_home) == before
    remote.check_eligible("LA-MOHA-000101")

    # On purpose with a fresh code: a new key, 0600, that the centre accepts.
    again = world.remote()
    answer = again.enrol(fresh_code(world), re_enrol=True)
    after = snapshot(world.desk_home)
    assert set(after) == {"desk/desk-key.pem", "desk/desk.json", "desk/issuer-ca.pem"}
    assert after["desk/desk-key.pem"][0] != before["desk/desk-key.pem"][0]
    assert after["desk/desk-key.pem"][1] == 0o600 and after["desk/desk.json"][1] == 0o600
    assert DeskIdentity(world.desk_home).signer().kid == answer["key_thumbprint"]
    world.login(again, "somphone")
    again.check_eligible("LA-MOHA-000101")


def test_a_failure_after_the_centres_answer_changes_no_file(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    before = snapshot(world.desk_home)

    def disk_full(folder: Path) -> None:
        raise OSError(28, "No space left on device")

    # Called once every staged file is written, just before the renames.
    monkeypatch.setattr(desk_identity, "_sync_folder", disk_full)
    with pytest.raises(DeskRefused, match="files are as they were") as failed:
        world.remote().enrol(fresh_code(world), re_enrol=True)
    assert "new code" in str(failed.value)
    assert snapshot(world.desk_home) == before  # no staged file left either
    monkeypatch.undo()

    first = world.desk_home.parent / "first"  # a first enrolment that fails leaves nothing
    monkeypatch.setattr(desk_identity, "_sync_folder", disk_full)
    with pytest.raises(DeskRefused):
        world.remote(home=first).enrol(fresh_code(world))
    monkeypatch.undo()
    assert snapshot(first) == {}


KILLED_ENROL = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime
    from pathlib import Path

    from idsvc.desk_client.identity import DeskIdentity
    from idsvc.desk_client.centre_client import CentreClient

    url, code, home, now, kill_at = sys.argv[1:]
    renames = 0
    real_replace = os.replace

    def replace(src, dst):
        global renames
        renames += 1
        if renames == int(kill_at):
            os._exit(9)  # killed: no cleanup, no finally
        real_replace(src, dst)

    os.replace = replace
    at = datetime.fromisoformat(now)
    CentreClient(DeskIdentity(Path(home)), clock=lambda: at, centre_url=url).enrol(
        code, re_enrol=True
    )
    """
)


def killed_enrol(world: World, code: str, kill_at: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_ENROL, world.url, code, str(world.desk_home),
         world.clock().isoformat(), str(kill_at)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 9, done.stderr


def test_an_enrol_killed_before_or_after_the_commit_point(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    before = snapshot(world.desk_home)
    folder = world.desk_home / "desk"

    # Killed at the first rename (desk.json): the staged files are left over...
    killed_enrol(world, fresh_code(world), kill_at=1)
    assert {p.name for p in folder.glob("*.new")} == {
        "desk-key.pem.new", "issuer-ca.pem.new", "desk.json.new"
    }  # fmt: skip
    # ...and the next start removes them: the desk's files are exactly the old ones.
    DeskIdentity(world.desk_home)
    assert snapshot(world.desk_home) == before

    # Killed after desk.json went in (the commit point): the next start finishes the renames
    # and the desk works with the key the centre accepted.
    killed_enrol(world, fresh_code(world), kill_at=2)
    assert (folder / "desk-key.pem.new").exists()
    identity = DeskIdentity(world.desk_home)
    assert not list(folder.glob("*.new"))
    assert identity.signer().kid == identity.config()["key_thumbprint"]
    assert snapshot(world.desk_home)["desk/desk-key.pem"][1] == 0o600
    settled = world.remote()
    world.login(settled, "somphone")
    settled.check_eligible("LA-MOHA-000101")
