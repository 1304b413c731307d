"""What ``idsvc serve`` sets up before its workers start: log format and the metrics folder.

Logs (``IDSVC_LOG_FORMAT``): ``json`` writes one JSON object per line to stderr with ``time``
(UTC, ms), ``level``, ``logger``, ``message`` and, on access lines, ``request_id``, ``method``,
``route`` (the template, never the raw path), ``status``, ``duration_ms``; ``text`` the same
as readable lines. ``auto`` (the default) is ``text`` when stderr, where the lines go, is a
terminal (someone trying ``idsvc serve`` by hand), else ``json`` (a file, a pipe, journald):
what a machine collects is always JSON unless the operator asks otherwise. An exception is
logged by its type only: messages and tracebacks can hold tokens, names or SQL. uvicorn's own
access log is off (it prints raw paths and addresses); ``mobile_api.request_context`` writes
the access lines instead.

Metrics (``PROMETHEUS_MULTIPROC_DIR``): each worker writes its metrics to files in one folder
that the answering worker adds up. The folder must be emptied before the workers start (old
files from a previous run would be added in), so one folder belongs to one ``idsvc serve``:
``$PROMETHEUS_MULTIPROC_DIR`` if the operator set it, else ``<IDSVC_HOME>/metrics``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from idsvc.audit.request_scope import current_request_id

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACCESS_FIELDS = ("request_id", "method", "route", "status", "duration_ms")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    for name in ACCESS_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    if "request_id" not in fields and (request_id := current_request_id.get()) is not None:
        fields["request_id"] = request_id  # a line logged while serving a request
    if record.exc_info and record.exc_info[0] is not None:
        fields["exception"] = record.exc_info[0].__name__
    return fields


# Built once: json.dumps with options makes a new encoder on every call (~4 µs of every
# request's access-log line).
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _ENCODE(_fields(record))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        f = _fields(record)
        extra = " ".join(f"{k}={f[k]}" for k in (*ACCESS_FIELDS, "exception") if k in f)
        return f"{f['time']} {f['level']:<7} {f['logger']}: {f['message']}" + (
            f" [{extra}]" if extra else ""
        )


def log_format_for(
    setting: Literal["auto", "json", "text"], stream: TextIO
) -> Literal["json", "text"]:
    """The format ``idsvc serve`` logs in, decided once in the parent for all workers."""
    if setting != "auto":
        return setting
    return "text" if stream.isatty() else "json"


def log_config(log_format: Literal["json", "text"]) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn (applied in every worker)."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "alembic": {"level": "WARNING"},  # its plugin list on every schema check
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }


def prepare_metrics_dir(home: Path) -> Path:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder the workers will inherit."""
    folder = Path(os.environ.get(MULTIPROC_ENV) or home / "metrics")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder
