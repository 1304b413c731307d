"""Fixtures for the keys tests: a throw-away SoftHSM2 token.

SoftHSM is required, not optional: the test command installs Debian's ``softhsm2``. A
missing tool fails the tests loudly instead of skipping the HSM code paths silently.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOFTHSM_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHsmToken:
    module: str
    label: str
    pin: str
    so_pin: str


def _softhsm_module() -> str:
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    pytest.fail(
        "SoftHSM2 PKCS#11 module not found (looked in "
        f"{', '.join(SOFTHSM_MODULE_CANDIDATES)}); install it: apt-get install -y softhsm2",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A freshly initialised SoftHSM2 token in its own token directory.

    Session-scoped because SoftHSM reads SOFTHSM2_CONF once per process; tests keep
    apart by using unique key labels.
    """
    util = shutil.which("softhsm2-util")
    if util is None:
        pytest.fail(
            "softhsm2-util not found; install SoftHSM2: apt-get install -y softhsm2",
            pytrace=False,
        )
    module = _softhsm_module()
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir(mode=0o700)
    config = root / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    token = SoftHsmToken(
        module=module,
        label=f"keys-test-{secrets.token_hex(4)}",
        pin=secrets.token_hex(4),
        so_pin=secrets.token_hex(8),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(config))
        result = subprocess.run(
            [
                util,
                "--init-token",
                "--free",
                "--label",
                token.label,
                "--so-pin",
                token.so_pin,
                "--pin",
                token.pin,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if result.returncode != 0:
            pytest.fail(
                f"softhsm2-util --init-token failed ({result.returncode}): {result.stderr}",
                pytrace=False,
            )
        yield token


@pytest.fixture
def key_label() -> str:
    """A label no other test uses on the shared token."""
    return f"test-{secrets.token_hex(6)}"
