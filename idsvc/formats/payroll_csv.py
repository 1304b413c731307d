"""Payroll batches as CSV, for bank batch systems that live on files.

Request (UTF-8, optional BOM, CRLF or LF): a header naming some of these columns, in any order::

    employee_id, card_serial, credential, account

and one item per row, each naming exactly one of ``employee_id``, ``card_serial``,
``credential`` (the other identifier cells empty); ``account`` is optional.

Answer: one row per request item, in the same order::

    item, employee_id, status, active_for_payroll, reasons

``item`` is the 1-based number of the item in the request (blank lines are not items);
``employee_id`` is empty when the person is unknown; ``active_for_payroll`` is ``true`` or
``false``; ``reasons`` are the reason codes separated by spaces. No cell of the answer can start
like a spreadsheet formula: every value comes from the register or from fixed codes.

Errors: ``PayrollCsvError`` (the file as a whole is unusable; a row names the line).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

REQUEST_COLUMNS: Final = ("employee_id", "card_serial", "credential", "account")
ANSWER_COLUMNS: Final = ("item", "employee_id", "status", "active_for_payroll", "reasons")
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


def write_payroll_csv(results: Iterable[Mapping[str, object]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ANSWER_COLUMNS)
    for number, r in enumerate(results, start=1):
        reasons = r.get("reasons")
        writer.writerow(
            [
                number,
                r.get("employee_id") or "",
                r.get("status"),
                "true" if r.get("active_for_payroll") else "false",
                " ".join(str(x) for x in reasons) if isinstance(reasons, Sequence) else "",
            ]
        )
    return out.getvalue().encode("utf-8")
