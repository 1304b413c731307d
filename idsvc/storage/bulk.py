"""Set-based reads and writes for batches of thousands of rows (payroll checks, the check log).

Why a module of its own: a 10,000-item payroll batch must cost a handful of statements, and
what is cheap differs by database. On PostgreSQL every statement is a round trip, so a batch
is one statement: ``= ANY(:array)`` for lookups, ``COPY`` for appends and ``INSERT … SELECT FROM
unnest(…) ON CONFLICT`` for upserts (measured on a 10,000-item batch: pipelined executemany
0.27 s for the upsert and 0.38 s for the append; one statement each is a few tens of ms).
SQLite runs in-process, where the driver's ``executemany`` is already a C loop and ``IN``
lists are cheap; there the work is on our side (see ``_driver_rows``).

Values go through each column type's bind processing (``UtcDateTime`` stores naive UTC), so
rows land exactly as the ORM would have written them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, CursorResult, Result, Table, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

IN_CHUNK: Final = 1000


def changed_rows(result: Result[Any]) -> int:
    """How many rows an ``UPDATE`` or ``DELETE`` changed: of two workers racing on one
    conditional ``UPDATE ... WHERE state = 'pending'`` (a code redeemed, a nonce spent, a request
    answered), exactly one sees 1."""
    return cast(CursorResult[Any], result).rowcount


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def rows_matching(
    session: Session,
    columns: Sequence[InstrumentedAttribute[Any] | ColumnElement[Any]],
    key: InstrumentedAttribute[Any],
    values: Sequence[Any],
    *where: ColumnElement[bool],
) -> Iterator[Any]:
    """Rows of ``columns`` whose ``key`` is one of ``values`` (plus ``where``): one
    ``= ANY(array)`` query on PostgreSQL, ``IN`` lists of ``IN_CHUNK`` elsewhere."""
    if not values:
        return
    if _postgres(session):
        wanted = bindparam("wanted", list(values), type_=ARRAY(key.type))
        yield from session.execute(select(*columns).where(key == any_(wanted), *where))
        return
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        yield from session.execute(select(*columns).where(key.in_(chunk), *where))


def _driver_rows(
    session: Session, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them. A column's bind processing runs once per distinct
    value, not once per row: a batch shares its timestamps, and SQLAlchemy's per-row
    processing cost 0.2 s of a 10,000-row batch on SQLite (the inserts themselves 0.06 s)."""
    dialect = session.get_bind().dialect
    columns: list[list[Any]] = []
    for name in names:
        values = [row[name] for row in rows]
        # The dialect's own type (SQLite's DATETIME writes its text form), as SQLAlchemy does.
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            done: dict[Any, Any] = {}
            values = [done[v] if v in done else done.setdefault(v, process(v)) for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def _executemany(session: Session, sql: str, values: list[tuple[Any, ...]]) -> None:
    # Through SQLAlchemy (its events and error mapping) but with the values already processed.
    session.connection().exec_driver_sql(sql, values)


def append_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in the caller's transaction: ``COPY`` on
    PostgreSQL, one executemany elsewhere."""
    if not rows:
        return
    names = list(rows[0])
    if _postgres(session):
        _copy(session, table.name, names, _driver_rows(session, table, names, rows))
        return
    _executemany(session, _insert_sql(table.name, names), _driver_rows(session, table, names, rows))


def _insert_sql(table: str, names: Sequence[str]) -> str:
    """SQLite's INSERT (qmark parameters); the names come from the table's metadata."""
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    return f'INSERT INTO "{table}" ({columns}) VALUES ({marks})'  # noqa: S608


def _copy(session: Session, into: str, names: Sequence[str], values: list[tuple[Any, ...]]) -> None:
    """``COPY`` the rows into the table ``into`` (a table or its staging twin)."""
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    column_list = ", ".join(f'"{name}"' for name in names)
    with cursor.copy(f'COPY "{into}" ({column_list}) FROM STDIN') as copy:
        for row in values:
            copy.write_row(row)


def upsert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``, or on a conflict over ``keys`` set the ``update`` columns from the new
    row. No two rows may share their ``keys`` (PostgreSQL refuses to touch a row twice)."""
    if not rows:
        return
    names = list(rows[0])
    conflict = ", ".join(f'"{k}"' for k in keys)
    assignments = ", ".join(f'"{c}" = excluded."{c}"' for c in update)
    column_list = ", ".join(f'"{name}"' for name in names)
    values = _driver_rows(session, table, names, rows)
    if not _postgres(session):
        upsert = f" ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
        _executemany(session, _insert_sql(table.name, names) + upsert, values)
        return
    # COPY into a per-connection temporary twin of the table, then one INSERT … SELECT: COPY
    # is PostgreSQL's fastest way in (binding 10,000-element arrays cost more than the upsert).
    staging = f"staging_{table.name}"
    session.execute(
        text(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" ON COMMIT DELETE ROWS '  # noqa: S608
            f'AS SELECT {column_list} FROM "{table.name}" WITH NO DATA'
        )
    )
    _copy(session, staging, names, values)
    sql = (
        f'INSERT INTO "{table.name}" ({column_list}) '  # noqa: S608
        f'SELECT {column_list} FROM "{staging}" '
        f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
    )
    session.execute(text(sql))
    session.execute(text(f'DELETE FROM "{staging}"'))  # noqa: S608


def insert_missing(
    session: Session, table: Table, column: str, values: Sequence[str], *, same: Mapping[str, Any]
) -> None:
    """One row per value of ``column``, the other columns ``same`` in every row, skipping rows
    whose key is already there (``ON CONFLICT DO NOTHING``). One statement with the values as
    one parameter, ``unnest`` of an array on PostgreSQL and ``json_each`` on SQLite: for 10,000
    values 44 ms and 5 ms, against 66 ms and 30 ms through ``upsert_rows`` (COPY into staging,
    executemany)."""
    if not values:
        return
    names = [*same, column]
    fixed = [
        bindparam(f"same_{i}", v, type_=table.c[n].type) for i, (n, v) in enumerate(same.items())
    ]
    if _postgres(session):
        source = "unnest(:many) AS given(value)"
        many = bindparam("many", list(values), type_=ARRAY(table.c[column].type))
    else:
        source = "json_each(:many)"
        many = bindparam("many", json.dumps(list(values)))
    column_list = ", ".join(f'"{name}"' for name in names)
    selected = ", ".join(f":same_{i}" for i in range(len(same)))
    # WHERE true: SQLite's parser needs it between a SELECT and ON CONFLICT.
    sql = text(
        f'INSERT INTO "{table.name}" ({column_list}) '  # noqa: S608  (names from the metadata)
        f"SELECT {selected}, value FROM {source} WHERE true ON CONFLICT DO NOTHING"
    ).bindparams(*fixed, many)
    session.execute(sql)
