"""Two processes over real HTTP: the centre (`idsvc serve`) and a desk with its own data folder
(the `idsvc desk` commands, then a card issuance onto the virtual card through the centre).
The centre is stopped mid-way: the desk says nothing went live, and a retry succeeds."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cardio.virtual import CardState, VirtualCard
from idsvc.desk_client.centre_client import CentreClient
from idsvc.desk_client.identity import DeskIdentity, desk_check_time
from idsvc.errors import CentreUnreachable, DeskRefused
from idsvc.services import Services
from idsvc.staff.operators import Enrolment
from tests.support.cli_runner import IDSVC, Cli
from tests.support.operator_people import PASSWORD, code, make_centre, secret_of
from tests.support.serve import free_port, wait_healthy
from tests.support.settings import NOW
from tests.support.virtual_card import ReaderTransport

EMPLOYEE = "LA-MOHA-000101"


@contextmanager
def serving(cli: Cli, port: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", proc, timeout=60)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            stderr = ""
        assert "Traceback" not in stderr, stderr


def test_centre_and_desk_in_two_processes(tmp_path: Path) -> None:
    home = tmp_path / "centre"
    db_url = f"sqlite:///{home / 'idsvc.sqlite3'}"
    # The centre's data is prepared through its use cases (the CLI's own tests cover the
    # commands); the centre then runs as `idsvc serve` over the same folder and database.
    admin = make_centre(home, db_url)
    added = admin.staff.add_operator(
        "somphone", role="issuer", office="Vientiane", password=PASSWORD, by=None, now=NOW
    )
    assert isinstance(added, Enrolment)
    secret = secret_of(added.otpauth_uri)
    desks = admin.desks
    _, enrol_code = desks.add_desk("vte-01", office="Vientiane", by=None, now=datetime.now(UTC))
    centre = Cli(home, db_url)

    desk_home = tmp_path / "desk"
    desk = Cli(desk_home, "sqlite:///nowhere-the-desk-has-no-database")
    for name in ("IDSVC_KEY_PASSPHRASE", "IDSVC_DATABASE_URL"):
        desk.env.pop(name)
    port = free_port()
    with serving(centre, port) as url:
        enrolled = desk("desk", "enrol", "--centre", url, "--code", enrol_code)
        assert enrolled.returncode == 0, enrolled.stderr
        assert "desk vte-01 of office Vientiane" in enrolled.stdout
        login = desk(
            "desk", "login", "--operator", "somphone", "--password-stdin",
            "--otp", code(secret, datetime.now(UTC)), input=PASSWORD + "\n",
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        remote = CentreClient(DeskIdentity(desk_home), clock=lambda: datetime.now(UTC))
        first = _issue(remote, VirtualCard(CardState.blank(serial=11)))
        assert _states(admin) == {first: "live"}
    # The centre is down: the desk says so in plain words, nothing went live.
    card = VirtualCard(CardState.blank(serial=12))
    with pytest.raises(CentreUnreachable, match="Nothing went live"):
        _issue(remote, card)
    assert card.commands == 0
    down = desk("desk", "retry")
    assert down.returncode == 0 and "nothing to resume" in down.stdout
    with serving(centre, port):
        second = _issue(remote, card)  # retry once the link is back
        assert _states(admin) == {first: "superseded", second: "live"}
        desks.set_desk_enabled("vte-01", enabled=False, by=None, now=datetime.now(UTC))
        refused = desk("desk", "retry")  # nothing pending; then a request is refused
        assert refused.returncode == 0
        with pytest.raises(DeskRefused, match="disabled"):
            remote.check_eligible(EMPLOYEE)
    admin.infra.db.dispose()
    # The desk's folder: its key, the public CA, its config and the session; no issuer key,
    # no database, no register.
    files = sorted(p.relative_to(desk_home).as_posix() for p in desk_home.rglob("*") if p.is_file())
    assert files == [
        "desk/desk-key.pem",
        "desk/desk.json",
        "desk/issuer-ca.pem",
        "desk/session.json",
    ]


def _states(centre: Services) -> dict[str, str]:
    return {v.id: v.state for v in centre.credentials.credentials_of(EMPLOYEE)}


def _issue(remote: CentreClient, card: VirtualCard) -> str:
    from cardio.piv import ManagementKeyType
    from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
    from idsvc.desk_client.cards import CardSecrets, personalise_card

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
    return issued.credential_id
