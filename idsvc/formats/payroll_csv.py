"""Payroll batches as CSV, for bank batch systems that live on files.

Request (UTF-8, optional BOM, CRLF or LF): a header naming some of these columns, in any order::

    employee_id, card_serial, credential, account, ref

and one item per row, each naming exactly one of ``employee_id``, ``card_serial``,
``credential`` (the other identifier cells empty); ``account`` and ``ref`` (the bank's own
reference for the line, echoed back) are optional.

Answer: one row per request item, in the same order::

    item, employee_id, status, active_for_payroll, reasons, card_serial, ref

``item`` is the 1-based number of the item in the request (blank lines are not items);
``employee_id`` is the person's, or the one the row gave when the register does not know it,
empty when a card or credential names nobody known; ``active_for_payroll`` is ``true`` or
``false``; ``reasons`` are the reason codes separated by spaces; ``card_serial`` and ``ref``
are the row's own, as given (columns added last, so readers of the first five keep working).
No cell of the answer can start like a spreadsheet formula: the cells the bank gave that start
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'`` (OWASP's advice
for CSV injection); the others come from the register or are fixed codes.

Errors: ``PayrollCsvError`` (the file as a whole is unusable; a row names the line).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from idsvc.formats.text_rules import spreadsheet_safe

REQUEST_COLUMNS: Final = ("employee_id", "card_serial", "credential", "account", "ref")
ANSWER_COLUMNS: Final = (
    "item",
    "employee_id",
    "status",
    "active_for_payroll",
    "reasons",
    "card_serial",
    "ref",
)
_MAX_CELL: Final = 8192


class PayrollCsvError(ValueError):
    """The CSV cannot be read as a payroll batch."""


def parse_payroll_csv(data: bytes) -> list[dict[str, str]]:
    """Rows as {column: value} with empty cells left out."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayrollCsvError(f"not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[dict[str, str]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise PayrollCsvError("empty file: no header row")
        names = [h.strip() for h in header]
        unknown = [n for n in names if n not in REQUEST_COLUMNS]
        if unknown or len(set(names)) != len(names):
            raise PayrollCsvError(
                f"header must name distinct columns among {', '.join(REQUEST_COLUMNS)}"
            )
        if not set(names) & {"employee_id", "card_serial", "credential"}:
            raise PayrollCsvError("no identifier column (employee_id, card_serial, credential)")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise PayrollCsvError(
                    f"line {reader.line_num}: expected {len(names)} fields, got {len(row)}"
                )
            if any(len(cell) > _MAX_CELL for cell in row):
                raise PayrollCsvError(f"line {reader.line_num}: a cell is too long")
            rows.append(
                {n: cell.strip() for n, cell in zip(names, row, strict=True) if cell.strip()}
            )
    except csv.Error as exc:
        raise PayrollCsvError(f"malformed CSV at line {reader.line_num}: {exc}") from None
    return rows


def _cell(value: object) -> str:
    """A cell the caller gave, never read as a formula by a spreadsheet."""
    return spreadsheet_safe(str(value) if value else "")


def write_payroll_csv(results: Iterable[Mapping[str, object]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ANSWER_COLUMNS)
    for number, r in enumerate(results, start=1):
        reasons = r.get("reasons")
        writer.writerow(
            [
                number,
                _cell(r.get("employee_id")),
                r.get("status"),
                "true" if r.get("active_for_payroll") else "false",
                " ".join(str(x) for x in reasons) if isinstance(reasons, Sequence) else "",
                _cell(r.get("card_serial")),
                _cell(r.get("ref")),
            ]
        )
    return out.getvalue().encode("utf-8")
