"""The foundation's use cases end to end on SQLite and PostgreSQL, real keys and signatures."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from joserfc import jws as jose_jws
from joserfc.jwk import KeySet
from sqlalchemy import select, text, update

from idsvc.errors import HolderNotEligible, InvalidTransition, UnknownCredential, UnknownEmployee
from idsvc.formats.status_list import StatusList, parse_status_list_claims
from idsvc.services import Services
from idsvc.storage.tables import AuditEventRow, CivilServantRow, CredentialRow
from idsvc.verification.rules import Reason
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings, rotated

ACTIVE = "LA-MOHA-000101"


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return cast(dict[str, Any], json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_issue_then_verify_is_valid_with_holder(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    result = service.verification.verify(view.token, now=NOW + timedelta(minutes=5))
    assert result.valid, result.reasons
    assert result.status == "valid"
    assert result.holder is not None
    assert result.holder["name"] == "ສົມພອນ ແກ້ວມະນີ"
    assert result.holder["employee_id"] == ACTIVE
    claims = _payload(view.token)
    assert claims["iss"] == "https://id.mcs.gov.kh/issuers/default"
    assert claims["status"]["status_list"]["uri"].startswith("https://id.mcs.gov.kh/status-lists/")
    # UTF-8, not \\u escapes: the Lao name appears as itself in the JSON
    raw = base64.urlsafe_b64decode(view.token.split(".")[1] + "==")
    assert "ສົມພອນ".encode() in raw


def test_revoke_suspend_reinstate(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    service.credentials.change_state(view.id, "suspend", reason="inquiry", actor="hr-1", now=NOW)
    r = service.verification.verify(view.token, now=NOW)
    assert (r.valid, r.status, r.reasons) == (False, "suspended", (Reason.SUSPENDED,))
    service.credentials.change_state(view.id, "reinstate", reason="cleared", actor="hr-1", now=NOW)
    assert service.verification.verify(view.token, now=NOW).valid
    service.credentials.revoke(view.id, reason="lost card", by=None, now=NOW)
    r = service.verification.verify(view.token, now=NOW)
    assert r.reasons == (Reason.REVOKED,) and r.status == "revoked"
    with pytest.raises(InvalidTransition):
        service.credentials.change_state(view.id, "reinstate", reason="oops", actor="hr-1", now=NOW)
    with pytest.raises(UnknownCredential):
        service.credentials.revoke("nope", reason="x", by=None, now=NOW)


def test_reissue_supersedes_previous(service: Services) -> None:
    first = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    second = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW + timedelta(seconds=1))
    assert service.verification.verify(second.token, now=NOW).valid
    old = service.verification.verify(first.token, now=NOW)
    assert old.reasons == (Reason.REVOKED,)
    states = [c.state for c in service.credentials.credentials_of(ACTIVE)]
    assert states == ["superseded", "live"]


def test_inactive_and_unknown_people_get_no_credential(service: Services) -> None:
    with pytest.raises(HolderNotEligible, match="retired"):
        service.credentials.issue("LA-MOF-002210", actor="desk-1", now=NOW)
    with pytest.raises(HolderNotEligible, match="suspended"):
        service.credentials.issue("KH-MEF-120077", actor="desk-1", now=NOW)
    with pytest.raises(UnknownEmployee):
        service.credentials.issue("KH-XXX-999999", actor="desk-1", now=NOW)
    with service.infra.db.transaction() as s:
        assert s.execute(select(CredentialRow)).first() is None


def test_hr_status_change_reaches_live_credentials(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    lines = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    suspended = [
        r.replace(",active,2010-09-01,", ",suspended,2026-11-01,") if r.startswith(ACTIVE) else r
        for r in rows
    ]
    report = service.register.import_hr(
        ("\n".join([header, *suspended]) + "\n").encode(), source_name="s.csv", actor="hr", now=NOW
    )
    assert (report.updated, report.status_changes, report.credentials_changed) == (1, 1, 1)
    assert service.verification.verify(view.token, now=NOW).reasons == (Reason.SUSPENDED,)
    # active again: the HR suspension is lifted, the credential comes back (a later status
    # date: an export older than the suspension would be refused as stale)
    active_again = [
        r.replace(",active,2010-09-01,", ",active,2026-11-10,") if r.startswith(ACTIVE) else r
        for r in rows
    ]
    data = ("\n".join([header, *active_again]) + "\n").encode()
    service.register.import_hr(data, source_name="a.csv", actor="hr", now=NOW)
    assert service.verification.verify(view.token, now=NOW).valid
    retired = [
        r.replace(",active,2010-09-01,", ",retired,2026-11-20,") if r.startswith(ACTIVE) else r
        for r in rows
    ]
    service.register.import_hr(
        ("\n".join([header, *retired]) + "\n").encode(), source_name="r.csv", actor="hr", now=NOW
    )
    r = service.verification.verify(view.token, now=NOW)
    assert r.status == "revoked"
    assert set(r.reasons) == {Reason.REVOKED, Reason.HOLDER_INACTIVE}
    assert service.credentials.credential(view.id).state_reason == "hr: retired"


def _register_rows(service: Services) -> list[tuple[object, ...]]:
    with service.infra.db.transaction() as s:
        rows = s.execute(
            select(
                CivilServantRow.employee_id,
                CivilServantRow.updated_at,
                CivilServantRow.content_hash,
            ).order_by(CivilServantRow.employee_id)
        )
        return [tuple(r) for r in rows]


def test_import_is_idempotent(service: Services) -> None:
    before = _register_rows(service)
    report = service.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="again.csv", actor="hr", now=NOW + timedelta(days=1)
    )
    assert (report.created, report.updated, report.unchanged, len(report.rejects)) == (0, 0, 12, 0)
    after = _register_rows(service)
    assert before == after


def test_expiry_and_not_yet_valid(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    assert service.verification.verify(
        view.token, now=view.expires_at + timedelta(seconds=30)
    ).valid  # leeway
    late = service.verification.verify(view.token, now=view.expires_at + timedelta(minutes=5))
    assert late.reasons == (Reason.EXPIRED,) and late.status == "expired"
    early = service.verification.verify(view.token, now=NOW - timedelta(minutes=5))
    assert early.reasons == (Reason.NOT_YET_VALID,)


def test_tampered_and_garbage_tokens(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    h, p, s = view.token.split(".")
    claims = _payload(view.token)
    claims["grade"] = "K9"
    forged_p = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert service.verification.verify(f"{h}.{forged_p}.{s}", now=NOW).reasons == (
        Reason.BAD_SIGNATURE,
    )
    for junk in ["", "abc", "a.b.c", view.token + "x", "ey.ey.ey", f"{h}.{p}"]:
        assert service.verification.verify(junk, now=NOW).reasons == (Reason.MALFORMED,), junk
    none_header = (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"civil-servant-credential+jwt"}')
        .rstrip(b"=")
        .decode()
    )
    assert service.verification.verify(f"{none_header}.{p}.", now=NOW).valid is False


def test_status_unavailable_is_never_revoked(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    with service.infra.db.transaction() as s:
        s.execute(text("UPDATE status_lists SET uri = 'https://elsewhere/status-lists/x'"))
    r = service.verification.verify(view.token, now=NOW)
    assert r.reasons == (Reason.STATUS_UNAVAILABLE,)
    assert r.status == "unknown"


def test_rotation_old_key_still_verifies(service: Services) -> None:
    before = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    old_kid, new_kid = rotated(service)
    assert old_kid != new_kid
    after = service.credentials.issue("LA-MOHA-000102", actor="desk-1", now=NOW)
    assert json.loads(base64.urlsafe_b64decode(after.token.split(".")[0] + "=="))["kid"] == new_kid
    assert service.verification.verify(before.token, now=NOW).valid
    assert service.verification.verify(after.token, now=NOW).valid
    kids = {k["kid"] for k in service.credentials.jwks()["keys"]}
    assert {old_kid, new_kid} <= kids


def test_independent_jose_library_verifies_from_jwks(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    keyset = KeySet.import_key_set(cast(Any, service.credentials.jwks()))
    obj = jose_jws.deserialize_compact(view.token, keyset, algorithms=["ES256", "EdDSA"])
    assert json.loads(obj.payload)["sub"] == ACTIVE
    assert obj.protected["typ"] == "civil-servant-credential+jwt"


def test_status_list_token_reflects_states(service: Services) -> None:
    a = service.credentials.issue(ACTIVE, actor="d", now=NOW)
    b = service.credentials.issue("LA-MOHA-000102", actor="d", now=NOW)
    service.credentials.change_state(b.id, "suspend", reason="x", actor="d", now=NOW)
    ref_a = _payload(a.token)["status"]["status_list"]
    ref_b = _payload(b.token)["status"]["status_list"]
    name = ref_a["uri"].rsplit("/", 1)[-1]
    token = service.credentials.status_list_token(name, now=NOW)
    keyset = KeySet.import_key_set(cast(Any, service.credentials.jwks()))
    obj = jose_jws.deserialize_compact(token, keyset, algorithms=["ES256", "EdDSA"])
    assert obj.protected["typ"] == "statuslist+jwt"
    lst: StatusList = parse_status_list_claims(
        json.loads(obj.payload), expected_uri=ref_a["uri"], now=NOW
    )
    assert lst.get(ref_a["idx"]) == 0
    assert lst.get(ref_b["idx"]) == 2
    assert ref_a["idx"] != ref_b["idx"]


def test_other_issuer_key_never_vouches(service: Services, tmp_path: Path) -> None:
    """A second issuer in the same deployment: tokens keep to their own issuer."""
    service.credentials.init(now=NOW, actor="admin", slug="lao-moha", iss="https://id.moha.gov.la")
    from idsvc.credentials.issuance import issue_credential

    with service.infra.db.transaction() as s:
        issuer = service.infra.issuer(s, "lao-moha")
        row = issue_credential(
            s,
            employee_id="LA-MOHA-000103",
            issuer=issuer,
            signer=service.infra.signer(issuer),
            policy=service.credentials.policy,
            actor="d",
            now=NOW,
        )
        token = row.token
    assert service.verification.verify(token, now=NOW).valid
    # Re-sign the same claims with the Lao issuer key but claiming the default issuer
    from idsvc.formats.jws import sign_compact

    claims = _payload(token)
    claims["iss"] = "https://id.mcs.gov.kh/issuers/default"
    with service.infra.db.transaction() as s:
        forged = sign_compact(
            claims,
            service.infra.signer(service.infra.issuer(s, "lao-moha")),
            typ="civil-servant-credential+jwt",
        )
    assert service.verification.verify(forged, now=NOW).reasons == (Reason.UNKNOWN_KEY,)


def test_audit_chain_detects_edit_and_delete(service: Services) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    service.credentials.revoke(view.id, reason="test", by=None, now=NOW)
    check = service.audit.verify_chain()
    assert check.events >= 4
    from idsvc.audit.chain import AuditChainBroken

    with service.infra.db.transaction() as s:
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 2).values(actor="mallory"))
    with pytest.raises(AuditChainBroken) as info:
        service.audit.verify_chain()
    assert info.value.seq == 2


def test_audit_detects_deleted_newest_event(service: Services) -> None:
    service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)
    check = service.audit.verify_chain()
    from idsvc.audit.chain import AuditChainBroken

    with service.infra.db.transaction() as s:
        s.execute(text(f"DELETE FROM audit_events WHERE seq = {check.events}"))
    with pytest.raises(AuditChainBroken, match="missing"):
        service.audit.verify_chain()


def test_dead_database_is_a_clear_error(tmp_path: Path) -> None:
    from idsvc.errors import IdsvcError
    from idsvc.storage.db import DatabaseUnavailable

    settings = make_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    svc = make_service(settings)
    with pytest.raises((DatabaseUnavailable, IdsvcError)) as info:
        svc.credentials.issue(ACTIVE, actor="d", now=NOW)
    assert "127.0.0.1" in str(info.value) or "database" in str(info.value)


def test_status_indices_are_random_unique_and_lists_roll_over(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path / "home", sqlite_url)
    settings.status_list_size = 16
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="s.csv", actor="hr", now=NOW)
    views = [
        svc.credentials.issue(ACTIVE, actor="d", now=NOW + timedelta(seconds=i)) for i in range(20)
    ]
    refs = [_payload(v.token)["status"]["status_list"] for v in views]
    slots = {(r["uri"], r["idx"]) for r in refs}
    assert len(slots) == 20, "an index was reused"
    assert len({r["uri"] for r in refs}) >= 2, "a full list must roll over to a new one"
    first_list = [r["idx"] for r in refs if r["uri"] == refs[0]["uri"]]
    assert first_list != sorted(first_list), "indices must not follow issuance order"
    assert svc.verification.verify(views[-1].token, now=NOW).valid
    assert svc.verification.verify(views[0].token, now=NOW).reasons == (Reason.REVOKED,)


def test_a_new_public_url_opens_a_new_list_and_the_old_one_stays_served(
    tmp_path: Path, sqlite_url: str
) -> None:
    first = make_service(make_settings(tmp_path / "home", sqlite_url))
    first.credentials.init(now=NOW, actor="admin")
    first.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="s.csv", actor="hr", now=NOW)
    old = first.credentials.issue(ACTIVE, actor="d", now=NOW)
    moved = make_service(
        make_settings(tmp_path / "home", sqlite_url, public_url="https://idsvc.moha.gov.la")
    )
    new = moved.credentials.issue("KH-MCS-010002", actor="d", now=NOW + timedelta(seconds=1))
    old_uri = _payload(old.token)["status"]["status_list"]["uri"]
    new_uri = _payload(new.token)["status"]["status_list"]["uri"]
    assert old_uri.startswith("https://id.mcs.gov.kh/status-lists/")
    assert new_uri.startswith("https://idsvc.moha.gov.la/status-lists/")
    assert moved.verification.verify(new.token, now=NOW).valid
    assert moved.verification.verify(
        old.token, now=NOW
    ).valid  # the old list is still there, by its name
    again = moved.credentials.issue(ACTIVE, actor="d", now=NOW + timedelta(seconds=2))
    assert _payload(again.token)["status"]["status_list"]["uri"] == new_uri  # reused, not a third
    assert moved.verification.verify(old.token, now=NOW).reasons == (Reason.REVOKED,)


def test_eddsa_issuer_end_to_end(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "home", sqlite_url, key_alg="EdDSA")
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="s.csv", actor="hr", now=NOW)
    view = svc.credentials.issue(ACTIVE, actor="d", now=NOW)
    header = json.loads(base64.urlsafe_b64decode(view.token.split(".")[0] + "=="))
    assert header["alg"] == "EdDSA"
    assert svc.verification.verify(view.token, now=NOW).valid
    keyset = KeySet.import_key_set(cast(Any, svc.credentials.jwks()))
    obj = jose_jws.deserialize_compact(view.token, keyset, algorithms=["EdDSA"])
    assert json.loads(obj.payload)["jti"] == view.id


def test_one_import_changes_many_people_at_once(service: Services) -> None:
    people = ["LA-MOHA-000101", "LA-MOHA-000102", "KH-MCS-010002"]
    views = {p: service.credentials.issue(p, actor="d", now=NOW) for p in people}
    lines = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for row in lines[1:]:
        fields = row.split(",")
        if fields[0] in people[:2]:
            fields[10], fields[11] = "retired", "2026-11-01"
        elif fields[0] == people[2]:
            fields[10], fields[11] = "suspended", "2026-11-01"
        out.append(",".join(fields))
    report = service.register.import_hr(
        ("\n".join(out) + "\n").encode(), source_name="m", actor="hr", now=NOW
    )
    assert (report.updated, report.status_changes, report.credentials_changed) == (3, 3, 3)
    assert [service.credentials.credential(views[p].id).state for p in people] == [
        "revoked",
        "revoked",
        "suspended",
    ]


def test_unconfirmed_issuance_expires(service: Services) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from idsvc.errors import IssuanceNotPending

    card_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    import uuid

    pending = service.credentials.begin_card_issuance(
        ACTIVE, card_key=card_key, card_uuid=uuid.uuid4(), actor="desk", now=NOW
    )
    assert service.verification.verify(pending.token, now=NOW).reasons == (
        Reason.REVOKED,
    )  # not live yet
    later = NOW + timedelta(minutes=16)
    with pytest.raises(IssuanceNotPending, match="expired unconfirmed"):
        service.credentials.confirm_issuance(pending.credential_id, actor="desk", now=later)
    service.credentials.issue(ACTIVE, actor="desk", now=later)
    assert [c.state for c in service.credentials.credentials_of(ACTIVE)] == ["abandoned", "live"]
    assert (
        service.credentials.credential(pending.credential_id).state_reason == "expired unconfirmed"
    )


def test_one_issuance_costs_a_bounded_number_of_statements(service: Services) -> None:
    """Issuing is one transaction of a fixed, short list of statements (issue 20): the holder is
    read and locked once, the fresh pending row is not read back to confirm it, the status list
    is not counted while its first draw lands on a free index, and the three audit events and
    the supersession still happen."""
    from sqlalchemy import event

    service.credentials.issue(ACTIVE, actor="desk-1", now=NOW)  # so that the next one supersedes
    statements: list[str] = []

    def seen(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    event.listen(service.infra.db.engine, "before_cursor_execute", seen)
    try:
        view = service.credentials.issue(ACTIVE, actor="desk-1", now=NOW + timedelta(seconds=1))
    finally:
        event.remove(service.infra.db.engine, "before_cursor_execute", seen)
    servant_reads = [s for s in statements if s.startswith("SELECT civil_servants.")]
    assert len(servant_reads) == 1, servant_reads
    assert not [s for s in statements if "count(" in s.lower()], "the status list was counted"
    assert not [s for s in statements if s.startswith("SELECT credentials.employee_id")]
    assert len([s for s in statements if s.startswith("INSERT INTO audit_events")]) == 3
    # 28 on SQLite before issue 20's changes (31 on PostgreSQL, which adds the slot's savepoint,
    # a status-version bump when it is released, and the change feed's lock on the audit head).
    budget = 23 if service.infra.db.engine.dialect.name == "sqlite" else 26
    assert len(statements) <= budget, "\n".join(statements)
    assert service.verification.verify(view.token, now=NOW + timedelta(seconds=2)).valid
    with service.infra.db.transaction() as session:
        states = dict(session.execute(select(CredentialRow.id, CredentialRow.state)).all())
    assert states[view.id] == "live"
    assert sorted(states.values()) == ["live", "superseded"]
