"""The API's request and response bodies, one module per feature (separate from the tables).

- ``verification``: ``POST /v1/verifications`` and the card challenges (``/v1/card-…``).
- ``who_checked``: the who-checked log of a person (``/v1/holders/{id}/checks``).
- ``payroll``: payroll checks and the change feed (``/v1/payroll/…``).
- ``webhooks``: the webhook signing key (``/v1/webhooks/public-key``).
- ``hr``: HR records pushed by HR systems (``/v1/hr/records``).
- ``desk``: what a remote issuance desk sends (``/v1/desk/…``).
- ``health``: ``/health``.
- ``problem``: the RFC 9457 body of every error answer.

Names: a body a route takes is ``…Request``, one it answers is ``…Response``; a part used only
inside another body is a plain noun (``PayrollItem``). Routes import from the module itself;
nothing is re-exported here, so each class has one import path
(``tests/mobile_api/test_routes_layout.py`` checks the names and that every module is used).
"""
