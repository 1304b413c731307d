"""`idsvc --help` and a mistyped command answer at once: they load neither the settings
(pydantic) nor the database, key, card or image libraries, which the commands import where they
use them (idsvc/cli/common.py). An import check, not a timing: bench/bench_cli_startup.py times it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# What `idsvc --help` must not load: each costs tens of milliseconds and megabytes at start-up.
HEAVY = (
    "alembic",
    "cardio",
    "cryptography",
    "cv2",
    "fastapi",
    "PIL",
    "pkcs11",
    "pydantic",
    "pydantic_settings",
    "smartcard",
    "sqlalchemy",
    "uvicorn",
    "zxingcpp",
)

# Runs `idsvc ARGS` in a fresh interpreter, as the `idsvc` script does, then prints which of
# HEAVY it loaded as a last JSON line.
RUN = r"""
import json, sys
from idsvc.cli.main import app
heavy = sys.argv[1].split(",")
sys.argv = ["idsvc", *sys.argv[2:]]
try:
    app()
except SystemExit as exc:
    code = exc.code
print()
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def run_idsvc(*args: str) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", RUN, ",".join(HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")}
        | {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    *screen, last = proc.stdout.rstrip("\n").split("\n")
    found = json.loads(last)
    return found["code"], found["loaded"], "\n".join(screen) + proc.stderr


def test_help_loads_no_heavy_library() -> None:
    code, loaded, screen = run_idsvc("--help")
    assert code == 0
    assert "verify" in screen and "import-hr" in screen  # the whole command list was printed
    assert loaded == []


@pytest.mark.parametrize("args", [("no-such-command",), ()], ids=["typo", "no-arguments"])
def test_usage_errors_load_no_heavy_library(args: tuple[str, ...]) -> None:
    code, loaded, _ = run_idsvc(*args)
    assert code == 2
    assert loaded == []


def test_the_card_face_dpi_default_is_the_renderers_floor() -> None:
    # idsvc.cli.print_commands writes the number out so that `idsvc --help` needs no Pillow.
    from cardio.card_face import MIN_DPI
    from idsvc.cli import print_commands

    assert print_commands.MIN_DPI == MIN_DPI


def test_reading_the_settings_loads_no_database_library() -> None:
    """With maker-checker configured, the settings check ``IDSVC_APPROVAL_REQUIRED`` against
    the actions it knows: that table imports nothing, so reading the settings (every command,
    every desk) does not load SQLAlchemy or Alembic (it did: half a second)."""
    probe = (
        "import json, sys\n"
        "from idsvc.config import Settings\n"
        "Settings()\n"
        "print(json.dumps([m for m in ('sqlalchemy', 'alembic') if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")}
        | {"IDSVC_APPROVAL_REQUIRED": "revoke,key_rotation"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
