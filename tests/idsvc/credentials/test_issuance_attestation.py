"""Issue 15: a card key must be one the card made. With IDSVC_ATTESTATION_CA_FILE set, the centre
takes a card key only with a PIV attestation (ATTEST on slot 9E, signed by the card's F9 key,
whose certificate chains to a trusted maker CA) and records who vouched for it. In process: the
virtual card (with its own test attestation CA), the real service on SQLite and PostgreSQL, and
the desk's HTTP path against a live centre."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from cardio.piv import ManagementKeyType, PivSession, Slot
from cardio.virtual import CardState, VirtualCard
from cardio.virtual.attestation import AttestationCa
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
from idsvc.credentials.handover import KeyAttestation
from idsvc.desk_client.cards import CardSecrets, personalise_card
from idsvc.errors import KeyNotAttested
from idsvc.services import Services
from idsvc.storage.tables import CredentialRow
from tests.support.desk_world import World, make_world
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings
from tests.support.virtual_card import DirectTransport, ReaderTransport

PERSON = "KH-MCS-010002"
SECRETS = CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES)


@pytest.fixture(scope="module")
def maker() -> AttestationCa:
    return AttestationCa.create(NOW)


def make_centre(
    tmp_path: Path, db_url: str, ca_file: Path | None, *, required: bool = True
) -> Services:
    extra: dict[str, object] = {"require_attestation": required}
    if ca_file is not None:
        extra["attestation_ca_file"] = ca_file
    svc = make_service(make_settings(tmp_path / "home", db_url, **extra))
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test-hr", now=NOW
    )
    return svc


def trusted(tmp_path: Path, maker: AttestationCa) -> Path:
    ca_file = tmp_path / "makers.pem"
    ca_file.write_bytes(maker.certificate.public_bytes(Encoding.PEM))
    return ca_file


@pytest.fixture
def strict(tmp_path: Path, db_url: str, maker: AttestationCa) -> Iterator[Services]:
    svc = make_centre(tmp_path, db_url, trusted(tmp_path, maker))
    yield svc
    svc.infra.db.dispose()


def card(maker: AttestationCa | None, serial: int = 7) -> VirtualCard:
    state = CardState.blank(serial=serial)
    if maker is not None:
        maker.provision(state, NOW)
    return VirtualCard(state)


def personalise(svc: Services, virtual: VirtualCard) -> str:
    return personalise_card(
        DirectTransport(virtual),
        svc.credentials,
        employee_id=PERSON,
        card_secrets=SECRETS,
        ca_certificate=svc.credentials.ca_certificate(),
        verify_url_base="https://id.mcs.gov.kh/v",
        actor="test-desk",
        now=NOW,
    ).credential_id


def credentials(svc: Services) -> list[CredentialRow]:
    with svc.infra.db.transaction() as session:
        rows = session.execute(select(CredentialRow).where(CredentialRow.employee_id == PERSON))
        return list(rows.scalars())


def attested_key(virtual: VirtualCard) -> tuple[ec.EllipticCurvePublicKey, KeyAttestation]:
    """Generate a key on ``virtual`` and return it with the card's attestation of it."""
    piv = PivSession(DirectTransport(virtual))
    piv.authenticate(SECRETS.management_key_type, SECRETS.management_key)
    key = piv.generate_key(Slot.CARD_AUTH)
    proof = piv.attest_key(Slot.CARD_AUTH)
    assert proof is not None
    return key, KeyAttestation(*(c.public_bytes(Encoding.DER) for c in proof))


def begin(svc: Services, key: ec.EllipticCurvePublicKey, proof: KeyAttestation | None) -> None:
    svc.credentials.begin_card_issuance(
        PERSON, card_key=key, card_uuid=uuid.uuid4(), actor="evil-desk", now=NOW, attestation=proof
    )


def test_attested_card_key_is_accepted_and_recorded(strict: Services, maker: AttestationCa) -> None:
    credential_id = personalise(strict, card(maker))
    (row,) = credentials(strict)
    assert (row.id, row.state) == (credential_id, "live")
    assert row.key_attestation == "piv-attest"
    assert row.key_attested_by == maker.certificate.subject.rfc4514_string()


def test_software_key_is_refused_and_nothing_is_stored(strict: Services) -> None:
    software = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(KeyNotAttested, match="none was sent"):
        begin(strict, software, None)
    assert credentials(strict) == []


def test_forged_or_borrowed_attestations_are_refused(
    strict: Services, maker: AttestationCa
) -> None:
    software = ec.generate_private_key(ec.SECP256R1()).public_key()
    # A genuine card's attestation, sent with a software key.
    _, genuine = attested_key(card(maker))
    with pytest.raises(KeyNotAttested, match="not the card key"):
        begin(strict, software, genuine)
    # A "card" whose attestation key was certified by a CA of the attacker's own.
    forged_key, forged = attested_key(card(AttestationCa.create(NOW), serial=8))
    with pytest.raises(KeyNotAttested, match="trusted maker CA"):
        begin(strict, forged_key, forged)
    # The statement of one card presented with the F9 certificate of another.
    key, proof = attested_key(card(maker, serial=9))
    _, other = attested_key(card(maker, serial=10))
    with pytest.raises(KeyNotAttested, match="card's attestation key"):
        begin(strict, key, KeyAttestation(proof.certificate, other.signer))
    # Not certificates at all.
    with pytest.raises(KeyNotAttested, match="pair of certificates"):
        begin(strict, key, KeyAttestation(b"\x30\x00", proof.signer))
    assert credentials(strict) == []


def test_key_in_another_slot_is_refused(strict: Services, maker: AttestationCa) -> None:
    virtual = card(maker)
    piv = PivSession(DirectTransport(virtual))
    piv.authenticate(SECRETS.management_key_type, SECRETS.management_key)
    key = piv.generate_key(Slot.SIGNATURE)
    proof = piv.attest_key(Slot.SIGNATURE)
    assert proof is not None
    with pytest.raises(KeyNotAttested, match="9E"):
        begin(strict, key, KeyAttestation(*(c.public_bytes(Encoding.DER) for c in proof)))


def test_card_that_cannot_attest_is_refused_when_required(strict: Services) -> None:
    with pytest.raises(KeyNotAttested):
        personalise(strict, card(None))
    assert credentials(strict) == []


def test_when_not_required_attestations_are_checked_and_unattested_keys_pass(
    tmp_path: Path, db_url: str, maker: AttestationCa
) -> None:
    svc = make_centre(tmp_path, db_url, trusted(tmp_path, maker), required=False)
    try:
        personalise(svc, card(None))  # a card that cannot attest: issued, recorded as such
        personalise(svc, card(maker, serial=8))
        rows = sorted(credentials(svc), key=lambda r: r.state)
        assert [(r.state, r.key_attestation) for r in rows] == [
            ("live", "piv-attest"),
            ("superseded", None),
        ]
        # An attestation that is sent is still checked: another card's proof is refused.
        key, _ = attested_key(card(maker, serial=9))
        _, borrowed = attested_key(card(maker, serial=10))
        with pytest.raises(KeyNotAttested):
            begin(svc, key, borrowed)
    finally:
        svc.infra.db.dispose()


def test_without_attestation_cas_unattested_cards_still_issue(tmp_path: Path, db_url: str) -> None:
    svc = make_centre(tmp_path, db_url, None)
    try:
        personalise(svc, card(None))
        (row,) = credentials(svc)
        assert row.state == "live" and row.key_attestation is None and row.key_attested_by is None
    finally:
        svc.infra.db.dispose()


def test_unreadable_ca_file_refuses_rather_than_stops_checking(
    tmp_path: Path, sqlite_url: str, maker: AttestationCa
) -> None:
    svc = make_centre(tmp_path, sqlite_url, tmp_path / "missing.pem")
    try:
        key, proof = attested_key(card(maker))
        with pytest.raises(KeyNotAttested, match="cannot be read"):
            begin(svc, key, proof)
    finally:
        svc.infra.db.dispose()


@pytest.fixture
def world(
    tmp_path: Path, sqlite_url: str, maker: AttestationCa, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    monkeypatch.setenv("IDSVC_ATTESTATION_CA_FILE", str(trusted(tmp_path, maker)))
    with make_world(tmp_path, sqlite_url) as w:
        yield w


def test_remote_desk_sends_the_attestation_over_http(world: World, maker: AttestationCa) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "somphone")
    employee = "LA-MOHA-000101"

    def issue(virtual: VirtualCard) -> str:
        return personalise_card(
            ReaderTransport(virtual),
            remote,
            employee_id=employee,
            card_secrets=SECRETS,
            ca_certificate=remote.identity.ca_certificate(),
            verify_url_base="https://id.example/v",
            actor="desk",
            now=world.clock(),
        ).credential_id

    with pytest.raises(KeyNotAttested, match="none was sent"):
        issue(card(None))  # the centre's refusal arrives at the desk as the same error
    credential_id = issue(card(maker))
    with world.centre.infra.db.transaction() as session:
        row = session.get(CredentialRow, credential_id)
        assert row is not None and row.state == "live" and row.key_attestation == "piv-attest"
