"""Pure codecs: bytes in, values out; no database, no clock, no environment.

JWS (compact, our own lean verify path), credential claims, Token Status List, HR CSV, the
printed Claim 169 QR, and the phone credential's SD-JWT (RFC 9901), OpenID4VCI offers and key
proofs, and OpenID4VP requests and answers. Each is easy to test with vectors and is mirrored
by the web verifier.
"""
