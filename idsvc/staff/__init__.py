"""Staff: the operators who work the desks, and maker-checker.

Modules, one job each:

- ``use_cases``      ``Staff``, the feature: operators, logins, approvals
- ``operators``      operators: roles, offices, second factor, lockout, sessions
- ``secrets``        how passwords (scrypt) and TOTP secrets (sealed) are kept
- ``totp``           one-time codes (RFC 6238), written from the RFC
- ``offices``        which people an operator may act for
- ``approvals``      approval requests: asked, approved or rejected, expired
- ``approval_actions`` the actions maker-checker knows (the vocabulary of a setting)
- ``maker_checker``  the one gate every sensitive action goes through
"""
