"""The storage layer's exception tree, apart from the engine so that callers can name these
types (the CLI's exit-code table) without importing SQLAlchemy or Alembic.

``StorageError`` → ``DatabaseUnavailable`` (→ ``DatabaseMissing``), ``SchemaOutdated``,
``BadDatabaseUrl``, ``StorageFull``, ``StorageReadOnly``, ``ConcurrentUpdate``:
``idsvc.storage.db`` says when each is raised.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of storage errors."""


class DatabaseUnavailable(StorageError):
    pass


class SchemaOutdated(StorageError):
    pass


class BadDatabaseUrl(StorageError):
    pass


class StorageFull(StorageError):
    pass


class StorageReadOnly(StorageError):
    pass


class DatabaseMissing(DatabaseUnavailable):
    """No SQLite file at the path: before ``init`` (then reported as ``SchemaOutdated``), or
    the file or its volume vanished under a running service (unavailable: it must not quietly
    start again on an empty database)."""


class ConcurrentUpdate(StorageError):
    """The database aborted this transaction to break a lock cycle with another writer (or
    could not serialise the two): nothing was stored, and the same request may be retried."""
