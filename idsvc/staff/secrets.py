"""How the centre keeps operators' and desks' secrets at rest.

- Passwords: scrypt (``hashlib.scrypt``, RFC 7914) with a random 16-byte salt, stored as
  ``scrypt$ln=<log2 N>$r=8$p=1$<salt>$<hash>`` so that the cost can be raised later and old
  hashes still check. Standard library, memory-hard, no extra dependency to audit.
- TOTP secrets must be usable to compute codes, so they cannot be hashed: they are sealed with
  AES-256-GCM under the operator-secrets key (a 32-byte key in its own 0600 file, apart from
  the database, so that a copy of the database alone does not give anyone second factors). The
  operator's name is the associated data: a sealed secret copied onto another account fails.
- Session tokens and enrolment codes are random (≥ 128 bits), so a plain SHA-256 at rest is
  enough: a database reader cannot turn the hash back into a usable token.

    OperatorSecretsError (an IdsvcError: configuration)
    ├── SealKeyProblem      the key file is missing, readable by others, or malformed
    └── SealBroken          a sealed secret does not open with this key (wrong key, edited row)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idsvc.errors import IdsvcError

PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # scrypt of a huge input costs CPU before the memory-hard part starts
DEFAULT_COST = 17  # log2 N; OWASP's scrypt minimum (N=2^17, r=8, p=1), ~128 MiB per hash
MIN_COST = 14  # Percival's interactive-login parameters; below that scrypt is too cheap
_R = 8
_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_SEAL_LABEL = b"idsvc operator totp v1|"


class OperatorSecretsError(IdsvcError):
    """Base of errors about stored operator secrets: a configuration problem at the centre."""

    code = "OPERATOR_SECRETS"


class SealKeyProblem(OperatorSecretsError):
    pass


class SealBroken(OperatorSecretsError):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _scrypt(password: str, salt: bytes, cost: int) -> bytes:
    n = 1 << cost
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=_R,
        p=_P,
        maxmem=256 * n * _R,
        dklen=_HASH_BYTES,
    )


def check_password_rules(password: str) -> None:
    """Raise ``ValueError`` with the rule a new password breaks."""
    if len(password) < PASSWORD_MIN:
        raise ValueError(f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise ValueError(f"a password may have at most {PASSWORD_MAX} characters")


def hash_password(password: str, *, cost: int = DEFAULT_COST) -> str:
    if not MIN_COST <= cost <= 20:
        raise ValueError(f"scrypt cost (log2 N) must be {MIN_COST}..20")
    check_password_rules(password)
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, cost)
    return f"scrypt$ln={cost}$r={_R}$p={_P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    """Compare in constant time; a malformed stored hash never matches."""
    try:
        scheme, ln, r, p, salt, digest = stored.split("$")
        cost = int(ln.removeprefix("ln="))
        if scheme != "scrypt" or r != f"r={_R}" or p != f"p={_P}" or not MIN_COST <= cost <= 20:
            return False
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        return False
    if len(password) > PASSWORD_MAX:
        return False
    return hmac.compare_digest(_scrypt(password, salt_bytes, cost), expected)


def dummy_hash(cost: int = DEFAULT_COST) -> str:
    """A well-formed stored hash that no password matches (its digest is all zeros), to check
    an unknown name's password against: the same code path and cost as a real check, so that
    an unknown name answers exactly as slowly as a known one."""
    return f"scrypt$ln={cost}$r={_R}$p={_P}${_b64(bytes(_SALT_BYTES))}${_b64(bytes(_HASH_BYTES))}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token).encode(), stored_hash.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


def seal(key: bytes, secret: bytes, *, owner: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret, _SEAL_LABEL + owner.encode("utf-8"))
    return _b64(nonce + sealed)


def unseal(key: bytes, sealed: str, *, owner: str) -> bytes:
    try:
        raw = _unb64(sealed)
        return AESGCM(key).decrypt(raw[:12], raw[12:], _SEAL_LABEL + owner.encode("utf-8"))
    except (ValueError, InvalidTag) as exc:
        raise SealBroken(
            "the operator's one-time-code secret does not open with the operator-secrets key "
            "(wrong key file, or the record was edited): reset it with `idsvc operators "
            "reset-totp`"
        ) from exc


def read_seal_key(path: Path, *, create: bool) -> bytes:
    """The operator-secrets key from ``path`` (hex, 0600); with ``create``, make it if absent."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_bytes(32).hex() + "\n")
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise SealKeyProblem(
            f"operator-secrets key {path} not found (it is made when the first operator is "
            "added; set IDSVC_OPERATOR_KEY_FILE if it lives elsewhere)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SealKeyProblem(f"cannot read the operator-secrets key {path}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SealKeyProblem(f"operator-secrets key {path} is readable by others: chmod 600")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SealKeyProblem(f"operator-secrets key {path} is not 64 hex characters")
    return key
