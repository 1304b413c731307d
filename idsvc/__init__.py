"""idsvc: the register of civil servants, their signed credentials, cards and verification."""

# The issuer slug commands and use cases act for when none is named. It lives here, not in
# idsvc.config or idsvc.services, so that the command line can offer it as a default without
# importing pydantic or the database layer (``idsvc --help`` imports neither).
DEFAULT_ISSUER = "default"

# What an API client may be granted (idsvc.clients.api_clients checks it; the command line lists it
# in
# ``idsvc clients add --help`` without importing the database layer).
SCOPES = frozenset({"verify", "payroll", "hr:write", "admin"})
