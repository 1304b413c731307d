"""PC/SC error mapping and ATR parsing: no pcscd needed (real pyscard exception classes)."""

from __future__ import annotations

import pytest
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.pcsc.PCSCExceptions import EstablishContextException, ListReadersException

from cardio import errors
from cardio.pcsc import (
    error_for_hresult,
    extended_length_supported,
    historical_bytes,
    map_pyscard_error,
)


def test_no_service_from_pyscard_exception() -> None:
    error = map_pyscard_error(EstablishContextException(0x8010001D))
    assert isinstance(error, errors.NoPcscService)
    assert "start pcscd" in str(error)


def test_windows_style_negative_hresult() -> None:
    assert isinstance(
        map_pyscard_error(ListReadersException(0x8010001D - 2**32)), errors.NoPcscService
    )


@pytest.mark.parametrize(
    ("hresult", "connected", "error"),
    [
        (0x8010001D, False, errors.NoPcscService),  # SCARD_E_NO_SERVICE
        (0x8010001E, True, errors.NoPcscService),  # SCARD_E_SERVICE_STOPPED
        (0x80100009, False, errors.ReaderNotFound),  # SCARD_E_UNKNOWN_READER
        (0x8010002E, False, errors.ReaderNotFound),  # SCARD_E_NO_READERS_AVAILABLE
        (0x8010000C, False, errors.NoCard),  # SCARD_E_NO_SMARTCARD at connect
        (0x80100069, False, errors.NoCard),  # SCARD_W_REMOVED_CARD at connect
        (0x80100069, True, errors.CardRemoved),  # SCARD_W_REMOVED_CARD in use
        (0x80100068, True, errors.CardRemoved),  # SCARD_W_RESET_CARD
        (0x8010000C, True, errors.CardRemoved),  # SCARD_E_NO_SMARTCARD in use
        (0x80100017, True, errors.CardRemoved),  # SCARD_E_READER_UNAVAILABLE (unplugged)
        (0x8010000B, False, errors.PcscError),  # SCARD_E_SHARING_VIOLATION
    ],
)
def test_hresult_mapping(hresult: int, connected: bool, error: type[errors.CardError]) -> None:
    mapped = error_for_hresult(hresult, "op", connected=connected)
    assert type(mapped) is error


def test_pyscard_object_layer_exceptions() -> None:
    assert isinstance(map_pyscard_error(NoCardException("no card", -1)), errors.NoCard)
    assert isinstance(
        map_pyscard_error(NoCardException("no card", -1), connected=True), errors.CardRemoved
    )
    assert isinstance(
        map_pyscard_error(CardConnectionException("lost"), connected=True), errors.CardRemoved
    )
    removed = CardConnectionException("transmit failed", hresult=0x80100069)
    assert isinstance(map_pyscard_error(removed, connected=True), errors.CardRemoved)
    assert isinstance(map_pyscard_error(removed, connected=True), errors.CardError)


@pytest.mark.parametrize(
    ("atr", "extended"),
    [
        # YubiKey 5 NFC over USB: historical bytes 80 73 C0 21 C0 57 59 75 62 69 4B 65 79, TCK 40
        ("3BFD1300008131FE158073C021C057597562694B657940", True),
        # the project's virtual card (cardio/virtual/vpcd.py)
        ("3BFE1300008131FE158073C021C058" + b"idsvcPIV".hex() + "00", True),
        # card capabilities without the extended bit (third byte 80: chaining only)
        ("3B8C80018073C08011223344556677" + "00", False),
        # no historical bytes
        ("3B00", False),
        # category 00, capabilities 73 00 00 40, status indicator 00 90 00, then TCK
        ("3B8801" + "0073000040009000" + "00", True),
        # same with the extended bit clear
        ("3B8801" + "0073000080009000" + "00", False),
    ],
)
def test_extended_length_from_atr(atr: str, extended: bool) -> None:
    assert extended_length_supported(bytes.fromhex(atr)) is extended


def test_historical_bytes() -> None:
    atr = bytes.fromhex("3BFD1300008131FE158073C021C057597562694B657940")
    assert historical_bytes(atr) == bytes.fromhex("8073C021C057597562694B6579")  # K = 13
