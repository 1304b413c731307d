"""Configuration from the environment (``IDSVC_*``), read once by the CLI and the API factory.

Nothing below the CLI/API layers reads the environment: they receive a ``Settings``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.cwd() / ".idsvc"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDSVC_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="data folder")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data folder"
    )
    issuer: str = Field(
        default="https://id.example.gov/issuers/default",
        description="issuer id (`iss`) of the default issuer",
    )
    issuer_name: str = Field(default="Ministry of Civil Service", description="CA subject O")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="base URL that verifiers reach"
    )
    key_alg: str = Field(default="ES256", description="ES256 or EdDSA for new keys")
    key_passphrase: SecretStr | None = Field(default=None, description="issuer key passphrase")
    key_passphrase_file: Path | None = Field(
        default=None, description="file holding the passphrase (0600)"
    )
    pkcs11_module: str | None = Field(default=None, description="PKCS#11 module path (HSM)")
    pkcs11_token: str | None = Field(default=None, description="PKCS#11 token label")
    pkcs11_pin: SecretStr | None = Field(default=None, description="PKCS#11 user PIN")
    credential_days: int = Field(default=5 * 365, description="credential validity in days")
    status_list_size: int = Field(default=131072, description="entries per status list")
    status_list_ttl: int = Field(default=3600, description="status list token ttl (s)")
    management_key: SecretStr | None = Field(
        default=None, description="PIV management key (hex) of the desk's blank cards"
    )
    management_key_type: str = Field(default="TDES", description="TDES, AES128, AES192, AES256")
    verify_url: str | None = Field(
        default=None, description="verify page base for NDEF/QR; default: <public_url>/v"
    )
    operator: str = Field(default="local-operator", description="operator id for the audit")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'idsvc.sqlite3'}"

    @property
    def embedded_passphrase_file(self) -> Path:
        """Where ``scripts/run`` keeps the embedded default's generated passphrase."""
        return self.home / "secrets" / "key-passphrase"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def resolved_verify_url(self) -> str:
        return self.verify_url or f"{self.public_url.rstrip('/')}/v"


class PassphraseMissing(Exception):
    """No way to get the issuer key passphrase."""


def read_passphrase_file(path: Path) -> bytes:
    import stat

    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PassphraseMissing(f"passphrase file {path} is readable by others: chmod 600 {path}")
    return path.read_bytes().rstrip(b"\r\n")


def key_passphrase(settings: Settings, prompt: Callable[[], str] | None = None) -> bytes:
    """The passphrase from the environment, a 0600 file, or (interactive CLI only) a prompt."""
    if settings.key_passphrase is not None:
        return settings.key_passphrase.get_secret_value().encode()
    path = settings.key_passphrase_file
    if path is None and settings.embedded_passphrase_file.exists():
        path = settings.embedded_passphrase_file
    if path is not None:
        try:
            return read_passphrase_file(path)
        except FileNotFoundError as exc:
            raise PassphraseMissing(f"passphrase file {path} not found") from exc
    if prompt is not None:
        return prompt().encode()
    raise PassphraseMissing(
        "no key passphrase: set IDSVC_KEY_PASSPHRASE or IDSVC_KEY_PASSPHRASE_FILE"
    )
