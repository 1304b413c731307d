"""The id of the API request being served, for the audit events it causes.

The API's request middleware (``mobile_api.request_context``) sets it for the duration of a
request; ``idsvc.audit.chain.record`` adds it to the event's ``details`` (inside the hash chain) so
an
audit event can be matched with the log lines of the request that caused it. The CLI never
sets it: its events carry no request id.

Why a context variable rather than a ``request_id=`` parameter on every use case: ~40 use cases
write audit events, most of them owned by other modules; a parameter threaded through all of
them is a larger change than this one seam. The variable is per task/thread context (FastAPI
copies it into the worker thread that runs a sync route), so concurrent requests never see
each other's id.
"""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("idsvc_request_id", default=None)
