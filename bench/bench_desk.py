"""Card issuances per minute: a remote desk over HTTP against the in-process desk, one run.

    .venv/bin/python bench/bench_desk.py [--cards 20] [--rounds 2]

Both desks write the same virtual PIV card in-process (no pcscd: the card costs the same on
both sides) and run the whole protocol of ``idsvc.desk_client.cards.personalise_card``: check, card
key,
begin, write, read back, challenge, confirm. The in-process desk calls ``Services``; the
remote desk calls ``CentreClient`` → real HTTP on loopback → uvicorn (in a thread) →
``DeskGateway``, each request signed with the desk key and checked (proof, nonce, session) at
the centre. Same SQLite database type, fresh temporary folders. Prints cards/min for each, the
ratio, and what the network path adds per card. Rounds alternate, so drift in machine load
hits both. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cardio.piv import ManagementKeyType  # noqa: E402
from cardio.virtual import CardState, VirtualCard  # noqa: E402
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY  # noqa: E402
from idsvc.desk_client.cards import CardSecrets, IssuanceCentre, personalise_card  # noqa: E402
from idsvc.desk_client.centre_client import CentreClient  # noqa: E402
from idsvc.desk_client.identity import DeskIdentity, desk_check_time  # noqa: E402
from idsvc.staff.operators import Enrolment  # noqa: E402
from mobile_api.app import create_app  # noqa: E402
from tests.support.http import live_server  # noqa: E402
from tests.support.operator_people import PASSWORD, code, make_centre, secret_of  # noqa: E402

EMPLOYEE = "LA-MOHA-000101"


class Card:
    def __init__(self, serial: int) -> None:
        self.card = VirtualCard(CardState.blank(serial=serial))
        self.extended_length = False

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.card.process(apdu)
        return response[:-2], int.from_bytes(response[-2:], "big")

    def close(self) -> None:
        return None


def run(centre: IssuanceCentre, ca: object, cards: int, serial0: int) -> float:
    secrets = CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES)
    start = time.perf_counter()
    for i in range(cards):
        now = datetime.now(UTC)
        personalise_card(
            Card(serial0 + i),
            centre,
            employee_id=EMPLOYEE,
            card_secrets=secrets,
            ca_certificate=ca,  # type: ignore[arg-type]
            verify_url_base="https://id.example/v",
            actor="bench",
            now=desk_check_time(now),
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        centre = make_centre(home / "centre", f"sqlite:///{home / 'idsvc.sqlite3'}")
        added = centre.staff.add_operator(
            "bench", role="issuer", office="Vientiane", password=PASSWORD, by=None,
            now=datetime.now(UTC),
        )  # fmt: skip
        assert isinstance(added, Enrolment)
        secret = secret_of(added.otpauth_uri)
        desks = centre.desks
        _, enrol_code = desks.add_desk("bench", office="Vientiane", by=None, now=datetime.now(UTC))
        local_ca = centre.credentials.ca_certificate()
        with live_server(create_app(centre)) as url:
            remote = CentreClient(
                DeskIdentity(home / "desk"), clock=lambda: datetime.now(UTC), centre_url=url
            )
            remote.enrol(enrol_code)
            remote.login("bench", PASSWORD, code(secret, datetime.now(UTC)))
            remote_ca = remote.identity.ca_certificate()
            run(centre.credentials, local_ca, 2, 1)  # warm both paths
            run(remote, remote_ca, 2, 3)
            local_s = remote_s = 0.0
            serial = 100
            calls_before = remote.calls
            for _ in range(args.rounds):
                local_s += run(centre.credentials, local_ca, args.cards, serial)
                serial += args.cards
                remote_s += run(remote, remote_ca, args.cards, serial)
                serial += args.cards
            calls = (remote.calls - calls_before) / (args.cards * args.rounds)
        centre.infra.db.dispose()
    n = args.cards * args.rounds
    local_rate = 60 * n / local_s
    remote_rate = 60 * n / remote_s
    print(f"in-process desk : {local_rate:7.1f} cards/min ({1000 * local_s / n:6.1f} ms/card)")
    print(f"remote desk HTTP: {remote_rate:7.1f} cards/min ({1000 * remote_s / n:6.1f} ms/card)")
    print(f"remote/in-process: {remote_rate / local_rate:.2f}x the rate")
    print(
        f"the network path adds {1000 * (remote_s - local_s) / n:.1f} ms per card "
        f"({calls:.0f} signed HTTP requests per card)"
    )


if __name__ == "__main__":
    main()
