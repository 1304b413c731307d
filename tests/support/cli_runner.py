"""Runs the real `idsvc` console script in a subprocess with a test environment, or a script
that drives `idsvc.cli.main.app` and reports what the process did (``run_reporting``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def run_reporting(
    script: str, *argv: str, env: dict[str, str] | None = None
) -> tuple[Any, str, str]:
    """Run ``python -c script ARGV`` outside any IDSVC_* of the test run, at a fixed terminal
    width and without colour. ``script`` prints, as its last line, a JSON report of what the
    process did (modules loaded, commands built): returns that report, the screen before it,
    and stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")}
        | {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
        | (env or {}),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    *screen, last = proc.stdout.rstrip("\n").split("\n")
    return json.loads(last), "\n".join(screen), proc.stderr
