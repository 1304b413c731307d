"""The payroll reason codes exist once (``idsvc.bank.payroll_reasons``): every code has its
meaning for a bank, and the README's table and the OpenAPI description say the same."""

from __future__ import annotations

import re
from pathlib import Path

from idsvc.bank.payroll_reasons import MEANING, PayrollReason
from mobile_api.schemas.payroll import PayrollResult

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_table(text: str) -> dict[str, str]:
    section = text.split("## Payroll reason codes", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([A-Z_]+)` \| (.+) \|$", section, re.M))


def test_every_code_has_its_meaning() -> None:
    assert set(MEANING) == set(PayrollReason)


def test_the_readme_says_what_the_table_says() -> None:
    assert readme_table(README.read_text(encoding="utf-8")) == {
        str(code): text for code, text in MEANING.items()
    }


def test_the_check_catches_a_readme_row_that_drifted() -> None:
    drifted = README.read_text(encoding="utf-8").replace("`NO_CARD` | active", "`NO_CARD` | idle")
    assert readme_table(drifted) != {str(code): text for code, text in MEANING.items()}


def test_the_openapi_names_every_code() -> None:
    description = PayrollResult.model_fields["reasons"].description or ""
    assert all(f"{code}: {MEANING[code]}" in description for code in PayrollReason)
