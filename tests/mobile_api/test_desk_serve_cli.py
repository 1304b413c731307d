"""The issue's proofs with two processes over real HTTP, on PostgreSQL: one centre
(`idsvc serve`, two workers) for the module, and the desk CLI with its own data folder.

A registrar stores a photo and asks for an HR correction (held: maker-checker), may not print
and may not approve their own request; a supervisor approves from the desk; an issuer issues a
card through the centre, checks it, prints its face (one and a batch), declares it lost; a
disabled desk is refused; and the desk's folder then holds no issuer key, no database and no
register.
(`test_desk_serve.py` does the same issuance on SQLite with the centre stopped mid-way; the
card commands with a reader are in `test_desk_card.py`.)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import typer
from typer import _click
from typer.core import TyperGroup

from cardio.piv import ManagementKeyType
from cardio.virtual import CardState, VirtualCard
from idsvc.cli import desk_routing
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
from idsvc.cli.desk_routing import DESK_ROUTES, LOCAL, Through, route_of
from idsvc.cli.main import app
from idsvc.desk_client.cards import CardSecrets, inspect_card, personalise_card
from idsvc.desk_client.centre_client import CentreClient
from idsvc.desk_client.identity import DeskIdentity, desk_check_time
from idsvc.errors import HolderNotEligible
from idsvc.services import Services
from tests.support.card_print import portrait_bytes, zbarimg_texts
from tests.support.cli_runner import IDSVC, Cli
from tests.support.operator_people import PASSWORD, People, code, make_centre
from tests.support.serve import free_port, wait_healthy
from tests.support.virtual_card import ReaderTransport

EMPLOYEE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"


@dataclass
class Site:
    admin: Services
    people: People
    desk: Cli
    desk_home: Path
    folder: Path
    approvals: dict[str, str]
    url: str

    def login(self, name: str) -> None:
        done = self.desk(
            "desk", "login", "--operator", name, "--password-stdin",
            "--otp", code(self.people.secrets[name], datetime.now(UTC)), input=PASSWORD + "\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("desk-serve")
    schema = f"t_{secrets.token_hex(6)}"
    engine = sqlalchemy.create_engine(postgres_server)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_server else "?"
    db_url = f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    home = folder / "centre"
    admin = make_centre(home, db_url)
    people = People(admin)
    for name, role in (("somphone", "issuer"), ("khamla", "supervisor"), ("vong", "registrar")):
        people.add(name, role, "Vientiane")
    _, enrol_code = admin.desks.add_desk(
        "vte-01", office="Vientiane", by=None, now=datetime.now(UTC)
    )
    centre = Cli(home, db_url)
    centre.env["IDSVC_APPROVAL_REQUIRED"] = "hr_correction"
    port = free_port()
    log_path = folder / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=centre.env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    desk_home = folder / "desk"
    desk = Cli(desk_home, "sqlite:///nowhere-the-desk-has-no-database")
    for name in ("IDSVC_KEY_PASSPHRASE", "IDSVC_DATABASE_URL"):
        desk.env.pop(name)
    try:
        wait_healthy(url + "/health", proc, timeout=60)
        enrolled = desk("desk", "enrol", "--centre", url, "--code", enrol_code)
        assert enrolled.returncode == 0, enrolled.stderr
        yield Site(admin, people, desk, desk_home, folder, {}, url)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        admin.infra.db.dispose()
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
    served = log_path.read_text()
    assert "Traceback" not in served, served


def test_a_second_enrol_from_the_cli_changes_nothing(site: Site) -> None:
    before = snapshot(site.desk_home)
    code = "AAAAA-BBBBB-CCCCC-DDDDD"
    again = site.desk("desk", "enrol", "--centre", site.url, "--code", code)
    assert again.returncode == 26, again.stderr
    assert "already desk vte-01" in again.stderr and "--re-enrol" in again.stderr
    assert snapshot(site.desk_home) == before
    used = site.desk("desk", "enrol", "--centre", site.url, "--code", code, "--re-enrol")
    assert used.returncode == 26 and "wrong, used or expired" in used.stderr
    assert snapshot(site.desk_home) == before
    status = site.desk("desk", "status")  # still enrolled, its key still accepted
    assert status.returncode == 26 and "nobody signed in" in status.stdout, status.stderr


def test_registrar_photo_and_correction_held(site: Site) -> None:
    site.login("vong")
    status = site.desk("desk", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "signed in: vong (registrar)" in status.stdout
    assert "confirmed by the centre" in status.stdout
    photo = site.folder / "portrait.jpg"
    photo.write_bytes(portrait_bytes())
    stored = site.desk("photo", EMPLOYEE, str(photo), "--json")
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["width"] == 420
    refused = site.desk("card-face", EMPLOYEE, "-o", str(site.folder / "no.png"))
    assert refused.returncode == 24 and "may not print" in refused.stderr  # role refused
    assert not (site.folder / "no.png").exists()
    asked = site.desk(
        "desk", "correct-status", OTHER, "--status", "suspended",
        "--reason", "HR typo in the last export", "--json",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["state"] == "pending_approval"
    site.approvals["correction"] = answer["approval"]["approval_id"]
    own = site.desk("desk", "approvals", "approve", site.approvals["correction"])
    assert own.returncode == 25 and "second person" in own.stderr
    site.admin.credentials.check_eligible(OTHER)  # still active: nothing happened yet


def test_supervisor_approves_from_the_desk(site: Site) -> None:
    site.login("khamla")
    listed = site.desk("desk", "approvals", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (pending,) = json.loads(listed.stdout)
    assert pending["approval_id"] == site.approvals["correction"]
    assert pending["requested_by"] == "vong" and pending["requested_desk"] == "vte-01"
    done = site.desk("desk", "approvals", "approve", site.approvals["correction"], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "done"
    with pytest.raises(HolderNotEligible, match="suspended"):
        site.admin.credentials.check_eligible(OTHER)


def snapshot(home: Path) -> dict[str, str]:
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def test_status_when_the_centre_cannot_be_reached(site: Site) -> None:
    away = site.folder / "away"
    shutil.copytree(site.desk_home, away)
    config = away / "desk" / "desk.json"
    moved = json.loads(config.read_text()) | {"centre": f"http://127.0.0.1:{free_port()}"}
    config.write_text(json.dumps(moved))
    status = site.desk("desk", "status", env={"IDSVC_HOME": str(away)})
    assert status.returncode == 26, status.stderr
    assert "cannot reach the centre (URLError" in status.stdout
    assert "last known state: khamla signed in here until" in status.stdout


def _leaves(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    ctx = _click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, TyperGroup):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_on_an_enrolled_desk(site: Site) -> None:
    """Each command of `idsvc --help`, recursively: it has its own routing entry, and on the
    desk it goes through the centre or says where it is done; none asks for `idsvc init` or
    --operator, and none makes a database."""
    database = site.desk_home / "idsvc.sqlite3"
    env = {"IDSVC_DATABASE_URL": f"sqlite:///{database}"}
    dummy = site.folder / "dummy.txt"
    dummy.write_text("not a photo, not a CSV\n")
    nobody = "00000000-0000-4000-8000-000000000000"
    values = {"file": str(dummy), "reader": "Virtual PCD 00 00", "centre_url": site.url,
              "out": str(site.folder / "out"), "approval_id": nobody}  # fmt: skip
    extra: dict[tuple[str, ...], list[str]] = {("verify",): ["X1"], ("card-face",): ["X1"]}
    leaves = list(_leaves(typer.main.get_command(app)))
    assert len(leaves) > 60

    def run(path: tuple[str, ...], args: list[str]) -> subprocess.CompletedProcess[str]:
        done = site.desk(*path, *args, env=env)
        said = done.stdout + done.stderr
        assert "run `idsvc init`" not in said and "needs --operator" not in said, (path, said)
        assert not database.exists(), path
        return done

    logout = site.desk("desk", "logout")  # first nobody signed in: no card is ever opened
    assert logout.returncode in (0, 26)
    for path, command in leaves:
        assert any(path[:n] in DESK_ROUTES for n in range(len(path), 0, -1)), path
        route = route_of(path)
        if route == LOCAL:
            continue  # readers and the virtual card: pcscd, shared on this machine
        args = list(extra.get(path, []))
        for param in command.params:
            if param.required:
                value = values.get(param.name, "X1")
                args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
        done = run(path, args)
        if isinstance(route, desk_routing.Centre):
            assert done.returncode == 26 and "is a centre command" in done.stderr, path
            assert "desk vte-01" in done.stderr
        else:
            assert done.returncode != 2, (path, done.stderr)  # its arguments were accepted
        if isinstance(route, Through):
            assert "no operator is signed in at this desk" in done.stderr, path

    # Signed in, the routed ones reach the centre as that operator (an issuer of their own,
    # so no other test's one-time code step is used up here).
    site.people.add("bounmy", "issuer", "Vientiane")
    site.login("bounmy")
    revoke = run(("revoke",), [nobody, "--reason", "test"])
    assert revoke.returncode == 6 and "centre: no such credential" in revoke.stderr
    for path, args in (
        (("approvals", "list"), []),
        (("approvals", "approve"), [nobody]),
        (("approvals", "reject"), [nobody, "--reason", "no"]),
        (("correct-status",), [OTHER, "--status", "suspended", "--reason",
                               "HR typo in the last export", "--status-date", "2026-01-01"]),
    ):  # fmt: skip
        done = run(path, args)
        assert done.returncode in (24, 25), (path, done.stderr)  # the centre's refusal
    lost = run(("declare-lost",), ["XX-NOBODY-1", "--reason", "lost at the market"])
    assert lost.returncode == 24 and "operator bounmy" in lost.stderr  # the centre's rule
    named = run(("revoke",), [nobody, "--reason", "x", "--operator", "khamla", "--otp", "1"])
    assert named.returncode == 24 and "desk login" in named.stderr


def test_issue_check_print_then_disabled_and_the_folder(site: Site) -> None:
    site.login("somphone")
    remote = CentreClient(DeskIdentity(site.desk_home), clock=lambda: datetime.now(UTC))
    card = VirtualCard(CardState.blank(serial=31))
    issued = personalise_card(
        ReaderTransport(card),
        remote,
        employee_id=EMPLOYEE,
        card_secrets=CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES),
        ca_certificate=remote.identity.ca_certificate(),
        verify_url_base="https://id.example/v",
        actor="somphone@vte-01",
        now=desk_check_time(datetime.now(UTC)),
    )
    view = site.admin.credentials.credential(issued.credential_id)
    assert view.state == "live"
    checked = inspect_card(
        ReaderTransport(card),
        ca_certificates=[remote.identity.ca_certificate()],
        check_token=remote.verify_card,
        now=desk_check_time(datetime.now(UTC)),
        challenge=True,
    )
    assert checked.result.valid and checked.challenge_checked

    face = site.folder / "face.png"
    printed = site.desk("card-face", EMPLOYEE, "-o", str(face))
    assert printed.returncode == 0, printed.stderr
    assert zbarimg_texts(face) == [view.qr_text]
    ids = site.folder / "ids.txt"
    ids.write_text(f"{EMPLOYEE}\n{OTHER}\n", encoding="utf-8")
    sheet = site.folder / "sheet.pdf"
    batch = site.desk("card-face", "--batch", str(ids), "-o", str(sheet))
    assert batch.returncode == 20, batch.stderr  # one printed, the suspended one skipped
    assert "1 card(s)" in batch.stdout and OTHER in batch.stderr
    assert sheet.read_bytes().startswith(b"%PDF")

    lost = site.desk("desk", "declare-lost", EMPLOYEE, "--reason", "lost at the market")
    assert lost.returncode == 0, lost.stderr
    assert "1 credential(s)" in lost.stdout and "revoked as lost" in lost.stdout
    assert site.admin.credentials.credential(issued.credential_id).state == "revoked"

    site.admin.desks.set_desk_enabled("vte-01", enabled=False, by=None, now=datetime.now(UTC))
    refused = site.desk("card-face", EMPLOYEE, "-o", str(site.folder / "again.png"))
    assert refused.returncode == 26 and "disabled" in refused.stderr
    status = site.desk("desk", "status")
    assert status.returncode == 26 and "disabled at the centre" in status.stdout
    assert "signed in:" not in status.stdout

    # The desk's folder: its own key, the public CA, its config and the session; nothing else.
    files = sorted(p.relative_to(site.desk_home).as_posix() for p in site.desk_home.rglob("*"))
    assert files == [
        "desk",
        "desk/desk-key.pem",
        "desk/desk.json",
        "desk/issuer-ca.pem",
        "desk/session.json",
    ]
    everything = b"".join(p.read_bytes() for p in site.desk_home.rglob("*") if p.is_file())
    assert everything.count(b"PRIVATE KEY-----") == 2  # BEGIN and END of the desk key only
    assert b"SQLite format" not in everything and EMPLOYEE.encode() not in everything
