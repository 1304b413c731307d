"""Payroll checks on SQLite and PostgreSQL: per-item answers in order, unknown people, card and
credential items, shared accounts (this batch, recent batches, ageing out), the check log, and
a whole batch in a handful of queries."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from idsvc.bank.payroll import MAX_ITEMS, PayrollItem
from idsvc.errors import InvalidPayrollBatch
from idsvc.formats.payroll_csv import PayrollCsvError, parse_payroll_csv, write_payroll_csv
from idsvc.services import Services
from idsvc.storage.client_tables import CheckRow
from idsvc.storage.payroll_tables import PayrollAccountRow
from tests.support.payroll import (
    ACTIVE,
    KEYS,
    OTHER,
    RETIRED,
    THIRD,
    bank,
    checks,
    set_status,
)
from tests.support.settings import NOW

SUSPENDED = "KH-MEF-120077"
DECEASED = "KH-MCS-010003"
BIG = 2500  # several chunks of 1,000 (the bench runs full 10,000-item batches)


def test_answers_per_item_in_order(service: Services) -> None:
    results = checks(service).check(
        [
            PayrollItem(employee_id=RETIRED),
            PayrollItem(employee_id=ACTIVE),
            PayrollItem(employee_id="KH-NOPE-000001"),
            PayrollItem(employee_id=SUSPENDED),
            PayrollItem(employee_id=DECEASED),
            PayrollItem(employee_id=ACTIVE),
        ],
        by=bank(service),
        now=NOW,
    )
    assert [r.as_dict() for r in results] == [
        {"employee_id": RETIRED, "status": "retired", "active_for_payroll": False,
         "reasons": ["HOLDER_INACTIVE"]},
        {"employee_id": ACTIVE, "status": "active", "active_for_payroll": True,
         "reasons": ["DUPLICATE_IN_BATCH"]},
        {"employee_id": None, "status": "unknown", "active_for_payroll": False,
         "reasons": ["UNKNOWN_EMPLOYEE"]},
        {"employee_id": SUSPENDED, "status": "suspended", "active_for_payroll": False,
         "reasons": ["HOLDER_SUSPENDED"]},
        {"employee_id": DECEASED, "status": "deceased", "active_for_payroll": False,
         "reasons": ["HOLDER_INACTIVE"]},
        {"employee_id": ACTIVE, "status": "active", "active_for_payroll": True,
         "reasons": ["DUPLICATE_IN_BATCH"]},  # ACTIVE is on two lines
    ]  # fmt: skip


def test_retirement_shows_in_the_next_check(service: Services) -> None:
    use_case, by = checks(service), bank(service)
    assert use_case.check([PayrollItem(employee_id=OTHER)], by=by, now=NOW)[0].active_for_payroll
    set_status(service, OTHER, "retired")
    after = use_case.check([PayrollItem(employee_id=OTHER)], by=by, now=NOW)[0]
    assert (after.status, after.active_for_payroll) == ("retired", False)


def test_card_serial_and_credential_items(service: Services) -> None:
    old = service.credentials.issue(THIRD, actor="desk", now=NOW)
    new = service.credentials.issue(THIRD, actor="desk", now=NOW)  # supersedes the first card
    lost = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    service.credentials.revoke(lost.id, reason="card lost", by=None, now=NOW)
    forged = new.token[:-8] + ("A" * 8 if not new.token.endswith("A" * 8) else "B" * 8)
    results = checks(service).check(
        [
            PayrollItem(card_serial=new.card_serial),
            PayrollItem(card_serial=old.card_serial),
            PayrollItem(card_serial=lost.card_serial),
            PayrollItem(card_serial="NOSUCHCARD01"),
            PayrollItem(credential=new.token),
            PayrollItem(credential=old.token),
            PayrollItem(credential=forged),
            PayrollItem(credential="not a credential"),
        ],
        by=bank(service),
        now=NOW,
    )
    got = [(r.employee_id, r.active_for_payroll, r.reasons) for r in results]
    twice = "DUPLICATE_IN_BATCH"  # THIRD is named on four lines (two cards, two credentials)
    assert got == [
        (THIRD, True, (twice,)),
        (THIRD, True, ("CARD_SUPERSEDED", twice)),
        # A lost card was revoked; the person is still paid, the bank sees why the card is dead.
        (ACTIVE, True, ("CARD_REVOKED",)),
        (None, False, ("UNKNOWN_CARD",)),
        (THIRD, True, (twice,)),
        (THIRD, True, ("REVOKED", twice)),
        (None, False, ("BAD_SIGNATURE",)),
        (None, False, ("MALFORMED",)),
    ]


def test_shared_account_in_one_batch_is_flagged_on_each(service: Services) -> None:
    results = checks(service).check(
        [
            PayrollItem(employee_id=ACTIVE, account="001-234-5678"),
            PayrollItem(employee_id=OTHER, account="0012345678"),  # same account, other format
            PayrollItem(employee_id=THIRD, account="999-000-1111"),
            PayrollItem(employee_id="KH-NOPE-000001", account="001 234 5678"),
        ],
        by=bank(service),
        now=NOW,
    )
    assert [r.reasons for r in results] == [
        ("ACCOUNT_SHARED",),
        ("ACCOUNT_SHARED",),
        (),
        ("UNKNOWN_EMPLOYEE",),  # unknown people are not counted: they are already refused
    ]
    assert results[0].active_for_payroll  # a flag for a person to look at, not a refusal


def test_shared_account_across_batches_ages_out_and_stays_per_bank(service: Services) -> None:
    use_case, a, b = checks(service, window_days=30), bank(service), bank(service, "bank-b")
    use_case.check([PayrollItem(employee_id=ACTIVE, account="ACC-1")], by=a, now=NOW)
    later = use_case.check(
        [PayrollItem(employee_id=OTHER, account="acc1")], by=a, now=NOW + timedelta(days=14)
    )
    assert later[0].reasons == ("ACCOUNT_SHARED",)
    elsewhere = use_case.check(
        [PayrollItem(employee_id=THIRD, account="ACC-1")], by=b, now=NOW + timedelta(days=14)
    )
    assert elsewhere[0].reasons == ()  # another bank's account ACC-1 is another account
    # ACTIVE was seen with ACC-1 at +0 d, OTHER at +14 d: at +40 d, ACTIVE has aged out of the
    # 30-day window and OTHER has not.
    aged = use_case.check(
        [PayrollItem(employee_id=THIRD, account="ACC-1")], by=a, now=NOW + timedelta(days=40)
    )
    assert aged[0].reasons == ("ACCOUNT_SHARED",)
    # At +80 d THIRD (+40 d) has aged out too: OTHER is alone on the account again.
    alone = use_case.check(
        [PayrollItem(employee_id=OTHER, account="ACC-1")], by=a, now=NOW + timedelta(days=80)
    )
    assert alone[0].reasons == ()


def test_only_a_keyed_hash_of_the_account_is_stored(service: Services) -> None:
    by = bank(service)
    item = PayrollItem(employee_id=ACTIVE, account="KH12 3456 7890")
    checks(service).check([item], by=by, now=NOW)
    with service.infra.db.transaction() as s:
        stored = s.execute(select(PayrollAccountRow.account_hash)).scalars().all()
    assert by.client_id is not None
    message = by.client_id.encode() + b"\x00KH1234567890"
    expected = hmac.new(KEYS.account_key, message, hashlib.sha256).hexdigest()
    assert stored == [expected]
    assert hashlib.sha256(b"KH1234567890").hexdigest() not in stored


def test_every_check_is_logged_without_the_token(service: Services) -> None:
    cred = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    checks(service).check(
        [PayrollItem(employee_id=RETIRED), PayrollItem(credential=cred.token)],
        by=bank(service),
        now=NOW,
    )
    with service.infra.db.transaction() as s:
        rows = s.execute(select(CheckRow).where(CheckRow.kind == "payroll")).scalars().all()
    got = sorted((r.employee_id, r.result, r.reasons, r.client_name) for r in rows)
    assert got == [
        (RETIRED, "retired", "HOLDER_INACTIVE", "bank-a"),
        (ACTIVE, "active", "", "bank-a"),
    ]
    assert all(cred.token not in (r.reasons + r.result) for r in rows)


def test_bad_batches_are_refused_whole(service: Services) -> None:
    use_case, by = checks(service), bank(service)
    for items in (
        [],
        [PayrollItem()],
        [PayrollItem(employee_id=ACTIVE, card_serial="X")],
        [PayrollItem(employee_id=ACTIVE, account=" ")],
        [PayrollItem(employee_id=ACTIVE)] * (MAX_ITEMS + 1),
    ):
        with pytest.raises(InvalidPayrollBatch):
            use_case.check(items, by=by, now=NOW)
    # The refusal names the first wrong line, also deep in a full batch.
    fine = [PayrollItem(employee_id=ACTIVE)] * 9_000
    for wrong in (PayrollItem(), PayrollItem(card_serial="X", credential="a.b.c")):
        items = [*fine, wrong, PayrollItem(), *fine[:998]]  # a full batch: 10,000
        with pytest.raises(InvalidPayrollBatch, match=r"^item 9001: give exactly one"):
            use_case.check(items, by=by, now=NOW)


def test_a_full_batch_costs_a_handful_of_queries(service: Services) -> None:
    use_case, by = checks(service), bank(service)
    items = [
        PayrollItem(employee_id=f"KH-GHOST-{i:06d}" if i % 3 else ACTIVE, account=f"A{i % 4000}")
        for i in range(BIG)
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2])[:30])

    event.listen(service.infra.db.engine, "before_cursor_execute", count)
    try:
        results = use_case.check(items, by=by, now=NOW)
    finally:
        event.remove(service.infra.db.engine, "before_cursor_execute", count)
    assert len(results) == BIG
    assert sum(r.active_for_payroll for r in results) == len(range(0, BIG, 3))
    # The lookups: 2 chunks of ids, 2 of account hashes, one executemany of upserts.
    # (The who-checked log is idsvc.audit.who_checked's business and is counted apart.)
    lookups = [s for s in statements if not s.startswith("INSERT INTO holder_checks")]
    assert len(lookups) < 20, lookups


def test_payroll_csv_round_trip() -> None:
    rows = parse_payroll_csv(
        "\ufeffemployee_id,account,card_serial\r\nKH-MCS-010002,001-2,\r\n\r\n,,7K3M\r\n".encode()
    )
    assert rows == [{"employee_id": "KH-MCS-010002", "account": "001-2"}, {"card_serial": "7K3M"}]
    for bad in (b"", b"name\r\nx\r\n", b"account\r\n1\r\n", b'employee_id\r\n"x\r\n', b"\xff"):
        with pytest.raises(PayrollCsvError):
            parse_payroll_csv(bad)
    out = write_payroll_csv(
        [
            {"employee_id": ACTIVE, "status": "active", "active_for_payroll": True, "reasons": []},
            {
                "employee_id": None,
                "status": "unknown",
                "active_for_payroll": False,
                "reasons": ["UNKNOWN_CARD"],
            },
        ]
    )
    assert out.decode().splitlines() == [
        "item,employee_id,status,active_for_payroll,reasons,card_serial,ref",
        f"1,{ACTIVE},active,true,,,",
        "2,,unknown,false,UNKNOWN_CARD,,",
    ]
