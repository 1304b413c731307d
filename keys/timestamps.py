"""Timestamps as the package takes and stores them: timezone-aware, kept in UTC.

Nothing here reads the clock; callers pass ``now``. A naive ``datetime`` is refused
because its meaning depends on the machine's timezone, which differs between the
centre and the desks.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_timestamp", "parse_timestamp", "require_aware"]


def require_aware(value: datetime, name: str = "now") -> datetime:
    """Return ``value`` in UTC; raise ``ValueError`` for a naive datetime."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, whole seconds."""
    return require_aware(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; raises ``ValueError`` for anything else."""
    if not isinstance(text, str):
        raise ValueError("timestamp must be a string")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
