"""Offices limit what an operator may do (issue 16), on SQLite and PostgreSQL: people belong to
the office HR records for them; an operator acts, asks and approves only for the people of
their own office, or for everyone with national scope (office ``*``); a person with no office
recorded is for national operators only. Refusals name the rule, not the other office, and
are audited. At a desk the same rule covers issuing, printing and photos."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from idsvc.desk_client.identity import DeskIdentity
from idsvc.desks.registry import DeskRequest
from idsvc.errors import InvalidOperator, NotPermitted
from idsvc.formats.desk_proof import sign_proof
from idsvc.formats.jws import JwsSigner
from idsvc.services import Services
from idsvc.staff.maker_checker import Pending
from idsvc.staff.operators import Actor, OperatorView
from idsvc.storage.tables import AuditEventRow
from tests.support.operator_people import PASSWORD, People, code, make_centre
from tests.support.settings import NOW

LAO = "LA-MOHA-000101"  # office Vientiane in the sample register
KHMER = "KH-MCS-010002"  # office Phnom Penh
NOBODY_S = "LA-MOHA-000900"  # imported from an export without the office column
UNKNOWN = "LA-MOHA-999999"
HELD = "revoke,key_rotation,operator_change,reissue_after_loss,hr_correction"
NO_OFFICE_CSV = (
    "employee_id,name_local,name_latin,sex,date_of_birth,ministry,unit,position,grade,"
    "category,status,status_date,hire_date\n"
    f"{NOBODY_S},ບຸນມີ,Bounmy,M,1980-05-17,Ministry of Home Affairs,,Officer,K3,"
    "civil_servant,active,2005-10-01,2005-10-01\n"
).encode()


@pytest.fixture
def pair(tmp_path: Path, db_url: str) -> Iterator[tuple[Services, Services, People]]:
    """An open centre (no maker-checker) and the same centre with every action held."""
    open_centre = make_centre(tmp_path / "home", db_url)
    open_centre.register.import_hr(NO_OFFICE_CSV, source_name="old.csv", actor="hr", now=NOW)
    people = People(open_centre)
    people.add("root", "admin", "*")
    people.add("vte-admin", "admin", "Vientiane")
    people.add("somphone", "issuer", "Vientiane")
    people.add("dara", "issuer", "Phnom Penh")
    people.add("nat", "issuer", "*")
    people.add("vong", "registrar", "Vientiane")
    people.add("khamla", "supervisor", "Vientiane")
    people.add("sokha", "supervisor", "Phnom Penh")
    people.add("chief", "supervisor", "*")
    held = make_centre(tmp_path / "home", db_url, fresh=False, approval_required=HELD)
    yield open_centre, held, people
    open_centre.infra.db.dispose()
    held.infra.db.dispose()


def _audit(centre: Services, action: str) -> list[AuditEventRow]:
    with centre.infra.db.transaction() as session:
        query = select(AuditEventRow).where(AuditEventRow.action == action)
        return list(session.execute(query.order_by(AuditEventRow.seq)).scalars())


def test_an_operator_acts_only_for_people_of_their_office(
    pair: tuple[Services, Services, People],
) -> None:
    centre, _, people = pair
    lao = centre.credentials.issue(LAO, actor="test", now=NOW)
    khmer = centre.credentials.issue(KHMER, actor="test", now=NOW)
    with pytest.raises(NotPermitted, match="only for people of office Phnom Penh") as refused:
        centre.credentials.revoke(lao.id, reason="card lost", by=people.actor("dara"), now=NOW)
    assert "Vientiane" not in str(refused.value)  # the other office is not named
    assert centre.credentials.credential(lao.id).state == "live"
    with pytest.raises(NotPermitted, match="office"):
        centre.credentials.declare_lost(
            KHMER, reason="stolen", by=people.actor("somphone"), now=NOW
        )
    assert centre.credentials.credential(khmer.id).state == "live"
    with pytest.raises(NotPermitted, match="office"):
        centre.register.correct_status(
            KHMER, status="suspended", reason="HR typo in the export", by=people.actor("vong"),
            now=NOW,
        )  # fmt: skip
    # Their own office's people: done.
    done = centre.credentials.revoke(
        lao.id, reason="card lost", by=people.actor("somphone"), now=NOW
    )
    assert not isinstance(done, Pending) and done.state == "revoked"
    assert "revoked" in str(
        centre.credentials.declare_lost(KHMER, reason="stolen", by=people.actor("dara"), now=NOW)
    )
    refusals = _audit(centre, "office.refused")
    assert [(e.actor, e.target_id, e.details["action"]) for e in refusals] == [
        ("dara", lao.id, "revoke"),
        ("somphone", KHMER, "reissue_after_loss"),
        ("vong", KHMER, "hr_correction"),
    ]
    assert all("Vientiane" not in str(e.details) or e.actor != "dara" for e in refusals)
    centre.audit.verify_chain()


def test_people_without_an_office_are_for_national_operators_only(
    pair: tuple[Services, Services, People],
) -> None:
    centre, _, people = pair
    with pytest.raises(NotPermitted, match="no office recorded") as no_office:
        centre.credentials.declare_lost(
            NOBODY_S, reason="stolen", by=people.actor("somphone"), now=NOW
        )
    # An id that is nobody's gets the very same answer: no oracle for who exists, or where.
    with pytest.raises(NotPermitted) as unknown:
        centre.credentials.declare_lost(
            UNKNOWN, reason="stolen", by=people.actor("somphone"), now=NOW
        )
    assert str(unknown.value) == str(no_office.value).replace(NOBODY_S, UNKNOWN)
    with pytest.raises(NotPermitted) as other:
        centre.credentials.declare_lost(
            KHMER, reason="stolen", by=people.actor("somphone"), now=NOW
        )
    assert str(other.value) == str(no_office.value).replace(NOBODY_S, KHMER)
    national = people.actor("nat")
    assert "0 credential(s)" in str(
        centre.credentials.declare_lost(NOBODY_S, reason="stolen", by=national, now=NOW)
    )
    assert "0 credential(s)" in str(
        centre.credentials.declare_lost(LAO, reason="stolen", by=people.actor("nat"), now=NOW)
    )


def test_an_approver_must_be_of_the_persons_office(pair: tuple[Services, Services, People]) -> None:
    _, centre, people = pair
    credential = centre.credentials.issue(LAO, actor="test", now=NOW)
    asked = centre.credentials.revoke(
        credential.id, reason="card lost", by=people.actor("somphone"), now=NOW
    )
    assert isinstance(asked, Pending)
    approval = asked.approval.id
    # A supervisor of another office neither sees it nor decides it.
    assert centre.staff.list_approvals(by=people.actor("sokha"), state="pending", now=NOW) == []
    with pytest.raises(NotPermitted, match="only for people of office Phnom Penh"):
        centre.staff.approve(approval, by=people.actor("sokha"), now=NOW)
    with pytest.raises(NotPermitted, match="only for people of office Phnom Penh"):
        centre.staff.reject(approval, by=people.actor("sokha"), reason="not mine", now=NOW)
    assert centre.credentials.credential(credential.id).state == "live"
    listed = centre.staff.list_approvals(by=people.actor("khamla"), state="pending", now=NOW)
    assert [v.id for v in listed] == [approval]
    assert [
        v.id for v in centre.staff.list_approvals(by=people.actor("chief"), state=None, now=NOW)
    ] == [approval]
    view, _ = centre.staff.approve(
        approval, by=people.actor("khamla"), now=NOW + timedelta(minutes=1)
    )
    assert view.state == "done" and centre.credentials.credential(credential.id).state == "revoked"
    refused = _audit(centre, "office.refused")
    assert [(e.actor, e.details["action"]) for e in refused] == [
        ("sokha", "revoke"),
        ("sokha", "revoke"),
    ]


def test_national_scope_is_explicit_and_only_a_national_admin_grants_it(
    pair: tuple[Services, Services, People],
) -> None:
    centre, held, people = pair
    listed = {v.name: v.office for v in centre.staff.list_operators()}
    assert listed["root"] == "*" and listed["somphone"] == "Vientiane"
    local_admin = people.actor("vte-admin")
    for office in ("*", "Phnom Penh"):
        with pytest.raises(NotPermitted, match="may change only operators of office Vientiane"):
            centre.staff.add_operator(
                "upstart", role="issuer", office=office, password=PASSWORD, by=local_admin,
                now=NOW,
            )  # fmt: skip
    with pytest.raises(NotPermitted, match="only operators of office Vientiane"):
        centre.staff.set_operator_enabled(
            "dara", enabled=False, by=people.actor("vte-admin"), now=NOW
        )
    with pytest.raises(NotPermitted, match="only operators of office Vientiane"):
        centre.staff.reset_totp("root", by=people.actor("vte-admin"), now=NOW)
    done = centre.staff.set_operator_enabled(
        "somphone", enabled=False, by=people.actor("vte-admin"), now=NOW
    )
    assert isinstance(done, OperatorView) and not done.enabled
    added = centre.staff.add_operator(
        "newnat", role="supervisor", office="*", password=PASSWORD, by=people.actor("root"),
        now=NOW,
    )  # fmt: skip
    assert added.operator.office == "*"  # type: ignore[union-attr]
    with pytest.raises(NotPermitted, match="national"):
        held.credentials.rotate_key(issuer_slug="default", by=people.actor("vte-admin"), now=NOW)
    rotated = held.credentials.rotate_key(issuer_slug="default", by=people.actor("root"), now=NOW)
    assert isinstance(rotated, Pending)
    # '*' is an operator's scope, never a desk's office (nor a person's: see test_hr_csv).
    with pytest.raises(InvalidOperator, match="office"):
        centre.desks.add_desk("star-01", office="*", by=None, now=NOW)
    with pytest.raises(InvalidOperator, match="'\\*' for national scope"):
        centre.staff.add_operator(
            "bad", role="issuer", office="**", password=PASSWORD, by=None, now=NOW
        )


def _desk_request(signer: JwsSigner, path: str, body: bytes, jti: str) -> DeskRequest:
    proof = sign_proof(signer, method="POST", path=path, body=body, now=NOW, jti=jti)
    return DeskRequest(proof, "POST", path, body)


def test_a_desk_issues_prints_and_photographs_only_its_offices_people(
    pair: tuple[Services, Services, People], tmp_path: Path
) -> None:
    centre, _, people = pair
    desks = centre.desks
    _, enrol_code = desks.add_desk("vte-01", office="Vientiane", by=None, now=NOW)
    identity = DeskIdentity(tmp_path / "desk")
    signer = identity.new_key()
    enrol = _desk_request(signer, "/v1/desk/enrolment", b"{}", "enrol-0000000001")
    desks.enrol(code=enrol_code, jwk=signer.jwk, request=enrol, now=NOW)
    jti = iter(f"request-{i:012d}" for i in range(100))

    def login(name: str) -> str:
        request = _desk_request(signer, "/v1/desk/sessions", b"{}", next(jti))
        return desks.login(
            request, name=name, password=PASSWORD, otp=code(people.secrets[name], NOW), now=NOW
        ).token

    token = login("somphone")
    eligible = _desk_request(signer, "/v1/desk/eligibility", b"{}", next(jti))
    desks.check_eligible(eligible, token, LAO, now=NOW)  # their own office: fine
    for person in (KHMER, NOBODY_S, UNKNOWN):
        request = _desk_request(signer, "/v1/desk/eligibility", b"{}", next(jti))
        with pytest.raises(NotPermitted, match="may issue cards only for people of office"):
            desks.check_eligible(request, token, person, now=NOW)
    face = _desk_request(signer, "/v1/desk/card-faces", b"{}", next(jti))
    with pytest.raises(NotPermitted, match="may print cards only"):
        desks.card_face(face, token, KHMER, now=NOW)
    registrar = login("vong")
    photo = _desk_request(signer, "/v1/desk/photos", b"{}", next(jti))
    with pytest.raises(NotPermitted, match="may store photos only"):
        desks.store_photo(photo, registrar, KHMER, "AAAA", now=NOW)
    refused = _audit(centre, "office.refused")
    assert [(e.actor, e.details["action"], e.details["desk"]) for e in refused] == [
        ("somphone@vte-01", "issue", "vte-01"),
        ("somphone@vte-01", "issue", "vte-01"),
        ("somphone@vte-01", "issue", "vte-01"),
        ("somphone@vte-01", "print", "vte-01"),
        ("vong@vte-01", "photo", "vte-01"),
    ]
    # A national operator works at the centre console: no desk signs them in.
    request = _desk_request(signer, "/v1/desk/sessions", b"{}", next(jti))
    with pytest.raises(NotPermitted, match="own office"):
        desks.login(
            request, name="nat", password=PASSWORD, otp=code(people.secrets["nat"], NOW), now=NOW
        )


def test_the_console_without_an_operator_is_national(
    pair: tuple[Services, Services, People],
) -> None:
    centre, _, _ = pair
    assert "0 credential(s)" in str(
        centre.credentials.declare_lost(NOBODY_S, reason="stolen", by=None, now=NOW)
    )
    assert Actor("x", "issuer", "*").national and not Actor("x", "issuer", "Vientiane").national
