"""Issuer keys for idsvc: signers (encrypted key files, PKCS#11 tokens), the key ring with
rotation and JWKS, and the issuer CA that certifies card keys.

Modules, one job each:

- ``keys.errors``       the exception tree
- ``keys.algorithms``   the algorithm allow-list (ES256, EdDSA) and the key type each needs
- ``keys.jwk``          public JWKs and RFC 7638 thumbprints (the ``kid``)
- ``keys.signer``       the ``Signer`` protocol and ``verify_signature``
- ``keys.file_signer``  keys in encrypted PKCS#8 files
- ``keys.hsm``          keys in a PKCS#11 token (the only user of the PKCS#11 binding)
- ``keys.backends``     how a key ring makes and finds its private keys
- ``keys.manifest``     the key ring manifest and its consistency rules
- ``keys.keyring``      one issuer's keys in a directory: rotation, JWKS
- ``keys.ca``           the issuer CA and card certificates
"""
