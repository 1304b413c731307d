"""The project's virtual PIV card driven in-process (no pcscd), and a card personalised by the
desk code against a real service, ready to answer challenges."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding

from cardio.errors import CardRemoved
from cardio.piv import ManagementKeyType, ObjectId, PivSession, Slot
from cardio.virtual import CardPulled, CardState, VirtualCard
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
from idsvc.desk_client.cards import CardSecrets, personalise_card
from idsvc.services import Services
from tests.support.settings import NOW


class DirectTransport:
    """``cardio.transport.Transport`` over an in-process virtual card (no pcscd)."""

    extended_length = False

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.card.process(apdu)
        return response[:-2], int.from_bytes(response[-2:], "big")

    def close(self) -> None:
        pass


class ReaderTransport(DirectTransport):
    """The in-process card, with a pulled card reported as the PC/SC transport reports it."""

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            return super().transmit(apdu)
        except CardPulled as exc:
            raise CardRemoved() from exc

    def close(self) -> None:
        return None


@dataclass
class Card:
    piv: PivSession
    certificate: bytes
    credential: str

    def sign(self, nonce: bytes) -> bytes:
        return self.piv.sign_challenge(Slot.CARD_AUTH, nonce)


def issue_card(service: Services, employee_id: str, serial: int) -> Card:
    """A blank virtual card personalised for ``employee_id`` by ``service`` at ``NOW``."""
    transport = DirectTransport(VirtualCard(CardState.blank(serial=serial)))
    personalise_card(
        transport,
        service.credentials,
        employee_id=employee_id,
        card_secrets=CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES),
        ca_certificate=service.credentials.ca_certificate(),
        verify_url_base="https://id.mcs.gov.kh/v",
        actor="test-desk",
        now=NOW,
    )
    piv = PivSession(transport)
    cert = piv.get_certificate(Slot.CARD_AUTH).public_bytes(Encoding.DER)
    return Card(piv, cert, piv.get_object(ObjectId.CREDENTIAL).decode())
