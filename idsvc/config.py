"""Configuration from the environment (``IDSVC_*``), read once by the CLI and the API factory.

Nothing below the CLI/API layers reads the environment: they receive a ``Settings``.

Every setting is validated when any command or the server starts (``load_settings``), whatever
the command uses: a bad value is a configuration error (exit 3) naming the variable and what
it accepts, never a crash later. How to add a setting: give it a type and its limits on the
``Field`` (``ge=``/``le=`` for numbers, ``Literal[...]`` for a choice, ``min_length``/
``max_length`` for text), or a ``field_validator`` raising ``ValueError`` with what it accepts
(URLs: add the name to ``_http_urls``); document the same limits in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from idsvc import DEFAULT_ISSUER as DEFAULT_ISSUER  # re-exported for callers


def _parse_retirement_overrides(value: str) -> dict[tuple[str, str], int]:
    """``F=55,contract_teacher=65,M:temporary=62`` as {(sex, category): age}, "" for the part
    an item does not name."""
    items = [part.strip() for part in value.split(",") if part.strip()]
    if not items:
        return {}
    # Imported only when overrides are set: the HR codec is ~30 ms of every command's start-up.
    from idsvc.formats.hr_csv import SEXES, Category

    sexes = sorted(SEXES - {""})
    categories = [c.value for c in Category]
    keys = {s: (s, "") for s in sexes} | {c: ("", c) for c in categories}
    keys |= {f"{s}:{c}": (s, c) for s in sexes for c in categories}
    ages: dict[tuple[str, str], int] = {}
    for item in items:
        key, _, age = (s.strip() for s in item.partition("="))
        if key not in keys:
            raise ValueError(
                f"{key[:40]!r} is not a sex ({', '.join(sexes)}), a category "
                f"({', '.join(categories)}) or sex:category"
            )
        if not age.isdigit() or not 40 <= int(age) <= 80:
            raise ValueError(f"the age for {key!r} must be a whole number from 40 to 80")
        ages[keys[key]] = int(age)
    return ages


def _default_home() -> Path:
    return Path.cwd() / ".idsvc"


def _from_environment() -> dict[str, str]:
    """``IDSVC_<FIELD>`` for every field set in the environment (names in any case), as text:
    pydantic reads each from its text as pydantic-settings did (all fields are scalars)."""
    fields = Settings.model_fields
    found = {}
    for name, value in os.environ.items():
        field = name[6:].lower()
        if name[:6].upper() == "IDSVC_" and field in fields:
            found[field] = value
    return found


class Settings(BaseModel):
    # Read from the environment by __init__ rather than by pydantic-settings, whose import
    # was ~35 ms of every command's start-up (bench/bench_cli_startup.py). Keyword arguments
    # (tests, tools) win over the environment; unknown IDSVC_* variables are ignored.
    model_config = ConfigDict(extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**(_from_environment() | values))

    home: Path = Field(default_factory=_default_home, description="data folder")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data folder"
    )
    issuer: str = Field(
        default="https://id.example.gov/issuers/default",
        description="issuer id (`iss`) of the default issuer",
    )
    issuer_name: str = Field(
        default="Ministry of Civil Service",
        min_length=1,
        max_length=64,  # X.509 upper bound for an organizationName
        description="CA subject O",
    )
    issuer_name_local: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the default issuer's name in Lao or Khmer script, printed above "
        "IDSVC_ISSUER_NAME on that country's cards",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="base URL that verifiers reach"
    )
    key_alg: Literal["ES256", "EdDSA"] | None = Field(
        default=None,
        description="ES256 or EdDSA for new keys; unset: ES256 at init, rotation keeps the "
        "active key's algorithm",
    )
    key_passphrase: SecretStr | None = Field(default=None, description="issuer key passphrase")
    key_passphrase_file: Path | None = Field(
        default=None, description="file holding the passphrase (0600)"
    )
    pkcs11_module: str | None = Field(default=None, description="PKCS#11 module path (HSM)")
    pkcs11_token: str | None = Field(default=None, description="PKCS#11 token label")
    pkcs11_pin: SecretStr | None = Field(default=None, description="PKCS#11 user PIN")
    credential_days: int = Field(
        default=5 * 365, ge=1, le=3660, description="credential validity in days (1 to 3660)"
    )
    # At 2 bits an entry, 4,194,304 entries are 1 MiB: the most a verifier's reader accepts.
    status_list_size: int = Field(
        default=131072, ge=1024, le=4_194_304, description="entries per status list"
    )
    # exp of a list token: see status_list_lifetime.
    status_list_ttl: int = Field(
        default=3600, ge=60, le=86400, description="status list token ttl (s)"
    )
    hr_max_file_mb: int = Field(
        default=256, ge=1, le=4096, description="largest HR export accepted (MiB)"
    )
    management_key: SecretStr | None = Field(
        default=None, description="PIV management key (hex) of the desk's blank cards"
    )
    management_key_type: Literal["TDES", "AES128", "AES192", "AES256"] = Field(
        default="TDES", description="TDES, AES128, AES192, AES256"
    )
    verify_url: str | None = Field(
        default=None, description="verify page base for NDEF/QR; default: <public_url>/v"
    )
    # Off by default: anyone can read a printed QR (docs/claim169.md); pydantic accepts only
    # true/false/1/0/yes/no/on/off here, anything else is a configuration error.
    qr_date_of_birth: bool = Field(
        default=False, description="put the date of birth (Claim 169 key 8) in the printed QR"
    )
    # Issue 15: with makers' attestation CAs configured, a card key the card cannot prove it
    # generated (PIV attestation) is refused; unset (the default) keeps older cards working.
    attestation_ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of card makers' attestation CAs; when set, card key "
        "attestations are checked against them and recorded",
    )
    # Only with IDSVC_ATTESTATION_CA_FILE: false lets cards that cannot attest still issue
    # (recorded as unattested) while those that can are checked; a bad attestation is refused
    # either way.
    require_attestation: bool = Field(
        default=True,
        description="with IDSVC_ATTESTATION_CA_FILE set, refuse card keys sent without an "
        "attestation",
    )
    operator: str = Field(
        default="local-operator",
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="operator id for the audit",
    )
    rate_limit_client: int = Field(
        default=1200, ge=0, description="requests per minute per API client (0: no limit)"
    )
    rate_limit_anonymous: int = Field(
        default=60, ge=0, description="anonymous verifications per minute per address (0: off)"
    )
    rate_limit_sync: float = Field(
        default=1.0, ge=0, le=60, description="seconds a worker counts alone between DB syncs"
    )
    check_retention_days: int = Field(
        default=365, ge=1, description="days the who-checked-whom log is kept"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks (CIDR) of the reverse proxies whose "
        "X-Client-Cert header (the mutual-TLS client certificate) is believed; empty: none",
    )
    check_log_flush: float = Field(
        default=1.0, ge=0, le=60, description="seconds checks wait in memory before written"
    )
    card_challenge_ttl: int = Field(
        default=120, ge=5, le=3600, description="seconds a card challenge stays usable"
    )
    verify_cache_ttl: float = Field(
        default=2.0, ge=0, le=60, description="seconds a worker may serve trust/status from memory"
    )
    server_secret_file: Path | None = Field(
        default=None,
        description="0600 file with the secret that keys account hashes and webhook secrets; "
        "default: <home>/secrets/server-secret (created on first use)",
    )
    payroll_account_window_days: int = Field(
        default=93, ge=1, le=3660, description="days an account seen in a payroll check counts"
    )
    # Payroll controls (idsvc.bank.payroll_controls).
    retirement_age: int = Field(
        default=60, ge=40, le=80, description="age at which PAST_RETIREMENT_AGE is flagged"
    )
    retirement_age_overrides: str = Field(
        default="",
        max_length=1024,
        description="other retirement ages by sex, category or both, e.g. "
        "'F=55,contract_teacher=65,M:temporary=62'",
    )
    enrolment_grace_days: int = Field(
        default=90, ge=1, le=3660, description="days active before NO_CARD is flagged"
    )
    pay_period_days: int = Field(
        default=14, ge=1, le=31, description="days between paydays (pay periods at risk)"
    )
    account_change_days: int = Field(
        default=45, ge=1, le=3660, description="days a changed payroll account is flagged"
    )
    webhook_max_attempts: int = Field(
        default=20, ge=1, le=100, description="delivery attempts before a webhook is failed"
    )
    webhook_first_retry: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds before a failed webhook delivery is tried again (doubles each time)",
    )
    webhook_max_retry: float = Field(
        default=6 * 3600.0, gt=0, le=86400, description="longest wait between delivery attempts"
    )
    webhook_private_targets: bool = Field(
        default=False,
        description="allow webhook receivers on loopback and private addresses (an on-premises "
        "bank; plain http then only on loopback); link-local, multicast and unspecified "
        "addresses stay refused",
    )
    operator_key_file: Path | None = Field(
        default=None,
        description="0600 file with the key that seals operators' TOTP secrets; "
        "default: <home>/secrets/operator-key (created with the first operator)",
    )
    operator_password_cost: int = Field(
        default=17, ge=14, le=20, description="scrypt cost of operator passwords (log2 N)"
    )
    operator_max_failed_logins: int = Field(
        default=5, ge=1, le=100, description="failed logins in a row before a lockout"
    )
    operator_lockout_minutes: int = Field(
        default=30, ge=1, le=10080, description="how long a lockout lasts"
    )
    operator_session_idle_minutes: int = Field(
        default=15, ge=1, le=480, description="an operator session ends after this idle time"
    )
    operator_session_hours: int = Field(
        default=8, ge=1, le=24, description="an operator session ends this long after login"
    )
    approval_required: str = Field(
        default="",
        description="comma-separated actions that need a second person's approval: "
        "reissue_after_loss, revoke, hr_correction, key_rotation, operator_change",
        pattern=r"^[a-z_, ]*$",
    )
    approval_hours: int = Field(
        default=24, ge=1, le=720, description="a pending approval expires after this"
    )
    desk_enrol_hours: int = Field(
        default=72, ge=1, le=720, description="validity of a desk's one-time enrolment code"
    )
    wallet_offer_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="validity of a phone credential offer (its pre-authorized code and "
        "transaction code), 1 to 1440 minutes",
    )
    verifier_hard_limit_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="the web verifier answers TRUST_STALE, never VALID, once its offline "
        "status lists are older than this",
    )
    # Observability (mobile_api/metrics.py, idsvc/operations/readiness.py,
    # idsvc/cli/observability.py).
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="server log lines: json (one object a line), text, or auto (text on a "
        "terminal, json to files and journald)",
    )
    metrics_access: Literal["admin", "open"] = Field(
        default="admin",
        description="who may read /metrics: admin (an API client with scope admin) or open",
    )
    published_dir: Path | None = Field(
        default=None,
        description="folder `idsvc publish` writes to; /readyz fails when its lists near exp",
    )
    readiness_cache: float = Field(
        default=5.0, ge=0, le=60, description="seconds a worker reuses its /readyz report"
    )

    @field_validator("public_url", "verify_url", "issuer")
    @classmethod
    def _http_urls(cls, value: str | None) -> str | None:
        # Credentials carry these URLs for years; a bad one makes every credential issued
        # meanwhile fail verification, so refuse it before anything is issued.
        if value is None:
            return value
        parts = urlsplit(value)
        if (
            not value.isascii()
            or not value.isprintable()
            or " " in value
            or len(value) > 512
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "must be an absolute http:// or https:// URL (printable ASCII, at most 512 "
                "characters, no user name, query or fragment)"
            )
        try:
            parts.port  # noqa: B018  (raises for a port out of range)
        except ValueError:
            raise ValueError("the URL's port must be 1-65535") from None
        return value

    @field_validator("issuer_name_local")
    @classmethod
    def _lao_or_khmer(cls, value: str | None) -> str | None:
        # Printed on every card of the country: refuse at start-up what no card can show.
        if value is None:
            return value
        from cardio.errors import ScriptNotShapeable
        from cardio.fonts import script_of

        try:
            script = script_of(value)
        except ScriptNotShapeable:
            script = "other"
        if script not in ("Lao", "Khmer") or not value.isprintable():
            raise ValueError(
                "must be the issuer's name in Lao or Khmer script (printable, 1 to 64 "
                "characters, one script)"
            )
        return value

    @field_validator("pkcs11_module")
    @classmethod
    def _absolute_module(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_absolute():
            raise ValueError("must be an absolute path to the PKCS#11 module (.so)")
        return value

    @model_validator(mode="after")
    def _management_key_fits_type(self) -> Settings:
        if self.management_key is None:
            return self
        key = self.management_key.get_secret_value()
        size = {"TDES": 24, "AES128": 16, "AES192": 24, "AES256": 32}[self.management_key_type]
        try:
            fits = len(bytes.fromhex(key)) == size
        except ValueError:
            fits = False
        if not fits:
            # Never the value: it is a secret.
            raise ValueError(
                f"IDSVC_MANAGEMENT_KEY must be {size * 2} hex digits for "
                f"IDSVC_MANAGEMENT_KEY_TYPE={self.management_key_type}"
            )
        return self

    @field_validator("approval_required")
    @classmethod
    def _known_approval_actions(cls, value: str) -> str:
        # A typo must fail at start-up, not silently switch maker-checker off for an action.
        from idsvc.staff.approval_actions import ACTIONS  # imports nothing: cheap everywhere

        unknown = {a.strip() for a in value.split(",") if a.strip()} - set(ACTIONS)
        if unknown:
            raise ValueError(f"unknown action(s) {sorted(unknown)}; known: {', '.join(ACTIONS)}")
        return value

    @field_validator("retirement_age_overrides")
    @classmethod
    def _retirement_overrides(cls, value: str) -> str:
        _parse_retirement_overrides(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item.strip()[:64]!r} is not an IP address or network (CIDR)"
                    ) from None
        return value

    @property
    def retirement_ages(self) -> dict[tuple[str, str], int]:
        """IDSVC_RETIREMENT_AGE_OVERRIDES as ``{("F", ""): 55, ("F", "contract_teacher"): 60}``."""
        return _parse_retirement_overrides(self.retirement_age_overrides)

    @property
    def approval_actions(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.approval_required.split(",") if a.strip())

    @property
    def resolved_operator_key_file(self) -> Path:
        return self.operator_key_file or self.home / "secrets" / "operator-key"

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

    @property
    def status_list_lifetime(self) -> timedelta:
        """``exp - iat`` of a signed status list: 24 x ttl, and never shorter than the web
        verifier's hard limit, so that an official working offline is stopped by the
        ministry's limit (TRUST_STALE) and not earlier by the list token's own expiry."""
        return max(
            timedelta(seconds=self.status_list_ttl * 24),
            timedelta(days=self.verifier_hard_limit_days),
        )

    @property
    def resolved_server_secret_file(self) -> Path:
        return self.server_secret_file or self.home / "secrets" / "server-secret"


def _accepts(error: dict[str, object]) -> str:
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def load_settings() -> Settings:
    """``Settings()`` from the environment, every field validated; raises
    ``ConfigurationInvalid`` naming each bad variable and what it accepts, never its value
    (the value may be a secret)."""
    from idsvc.errors import ConfigurationInvalid

    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = error.get("loc") or ()
            name = f"IDSVC_{str(loc[0]).upper()}" if loc else "configuration"
            problems.append(f"{name}: {_accepts(dict(error))}")
        raise ConfigurationInvalid("bad configuration: " + "; ".join(problems)) from None


class PassphraseMissing(Exception):
    """No way to get the issuer key passphrase."""


def read_passphrase_file(path: Path) -> bytes:
    import stat

    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Name the file the mode belongs to: for a link (a mounted secret), its target.
        target = path.resolve()
        raise PassphraseMissing(
            f"passphrase file {target} is readable by others: chmod 600 {target}"
        )
    return path.read_bytes().rstrip(b"\r\n")


def key_passphrase(settings: Settings, prompt: Callable[[], str] | None = None) -> bytes:
    """The passphrase from the environment, a 0600 file, or (interactive CLI only) a prompt."""
    if settings.key_passphrase is not None:
        if not settings.key_passphrase.get_secret_value():
            raise PassphraseMissing("no key passphrase: IDSVC_KEY_PASSPHRASE is empty")
        return settings.key_passphrase.get_secret_value().encode()
    path = settings.key_passphrase_file
    if path is None and settings.embedded_passphrase_file.exists():
        path = settings.embedded_passphrase_file
    if path is not None:
        try:
            secret = read_passphrase_file(path)
        except FileNotFoundError as exc:
            raise PassphraseMissing(f"passphrase file {path} not found") from exc
        if not secret:
            raise PassphraseMissing(f"no key passphrase: the passphrase file {path} is empty")
        return secret
    if prompt is not None:
        typed = prompt().encode()
        if not typed:
            raise PassphraseMissing("no key passphrase: an empty passphrase was typed")
        return typed
    raise PassphraseMissing(
        "no key passphrase: set IDSVC_KEY_PASSPHRASE or IDSVC_KEY_PASSPHRASE_FILE"
    )
