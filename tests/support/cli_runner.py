"""Runs the real `idsvc` console script in a subprocess with a test environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.settings import PASSPHRASE

IDSVC = str(Path(sys.executable).with_name("idsvc"))


class Cli:
    def __init__(self, home: Path, db_url: str) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
            "IDSVC_HOME": str(home),
            "IDSVC_DATABASE_URL": db_url,
            "IDSVC_KEY_PASSPHRASE": PASSPHRASE,
            "IDSVC_ISSUER": "https://id.mof.gov.la/issuers/default",
            "IDSVC_STATUS_LIST_SIZE": "4096",
            "COLUMNS": "200",
        }

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [IDSVC, *args],
            capture_output=True,
            text=True,
            env=self.env | (env or {}),
            input=input,
            timeout=60,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc
