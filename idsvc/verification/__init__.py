"""Verification: the one set of rules, and where its trust data comes from.

Modules, one job each:

- ``use_cases``        ``Verification``, the feature: verify against this register
- ``rules``            ``verify_credential``: the pure rules and stable reason codes
- ``online``           the API's verifier: the same rules over per-worker caches
- ``offline``          verifying from an offline copy of the keys and status lists
- ``sources``          what an offline verifier downloads: issuers, key sets, lists
- ``card_challenges``  card challenges: prove a card is the genuine one
- ``presented``        a phone credential presented by OpenID4VP: its form, then the rules
"""
