"""The issuance desk against the virtual PIV card through a real pcscd + vpcd.

Everything goes through the `idsvc` console script and pyscard, as at a desk with a reader.
Independent PIV stacks (OpenSC's tools and PKCS#11 module, yubikit) then read what we wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Mechanism, ObjectClass
from ykman.pcsc import ScardSmartCardConnection
from yubikit.piv import SLOT
from yubikit.piv import PivSession as YkPivSession

from cardio.ndef import NdefSession, parse_uri_message
from cardio.pcsc import PcscTransport
from cardio.piv import Chuid, KeyType, ManagementKeyType, ObjectId, PivSession, Slot
from tests.support.cli_runner import Cli
from tests.support.pcsc import DEFAULT_MGMT_KEY, VirtualCardFactory, pyscard_connect
from tests.support.settings import SAMPLE_CSV

pytestmark = [pytest.mark.pcsc]

READER0 = "Virtual PCD 00 00"
READER1 = "Virtual PCD 00 01"
OPENSC_PKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
PERSON = "KH-MCS-010002"


@pytest.fixture
def desk(tmp_path: Path, sqlite_url: str, attestation_ca: Path) -> Cli:
    cli = Cli(tmp_path / "home", sqlite_url)
    # Card keys must be attested (issue 15): every issuance below proves it through pcscd.
    cli.env["IDSVC_ATTESTATION_CA_FILE"] = str(attestation_ca / "ca.pem")
    assert cli("init").returncode == 0
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    return cli


def issue(desk: Cli, person: str = PERSON, reader: str = READER0) -> dict[str, object]:
    r = desk("issue", person, "--reader", reader, "--default-management-key", "--json")
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


def states(desk: Cli, person: str = PERSON) -> list[str]:
    r = desk("credentials", person, "--json")
    assert r.returncode == 0, r.stderr
    return [c["state"] for c in json.loads(r.stdout)]


def test_issue_read_verify_and_tap_url(desk: Cli, virtual_card: VirtualCardFactory) -> None:
    virtual_card()
    listing = desk("readers", "--json")
    rows = {row["reader"]: row for row in json.loads(listing.stdout)}
    assert rows[READER0]["card"] is True and rows[READER0]["application"].startswith("PIV")
    issued = issue(desk)
    assert cast(int, issued["commands_sent"]) <= 40
    assert states(desk) == ["live"]

    r = desk("card", "verify", "--reader", READER0, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0, r.stderr + r.stdout
    assert out["valid"] and out["challenge_checked"]
    assert out["holder"]["name"] == "សុខ ចាន់ថា"
    assert out["credential_id"] == issued["credential_id"]
    assert out["commands_sent"] <= 4
    assert out["card_uuid"] == issued["card_uuid"]

    read = json.loads(desk("card", "read", "--reader", READER0, "--json").stdout)
    assert read["valid"] and read["challenge_checked"] is False

    with PcscTransport.open(READER0) as transport:
        url = parse_uri_message(NdefSession(transport).read_message())
    assert url == issued["verify_url"]
    assert str(issued["credential_id"]) in url

    # the credential on the card is the one the register holds, and it verifies on its own
    r = desk("verify", str(issued["token"]), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["valid"]


@pytest.mark.parametrize("fail_after", [1, 4, 8, 12, 17, 22])
def test_pulled_card_leaves_nothing_live_and_retry_succeeds(
    desk: Cli, virtual_card: VirtualCardFactory, tmp_path: Path, fail_after: int
) -> None:
    state = tmp_path / "card.json"
    card = virtual_card(state_file=state, fail_after=fail_after)
    r = desk("issue", PERSON, "--reader", READER0, "--default-management-key", "--json")
    assert r.returncode in (11, 17), r.stdout + r.stderr
    assert "retry" in r.stderr.lower()
    assert "live" not in states(desk)
    assert "pending" not in states(desk)
    card.wait_pulled()

    virtual_card(state_file=state)  # re-insert the same card
    issued = issue(desk)
    assert states(desk).count("live") == 1
    r = desk("card", "verify", "--reader", READER0, "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["credential_id"] == issued["credential_id"]


def _write_clone(reader: str, cert: x509.Certificate, token: bytes) -> None:
    """What a forger can do: a card of their own with the victim's certificate and token."""
    with PcscTransport.open(reader) as transport:
        piv = PivSession(transport, extended=transport.extended_length)
        piv.authenticate(ManagementKeyType.TDES, DEFAULT_MGMT_KEY)
        piv.generate_key(Slot.CARD_AUTH, KeyType.ECCP256)  # its own key: ours cannot be read
        piv.put_certificate(Slot.CARD_AUTH, cert)
        piv.put_object(ObjectId.CREDENTIAL, token)


def _read_card(reader: str) -> tuple[x509.Certificate, bytes]:
    with PcscTransport.open(reader) as transport:
        piv = PivSession(transport, extended=transport.extended_length)
        return piv.get_certificate(Slot.CARD_AUTH), piv.get_object(ObjectId.CREDENTIAL)


def test_cloned_card_is_not_genuine(desk: Cli, virtual_card: VirtualCardFactory) -> None:
    virtual_card(reader=0)
    issue(desk)
    cert, token = _read_card(READER0)
    virtual_card(reader=1)
    _write_clone(READER1, cert, token)
    r = desk("card", "verify", "--reader", READER1, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1
    assert out["status"] == "not_genuine" and "CARD_NOT_GENUINE" in out["reasons"]
    # the genuine card still passes
    assert desk("card", "verify", "--reader", READER0).returncode == 0


def test_token_moved_to_another_genuine_card_is_not_genuine(
    desk: Cli, virtual_card: VirtualCardFactory
) -> None:
    """Card B is a real card of ours (for someone else); A's token on it fails the cnf check."""
    virtual_card(reader=0)
    virtual_card(reader=1)
    issue(desk, PERSON, READER0)
    issue(desk, "LA-MOHA-000101", READER1)
    _, token_a = _read_card(READER0)
    with PcscTransport.open(READER1) as transport:
        piv = PivSession(transport, extended=transport.extended_length)
        piv.authenticate(ManagementKeyType.TDES, DEFAULT_MGMT_KEY)
        piv.put_object(ObjectId.CREDENTIAL, token_a)
    out = json.loads(desk("card", "verify", "--reader", READER1, "--json").stdout)
    assert out["reasons"] == ["CARD_NOT_GENUINE"]


def test_wipe_revokes_and_reissue_keeps_card_uuid(
    desk: Cli, virtual_card: VirtualCardFactory
) -> None:
    virtual_card()
    first = issue(desk)
    r = desk(
        "card",
        "wipe",
        "--reader",
        READER0,
        "--default-management-key",
        "--revoke-reason",
        "damaged",
    )
    assert r.returncode == 0, r.stderr
    r = desk("verify", str(first["token"]), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["reasons"] == ["REVOKED"]
    r = desk("card", "read", "--reader", READER0)
    assert r.returncode == 15 and "not found" in r.stderr.lower()
    second = issue(desk)
    assert second["card_uuid"] == first["card_uuid"]
    assert second["credential_id"] != first["credential_id"]
    assert states(desk) == ["revoked", "live"]


def test_reissue_to_a_new_card_supersedes_the_lost_one(
    desk: Cli, virtual_card: VirtualCardFactory
) -> None:
    virtual_card(reader=0)
    virtual_card(reader=1)
    issue(desk, reader=READER0)
    issue(desk, reader=READER1)  # the person lost card 0
    out = json.loads(desk("card", "verify", "--reader", READER0, "--json").stdout)
    assert out["reasons"] == ["REVOKED"]
    assert desk("card", "verify", "--reader", READER1).returncode == 0
    assert states(desk) == ["superseded", "live"]


def test_management_key_required_and_wrong_key_refused(
    desk: Cli, virtual_card: VirtualCardFactory
) -> None:
    virtual_card()
    r = desk("issue", PERSON, "--reader", READER0)
    assert r.returncode == 3 and "--default-management-key" in r.stderr
    r = desk("issue", PERSON, "--reader", READER0, env={"IDSVC_MANAGEMENT_KEY": "00" * 24})
    assert r.returncode == 11 and "management key" in r.stderr.lower()
    assert states(desk) == []
    r = desk("issue", PERSON, "--reader", "No Such Reader", "--default-management-key")
    assert r.returncode == 15 and "reader" in r.stderr.lower()


def test_pin_and_puk_are_set_when_asked(desk: Cli, virtual_card: VirtualCardFactory) -> None:
    virtual_card()
    r = desk(
        "issue", PERSON, "--reader", READER0, "--default-management-key",
        "--new-pin", "24681357", "--new-puk", "86427531",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with PcscTransport.open(READER0) as transport:
        piv = PivSession(transport)
        piv.verify_pin("24681357")


@pytest.fixture
def opensc_env(tmp_path: Path) -> dict[str, str]:
    for tool in ("pkcs15-tool", "opensc-tool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: apt-get install opensc", pytrace=False)
    conf = tmp_path / "opensc.conf"
    conf.write_text("app default {\n framework pkcs15 {\n  use_file_caching = no;\n }\n}\n")
    return {"OPENSC_CONF": str(conf), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}


@pytest.mark.opensc
def test_independent_piv_stacks_read_what_we_wrote(
    desk: Cli, virtual_card: VirtualCardFactory, opensc_env: dict[str, str], tmp_path: Path
) -> None:
    virtual_card()
    issued = issue(desk)
    ours, token = _read_card(READER0)

    # OpenSC's tools list our CA-issued certificate on the card
    listing = subprocess.run(
        ["pkcs15-tool", "--reader", READER0, "--list-certificates"],
        capture_output=True, text=True, env=opensc_env, timeout=30,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    assert "Card Authentication" in listing.stdout
    pem = subprocess.run(
        ["pkcs15-tool", "--reader", READER0, "--read-certificate", "04"],
        capture_output=True, text=True, env=opensc_env, timeout=30,
    )  # fmt: skip
    assert pem.returncode == 0, pem.stderr
    assert x509.load_pem_x509_certificate(pem.stdout.encode()) == ours
    # ...which openssl chains to the issuer CA
    ca_pem = next((desk.home / "keys").rglob("ca.pem"))
    card_pem = tmp_path / "card.pem"
    card_pem.write_text(pem.stdout)
    check = subprocess.run(
        ["openssl", "verify", "-partial_chain", "-CAfile", str(ca_pem), str(card_pem)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    # OpenSC's PKCS#11 module makes the card sign with its card-authentication key, no PIN
    lib = pkcs11.lib(OPENSC_PKCS11)
    token_obj = next(
        s.get_token() for s in lib.get_slots(token_present=True) if READER0 in s.slot_description
    )
    message = b"challenge from an independent verifier"
    digest = hashes.Hash(hashes.SHA256())
    digest.update(message)
    with token_obj.open() as session:
        key = next(
            k
            for k in session.get_objects({pkcs11.Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            if k[pkcs11.Attribute.ID] == b"\x04"
        )
        # a SignMixin method, not in the stubs
        raw = cast(Any, key).sign(digest.finalize(), mechanism=Mechanism.ECDSA)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = ours.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, message, ec.ECDSA(hashes.SHA256()))

    # yubikit reads the same certificate and our credential object
    connection = pyscard_connect(READER0)
    try:
        yk = YkPivSession(ScardSmartCardConnection(connection))  # type: ignore[no-untyped-call]
        assert yk.get_certificate(SLOT.CARD_AUTH).public_bytes(Encoding.DER) == ours.public_bytes(
            Encoding.DER
        )
        assert yk.get_object(int(ObjectId.CREDENTIAL)) == token == str(issued["token"]).encode()
        chuid = Chuid.parse(yk.get_object(int(ObjectId.CHUID)))
        assert str(chuid.guid) == issued["card_uuid"]
    finally:
        connection.disconnect()


def test_refused_person_leaves_the_card_untouched(
    desk: Cli, virtual_card: VirtualCardFactory
) -> None:
    virtual_card()
    issue(desk)
    r = desk("issue", "LA-MOF-002210", "--reader", READER0, "--default-management-key")
    assert r.returncode == 5 and "retired" in r.stderr
    # the card key was not regenerated: the card still proves the credential it holds
    assert desk("card", "verify", "--reader", READER0).returncode == 0
