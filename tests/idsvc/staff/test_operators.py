"""Operators: TOTP against the RFC vectors and an independent implementation, password and
secret storage, login with lockout and replay protection, sessions (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from idsvc.desk_client.identity import DeskIdentity
from idsvc.desks.gateway import DeskGateway
from idsvc.desks.registry import DeskRequest
from idsvc.errors import (
    DeskRefused,
    InvalidOperator,
    LoginRefused,
    NotPermitted,
    OperatorExists,
    OperatorLocked,
    SessionInvalid,
)
from idsvc.formats.desk_proof import sign_proof
from idsvc.formats.jws import JwsSigner
from idsvc.services import Services
from idsvc.staff import operators, totp
from idsvc.staff.operators import LoginSession
from idsvc.staff.secrets import (
    SealBroken,
    SealKeyProblem,
    hash_password,
    password_matches,
    read_seal_key,
    seal,
    unseal,
)
from idsvc.storage.desk_tables import OperatorRow, OperatorSessionRow
from idsvc.storage.tables import AuditEventRow
from tests.support.operator_people import PASSWORD, People, code, make_centre, secret_of
from tests.support.settings import NOW

RFC_KEY = b"12345678901234567890"


# -- TOTP (pure) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("counter", "expected"),
    list(enumerate(["755224", "287082", "359152", "969429", "338314", "254676", "287922",
                    "162583", "399871", "520489"])),
)  # fmt: skip
def test_hotp_matches_rfc4226_appendix_d(counter: int, expected: str) -> None:
    assert totp.hotp(RFC_KEY, counter) == expected


@pytest.mark.parametrize(
    ("unix", "expected"),
    [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
     (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")],
)  # fmt: skip
def test_totp_matches_rfc6238_appendix_b_sha1(unix: int, expected: str) -> None:
    step = totp.step_at(datetime.fromtimestamp(unix, UTC))
    assert totp.hotp(RFC_KEY, step, digits=8) == expected


def test_totp_agrees_with_pyca_cryptography() -> None:
    rng = random.Random(6238)
    for _ in range(200):
        key = rng.randbytes(20)
        at = datetime.fromtimestamp(rng.randrange(0, 4_000_000_000), UTC)
        assert totp.code_at(key, at) == code(key, at)


def test_totp_window_replay_and_shape() -> None:
    key = totp.new_secret()
    now = datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)
    step = totp.check_code(key, code(key, now), now=now, last_used_step=None)
    assert step == totp.step_at(now)
    earlier = totp.check_code(
        key, code(key, now - timedelta(seconds=30)), now=now, last_used_step=None
    )
    assert earlier == step - 1
    with pytest.raises(totp.TotpRejected, match="already used"):
        totp.check_code(key, code(key, now), now=now, last_used_step=step)
    with pytest.raises(totp.TotpRejected, match="wrong"):
        totp.check_code(key, code(key, now - timedelta(seconds=90)), now=now, last_used_step=None)
    for bad in ("12345", "1234567", "12 456", "١٢٣٤٥٦"):
        with pytest.raises(totp.TotpRejected, match="6 digits"):
            totp.check_code(key, bad, now=now, last_used_step=None)


def test_otpauth_uri_carries_the_secret() -> None:
    key = totp.new_secret()
    uri = totp.provisioning_uri(key, account="somphone", issuer="idsvc Ministry of Home Affairs")
    assert uri.startswith("otpauth://totp/idsvc%20Ministry%20of%20Home%20Affairs:somphone?")
    assert secret_of(uri) == key
    assert "digits=6" in uri and "period=30" in uri and "algorithm=SHA1" in uri


# -- secrets at rest -----------------------------------------------------------------------
def test_password_hash_is_salted_scrypt() -> None:
    first = hash_password(PASSWORD, cost=14)
    second = hash_password(PASSWORD, cost=14)
    assert first != second and first.startswith("scrypt$ln=14$r=8$p=1$")
    assert password_matches(PASSWORD, first)
    assert not password_matches(PASSWORD + "x", first)
    assert not password_matches(PASSWORD, "scrypt$ln=14$r=8$p=1$bad$bad")
    assert not password_matches(PASSWORD, first.replace("ln=14", "ln=4"))
    with pytest.raises(ValueError, match="at least 12"):
        hash_password("short", cost=14)
    with pytest.raises(ValueError, match="cost"):
        hash_password(PASSWORD, cost=10)


def test_sealed_totp_secret_is_bound_to_key_and_owner(tmp_path: Path) -> None:
    key = read_seal_key(tmp_path / "secrets" / "operator-key", create=True)
    assert os.stat(tmp_path / "secrets" / "operator-key").st_mode & 0o777 == 0o600
    sealed = seal(key, b"s" * 20, owner="alice")
    assert b"s" * 20 not in sealed.encode()
    assert unseal(key, sealed, owner="alice") == b"s" * 20
    with pytest.raises(SealBroken):
        unseal(key, sealed, owner="bob")
    with pytest.raises(SealBroken):
        unseal(bytes(32), sealed, owner="alice")
    os.chmod(tmp_path / "secrets" / "operator-key", 0o644)
    with pytest.raises(SealKeyProblem, match="readable by others"):
        read_seal_key(tmp_path / "secrets" / "operator-key", create=False)
    with pytest.raises(SealKeyProblem, match="not found"):
        read_seal_key(tmp_path / "elsewhere", create=False)


# -- logins on a real database ---------------------------------------------------------------
@pytest.fixture
def centre(tmp_path: Path, db_url: str) -> Iterator[Services]:
    c = make_centre(tmp_path / "home", db_url, operator_max_failed_logins=3)
    yield c
    c.infra.db.dispose()


def test_add_list_and_refusals(centre: Services) -> None:
    people = People(centre)
    people.add("somphone", "issuer")
    with pytest.raises(OperatorExists):
        people.add("somphone", "issuer")
    for name, role, office, password, what in [
        ("Bad Name", "issuer", "Vientiane", PASSWORD, "operator name"),
        ("ok-name", "king", "Vientiane", PASSWORD, "role"),
        ("ok-name", "issuer", "", PASSWORD, "office"),
        ("ok-name", "issuer", "Vientiane", "short", "12 characters"),
    ]:
        with pytest.raises(InvalidOperator, match=what):
            centre.staff.add_operator(
                name, role=role, office=office, password=password, by=None, now=NOW
            )
    listed = centre.staff.list_operators()
    assert [(v.name, v.role, v.office, v.enabled) for v in listed] == [
        ("somphone", "issuer", "Vientiane", True)
    ]
    with centre.infra.db.transaction() as session:
        row = session.execute(select(OperatorRow)).scalar_one()
        assert PASSWORD not in row.password_hash and row.password_hash.startswith("scrypt$")
        secret = people.secrets["somphone"]
        assert secret.hex() not in row.totp_sealed


def test_login_replay_lockout_and_unlock(centre: Services) -> None:
    people = People(centre)
    secret = people.add("somphone", "issuer")
    login = centre.staff.login("somphone", PASSWORD, code(secret, NOW), now=NOW)
    assert login.actor.name == "somphone" and login.actor.desk is None
    assert login.expires_at == NOW + timedelta(hours=8)
    # The same code again (same step): refused, even with the right password.
    with pytest.raises(LoginRefused, match="wrong operator name, password or one-time code"):
        centre.staff.login("somphone", PASSWORD, code(secret, NOW), now=NOW + timedelta(seconds=5))
    # An unknown name answers the same way.
    with pytest.raises(LoginRefused, match="wrong operator name, password or one-time code"):
        centre.staff.login("nobody", PASSWORD, "123456", now=NOW)
    later = NOW + timedelta(minutes=5)
    with pytest.raises(LoginRefused):
        centre.staff.login("somphone", "wrong password!", code(secret, later), now=later)
    # Third failure in a row (the replay counted as one): locked, and a right login is refused.
    with pytest.raises(LoginRefused):
        centre.staff.login("somphone", "wrong password!", code(secret, later), now=later)
    with pytest.raises(OperatorLocked, match="locked"):
        centre.staff.login("somphone", PASSWORD, code(secret, later), now=later)
    assert centre.staff.list_operators()[0].locked_until == later + timedelta(minutes=30)
    centre.staff.set_operator_enabled("somphone", enabled=True, by=None, now=later)
    # The code shown to "locked" was spent: the next one, a step later, signs in.
    with pytest.raises(LoginRefused):
        centre.staff.login("somphone", PASSWORD, code(secret, later), now=later)
    centre.staff.set_operator_enabled("somphone", enabled=True, by=None, now=later)
    next_step = later + timedelta(seconds=30)
    ok = centre.staff.login("somphone", PASSWORD, code(secret, next_step), now=next_step)
    assert ok.actor.role == "issuer"
    with centre.infra.db.transaction() as session:
        actions = session.execute(select(AuditEventRow.action)).scalars().all()
    # Three for somphone, one for the unknown name, one for the spent code.
    assert actions.count("operator.login_failed") == 5 and actions.count("operator.login") == 2


def test_lockout_expires_by_itself(centre: Services) -> None:
    people = People(centre)
    secret = people.add("somphone", "issuer")
    for _ in range(3):
        with pytest.raises(LoginRefused):
            centre.staff.login("somphone", "wrong password!", "000000", now=NOW)
    with pytest.raises(OperatorLocked):
        centre.staff.login("somphone", PASSWORD, code(secret, NOW), now=NOW)
    after = NOW + timedelta(minutes=31)
    assert centre.staff.login("somphone", PASSWORD, code(secret, after), now=after).actor


def _actor(centre: Services, token: str, at: datetime) -> operators.Actor:
    with centre.infra.db.transaction() as session:
        return operators.actor_of_session(
            session, token, desk=None, policy=centre.staff.policy, now=at
        )


def test_sessions_idle_and_absolute_expiry_and_disable(centre: Services) -> None:
    people = People(centre)
    secret = people.add("somphone", "issuer")
    login = centre.staff.login("somphone", PASSWORD, code(secret, NOW), now=NOW)
    with centre.infra.db.transaction() as session:
        row = session.execute(select(OperatorSessionRow)).scalar_one()
        assert login.token not in row.token_hash and len(row.token_hash) == 64
    # Used every 10 minutes, the session lives until its absolute end (8 h).
    at = NOW
    while at + timedelta(minutes=10) < NOW + timedelta(hours=8):
        at += timedelta(minutes=10)
        assert _actor(centre, login.token, at).name == "somphone"
    with pytest.raises(SessionInvalid, match="expired"):
        _actor(centre, login.token, NOW + timedelta(hours=8))
    # Idle for more than 15 minutes: ended.
    t2 = NOW + timedelta(minutes=1)
    second = centre.staff.login("somphone", PASSWORD, code(secret, t2), now=t2)
    with pytest.raises(SessionInvalid, match="expired"):
        _actor(centre, second.token, t2 + timedelta(minutes=16))
    # Disabling the operator ends a fresh session at once.
    t3 = NOW + timedelta(minutes=2)
    third = centre.staff.login("somphone", PASSWORD, code(secret, t3), now=t3)
    centre.staff.set_operator_enabled("somphone", enabled=False, by=None, now=t3)
    with pytest.raises(SessionInvalid, match="ended"):
        _actor(centre, third.token, t3)
    t4 = NOW + timedelta(minutes=3)
    with pytest.raises(NotPermitted, match="disabled"):
        centre.staff.login("somphone", PASSWORD, code(secret, t4), now=t4)
    with pytest.raises(SessionInvalid, match="unknown"):
        _actor(centre, "not-a-token", t4)


def test_reset_totp_and_set_password(centre: Services) -> None:
    people = People(centre)
    old = people.add("somphone", "issuer")
    reset = centre.staff.reset_totp("somphone", by=None, now=NOW)
    assert isinstance(reset, operators.Enrolment)
    new = secret_of(reset.otpauth_uri)
    assert new != old
    with pytest.raises(LoginRefused):
        centre.staff.login("somphone", PASSWORD, code(old, NOW), now=NOW)
    t = NOW + timedelta(minutes=1)
    assert centre.staff.login("somphone", PASSWORD, code(new, t), now=t).actor
    centre.staff.set_password("somphone", password="another long passphrase", by=None, now=t)
    t2 = NOW + timedelta(minutes=2)
    with pytest.raises(LoginRefused):
        centre.staff.login("somphone", PASSWORD, code(new, t2), now=t2)
    assert centre.staff.login("somphone", "another long passphrase", code(new, t2), now=t2).actor


def test_only_an_admin_changes_operators(centre: Services) -> None:
    people = People(centre)
    people.add("root", "admin")
    people.add("somphone", "issuer")
    with pytest.raises(NotPermitted, match="needs admin"):
        centre.staff.set_operator_enabled(
            "root", enabled=False, by=people.actor("somphone"), now=NOW
        )
    done = centre.staff.set_operator_enabled(
        "somphone", enabled=False, by=people.actor("root"), now=NOW
    )
    assert isinstance(done, operators.OperatorView) and not done.enabled


# -- wrong logins tell nothing about names; a desk pays for its own failures (issue 16) -------
def _refusal(centre: Services, name: str, password: str, otp: str, at: datetime) -> Exception:
    with pytest.raises(LoginRefused) as info:
        centre.staff.login(name, password, otp, now=at)
    return info.value


def test_unknown_name_wrong_password_and_locked_account_answer_alike(centre: Services) -> None:
    people = People(centre)
    secret = people.add("somphone", "issuer")
    at = NOW + timedelta(minutes=1)
    answers = [_refusal(centre, "nobody", "wrong password!", "000000", at) for _ in range(5)]
    answers += [_refusal(centre, "somphone", "wrong password!", "000000", at) for _ in range(5)]
    # The account is locked since the third; right password, wrong code: the same answer.
    answers.append(_refusal(centre, "somphone", PASSWORD, "000000", at))
    assert {(type(a), str(a)) for a in answers} == {
        (LoginRefused, "login refused: wrong operator name, password or one-time code")
    }
    # Only the one who has both factors is told the account is locked.
    with pytest.raises(OperatorLocked, match="locked"):
        centre.staff.login("somphone", PASSWORD, code(secret, at), now=at)
    with centre.infra.db.transaction() as session:
        failed = session.execute(
            select(AuditEventRow).where(AuditEventRow.action == "operator.login_failed")
        ).scalars()
        targets = [e.target_id for e in failed]
    assert targets == ["(unknown operator)"] * 5 + ["somphone"] * 6  # no typed name is kept


def test_every_refusal_costs_one_password_check(
    centre: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same work whatever the name: one scrypt at the configured cost (an unknown name is
    checked against a dummy hash), so the time taken does not tell a name exists."""
    from idsvc.staff import secrets as operator_secrets

    people = People(centre)
    people.add("somphone", "issuer")
    costs: list[int] = []
    real = operator_secrets._scrypt

    def counted(password: str, salt: bytes, cost: int) -> bytes:
        costs.append(cost)
        return real(password, salt, cost)

    monkeypatch.setattr(operator_secrets, "_scrypt", counted)
    at = NOW + timedelta(minutes=1)
    for name in ["nobody", "somphone", "somphone", "somphone", "somphone", "nobody"]:
        before = len(costs)
        _refusal(centre, name, "wrong password!", "000000", at)
        assert costs[before:] == [14], name  # the 4th and 5th: while locked


def _desks(centre: Services, tmp_path: Path) -> tuple[DeskGateway, dict[str, JwsSigner]]:
    desks = centre.desks
    signers: dict[str, JwsSigner] = {}
    for i, name in enumerate(["vte-01", "vte-02"]):
        _, enrol_code = desks.add_desk(name, office="Vientiane", by=None, now=NOW)
        signer = DeskIdentity(tmp_path / name).new_key()
        proof = sign_proof(
            signer, method="POST", path="/e", body=b"", now=NOW, jti=f"enrolment-{i:010d}"
        )
        desks.enrol(
            code=enrol_code, jwk=signer.jwk, request=DeskRequest(proof, "POST", "/e", b""), now=NOW
        )
        signers[name] = signer
    return desks, signers


def test_a_rogue_desk_is_locked_before_any_operator(centre: Services, tmp_path: Path) -> None:
    people = People(centre)
    secret = people.add("somphone", "issuer")
    desks, signers = _desks(centre, tmp_path)
    jtis = iter(f"login-request-{i:08d}" for i in range(1000))

    def from_desk(desk: str, password: str, otp: str, at: datetime) -> LoginSession:
        proof = sign_proof(
            signers[desk], method="POST", path="/s", body=b"", now=at, jti=next(jtis)
        )
        request = DeskRequest(proof, "POST", "/s", b"")
        return desks.login(request, name="somphone", password=password, otp=otp, now=at)

    at = NOW + timedelta(minutes=1)
    for _ in range(2):  # max_failed is 3: the desk is locked after 2
        with pytest.raises(LoginRefused):
            from_desk("vte-01", "wrong password!", "000000", at)
    with pytest.raises(DeskRefused, match="desk vte-01 is locked after too many failed logins"):
        from_desk("vte-01", PASSWORD, code(secret, at), at)
    # The operator is not locked: another desk, and the console, still sign them in.
    assert from_desk("vte-02", PASSWORD, code(secret, at), at).actor.desk == "vte-02"
    # The desk's lockout over, its failures count against the desk alone: it locks again at
    # once, and the operator, with two failures against them at most, is never locked by it.
    later = at + timedelta(minutes=31)
    for step in range(6):
        when = later + timedelta(minutes=31 * step)
        with pytest.raises(LoginRefused) as refused:
            from_desk("vte-01", "wrong password!", "000000", when)
        assert type(refused.value) is LoginRefused
        with pytest.raises(DeskRefused, match="locked"):
            from_desk("vte-01", "wrong password!", "000000", when)
    end = later + timedelta(hours=4)
    assert (
        centre.staff.login("somphone", PASSWORD, code(secret, end), now=end).actor.name
        == "somphone"
    )
    # An admin lifts the desk's lockout by enabling it again.
    desks.set_desk_enabled("vte-01", enabled=True, by=None, now=end)
    after = end + timedelta(minutes=1)
    assert from_desk("vte-01", PASSWORD, code(secret, after), after).actor.desk == "vte-01"
    with centre.infra.db.transaction() as session:
        locked = session.execute(
            select(AuditEventRow).where(AuditEventRow.action == "operator.login_failed")
        ).scalars()
        assert all("locked_until" not in e.details for e in locked)  # never the operator
