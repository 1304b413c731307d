"""Credentials: issuing them, their life cycle, their printed form, status lists, keys.

Modules, one job each:

- ``use_cases``        ``Credentials``, the feature: issue, revoke, rotate keys, lists
- ``infrastructure``   what every feature shares: settings, database, key rings, signers
- ``issuance``         issuance as a protocol: begin, card work at the desk, confirm
- ``handover``         what the centre and a desk hand each other, free of the database
- ``state``            the one place a credential's state changes
- ``views``            ``CredentialView``: one credential as the CLI, API and desks show it
- ``issuers``          issuers and their key rings: trust by (``iss``, ``kid``)
- ``printed_qr``       the credential's Claim 169 QR text, and reading one from a picture
- ``card_faces``       what a printed card shows, drawn with ``cardio.card_face``
- ``status_lists``     status-list indices and the signed ``statuslist+jwt``
- ``status_versions``  each list's content version, raised by every state change
- ``publication``      status lists and JWKS kept as served, per process
"""
