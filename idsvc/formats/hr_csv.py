"""Parse an HR export (CSV) into typed, normalised register records.

The file is UTF-8, with or without a byte-order mark, with CRLF or LF line ends, and has
these columns, in any order::

    employee_id, name_local, name_latin, sex, date_of_birth, ministry, unit, position,
    grade, category, status, status_date, hire_date

and may have these (``OPTIONAL_COLUMNS``; a column left out counts as empty)::

    office, ministry_local, position_local, contract_end, national_id

``office`` is the office (province) the person belongs to, in the format of operators' and
desks' offices (``OFFICE_PATTERN``): operators act only for the people of their office.
``ministry_local`` and ``position_local`` are the ministry and position in the national script,
for the card face. ``contract_end`` is the last day of a contract (``CONTRACT_CATEGORIES`` must
have one where the column exists, a civil servant must not: a credential never outlives it, and
past it the person is no longer paid). ``national_id`` is the national ID number, kept only to
find one person recorded twice: it is normalised to capital letters and digits (spaces, hyphens
and dots dropped) and, like every value, never appears in a reason. Any other column name is
refused.

A problem with the file as a whole (not UTF-8, missing or unknown columns, broken quoting)
raises; a problem with one row rejects that row and the others still parse::

    HrFileError          the file cannot be read as an HR export at all
    (RowReject)          a value, not an exception: line, employee id (when well-formed), reason

Row rules: every field is stripped and NFC-normalised, nothing else (Lao and Khmer text keeps
its script: no case folding, no transliteration). ``employee_id`` matches
``EMPLOYEE_ID_PATTERN``: a two-letter country code, an agency code of 1-12 capital letters or
digits, and a serial of 4-12 digits, joined by hyphens (``LA-MOHA-000101``,
``KH-MOEYS-220931``). Dates are ``YYYY-MM-DD``, not in the future (relative to ``today``), and
consistent (born before hired, hired at 15 or older, status change not before hiring); only
``contract_end`` may lie ahead, at most ``MAX_CONTRACT_YEARS`` (a typo of a century must not
keep someone paid), and not before hiring or the status date of an active person. A field
that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab, CR) is refused, so the
register can never hand one back to a spreadsheet. Characters that draw nothing, or draw
unlike what is stored, are refused in every field (``idsvc.formats.text_rules``). A field
over ``MAX_FIELD_CHARS`` or a row over ``MAX_ROW_BYTES`` rejects that row only. The first row
with an employee id wins; a later row with the same id is rejected, whatever state the first
was in: the file contradicts itself and a person must fix it.

The same row rules serve every source (``HrRowRules``, ``check_rows``): ``read_hr_csv`` streams
a file into rows, holding one record at a time, and refuses a file over ``max_file_bytes``
(``HrFileError``); the HR API hands its JSON records to the same rules.

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import BinaryIO, Final

from idsvc.formats.text_rules import FORMULA_START, unwanted_character

__all__ = [
    "COLUMNS",
    "CONTRACT_CATEGORIES",
    "DEFAULT_MAX_FILE_BYTES",
    "EMPLOYEE_ID_PATTERN",
    "MAX_CONTRACT_YEARS",
    "MAX_FIELD_CHARS",
    "MAX_ROW_BYTES",
    "OFFICE_PATTERN",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Category",
    "EmploymentStatus",
    "HrFileError",
    "HrParseResult",
    "HrRecord",
    "HrRow",
    "HrRowRules",
    "RowReject",
    "check_rows",
    "parse_hr_csv",
    "read_hr_csv",
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
    "office",
    "ministry_local",
    "position_local",
    "contract_end",
    "national_id",
)
# Added after the first exports were written: a header may leave them out.
OPTIONAL_COLUMNS: Final = frozenset(
    {"office", "ministry_local", "position_local", "contract_end", "national_id"}
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
# An office (province) of people, operators and desks: 1-64 ASCII letters, digits, space, '.',
# '_', '-', starting and ending with no space, so "Vientiane " can never differ from
# "Vientiane". ASCII on purpose: offices are compared exactly, and a look-alike letter from
# another script must not make a second "Vientiane".
OFFICE_PATTERN: Final = r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?"
OFFICE_RULE: Final = "1-64 characters: letters, digits, space, '.', '_', '-'"
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
    "office": 64,
    "ministry_local": 255,
    "position_local": 255,
}
# National ID numbers: letters and digits once spaces, hyphens and dots are dropped.
_NATIONAL_ID_RE: Final = re.compile(r"[A-Z0-9]{4,32}", re.ASCII)
_NATIONAL_ID_DROPPED: Final = str.maketrans("", "", " -.")
MAX_CONTRACT_YEARS: Final = 10
_DATE_COLUMNS: Final = ("date_of_birth", "status_date", "hire_date")
_ID_RE: Final = re.compile(EMPLOYEE_ID_PATTERN, re.ASCII)
# [0-9], not \d: \d would also take Lao and Khmer digits, which date() would then reject late.
_ISO_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_OFFICE_RE: Final = re.compile(OFFICE_PATTERN, re.ASCII)
_COLUMN_SET: Final = frozenset(COLUMNS)
# A row of the register is a few hundred bytes (names are at most 255 characters); a field of
# more than this is not a name, and a row of more than MAX_ROW_BYTES is rejected on its own
# without being held whole in memory.
MAX_FIELD_CHARS: Final = 4096
MAX_ROW_BYTES: Final = 16 * 1024
DEFAULT_MAX_FILE_BYTES: Final = 256 * 1024 * 1024


class HrFileError(Exception):
    """The file as a whole is unusable; nothing from it should be imported."""


class Category(StrEnum):
    CIVIL_SERVANT = "civil_servant"
    CONTRACT_OFFICIAL = "contract_official"
    CONTRACT_TEACHER = "contract_teacher"
    TEMPORARY = "temporary"


# Categories employed until a date: their rows must carry contract_end.
CONTRACT_CATEGORIES: Final = frozenset(
    {Category.CONTRACT_OFFICIAL, Category.CONTRACT_TEACHER, Category.TEMPORARY}
)


class EmploymentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"
    DISMISSED = "dismissed"
    DECEASED = "deceased"
    # Set by the sweep the day after a contract's last day (idsvc.register.contracts); HR may
    # send it too. Not final: an extension recorded in HR makes the person active again.
    CONTRACT_ENDED = "contract_ended"


# Employment that has ended for good: credentials are revoked, verification says HOLDER_INACTIVE.
ENDED_STATUSES: frozenset[str] = frozenset(
    {
        EmploymentStatus.RETIRED,
        EmploymentStatus.DISMISSED,
        EmploymentStatus.DECEASED,
        EmploymentStatus.CONTRACT_ENDED,
    }
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
    office: str = ""
    ministry_local: str = ""
    position_local: str = ""
    contract_end: date | None = None
    national_id: str = ""

    def content_hash(self) -> str:
        """SHA-256 (hex) of the normalised fields: equal exactly when the rows are equal.

        The encoding is a JSON array behind a version tag, so no choice of field values can
        make two different records collide by shifting text between fields. A record without
        the optional fields keeps its "hr-record/1" hash (what the register stored before they
        existed: an unchanged export stays unchanged); one with any of the first three is
        "hr-record/2", the same array with the three appended; one with a contract end or a
        national id is "hr-record/3", with all five appended.
        """
        extra: list[str | None] = [self.office, self.ministry_local, self.position_local]
        tag = "hr-record/2" if any(extra) else "hr-record/1"
        if self.contract_end is not None or self.national_id:
            tag = "hr-record/3"
            end = self.contract_end.isoformat() if self.contract_end else None
            extra += [end, self.national_id]
        values = [
            tag,
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
            *(extra if tag != "hr-record/1" else []),
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


def _check_header(header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise HrFileError(f"repeated columns: {', '.join(repr(n[:40]) for n in repeated)}")
    missing = [c for c in COLUMNS if c not in names and c not in OPTIONAL_COLUMNS]
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


def _parse_date(
    values: dict[str, str], column: str, today: date, *, latest: date | None = None
) -> date | None:
    """The column's date, or None when empty; refused after ``latest`` (default: today)."""
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
    if latest is None and value > today:
        raise _Reject(f"{column} is in the future")
    if latest is not None and value > latest:
        raise _Reject(f"{column} more than {MAX_CONTRACT_YEARS} years ahead")
    return value


def _national_id(text: str) -> str:
    if not text:
        return ""
    value = text.translate(_NATIONAL_ID_DROPPED).upper()
    if _NATIONAL_ID_RE.fullmatch(value) is None:
        raise _Reject("national_id must be 4-32 letters and digits (spaces, '-' and '.' allowed)")
    return value


def add_years(day: date, years: int) -> date:
    """``day`` moved by whole years (negative: back); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _record(values: dict[str, str], today: date, given: Iterable[str]) -> HrRecord:
    """``given``: the columns the source has. An export written before ``contract_end`` existed
    has no such column, and its contract staff still import (with no end date known)."""
    for column in COLUMNS:
        if column in REQUIRED_COLUMNS and not values[column]:
            raise _Reject(f"missing {column}")
        limit = _MAX_LENGTH.get(column)
        if limit is not None and len(values[column]) > limit:
            raise _Reject(f"{column} longer than {limit} characters")
    if values["office"] and _OFFICE_RE.fullmatch(values["office"]) is None:
        raise _Reject(f"office must be {OFFICE_RULE}")
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
        if hired < add_years(born, MIN_AGE_AT_HIRE):
            raise _Reject(f"hire_date before age {MIN_AGE_AT_HIRE}")
        if status_date < hired:
            raise _Reject("status_date before hire_date")
    contract_end = _parse_date(
        values, "contract_end", today, latest=add_years(today, MAX_CONTRACT_YEARS)
    )
    if contract_end is None and category in CONTRACT_CATEGORIES and "contract_end" in given:
        raise _Reject(f"missing contract_end (required for category {category})")
    if contract_end is not None:
        if category not in CONTRACT_CATEGORIES:
            raise _Reject(f"contract_end given for category {category}, which has no contract")
        if hired is not None and contract_end < hired:
            raise _Reject("contract_end before hire_date")
        if contract_end < add_years(born, MIN_AGE_AT_HIRE):
            raise _Reject(f"contract_end before age {MIN_AGE_AT_HIRE}")

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
        office=values["office"],
        ministry_local=values["ministry_local"],
        position_local=values["position_local"],
        contract_end=contract_end,
        national_id=_national_id(values["national_id"]),
    )


def _clean(row: Mapping[str, object]) -> dict[str, str]:
    unknown = sorted(row.keys() - _COLUMN_SET)
    if unknown:
        raise _Reject(f"unknown field {unknown[0][:40]!r}")
    values: dict[str, str] = {}
    for column in COLUMNS:
        raw = row.get(column, "")
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            raise _Reject(f"{column} must be text")
        if len(raw) > MAX_FIELD_CHARS:
            raise _Reject(f"{column} longer than {MAX_FIELD_CHARS} characters")
        text = raw.strip()
        if raw[:1] in FORMULA_START or text[:1] in FORMULA_START:
            raise _Reject(f"formula-like text in column {column}")
        kind = unwanted_character(text)
        if kind is not None:
            raise _Reject(f"{kind} in column {column}")
        values[column] = unicodedata.normalize("NFC", text)
    return values


HrRow = tuple[int, Mapping[str, object]]
"""One row from any source: its position (a file's physical line, a request's item number)
and its values keyed by the column names of ``COLUMNS``."""


class HrRowRules:
    """The per-row rules of an HR export, for one source (a file, an API request).

    ``check`` turns one row into an ``HrRecord`` or a ``RowReject``. It remembers the ids it has
    seen, so a second row with the same employee id is rejected, whatever the first one was.
    CSV files and the HR API both go through here, so both obey exactly the same rules.
    """

    def __init__(self, *, today: date) -> None:
        self._today = today
        self._first: dict[str, int] = {}

    def check(self, position: int, row: Mapping[str, object]) -> HrRecord | RowReject:
        raw_id = row.get("employee_id")
        candidate = unicodedata.normalize("NFC", raw_id.strip()) if isinstance(raw_id, str) else ""
        employee_id = candidate if _ID_RE.fullmatch(candidate) else None
        duplicate_of = self._first.get(employee_id) if employee_id else None
        if employee_id and duplicate_of is None:
            self._first[employee_id] = position
        try:
            if duplicate_of is not None:
                raise _Reject(f"duplicate employee_id (first on line {duplicate_of})")
            values = _clean(row)
            if not values["employee_id"]:
                raise _Reject("missing employee_id")
            if employee_id is None:
                raise _Reject("employee_id does not match the pattern AA-AGENCY-0000")
            return _record(values, self._today, row.keys())
        except _Reject as rej:
            return RowReject(position, employee_id, rej.reason)


def _decode_line(raw: bytes, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HrFileError(
            f"not UTF-8 at byte {exc.start + offset}: save the export as UTF-8"
        ) from None


def _records(stream: BinaryIO, max_file_bytes: int) -> Iterator[tuple[int, str | None]]:
    """Split the byte stream into CSV records: (first physical line, text), or (line, None)
    for a record over ``MAX_ROW_BYTES``. A record ends at a line end outside quotes: with
    RFC 4180 quoting ("" inside quotes), that is where the count of quote characters is even.
    Only one record is ever held in memory."""
    offset = 0
    line = 0
    start_line = 1
    parts: list[str] = []
    size = 0
    quotes = 0
    too_long = False
    while True:
        chunk = stream.readline(MAX_ROW_BYTES + 1)
        if not chunk:
            break
        if offset == 0 and chunk.startswith(codecs.BOM_UTF8):
            chunk, offset = chunk[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        if offset + len(chunk) > max_file_bytes:
            raise HrFileError(
                f"file larger than {max_file_bytes // (1024 * 1024)} MiB: split the export "
                "(every row of it is checked against the register, so parts can be loaded "
                "one after the other)"
            )
        if not parts and not too_long:
            start_line = line + 1
        if chunk.endswith(b"\n"):
            line += 1
        quotes += chunk.count(b'"')
        size += len(chunk)
        # Decoded piece by piece (a line end never splits a UTF-8 sequence), so a bad byte is
        # reported where it is, even inside a record too long to keep.
        text = _decode_line(chunk, offset)
        if size > MAX_ROW_BYTES:
            too_long, parts = True, []
        else:
            parts.append(text)
        offset += len(chunk)
        if chunk.endswith(b"\n") and quotes % 2 == 0:
            yield start_line, None if too_long else "".join(parts)
            parts, size, quotes, too_long = [], 0, 0, False
    if quotes % 2:
        raise HrFileError(f"malformed CSV at line {start_line}: a quoted field never closes")
    if parts or too_long:
        yield start_line, None if too_long else "".join(parts)


def _split(text: str, line: int) -> list[str]:
    if '"' not in text and "\r" not in text.rstrip("\r\n"):
        return text.rstrip("\r\n").split(",")  # no quoting: what csv would do, 3x faster
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        raise HrFileError(f"malformed CSV at line {line}: {exc}") from None


def read_hr_csv(
    stream: BinaryIO, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Iterator[HrRow | RowReject]:
    """The rows of an HR export, read as a stream: (line, values) or a ``RowReject`` for a row
    the file itself spoils (wrong number of fields, longer than ``MAX_ROW_BYTES``).

    Raises ``HrFileError`` (not UTF-8, bad header, broken quoting, over ``max_file_bytes``)
    while iterating: a caller that stores rows as they come must do so in one transaction.
    """
    records = _records(stream, max_file_bytes)
    index: dict[str, int] | None = None
    for line, text in records:
        if text is None:
            if index is None:
                raise HrFileError(f"header row longer than {MAX_ROW_BYTES} bytes")
            yield RowReject(line, None, f"row longer than {MAX_ROW_BYTES} bytes")
            continue
        fields = _split(text, line)
        if not any(value.strip() for value in fields):
            continue  # blank lines and rows of bare commas that spreadsheets leave behind
        if index is None:
            index = _check_header(fields)
            continue
        if len(fields) != len(index):
            raw_id = fields[index["employee_id"]] if index["employee_id"] < len(fields) else ""
            candidate = unicodedata.normalize("NFC", raw_id.strip())
            yield RowReject(
                line,
                candidate if _ID_RE.fullmatch(candidate) else None,
                f"expected {len(index)} fields, got {len(fields)}",
            )
            continue
        yield line, {column: fields[i] for column, i in index.items()}
    if index is None:
        raise HrFileError("empty file: no header row")


def check_rows(
    rows: Iterable[HrRow | RowReject], *, today: date
) -> Iterator[tuple[int, HrRecord] | RowReject]:
    """Apply ``HrRowRules`` to a stream of rows, passing readers' rejects through; a good row
    comes out as (position, record)."""
    rules = HrRowRules(today=today)
    for item in rows:
        if isinstance(item, RowReject):
            yield item
            continue
        checked = rules.check(*item)
        yield checked if isinstance(checked, RowReject) else (item[0], checked)


def parse_hr_csv(
    data: bytes, *, today: date, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> HrParseResult:
    """Parse a whole HR export held in memory. Raises ``HrFileError``; row problems become
    ``RowReject``s. ``read_hr_csv`` + ``check_rows`` do the same on a stream."""
    result = HrParseResult()
    rows = read_hr_csv(io.BytesIO(data), max_file_bytes=max_file_bytes)
    for item in check_rows(rows, today=today):
        if isinstance(item, RowReject):
            result.rejects.append(item)
        else:
            result.records.append(item[1])
    return result
