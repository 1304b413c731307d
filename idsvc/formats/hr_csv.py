"""Parse an HR export (CSV) into typed, normalised register records.

The file is UTF-8, with or without a byte-order mark, with CRLF or LF line ends, and has
exactly these columns, in any order::

    employee_id, name_local, name_latin, sex, date_of_birth, ministry, unit, position,
    grade, category, status, status_date, hire_date

A problem with the file as a whole (not UTF-8, missing or unknown columns, broken quoting)
raises; a problem with one row rejects that row and the others still parse::

    HrFileError          the file cannot be read as an HR export at all
    (RowReject)          a value, not an exception: line, employee id (when well-formed), reason

Row rules: every field is stripped and NFC-normalised, nothing else (Lao and Khmer text keeps
its script: no case folding, no transliteration). ``employee_id`` matches
``EMPLOYEE_ID_PATTERN``: a two-letter country code, an agency code of 1-12 capital letters or
digits, and a serial of 4-12 digits, joined by hyphens (``LA-MOHA-000101``,
``KH-MOEYS-220931``). Dates are ``YYYY-MM-DD``, not in the future (relative to ``today``), and
consistent (born before hired, hired at 15 or older, status change not before hiring). A field
that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab, CR) is refused, so the
register can never hand one back to a spreadsheet. The first row with an employee id wins; a
later row with the same id is rejected, whatever state the first was in: the file contradicts
itself and a person must fix it.

Line numbers are physical lines of the file (the header is line 1), so an operator can open the
file at the reported line even when a quoted field spans lines. Reasons name the column and the
rule, never the value: the only data they carry is the employee id.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

__all__ = [
    "COLUMNS",
    "EMPLOYEE_ID_PATTERN",
    "REQUIRED_COLUMNS",
    "Category",
    "EmploymentStatus",
    "HrFileError",
    "HrParseResult",
    "HrRecord",
    "RowReject",
    "parse_hr_csv",
]

COLUMNS: Final = (
    "employee_id",
    "name_local",
    "name_latin",
    "sex",
    "date_of_birth",
    "ministry",
    "unit",
    "position",
    "grade",
    "category",
    "status",
    "status_date",
    "hire_date",
)
REQUIRED_COLUMNS: Final = frozenset(
    {
        "employee_id",
        "name_local",
        "name_latin",
        "date_of_birth",
        "ministry",
        "category",
        "status",
        "status_date",
    }
)
EMPLOYEE_ID_PATTERN: Final = r"[A-Z]{2}-[A-Z0-9]{1,12}-[0-9]{4,12}"
SEXES: Final = frozenset({"F", "M", "X", ""})
MIN_AGE_AT_HIRE: Final = 15
EARLIEST_BIRTH: Final = date(1900, 1, 1)

# Sized to the register's columns, so a long value is a row reject, not a database error.
_MAX_LENGTH: Final = {
    "name_local": 255,
    "name_latin": 255,
    "ministry": 255,
    "unit": 255,
    "position": 255,
    "grade": 32,
}
_DATE_COLUMNS: Final = ("date_of_birth", "status_date", "hire_date")
_ID_RE: Final = re.compile(EMPLOYEE_ID_PATTERN, re.ASCII)
# [0-9], not \d: \d would also take Lao and Khmer digits, which date() would then reject late.
_ISO_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_FORMULA_START: Final = frozenset("=+-@\t\r")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class HrFileError(Exception):
    """The file as a whole is unusable; nothing from it should be imported."""


class Category(StrEnum):
    CIVIL_SERVANT = "civil_servant"
    CONTRACT_OFFICIAL = "contract_official"
    CONTRACT_TEACHER = "contract_teacher"
    TEMPORARY = "temporary"


class EmploymentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"
    DISMISSED = "dismissed"
    DECEASED = "deceased"


# Employment that has ended for good: credentials are revoked, verification says HOLDER_INACTIVE.
ENDED_STATUSES: frozenset[str] = frozenset(
    {EmploymentStatus.RETIRED, EmploymentStatus.DISMISSED, EmploymentStatus.DECEASED}
)


@dataclass(frozen=True, slots=True)
class HrRecord:
    """One person as HR exported them. Optional text fields are "" when empty."""

    employee_id: str
    name_local: str
    name_latin: str
    sex: str
    date_of_birth: date
    ministry: str
    unit: str
    position: str
    grade: str
    category: Category
    status: EmploymentStatus
    status_date: date
    hire_date: date | None

    def content_hash(self) -> str:
        """SHA-256 (hex) of the normalised fields: equal exactly when the rows are equal.

        The encoding is a JSON array behind a version tag, so no choice of field values can
        make two different records collide by shifting text between fields.
        """
        values = [
            "hr-record/1",
            self.employee_id,
            self.name_local,
            self.name_latin,
            self.sex,
            self.date_of_birth.isoformat(),
            self.ministry,
            self.unit,
            self.position,
            self.grade,
            self.category.value,
            self.status.value,
            self.status_date.isoformat(),
            self.hire_date.isoformat() if self.hire_date else None,
        ]
        encoded = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class RowReject:
    line: int
    employee_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class HrParseResult:
    records: list[HrRecord] = field(default_factory=list)
    rejects: list[RowReject] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decode(data: bytes) -> str:
    offset = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HrFileError(
            f"not UTF-8 at byte {exc.start + offset}: save the export as UTF-8"
        ) from None


def _check_header(header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise HrFileError(f"repeated columns: {', '.join(repr(n[:40]) for n in repeated)}")
    missing = [c for c in COLUMNS if c not in names]
    unknown = [n for n in names if n not in COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        # Header names are the export's own labels, not personal data; cut them short anyway.
        problems.append(f"unknown columns: {', '.join(repr(n[:40]) for n in unknown)}")
    if problems:
        raise HrFileError("; ".join(problems))
    return {name: i for i, name in enumerate(names)}


def _parse_date(values: dict[str, str], column: str, today: date) -> date | None:
    text = values[column]
    if not text:
        return None
    if _ISO_DATE_RE.fullmatch(text) is None:
        raise _Reject(f"{column} is not a YYYY-MM-DD date")
    try:
        # fromisoformat alone would also take 20240101 and 2024-W01-1.
        value = date.fromisoformat(text)
    except ValueError:
        raise _Reject(f"{column} is not a valid date") from None
    if value > today:
        raise _Reject(f"{column} is in the future")
    return value


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _record(values: dict[str, str], today: date) -> HrRecord:
    for column in COLUMNS:
        if column in REQUIRED_COLUMNS and not values[column]:
            raise _Reject(f"missing {column}")
        limit = _MAX_LENGTH.get(column)
        if limit is not None and len(values[column]) > limit:
            raise _Reject(f"{column} longer than {limit} characters")
    if values["sex"] not in SEXES:
        raise _Reject("sex must be F, M, X or empty")
    try:
        category = Category(values["category"])
    except ValueError:
        raise _Reject(f"category must be one of {', '.join(Category)}") from None
    try:
        status = EmploymentStatus(values["status"])
    except ValueError:
        raise _Reject(f"status must be one of {', '.join(EmploymentStatus)}") from None

    born = _parse_date(values, "date_of_birth", today)
    status_date = _parse_date(values, "status_date", today)
    hired = _parse_date(values, "hire_date", today)
    assert born is not None and status_date is not None  # required columns, checked above
    if born < EARLIEST_BIRTH:
        raise _Reject(f"date_of_birth before {EARLIEST_BIRTH.year}")
    if status_date <= born:
        raise _Reject("status_date not after date_of_birth")
    if hired is not None:
        if hired <= born:
            raise _Reject("hire_date not after date_of_birth")
        if hired < _add_years(born, MIN_AGE_AT_HIRE):
            raise _Reject(f"hire_date before age {MIN_AGE_AT_HIRE}")
        if status_date < hired:
            raise _Reject("status_date before hire_date")

    return HrRecord(
        employee_id=values["employee_id"],
        name_local=values["name_local"],
        name_latin=values["name_latin"],
        sex=values["sex"],
        date_of_birth=born,
        ministry=values["ministry"],
        unit=values["unit"],
        position=values["position"],
        grade=values["grade"],
        category=category,
        status=status,
        status_date=status_date,
        hire_date=hired,
    )


def _clean(row: list[str], index: dict[str, int]) -> dict[str, str]:
    values: dict[str, str] = {}
    for column in COLUMNS:
        raw = row[index[column]]
        text = raw.strip()
        if raw[:1] in _FORMULA_START or text[:1] in _FORMULA_START:
            raise _Reject(f"formula-like text in column {column}")
        if _CONTROL_RE.search(text):
            raise _Reject(f"control character in column {column}")
        values[column] = unicodedata.normalize("NFC", text)
    return values


def parse_hr_csv(data: bytes, *, today: date) -> HrParseResult:
    """Parse an HR export. Raises ``HrFileError``; row problems become ``RowReject``s."""
    text = _decode(data)
    # newline="" hands line ends to the csv module, which keeps newlines inside quoted fields
    # and counts physical lines in line_num.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    result = HrParseResult()
    try:
        header: list[str] | None = next(reader, None)
        while header is not None and not any(name.strip() for name in header):
            header = next(reader, None)
        if header is None:
            raise HrFileError("empty file: no header row")
        index = _check_header(header)
        id_column = index["employee_id"]
        first_line: dict[str, int] = {}
        last_line = reader.line_num
        for row in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(value.strip() for value in row):
                continue  # blank lines and rows of bare commas that spreadsheets leave behind

            candidate = (
                unicodedata.normalize("NFC", row[id_column].strip()) if id_column < len(row) else ""
            )
            employee_id = candidate if _ID_RE.fullmatch(candidate) else None
            duplicate_of = first_line.get(employee_id) if employee_id else None
            if employee_id and duplicate_of is None:
                first_line[employee_id] = line

            try:
                if len(row) != len(COLUMNS):
                    raise _Reject(f"expected {len(COLUMNS)} fields, got {len(row)}")
                if duplicate_of is not None:
                    raise _Reject(f"duplicate employee_id (first on line {duplicate_of})")
                values = _clean(row, index)
                if not values["employee_id"]:
                    raise _Reject("missing employee_id")
                if employee_id is None:
                    raise _Reject("employee_id does not match the pattern AA-AGENCY-0000")
                result.records.append(_record(values, today))
            except _Reject as rej:
                result.rejects.append(RowReject(line, employee_id, rej.reason))
    except csv.Error as exc:
        raise HrFileError(f"malformed CSV at line {reader.line_num}: {exc}") from None
    return result
