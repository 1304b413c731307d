"""Card I/O: ISO 7816 APDUs, BER-TLV, the PIV card edge, NDEF, PC/SC readers.

Layers, bottom up::

    transport.Transport      bytes in, (data, sw) out: pcsc.PcscTransport, ScriptedTransport
    apdu.ApduConnection      short/extended APDUs, chaining, 61xx/6Cxx, sw -> typed errors
    piv.PivSession           the PIV application (SP 800-73-4)
    ndef.NdefSession         the NFC Forum Type 4 Tag application

``cardio.pcsc`` (the only module that imports pyscard) is not imported here, so the rest of
the package works on machines without a PC/SC library; import it explicitly at a desk.

The printed side is imported explicitly too: ``cardio.qr`` (QR capacity, encoding, drawing),
``cardio.fonts`` and ``cardio.card_face`` (the card's front and back, A4 sheets; Pillow).
"""

from .apdu import Apdu, ApduConnection
from .errors import (
    ApduError,
    BadResponse,
    CardError,
    CardRemoved,
    ConditionsNotSatisfied,
    IncorrectData,
    ManagementKeyRejected,
    NoCard,
    NoPcscService,
    NoSpace,
    NotFound,
    NotPivCard,
    NotSupported,
    PcscError,
    PinBlocked,
    ReaderNotFound,
    SecurityStatusNotSatisfied,
    WrongLength,
    WrongPin,
)
from .ndef import NdefSession, ndef_message, parse_uri_message, uri_record
from .piv import (
    CREDENTIAL_OBJECT_ID,
    Chuid,
    KeyType,
    ManagementKeyType,
    ObjectId,
    PivSession,
    PrintedInformation,
    Slot,
)
from .transport import ScriptedTransport, Transport

__all__ = [
    "CREDENTIAL_OBJECT_ID",
    "Apdu",
    "ApduConnection",
    "ApduError",
    "BadResponse",
    "CardError",
    "CardRemoved",
    "Chuid",
    "ConditionsNotSatisfied",
    "IncorrectData",
    "KeyType",
    "ManagementKeyRejected",
    "ManagementKeyType",
    "NdefSession",
    "NoCard",
    "NoPcscService",
    "NoSpace",
    "NotFound",
    "NotPivCard",
    "NotSupported",
    "ObjectId",
    "PcscError",
    "PinBlocked",
    "PivSession",
    "PrintedInformation",
    "ReaderNotFound",
    "ScriptedTransport",
    "SecurityStatusNotSatisfied",
    "Slot",
    "Transport",
    "WrongLength",
    "WrongPin",
    "ndef_message",
    "parse_uri_message",
    "uri_record",
]
