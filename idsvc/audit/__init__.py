"""The audit log and the who-checked log.

Modules, one job each:

- ``use_cases``      ``Audit``, the feature: checking the chain (``idsvc audit verify``)
- ``chain``          the append-only, hash-chained log, written with each change
- ``replay``         replaying the chain against stored state: edited rows are named
- ``who_checked``    who checked whom: a row per verification and payroll check
- ``request_scope``  the API request id, carried into the audit events it causes
"""
