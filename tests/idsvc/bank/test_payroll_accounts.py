"""Payroll lines that hide who is paid where (issue 15), SQLite and PostgreSQL: one person twice
in a batch, account numbers written with other digits, spaces or separators, and answers that
keep the bank's own identifier of each line (issue 16, item 8)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from idsvc.bank.payroll import (
    AccountKey,
    PayrollItem,
    account_hash,
    normal_account,
    validate_batch,
)
from idsvc.errors import InvalidPayrollBatch
from idsvc.services import Services
from tests.support.payroll import ACTIVE, KEYS, OTHER, RETIRED, THIRD, bank, checks
from tests.support.settings import NOW

PLAIN = "0012345678"
# The same account as PLAIN, as a bank's files or a careless copy-paste may write it.
VARIANTS = [
    "001\u00a0234\u00a05678",  # no-break spaces
    "001\u200b234\u200b5678",  # zero-width spaces (format characters)
    "\u2060001-234-5678\ufeff",  # word joiner, BOM
    "００１２３４５６７８",  # full-width digits
    "\u0ed0\u0ed0\u0ed1\u0ed2\u0ed3\u0ed4\u0ed5\u0ed6\u0ed7\u0ed8",  # Lao digits
    "\u17e0\u17e0\u17e1\u17e2\u17e3\u17e4\u17e5\u17e6\u17e7\u17e8",  # Khmer digits
    "\u0e50\u0e50\u0e51\u0e52\u0e53\u0e54\u0e55\u0e56\u0e57\u0e58",  # Thai digits
    "\u0660\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
    "001/234/5678",
    "001_234_5678",
    "001.234.5678",
    "001-234-5678",
    "001 234\t5678\n",
    "001\u2013234\u20145678",  # en and em dashes
]


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"v{i}" for i in range(len(VARIANTS))])
def test_one_account_one_hash_however_it_is_written(variant: str) -> None:
    assert account_hash(KEYS.account_key, "c1", variant) == account_hash(
        KEYS.account_key, "c1", PLAIN
    )


@pytest.mark.parametrize("key", [KEYS.account_key, b"k", bytes(range(64)), bytes(range(200))])
def test_the_precomputed_key_is_hmac_sha256(key: bytes) -> None:
    # The check's AccountKey (inner and outer states made once) against the standard library,
    # for keys shorter than, as long as and longer than SHA-256's block.
    accounts = (PLAIN, "KH12 3456", VARIANTS[4])
    # One batch: the bank's prefix is absorbed once and shared by every account's hash.
    assert AccountKey(key).hexdigests("c1", accounts) == [
        hmac.new(key, b"c1\x00" + account.encode(), "sha256").hexdigest() for account in accounts
    ]
    for account in accounts:
        assert account_hash(AccountKey(key), "c1", account) == account_hash(key, "c1", account)


@pytest.mark.parametrize(
    "accounts",
    [VARIANTS, [PLAIN, "kh12 3456", "001 234\t5678\n", "9-9"], ["a\nb", "c"], ["x-1", "Y.2"]],
    ids=["mixed", "ascii-with-line-feed", "line-feed-first", "ascii"],
)
def test_a_batch_normalises_each_account_as_alone(accounts: list[str]) -> None:
    # ASCII batches are normalised as one text, an account a line: a line feed inside an
    # account (noise) must neither split it nor shift the accounts after it.
    items = [PayrollItem(employee_id=f"E{i}", account=a) for i, a in enumerate(accounts)]
    items.insert(1, PayrollItem(employee_id="NO-ACCOUNT"))
    expected = {i + (i > 0): normal_account(a) for i, a in enumerate(accounts)}
    assert validate_batch(items) == expected


def test_letters_compare_in_capitals_in_any_width() -> None:
    iban = account_hash(KEYS.account_key, "c1", "KH12 3456")
    for variant in ("kh12-3456", "ＫＨ１２３４５６", "Kh12/3456"):
        assert account_hash(KEYS.account_key, "c1", variant) == iban
    assert account_hash(KEYS.account_key, "c1", "KH12 3457") != iban


def test_hashes_stored_before_the_rule_still_match() -> None:
    """Accounts of digits, latin letters, spaces, hyphens and dots hashed as before: the
    rows stored by earlier runs keep matching."""
    for account, normal in (("001-234-5678", "0012345678"), ("kh12 3456.7", "KH1234567")):
        message = b"c1\x00" + normal.encode()
        old = hmac.new(KEYS.account_key, message, hashlib.sha256).hexdigest()
        assert account_hash(KEYS.account_key, "c1", account) == old


def test_a_disguised_account_is_still_shared(service: Services) -> None:
    use_case, by = checks(service), bank(service)
    use_case.check([PayrollItem(employee_id=ACTIVE, account=PLAIN)], by=by, now=NOW)
    for variant in VARIANTS:
        result = use_case.check([PayrollItem(employee_id=OTHER, account=variant)], by=by, now=NOW)
        assert result[0].reasons == ("ACCOUNT_SHARED",), ascii(variant)


def test_an_account_with_no_digit_or_letter_is_refused(service: Services) -> None:
    use_case, by = checks(service), bank(service)
    for account in ("--", "\u200b\u00a0", "/."):
        with pytest.raises(InvalidPayrollBatch, match="item 2: account"):
            use_case.check(
                [PayrollItem(employee_id=ACTIVE), PayrollItem(employee_id=OTHER, account=account)],
                by=by,
                now=NOW,
            )


def test_one_person_twice_in_a_batch_is_flagged_on_each_line(service: Services) -> None:
    card = service.credentials.issue(THIRD, actor="desk", now=NOW)
    results = checks(service).check(
        [
            PayrollItem(employee_id=ACTIVE, account="111"),
            PayrollItem(employee_id=OTHER, account="222"),
            PayrollItem(employee_id=ACTIVE, account="333"),  # same person, another account
            PayrollItem(employee_id=THIRD),
            PayrollItem(card_serial=card.card_serial),  # the same person by card
            PayrollItem(employee_id=RETIRED, account="444"),
            PayrollItem(employee_id=RETIRED, account="444"),  # same person, same account
            PayrollItem(employee_id="KH-NOPE-000001"),
            PayrollItem(employee_id="KH-NOPE-000001"),  # unknown: already refused
        ],
        by=bank(service),
        now=NOW,
    )
    assert [(r.active_for_payroll, r.reasons) for r in results] == [
        (True, ("DUPLICATE_IN_BATCH",)),
        (True, ()),
        (True, ("DUPLICATE_IN_BATCH",)),
        (True, ("DUPLICATE_IN_BATCH",)),
        (True, ("DUPLICATE_IN_BATCH",)),
        (False, ("HOLDER_INACTIVE", "DUPLICATE_IN_BATCH")),
        (False, ("HOLDER_INACTIVE", "DUPLICATE_IN_BATCH")),
        (False, ("UNKNOWN_EMPLOYEE",)),
        (False, ("UNKNOWN_EMPLOYEE",)),
    ]


def test_each_answer_keeps_the_lines_own_identifier(service: Services) -> None:
    card = service.credentials.issue(THIRD, actor="desk", now=NOW)
    items = [
        PayrollItem(employee_id="KH-NOPE-000001", ref="line-1"),
        PayrollItem(card_serial="NOSUCHCARD01"),
        PayrollItem(card_serial=card.card_serial, ref="line-3"),
        PayrollItem(credential="not a credential", ref="line-4"),
        PayrollItem(employee_id=ACTIVE),
    ]
    results = checks(service).check(items, by=bank(service), now=NOW)
    answers = [r.as_dict(item) for r, item in zip(results, items, strict=True)]
    assert answers == [
        {"employee_id": "KH-NOPE-000001", "ref": "line-1", "status": "unknown",
         "active_for_payroll": False, "reasons": ["UNKNOWN_EMPLOYEE"]},
        {"employee_id": None, "card_serial": "NOSUCHCARD01", "status": "unknown",
         "active_for_payroll": False, "reasons": ["UNKNOWN_CARD"]},
        {"employee_id": THIRD, "card_serial": card.card_serial, "ref": "line-3",
         "status": "active", "active_for_payroll": True, "reasons": []},
        {"employee_id": None, "ref": "line-4", "status": "unknown", "active_for_payroll": False,
         "reasons": ["MALFORMED"]},
        {"employee_id": ACTIVE, "status": "active", "active_for_payroll": True, "reasons": []},
    ]  # fmt: skip
    # The check log names only people of the register, never the bank's unknown identifiers.
    assert results[0].employee_id is None


def test_echoed_identifiers_are_capped(service: Services) -> None:
    use_case, by = checks(service), bank(service)
    for item in (
        PayrollItem(employee_id="E" * 129),
        PayrollItem(card_serial="C" * 129),
        PayrollItem(employee_id=ACTIVE, ref="R" * 129),
    ):
        with pytest.raises(InvalidPayrollBatch, match=r"item 1: .* at most 128"):
            use_case.check([item], by=by, now=NOW)
