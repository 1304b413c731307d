"""`idsvc corrections list|decide` as a registrar types them (real `idsvc` processes): the queue
of the holders' correction requests, a decision taken once and audited, and exit 28 for a
request that cannot be decided."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from idsvc.storage.tables import AuditEventRow
from idsvc.wallet.holder import holder_audience
from tests.support.cli_runner import Cli
from tests.support.holder_phone import give_phone
from tests.support.operator_people import make_centre
from tests.support.settings import ACTIVE_EMPLOYEE, NOW


def test_a_registrar_works_the_queue(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db_url = f"sqlite:///{home / 'idsvc.sqlite3'}"
    centre = make_centre(home, db_url)
    # The holder's side (a phone, a session, two reports) through the use cases.
    phone = give_phone(centre, ACTIVE_EMPLOYEE, now=NOW)
    nonce, _ = centre.wallet.holder_nonce(now=NOW)
    token = centre.wallet.open_holder_session(
        phone.present(aud=holder_audience(centre.settings.public_url), nonce=nonce, now=NOW),
        now=NOW,
    ).token
    grade = centre.wallet.request_correction(
        token, field="grade", text="My grade is K6 since May 2026.", now=NOW
    )
    unit = centre.wallet.request_correction(
        token,
        field="unit",
        text="ກົມຄຸ້ມຄອງລັດຖະກອນ, not the department shown.",
        now=NOW + timedelta(minutes=1),
    )
    # Close this process's connections before other processes write (tests/idsvc/cli's rule).
    centre.infra.db.dispose()
    cli = Cli(home, db_url)

    listed = cli("corrections", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    queue = json.loads(listed.stdout)
    assert [(r["id"], r["field"], r["status"]) for r in queue] == [
        (grade.id, "grade", "open"),
        (unit.id, "unit", "open"),
    ]
    assert queue[1]["text"] == "ກົມຄຸ້ມຄອງລັດຖະກອນ, not the department shown."
    table = cli("corrections", "list")
    assert table.returncode == 0, table.stderr
    assert grade.id in table.stdout and "ກົມຄຸ້ມຄອງລັດຖະກອນ" in table.stdout
    assert "2 request(s)" in table.stdout

    answer = "HR corrected your grade to K6; the next export brings it."
    decided = cli("corrections", "decide", grade.id, "--accept", "--answer", answer)
    assert decided.returncode == 0, decided.stderr
    assert f"correction request {grade.id} accepted" in decided.stdout

    again = cli("corrections", "decide", grade.id, "--reject", "--answer", "no")
    assert again.returncode == 28 and "accepted already" in again.stderr
    unknown = cli("corrections", "decide", "no-such-request", "--reject", "--answer", "no")
    assert unknown.returncode == 28 and "no correction request 'no-such-request'" in unknown.stderr
    empty = cli("corrections", "decide", unit.id, "--reject", "--answer", "   ")
    assert empty.returncode == 28 and "answer is empty" in empty.stderr
    undecided = cli("corrections", "decide", unit.id, "--answer", "which?")
    assert undecided.returncode == 2 and "--accept or --reject" in undecided.stderr

    rejected = cli(
        "corrections", "decide", unit.id, "--reject", "--json",
        "--answer", "The register already shows this department.",
    )  # fmt: skip
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["status"] == "rejected"

    remaining = json.loads(cli("corrections", "list", "--json").stdout)
    assert remaining == []
    everything = json.loads(cli("corrections", "list", "--status", "all", "--json").stdout)
    done = {r["id"]: r for r in everything}
    assert (done[grade.id]["status"], done[grade.id]["answer"]) == ("accepted", answer)
    assert done[grade.id]["decided_by"] == centre.settings.operator
    bad_status = cli("corrections", "list", "--status", "pending")
    assert bad_status.returncode == 28 and "status must be one of" in bad_status.stderr

    with centre.infra.db.transaction() as session:
        decisions = session.scalars(
            select(AuditEventRow.target_id).where(AuditEventRow.action == "correction.decide")
        ).all()
    assert sorted(decisions) == sorted([grade.id, unit.id])
    # What the holder reads on the next visit.
    page = centre.wallet.holder_page(token, now=NOW)
    assert {c["id"]: c["status"] for c in page["corrections"]} == {
        grade.id: "accepted",
        unit.id: "rejected",
    }
    centre.infra.db.dispose()
