"""Remote desks against a real centre over loopback HTTP: a centre with operators and one desk
to enrol (``World``), one clock for both sides, whole card issuances onto the virtual PIV card,
and a proxy that cuts the link at a chosen step."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from cardio.piv import ManagementKeyType
from cardio.virtual import VirtualCard
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
from idsvc.desk_client.cards import CardSecrets, personalise_card
from idsvc.desk_client.centre_client import CentreClient
from idsvc.desk_client.identity import DeskIdentity, desk_check_time
from idsvc.desks.gateway import DeskGateway
from idsvc.services import Services
from idsvc.storage.tables import CredentialRow
from mobile_api.app import create_app
from tests.support.http import live_server
from tests.support.operator_people import PASSWORD, People, code, make_centre
from tests.support.settings import ACTIVE_EMPLOYEE, NOW
from tests.support.virtual_card import ReaderTransport

EMPLOYEE = ACTIVE_EMPLOYEE


class Clock:
    """The one clock of centre and desk (proof times and TOTP steps follow it)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 31) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class World:
    """A centre served on loopback, its operators, one desk's enrolment code and folder."""

    centre: Services
    desks: DeskGateway
    people: People
    clock: Clock
    url: str
    code: str
    desk_home: Path

    def remote(self, url: str | None = None, home: Path | None = None) -> CentreClient:
        identity = DeskIdentity(home or self.desk_home)
        return CentreClient(identity, clock=self.clock, centre_url=url or self.url, timeout=5)

    def login(self, remote: CentreClient, name: str) -> None:
        at = self.clock.tick()
        remote.login(name, PASSWORD, code(self.people.secrets[name], at))

    def states(self, employee: str = EMPLOYEE) -> list[str]:
        with self.centre.infra.db.transaction() as session:
            return list(
                session.execute(
                    select(CredentialRow.state)
                    .where(CredentialRow.employee_id == employee)
                    .order_by(CredentialRow.issued_at)
                ).scalars()
            )


@contextmanager
def make_world(tmp_path: Path, db_url: str, *, approval_required: str = "") -> Iterator[World]:
    """A centre (operators somphone, khamla, dara) serving one desk to enrol, vte-01."""
    centre = make_centre(tmp_path / "centre", db_url, approval_required=approval_required)
    people = People(centre)
    people.add("somphone", "issuer", "Vientiane")
    people.add("khamla", "supervisor", "Vientiane")
    people.add("dara", "issuer", "Savannakhet")
    desks = centre.desks
    _, enrol_code = desks.add_desk("vte-01", office="Vientiane", by=None, now=NOW)
    clock = Clock()
    with live_server(create_app(centre, clock=clock)) as url:
        yield World(centre, desks, people, clock, url, enrol_code, tmp_path / "desk")
    centre.infra.db.dispose()


def issue(world: World, remote: CentreClient, card: VirtualCard, employee: str = EMPLOYEE) -> str:
    """Personalise ``card`` for ``employee`` through the desk's ``remote``; the credential id."""
    issued = personalise_card(
        ReaderTransport(card),
        remote,
        employee_id=employee,
        card_secrets=CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES),
        ca_certificate=remote.identity.ca_certificate(),
        verify_url_base="https://id.example/v",
        actor="desk",
        now=desk_check_time(world.clock()),
    )
    return issued.credential_id


class DroppingProxy:
    """A TCP proxy to the centre that cuts the connection for requests whose first line
    contains ``cut``: before forwarding (``when="request"``) or after the centre answered
    (``when="answer"``: the centre did the work, the desk never hears of it)."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.cut = "\x00"
        self.when = "request"
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        with client:
            data = client.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(rest) < length:
                rest += client.recv(65536)
            if self.cut.encode() in head.split(b"\r\n")[0] and self.when == "request":
                return
            with socket.create_connection(self.target) as upstream:
                upstream.sendall(head + b"\r\n\r\n" + rest)  # urllib asks Connection: close
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            if self.cut.encode() in head.split(b"\r\n")[0] and self.when == "answer":
                return
            client.sendall(answer)

    def close(self) -> None:
        self.sock.close()
