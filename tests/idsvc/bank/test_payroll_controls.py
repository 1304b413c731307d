"""The ghost-worker flags of the payroll check, on SQLite and PostgreSQL, on a register built
for them: each flag is raised on exactly the people it should be and on nobody else, near misses
included (a contract ending today, 59 years old, the same name born another day, the national id
of a record that has ended, another bank's account)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta

import pytest

from idsvc.audit.who_checked import CheckedBy
from idsvc.bank.payroll import PayrollChecks, PayrollItem
from idsvc.bank.payroll_controls import PayrollControls, RetirementAges
from idsvc.register.photos import Photos
from idsvc.services import Services
from tests.support.card_print import portrait_bytes
from tests.support.holder_phone import give_phone
from tests.support.payroll import KEYS, add_client, csv_of
from tests.support.query_plans import recorded
from tests.support.settings import NOW

TODAY = NOW.date()
# The read of a bank's earlier accounts by employee (ACCOUNT_CHANGED), on SQLite and PostgreSQL.
EARLIER_ACCOUNTS = re.compile(r"WHERE payroll_accounts\.employee_id (IN|= ANY)")
LONG_AGO = NOW - timedelta(days=200)  # registered then: past the 90-day enrolment grace
RECENTLY = NOW - timedelta(days=10)  # registered then: within the grace


def born(years: int, days: int = 0) -> str:
    return (date(TODAY.year - years, TODAY.month, TODAY.day) + timedelta(days=days)).isoformat()


def person(employee_id: str, **values: str) -> dict[str, str]:
    return {
        "employee_id": employee_id,
        "name_local": "ສົມພອນ",
        "name_latin": f"Person {employee_id[-4:]}",
        "sex": "M",
        "date_of_birth": born(40),
        "ministry": "Ministry of Civil Service",
        "unit": "",
        "position": "Officer",
        "grade": "K3",
        "category": "civil_servant",
        "status": "active",
        "status_date": "2010-01-01",
        "hire_date": "2010-01-01",
        "office": "Phnom Penh",
        "ministry_local": "",
        "position_local": "",
        "contract_end": "",
        "national_id": "",
    } | values


REGISTER = [
    person(
        "KH-MCS-900001",
        category="contract_official",
        contract_end=(TODAY - timedelta(days=1)).isoformat(),
    ),
    person("KH-MCS-900002", category="temporary", contract_end=TODAY.isoformat()),  # last day
    person("KH-MCS-900003", date_of_birth=born(61)),
    person("KH-MCS-900004", date_of_birth=born(60, days=1)),  # 60 tomorrow
    person("KH-MCS-900005", sex="F", date_of_birth=born(56)),  # women retire at 55 here
    person("KH-MCS-900006", sex="M", date_of_birth=born(56)),
    person("KH-MCS-900007", national_id="1234 5678 9"),
    person("KH-MCS-900008", national_id="123456789"),  # the same id, written otherwise
    person("KH-MCS-900009", name_latin="Sok Dara", date_of_birth="1985-02-03"),
    person("KH-MCS-900010", name_latin="SOK  dara", date_of_birth="1985-02-03"),
    person("KH-MCS-900011", name_latin="Sok Dara", date_of_birth="1985-02-04"),  # another day
    person("KH-MCS-900012", national_id="A7654321", status="retired", status_date="2020-01-01"),
    person("KH-MCS-900013", national_id="A7654321"),  # re-hired: the old record has ended
]
NEWCOMER = person("KH-MCS-900020")  # registered ten days ago: within the enrolment grace
ENROLLED = "KH-MCS-900003"  # has a photo and a live card: seen at a desk


@pytest.fixture
def register(service: Services) -> Services:
    service.register.import_hr(csv_of(REGISTER), source_name="r.csv", actor="hr", now=LONG_AGO)
    service.register.import_hr(csv_of([NEWCOMER]), source_name="n.csv", actor="hr", now=RECENTLY)
    Photos(service.infra.db).store(ENROLLED, portrait_bytes(), actor="desk", now=LONG_AGO)
    service.credentials.issue(ENROLLED, actor="desk", now=LONG_AGO)
    return service


def checks(service: Services) -> PayrollChecks:
    return PayrollChecks(
        service.infra.db,
        account_key=KEYS.account_key,
        account_window=timedelta(days=90),
        verify_credential=lambda text, now: service.verification.verify(text, now=now),
        controls=PayrollControls(RetirementAges(60, {("F", ""): 55}), timedelta(days=90)),
    )


def flagged(results: list[dict[str, object]], code: str) -> set[str]:
    return {str(r["employee_id"]) for r in results if code in r["reasons"]}  # type: ignore[operator]


def run(
    service: Services, employee_ids: list[str], when: datetime = NOW
) -> list[dict[str, object]]:
    client_id, _ = add_client(service, f"bank-{uuid.uuid4().hex[:8]}")
    bank = CheckedBy(client_id, "bank", "127.0.0.1")
    items = [PayrollItem(employee_id=e) for e in employee_ids]
    return [
        r.as_dict(i)
        for r, i in zip(checks(service).check(items, by=bank, now=when), items, strict=True)
    ]


EVERYONE = [p["employee_id"] for p in REGISTER] + [NEWCOMER["employee_id"]]


def test_each_flag_lands_on_exactly_its_people(register: Services) -> None:
    results = run(register, EVERYONE)
    assert flagged(results, "CONTRACT_ENDED") == {"KH-MCS-900001"}
    assert flagged(results, "PAST_RETIREMENT_AGE") == {"KH-MCS-900003", "KH-MCS-900005"}
    assert flagged(results, "DUPLICATE_IDENTITY") == {
        "KH-MCS-900007",
        "KH-MCS-900008",
        "KH-MCS-900009",
        "KH-MCS-900010",
    }
    # Past the grace and never at a desk: everyone registered long ago but the enrolled one and
    # the retired record (not active); not the newcomer.
    assert flagged(results, "NO_CARD") == set(EVERYONE) - {
        ENROLLED,
        "KH-MCS-900012",
        "KH-MCS-900020",
    }
    answers = {r["employee_id"]: r for r in results}
    # A contract that ended stops the salary; one ending today does not yet; the rest are flags.
    assert answers["KH-MCS-900001"]["active_for_payroll"] is False
    assert answers["KH-MCS-900002"]["active_for_payroll"] is True
    assert answers["KH-MCS-900003"]["active_for_payroll"] is True
    assert answers["KH-MCS-900007"]["active_for_payroll"] is True


def test_a_flag_holds_when_the_person_is_checked_alone(register: Services) -> None:
    # Duplicates are found against the whole register, not only the batch.
    (alone,) = run(register, ["KH-MCS-900010"])
    assert "DUPLICATE_IDENTITY" in alone["reasons"]  # type: ignore[operator]
    (unknown,) = run(register, ["KH-MCS-999999"])
    assert unknown["employee_id"] == "KH-MCS-999999" and unknown["reasons"] == ["UNKNOWN_EMPLOYEE"]


def test_a_changed_account_is_flagged_per_bank_for_its_window(register: Services) -> None:
    payroll = checks(register)
    bank_a = CheckedBy(add_client(register, "bank-a")[0], "bank-a", "127.0.0.1")
    bank_b = CheckedBy(add_client(register, "bank-b")[0], "bank-b", "127.0.0.1")
    someone = "KH-MCS-900004"

    def reasons(bank: CheckedBy, account: str, when: datetime) -> tuple[str, ...]:
        (result,) = payroll.check(
            [PayrollItem(employee_id=someone, account=account)], by=bank, now=when
        )
        return result.reasons

    assert "ACCOUNT_CHANGED" not in reasons(bank_a, "LA01 111", NOW - timedelta(days=20))
    assert "ACCOUNT_CHANGED" not in reasons(bank_a, "la01-111", NOW - timedelta(days=5))  # same
    assert "ACCOUNT_CHANGED" in reasons(bank_a, "LA01 222", NOW)
    assert "ACCOUNT_CHANGED" in reasons(bank_a, "LA01 222", NOW + timedelta(days=44))
    assert "ACCOUNT_CHANGED" not in reasons(bank_a, "LA01 222", NOW + timedelta(days=46))
    # Another bank has no history with this person: nothing leaks from bank A's.
    assert "ACCOUNT_CHANGED" not in reasons(bank_b, "XX99 999", NOW)


def test_a_bank_s_earlier_accounts_are_read_only_when_one_may_have_changed(
    register: Services,
) -> None:
    # The steady state of a payroll is a bank paying everyone where it paid them last time: the
    # check then reads no one's earlier accounts (the read is for possible changes only), and
    # still flags the one salary that moved, until the change window has passed.
    payroll = checks(register)
    bank = CheckedBy(add_client(register, "bank-steady")[0], "bank-steady", "127.0.0.1")
    staff = ["KH-MCS-900002", "KH-MCS-900004", "KH-MCS-900006", "KH-MCS-900013"]
    moved = "KH-MCS-900006"

    def check(when: datetime, accounts: dict[str, str]) -> tuple[set[str], int]:
        items = [PayrollItem(employee_id=e, account=accounts.get(e, f"LA{e[-4:]}")) for e in staff]
        with recorded(register.infra.db.engine, lambda: "payroll") as seen:
            results = payroll.check(items, by=bank, now=when)
        reads = [s for s in seen if EARLIER_ACCOUNTS.search(s.sql)]
        return {str(r.employee_id) for r in results if "ACCOUNT_CHANGED" in r.reasons}, len(reads)

    assert check(NOW - timedelta(days=60), {}) == (set(), 0)  # the bank's first check
    assert check(NOW - timedelta(days=30), {}) == (set(), 0)
    assert check(NOW, {}) == (set(), 0)
    assert check(NOW + timedelta(days=1), {moved: "LA99 9999"}) == ({moved}, 1)
    assert check(NOW + timedelta(days=30), {moved: "LA99 9999"}) == ({moved}, 1)
    # Past the window the new account is simply the account: nothing read, nothing flagged.
    assert check(NOW + timedelta(days=60), {moved: "LA99 9999"}) == (set(), 0)
    # Back to the account of before: first paid into long ago, so not a new account either.
    assert check(NOW + timedelta(days=61), {}) == (set(), 0)


def test_an_account_paid_before_the_shared_account_window_is_no_change(
    register: Services,
) -> None:
    # The accounts of the bank's last 90 days (the ACCOUNT_SHARED window) do not hold an account
    # it paid into 200 days ago; the check reads the person's earlier accounts to tell.
    payroll = checks(register)
    bank = CheckedBy(add_client(register, "bank-slow")[0], "bank-slow", "127.0.0.1")

    def reasons(account: str, when: datetime) -> tuple[str, ...]:
        item = PayrollItem(employee_id="KH-MCS-900004", account=account)
        (result,) = payroll.check([item], by=bank, now=when)
        return result.reasons

    assert "ACCOUNT_CHANGED" not in reasons("LA01 111", NOW - timedelta(days=200))
    assert "ACCOUNT_CHANGED" not in reasons("LA01 111", NOW)
    assert "ACCOUNT_CHANGED" in reasons("LA01 222", NOW + timedelta(days=1))


def test_the_most_specific_retirement_age_wins(register: Services) -> None:
    # A 58-year-old woman teaching on contract: women retire at 55 here, contract teachers at
    # 65, and women teaching on contract at 57, which is the one that applies.
    teacher = person(
        "KH-MCS-900030",
        sex="F",
        date_of_birth=born(58),
        category="contract_teacher",
        contract_end=(TODAY + timedelta(days=300)).isoformat(),
    )
    register.register.import_hr(csv_of([teacher]), source_name="t.csv", actor="hr", now=LONG_AGO)
    ages = {("F", ""): 55, ("", "contract_teacher"): 65, ("F", "contract_teacher"): 57}
    client_id, _ = add_client(register, "bank-ages")
    bank = CheckedBy(client_id, "bank-ages", "127.0.0.1")
    for overrides, flagged_too in (
        (ages, True),
        ({("F", ""): 55, ("", "contract_teacher"): 65}, False),
    ):
        payroll = PayrollChecks(
            register.infra.db,
            account_key=KEYS.account_key,
            account_window=timedelta(days=90),
            verify_credential=lambda text, now: register.verification.verify(text, now=now),
            controls=PayrollControls(RetirementAges(60, overrides)),
        )
        (result,) = payroll.check([PayrollItem(employee_id="KH-MCS-900030")], by=bank, now=NOW)
        assert ("PAST_RETIREMENT_AGE" in result.reasons) is flagged_too, overrides


def test_a_phone_credential_is_no_card(register: Services) -> None:
    """The headcount is the in-person enrolment at a desk: a phone credential (offered by an
    admin, taken anywhere) does not clear NO_CARD, and its serial is no ATM card to pay
    against."""
    phone = give_phone(register, "KH-MCS-900006", now=NOW)
    (result,) = run(register, ["KH-MCS-900006"])
    assert "NO_CARD" in result["reasons"]  # type: ignore[operator]
    serial = register.credentials.credential(phone.credential_id).card_serial
    client_id, _ = add_client(register, "bank-phone")
    (line,) = checks(register).check(
        [PayrollItem(card_serial=serial)], by=CheckedBy(client_id, "bank", "127.0.0.1"), now=NOW
    )
    assert line.employee_id is None and line.reasons == ("UNKNOWN_CARD",)
