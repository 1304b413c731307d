"""The issuer key in an HSM (SoftHSM2 through PKCS#11): the private key never leaves the token."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import pkcs11
from joserfc import jws as jose_jws
from joserfc.jwk import KeySet

from tests.support.cli_runner import Cli
from tests.support.settings import SAMPLE_CSV
from tests.support.softhsm import SoftHsmToken


def hsm_cli(tmp_path: Path, url: str, token: SoftHsmToken) -> Cli:
    cli = Cli(tmp_path / "home", url)
    del cli.env["IDSVC_KEY_PASSPHRASE"]  # no key files at all: everything is on the token
    cli.env |= {
        "IDSVC_PKCS11_MODULE": token.module,
        "IDSVC_PKCS11_TOKEN": token.label,
        "IDSVC_PKCS11_PIN": token.pin,
        "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"],
    }
    return cli


def test_hsm_issuer_issues_rotates_and_keeps_keys_on_the_token(
    tmp_path: Path, sqlite_url: str, softhsm_token: SoftHsmToken
) -> None:
    cli = hsm_cli(tmp_path, sqlite_url, softhsm_token)
    r = cli("init")
    assert r.returncode == 0, r.stderr
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    token = cli("issue", "KH-MCS-010002").stdout.strip()
    assert cli("verify", token).returncode == 0
    keyset = KeySet.import_key_set(json.loads(cli("keys", "jwks").stdout))
    assert json.loads(jose_jws.deserialize_compact(token, keyset).payload)["sub"] == "KH-MCS-010002"
    assert cli("keys", "rotate").returncode == 0
    assert cli("verify", token).returncode == 0
    assert not list((cli.home / "keys").rglob("private/*")), "no private key file may exist"

    lib = pkcs11.lib(softhsm_token.module)
    tok = lib.get_token(token_label=softhsm_token.label)
    with tok.open(user_pin=softhsm_token.pin) as session:
        keys = list(session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}))
        ours = [k for k in keys if str(cast(Any, k).label).startswith("idsvc-")]
        assert len(ours) >= 3  # credential key, CA key, rotated credential key
        for key in ours:
            assert key[pkcs11.Attribute.SENSITIVE] and not key[pkcs11.Attribute.EXTRACTABLE]


def test_wrong_hsm_pin_is_a_clear_error(
    tmp_path: Path, sqlite_url: str, softhsm_token: SoftHsmToken
) -> None:
    cli = hsm_cli(tmp_path, sqlite_url, softhsm_token)
    assert cli("init").returncode == 0
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    r = cli("issue", "KH-MCS-010002", env={"IDSVC_PKCS11_PIN": "000000"})
    assert r.returncode == 14
    assert "HSM" in r.stderr and softhsm_token.pin not in r.stderr
