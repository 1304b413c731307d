"""Operating a deployment: upgrades, backup and restore, publication, sweeping, health.

Modules, one job each:

- ``use_cases``  ``Operations``, the feature: one method per operations command
- ``backup``     ``idsvc backup`` / ``idsvc restore``: database and public key rings
- ``pg_tools``   PostgreSQL's own ``pg_dump`` / ``pg_restore``, of the right version
- ``publish``    ``idsvc publish``: JWKS and status lists as static files
- ``sweeper``    closing issuances never confirmed and approvals never decided
- ``readiness``  ``GET /readyz``: may this process take traffic?
- ``activity``   totals for the metrics, read from the database
"""
