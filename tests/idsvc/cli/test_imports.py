"""`idsvc --help` and a mistyped command answer at once: they load neither the settings
(pydantic) nor the database, key, card or image libraries, which the commands import where they
use them (idsvc/cli/common.py). An import check, not a timing: bench/bench_cli_startup.py times it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli_runner import run_reporting

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


def run_idsvc(
    *args: str, run: str = RUN, heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
) -> tuple[int, list[str], str]:
    found, screen, errors = run_reporting(run, ",".join(heavy), *args, env=env)
    return found["code"], found["loaded"], screen + errors


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


# What `idsvc verify TOKEN` must not load: it reads the issuers' public keys, one status list
# and one HR status. Alembic (with Mako and Pygments) only migrates (the schema check reads
# the revision with one SELECT); the settings need pydantic alone; the other features, the
# performers table, the audit replay and a desk's identity belong to other commands; python-pkcs11
# only to a key ring kept in an HSM.
NOT_FOR_VERIFY = (
    "alembic",
    "cv2",
    "fastapi",
    "mako",
    "PIL",
    "pkcs11",
    "pydantic_settings",
    "pygments",
    "smartcard",
    "uvicorn",
    "zxingcpp",
    "idsvc.audit.replay",
    "idsvc.bank.use_cases",
    "idsvc.credentials.use_cases",
    "idsvc.desk_client.identity",
    "idsvc.desks.gateway",
    "idsvc.register.use_cases",
    "idsvc.staff.maker_checker",
    "idsvc.staff.use_cases",
)

# RUN, counting how many times the settings are built (the desk routing, the root callback's
# check and the command all read them).
COUNTING_RUN = (
    "import idsvc.config\n"
    "built = []\n"
    "_init = idsvc.config.Settings.__init__\n"
    "def _counted(self, **values):\n"
    "    built.append(1)\n"
    "    _init(self, **values)\n"
    "idsvc.config.Settings.__init__ = _counted\n"
    + RUN
    + 'print(json.dumps({"code": code, "loaded": [str(len(built))]}))\n'
)


def test_verify_loads_only_what_a_verification_reads(tmp_path: Path, sqlite_url: str) -> None:
    from tests.support.cli_runner import Cli
    from tests.support.settings import SAMPLE_CSV

    cli = Cli(tmp_path / "home", sqlite_url)
    assert cli("init").returncode == 0
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    issued = cli("issue", "LA-MOHA-000101")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    code, loaded, screen = run_idsvc("verify", token, heavy=NOT_FOR_VERIFY, env=cli.env)
    assert code == 0 and "VALID" in screen, screen  # it did verify, through the database
    assert loaded == []
    code, built, _ = run_idsvc("verify", token, run=COUNTING_RUN, heavy=(), env=cli.env)
    assert code == 0 and built == ["1"]  # the settings were built once, not once a reader


def test_where_a_desk_keeps_its_files_is_known_without_the_desk_identity(tmp_path: Path) -> None:
    # idsvc.desk_client.folder spares every command importing the desk identity; the
    # identity reads its paths from there too.
    probe = (
        "import sys; from idsvc.desk_client.folder import desk_config; "
        "print('cryptography' in sys.modules, 'idsvc.desk_client.identity' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.split() == ["False", "False"]
    from idsvc.desk_client.folder import desk_config
    from idsvc.desk_client.identity import DeskIdentity

    assert desk_config(tmp_path) == DeskIdentity(tmp_path).config_path
