"""Pure codecs: bytes in, values out; no database, no clock, no environment.

JWS (compact, our own lean verify path), credential claims, Token Status List, HR CSV, and the
printed Claim 169 QR. Each is easy to test with vectors and is mirrored by the web verifier.
"""
