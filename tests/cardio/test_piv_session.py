"""PivSession against recorded card exchanges (SP 800-73-4 part 2 wire formats).

Management-key mutual authentication (SP 800-73-4 part 2, GENERAL AUTHENTICATE with key
reference 9B, the witness/challenge exchange of its appendix A): the card sends E(K, witness),
the client returns the witness and its own challenge, the card returns E(K, challenge).

The ciphertexts below were computed outside this code base, with the OpenSSL 3.0 command line
(``openssl enc -des-ede3 -K <key> -nopad`` and ``-aes-128-ecb``), and are therefore independent
of ``cardio.piv``:

- TDES, default PIV management key 010203040506070801020304050607080102030405060708:
  E(1122334455667788) = 6C5E94DCADD39F1D, E(A1A2A3A4A5A6A7A8) = 199FA374705A69EB;
- AES-128, key 000102..0F: E(00112233445566778899AABBCCDDEEFF) =
  69C4E0D86A7B0430D8CDB78070B4C55A (the FIPS-197 appendix C.1 vector),
  E(B0B1..BF) = E315209ED0E7C94F74A65C99F6EADC1E.
"""

from __future__ import annotations

import datetime
import hashlib
from datetime import date
from uuid import UUID

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from cardio import errors
from cardio.piv import (
    CREDENTIAL_OBJECT_ID,
    NON_FEDERAL_FASC_N,
    Chuid,
    KeyType,
    ManagementKeyType,
    ObjectId,
    PivSession,
    PrintedInformation,
    Slot,
    Version,
    clusters,
    fit_utf8,
)
from cardio.transport import ScriptedTransport

DEFAULT_TDES_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

SELECT = ("00A404000B A0000003080000100001 00 00", "61114F0600001000010079074F05A000000308 9000")
GET_VERSION = "00FD000000"


def _hex(data: bytes) -> str:
    return data.hex().upper()


def _len(n: int) -> str:
    """BER length, written out independently of cardio.tlv."""
    if n < 0x80:
        return f"{n:02X}"
    if n < 0x100:
        return f"81{n:02X}"
    return f"82{n:04X}"


def generic_card(*exchanges: tuple[str, str]) -> ScriptedTransport:
    """A non-YubiKey PIV applet (GET VERSION, asked only when needed, is unknown to it)."""
    return ScriptedTransport([SELECT, *exchanges])


def yubikey(*exchanges: tuple[str, str]) -> ScriptedTransport:
    """A YubiKey-like card; the session asks GET VERSION on first use of the version."""
    return ScriptedTransport([SELECT, (GET_VERSION, "050701 9000"), *exchanges])


def fixed_random(value: bytes):  # type: ignore[no-untyped-def]
    def random_bytes(n: int) -> bytes:
        assert n == len(value)
        return value

    return random_bytes


# -- select / version -------------------------------------------------------------------------


def test_select_on_generic_card_tolerates_missing_get_version() -> None:
    transport = generic_card((GET_VERSION, "6D00"))
    session = PivSession(transport)
    assert session.connection.commands_sent == 1  # the version is read on first use only
    assert session.version is None
    assert session.application_properties.startswith(bytes.fromhex("6111"))
    transport.assert_done()
    assert session.get_management_key_type() is None  # no GET METADATA sent to a generic card
    transport.assert_done()


def test_select_on_yubikey_reads_version_and_metadata() -> None:
    transport = yubikey(("00F7009B00", "010103 0202FF01 050101 9000"))
    session = PivSession(transport)
    assert session.version == Version(5, 7, 1)
    assert session.get_management_key_type() == ManagementKeyType.TDES
    transport.assert_done()


def test_card_without_piv_application() -> None:
    transport = ScriptedTransport([(SELECT[0], "6A82")])
    with pytest.raises(errors.NotPivCard):
        PivSession(transport)


# -- management key ---------------------------------------------------------------------------


def test_mutual_authentication_tdes_default_key() -> None:
    transport = generic_card(
        ("0087039B 04 7C028000 00", "7C0A 8008 6C5E94DCADD39F1D 9000"),
        (
            "0087039B 16 7C14 8008 1122334455667788 8108 A1A2A3A4A5A6A7A8 00",
            "7C0A 8208 199FA374705A69EB 9000",
        ),
    )
    session = PivSession(transport, random_bytes=fixed_random(bytes.fromhex("A1A2A3A4A5A6A7A8")))
    session.authenticate(ManagementKeyType.TDES, DEFAULT_TDES_KEY)
    transport.assert_done()


def test_mutual_authentication_aes128() -> None:
    transport = generic_card(
        ("0087089B 04 7C028000 00", "7C12 8010 69C4E0D86A7B0430D8CDB78070B4C55A 9000"),
        (
            "0087089B 26 7C24 8010 00112233445566778899AABBCCDDEEFF"
            " 8110 B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF 00",
            "7C12 8210 E315209ED0E7C94F74A65C99F6EADC1E 9000",
        ),
    )
    session = PivSession(
        transport, random_bytes=fixed_random(bytes.fromhex("B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF"))
    )
    session.authenticate(ManagementKeyType.AES128, bytes(range(16)))
    transport.assert_done()


def test_card_rejects_our_management_key() -> None:
    transport = generic_card(
        ("0087039B 04 7C028000 00", "7C0A 8008 6C5E94DCADD39F1D 9000"),
        ("0087039B 16 7C14 8008 1122334455667788 8108 A1A2A3A4A5A6A7A8 00", "6982"),
    )
    session = PivSession(transport, random_bytes=fixed_random(bytes.fromhex("A1A2A3A4A5A6A7A8")))
    with pytest.raises(errors.ManagementKeyRejected) as info:
        session.authenticate(ManagementKeyType.TDES, DEFAULT_TDES_KEY)
    assert info.value.sw == 0x6982


def test_card_with_another_key_is_caught_by_its_cryptogram() -> None:
    transport = generic_card(
        ("0087039B 04 7C028000 00", "7C0A 8008 6C5E94DCADD39F1D 9000"),
        (
            "0087039B 16 7C14 8008 1122334455667788 8108 A1A2A3A4A5A6A7A8 00",
            "7C0A 8208 0000000000000000 9000",
        ),
    )
    session = PivSession(transport, random_bytes=fixed_random(bytes.fromhex("A1A2A3A4A5A6A7A8")))
    with pytest.raises(errors.ManagementKeyRejected) as info:
        session.authenticate(ManagementKeyType.TDES, DEFAULT_TDES_KEY)
    assert info.value.sw == 0x9000


def test_wrong_management_key_algorithm() -> None:
    transport = generic_card(("00870C9B 04 7C028000 00", "6A80"))
    with pytest.raises(errors.ManagementKeyRejected):
        PivSession(transport).authenticate(ManagementKeyType.AES256, bytes(32))


def test_management_key_length_is_checked() -> None:
    session = PivSession(generic_card())
    with pytest.raises(ValueError):
        session.authenticate(ManagementKeyType.AES192, bytes(16))


# -- PIN --------------------------------------------------------------------------------------


def test_verify_pin_ok() -> None:
    transport = generic_card(("00200080 08 313233343536FFFF", "9000"))
    PivSession(transport).verify_pin("123456")
    transport.assert_done()


def test_wrong_pin_reports_retries() -> None:
    transport = generic_card(("00200080 08 3030303030303030", "63C2"))
    with pytest.raises(errors.WrongPin) as info:
        PivSession(transport).verify_pin("00000000")
    assert info.value.retries_left == 2
    assert info.value.reference == "PIN"


def test_blocked_pin() -> None:
    transport = generic_card(("00200080 08 313233343536FFFF", "6983"))
    with pytest.raises(errors.PinBlocked):
        PivSession(transport).verify_pin("123456")


def test_pin_attempts_from_empty_verify() -> None:
    transport = generic_card(
        ("00200080", "63C3"), ("00200080", "6983"), ("00200080", "9000"), (GET_VERSION, "6D00")
    )
    session = PivSession(transport)
    assert session.get_pin_attempts() == 3
    assert session.get_pin_attempts() == 0
    assert session.get_pin_attempts() is None  # verified; a generic card cannot tell the count
    transport.assert_done()


def test_pin_attempts_on_verified_yubikey_use_metadata() -> None:
    transport = ScriptedTransport(
        [
            SELECT,
            ("00200080", "9000"),
            (GET_VERSION, "050701 9000"),
            ("00F7008000", "0101FF 050100 06020303 9000"),
        ]
    )
    assert PivSession(transport).get_pin_attempts() == 3
    transport.assert_done()


def test_change_pin_puk_and_unblock() -> None:
    transport = generic_card(
        ("00240080 10 313233343536FFFF 3635343332313030", "9000"),
        ("00240081 10 3132333435363738 3837363534333231", "63C1"),
        ("002C0080 10 3132333435363738 313131313131FFFF", "6983"),
        ("002C0080 10 3837363534333231 313131313131FFFF", "9000"),
    )
    session = PivSession(transport)
    session.change_pin("123456", "65432100")
    with pytest.raises(errors.WrongPin) as wrong:
        session.change_puk("12345678", "87654321")
    assert (wrong.value.retries_left, wrong.value.reference) == (1, "PUK")
    with pytest.raises(errors.PinBlocked) as blocked:
        session.unblock_pin("12345678", "111111")
    assert blocked.value.reference == "PUK"
    session.unblock_pin("87654321", "111111")
    transport.assert_done()


def test_pin_longer_than_8_bytes_is_refused_before_sending() -> None:
    with pytest.raises(ValueError):
        PivSession(generic_card()).verify_pin("123456789")


# -- keys -------------------------------------------------------------------------------------


def test_generate_key_and_sign_challenge() -> None:
    card_key = ec.generate_private_key(ec.SECP256R1())
    point = card_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    digest = hashlib.sha256(b"challenge from the verifier").digest()
    # What the card returns: ECDSA over the 32 bytes exactly as given (a pre-hashed digest).
    signature = card_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    dyn = "82" + _len(len(signature)) + _hex(signature)
    transport = generic_card(
        ("0047009E 05 AC03800111 00", "7F49 43 8641" + _hex(point) + "9000"),
        (
            "0087119E 26 7C24 8200 8120" + _hex(digest) + "00",
            "7C" + _len(len(dyn) // 2) + dyn + "9000",
        ),
    )
    session = PivSession(transport)
    public_key = session.generate_key(Slot.CARD_AUTH, KeyType.ECCP256)
    assert public_key.public_numbers() == card_key.public_key().public_numbers()
    der = session.sign_challenge(Slot.CARD_AUTH, digest)
    assert der == signature
    transport.assert_done()


def test_sign_challenge_wants_a_digest() -> None:
    with pytest.raises(ValueError):
        PivSession(generic_card()).sign_challenge(Slot.CARD_AUTH, b"not a digest")


def test_generate_key_needs_management_key() -> None:
    transport = generic_card(("0047009E 05 AC03800111 00", "6982"))
    with pytest.raises(errors.SecurityStatusNotSatisfied):
        PivSession(transport).generate_key(Slot.CARD_AUTH)


# -- data objects -----------------------------------------------------------------------------


def test_put_object_chains_and_get_object_follows_get_response() -> None:
    credential = ("eyJhbGciOiJFUzI1NiJ9." + "x" * 561 + ".sig").encode()  # 586 bytes
    assert len(credential) == 586
    body = "5C035FFF10" + "53820" + "24A" + _hex(credential)  # 53 82 024A <586 bytes>
    command = bytes.fromhex(body)
    assert len(command) == 595
    frames = [command[:255], command[255:510], command[510:]]
    response = bytes.fromhex("5382024A") + credential
    transport = generic_card(
        ("10DB3FFF FF" + _hex(frames[0]), "9000"),
        ("10DB3FFF FF" + _hex(frames[1]), "9000"),
        ("00DB3FFF 55" + _hex(frames[2]), "9000"),
        ("00CB3FFF 05 5C035FFF10 00", _hex(response[:256]) + "6100"),
        ("00C00000 00", _hex(response[256:512]) + "614E"),
        ("00C00000 4E", _hex(response[512:]) + "9000"),
    )
    session = PivSession(transport)
    session.put_object(CREDENTIAL_OBJECT_ID, credential)
    assert session.get_object(ObjectId.CREDENTIAL) == credential
    transport.assert_done()
    # select + put + get; chaining frames and GET RESPONSE are not commands
    assert session.connection.commands_sent == 3
    assert session.connection.apdus_sent == 1 + 3 + 3


def test_extended_session_sends_one_frame() -> None:
    data = bytes(300)
    transport = ScriptedTransport(
        [
            (
                "00A40400 00000B A0000003080000100001 00 0000",
                "61114F0600001000010079074F05A000000308 9000",
            ),
            ("00DB3FFF 000135 5C035FFF10 5382012C" + "00" * 300, "9000"),
        ]
    )
    session = PivSession(transport, extended=True)
    session.put_object(ObjectId.CREDENTIAL, data)
    transport.assert_done()


def test_missing_object_and_delete() -> None:
    transport = generic_card(
        ("00CB3FFF 05 5C035FC109 00", "6A82"),
        ("00DB3FFF 07 5C035FC109 5300", "9000"),
        ("00CB3FFF 03 5C017E 00", "7E12 4F0BA0000003080000100001005F2F024000 9000"),
    )
    session = PivSession(transport)
    with pytest.raises(errors.NotFound):
        session.get_object(ObjectId.PRINTED_INFORMATION)
    session.put_object(ObjectId.PRINTED_INFORMATION, None)
    discovery = session.get_object(ObjectId.DISCOVERY)
    assert discovery.startswith(bytes.fromhex("4F0BA000000308"))
    transport.assert_done()


def test_malformed_object_is_bad_response() -> None:
    transport = generic_card(("00CB3FFF 05 5C035FC102 00", "5310 0102 9000"))
    with pytest.raises(errors.BadResponse):
        PivSession(transport).get_object(ObjectId.CHUID)


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ສົມສັກ ພົມມະຈັນ")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def test_certificate_round_trip() -> None:
    cert = _certificate()
    der = cert.public_bytes(Encoding.DER)
    inner = "70" + _len(len(der)) + _hex(der) + "7101" + "00" + "FE00"
    obj = "53" + _len(len(inner) // 2) + inner
    put = bytes.fromhex("5C035FC101" + obj)
    frames = [put[i : i + 255] for i in range(0, len(put), 255)]
    exchanges = [
        (("10" if i < len(frames) - 1 else "00") + "DB3FFF" + f"{len(f):02X}" + _hex(f), "9000")
        for i, f in enumerate(frames)
    ]
    exchanges.append(("00CB3FFF 05 5C035FC101 00", obj + "9000"))
    transport = generic_card(*exchanges)
    session = PivSession(transport)
    session.put_certificate(Slot.CARD_AUTH, cert)
    assert session.get_certificate(Slot.CARD_AUTH) == cert
    transport.assert_done()


# -- CHUID ------------------------------------------------------------------------------------


def test_chuid_bytes_and_round_trip() -> None:
    card_uuid = UUID("6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f")
    data = Chuid.build(card_uuid, date(2031, 12, 31))
    # FASC-N of the non-federal agency 9999 exactly as yubico-piv-tool writes it.
    assert _hex(data) == (
        "3019D4E739DA739CED39CE739D836858210842108421C84210C3EB"
        "34106F1C2A4E8B3D4C5E9F701A2B3C4D5E6F"
        "35083230333131323331"
        "3E00"
        "FE00"
    )
    chuid = Chuid.parse(data)
    assert chuid.guid == card_uuid
    assert chuid.expiry == date(2031, 12, 31)
    assert chuid.fasc_n == NON_FEDERAL_FASC_N


def test_fasc_n_matches_yubikit() -> None:
    from yubikit.piv import FascN  # an independent implementation of the same encoding

    assert bytes(FascN(9999, 9999, 999999, 0, 1, 0, 3, 0, 1)) == NON_FEDERAL_FASC_N


def test_chuid_is_readable_by_yubikit() -> None:
    from yubikit.piv import Chuid as YubikitChuid

    card_uuid = UUID("6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f")
    theirs = YubikitChuid.from_bytes(Chuid.build(card_uuid, date(2031, 12, 31)))
    assert theirs.guid == card_uuid.bytes
    assert theirs.expiration_date == date(2031, 12, 31)
    assert theirs.asymmetric_signature == b""


def test_chuid_parse_rejects_garbage() -> None:
    with pytest.raises(errors.BadResponse):
        Chuid.parse(bytes.fromhex("3401AA"))


# -- Printed Information ----------------------------------------------------------------------


def test_printed_information_with_lao_and_khmer() -> None:
    data = PrintedInformation.build(
        name="ສົມສັກ ພົມມະຈັນ",
        employee_affiliation="ລັດຖະກອນ",  # 24 bytes: cut to 20 on a cluster boundary
        expiry=date(2030, 7, 1),
        agency_card_serial="LA-000123",
        issuer_id="MOHA-LA",
        organization_affiliation="ក្រសួងមុខងារសាធារណៈ",  # 60 bytes: two lines of <= 20
    )
    fields: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):  # flat walk, independent of cardio.tlv
        tag, length = data[offset], data[offset + 1]
        fields[tag] = data[offset + 2 : offset + 2 + length]
        offset += 2 + length
    assert fields[0x04] == b"2030JUL01"
    assert fields[0xFE] == b""
    assert fields[0x01].decode() == "ສົມສັກ ພົມມະຈັນ"
    assert len(fields[0x02]) <= 20
    assert fields[0x02].decode() == "ລັດຖະກ"
    assert len(fields[0x07]) <= 20 and len(fields[0x08]) <= 20
    assert fields[0x07].decode() == "ក្រសួង"
    assert not fields[0x07].decode().endswith("\u17d2")

    info = PrintedInformation.parse(data)
    assert info.name == "ສົມສັກ ພົມມະຈັນ"
    assert info.expiry == date(2030, 7, 1)
    assert info.agency_card_serial == "LA-000123"
    assert info.issuer_id == "MOHA-LA"
    assert "ក្រសួងមុខងារសាធារណៈ".startswith(info.organization_affiliation)


def test_printed_information_identifiers_are_not_cut() -> None:
    with pytest.raises(ValueError):
        PrintedInformation.build("A", "B", date(2030, 1, 1), "x" * 21, "MOHA")


def test_clusters_keep_khmer_subscripts_and_lao_preposed_vowels() -> None:
    assert clusters("ក្រសួង") == ["ក្រ", "សួ", "ង"]
    assert clusters("ເມືອງ") == ["ເມື", "ອ", "ງ"]
    assert fit_utf8("ក្រសួង", 8) == ""  # "ក្រ" is 9 bytes: never emit a bare "ក" + COENG
    assert fit_utf8("ເມືອງ", 3) == ""  # never a pre-posed vowel without its consonant
    assert fit_utf8("ເມືອງ", 12) == "ເມືອ"
    assert fit_utf8("abc", 10) == "abc"
