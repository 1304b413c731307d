"""The test register: a fixed clock, the key passphrase, the sample HR file and people in it,
and settings and services built in a temporary home.

Fixed values, so results do not depend on the wall clock and tests can recompute what the
service derives from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idsvc.config import Settings
from idsvc.services import Services

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "idsvc" / "data" / "hr_sample.csv"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"

# People of the sample HR file who are active on NOW (both in the Ministry of Home Affairs).
ACTIVE_EMPLOYEE = "LA-MOHA-000101"
OTHER_ACTIVE_EMPLOYEE = "LA-MOHA-000102"


def make_settings(home: Path, url: str, **extra: Any) -> Settings:
    # Through keyword arguments, so the environment still applies under them (as in production);
    # pydantic validates (and converts) each value, hence ``Any``.
    values: dict[str, Any] = {
        "home": home,
        "database_url": url,
        "key_passphrase": PASSPHRASE,
        "issuer": "https://id.mcs.gov.kh/issuers/default",
        "public_url": "https://id.mcs.gov.kh",
        "status_list_size": 1024,
        **extra,
    }
    return Settings(**values)


def rotated(service: Services) -> tuple[str, str]:
    """Rotate the default issuer's key from the console: (old kid, new kid)."""
    done = service.credentials.rotate_key(by=None, now=NOW)
    assert isinstance(done, tuple), "key rotation waits for an approval here"
    return done


def make_service(settings: Settings) -> Services:
    """A service over ``settings`` whose key passphrase is ``PASSPHRASE`` (not initialised)."""
    return Services.from_settings(settings, lambda: PASSPHRASE.encode())
