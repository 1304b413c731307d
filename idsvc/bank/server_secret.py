"""The server secret, and the keys derived from it for the bank side.

One random 32-byte secret in a 0600 file; HKDF-SHA256 derives a separate key per purpose, so
that no key serves two jobs:

- ``account_key``: HMAC key of bank-account hashes (payroll checks keep only the hash; a keyed
  hash, because account numbers are short enough to brute-force through a plain hash);
- ``webhook_box``: AES-256-GCM key that encrypts webhook HMAC secrets at rest. They cannot be
  hashed: the deliverer needs the secret itself to sign;
- ``webhook_signing_key``: the Ed25519 key of Standard Webhooks' ``v1a`` scheme. It is derived,
  not stored, so there is no second secret file to protect; its public half is published.

Every machine of a deployment must use the same file (set ``IDSVC_SERVER_SECRET_FILE`` from a
secret store); the embedded default creates one in ``$IDSVC_HOME/secrets`` on first use.
Reading the file is the CLI's and the API's business; below them the keys are parameters.

Errors: ``ServerSecretError`` (exit 22): unreadable, world-readable or malformed file.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idsvc.errors import ServerSecretError

_LENGTH = 32


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"idsvc/" + purpose).derive(secret)


@dataclass(frozen=True)
class ServerKeys:
    account_key: bytes
    webhook_box_key: bytes
    webhook_signing_key: Ed25519PrivateKey

    @classmethod
    def from_secret(cls, secret: bytes) -> ServerKeys:
        if len(secret) < _LENGTH:
            raise ServerSecretError(f"the server secret must hold at least {_LENGTH} bytes")
        seed = _derive(secret, b"webhook-signing/v1")
        return cls(
            account_key=_derive(secret, b"payroll-account/v1"),
            webhook_box_key=_derive(secret, b"webhook-box/v1"),
            webhook_signing_key=Ed25519PrivateKey.from_private_bytes(seed),
        )

    def webhook_public_key(self) -> str:
        """``whpk_`` + base64 of the raw Ed25519 public key (the Standard Webhooks form)."""
        raw = self.webhook_signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return "whpk_" + base64.b64encode(raw).decode()

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self.webhook_box_key).encrypt(nonce, plaintext, context)

    def open(self, box: bytes, context: bytes) -> bytes:
        try:
            return AESGCM(self.webhook_box_key).decrypt(box[:12], box[12:], context)
        except InvalidTag as exc:
            raise ServerSecretError(
                "a stored webhook secret does not open with this server secret "
                "(was IDSVC_SERVER_SECRET_FILE changed?)"
            ) from exc


def load_server_secret(path: Path, *, create: bool) -> bytes:
    """Read the secret file (0600 required); create it when missing and ``create`` is set.

    The new file is written aside and hard-linked into place (which fails if the name exists),
    so two workers starting together end up with one secret and never read a half-written file.
    """
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        aside = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(secrets.token_bytes(_LENGTH)) + b"\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ServerSecretError(f"{path} is readable by others: chmod 600 {path}")
        text = path.read_bytes().strip()
    except FileNotFoundError as exc:
        raise ServerSecretError(f"server secret file {path} not found") from exc
    except OSError as exc:
        raise ServerSecretError(f"cannot read server secret file {path}: {exc.strerror}") from exc
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ServerSecretError(f"{path} does not hold base64 text") from exc
