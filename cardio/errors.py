"""The one exception tree of ``cardio``.

Everything a card, a reader or the PC/SC service can do wrong reaches callers as one of these;
status words are turned into them inside the APDU/session layer, so no caller ever looks at an
``sw``::

    CardError                      anything card-related; catch this at the desk
    ├── NoPcscService              no PC/SC daemon (pyscard 0x8010001D): "start pcscd"
    ├── ReaderNotFound             no reader matches the requested name
    ├── NoCard                     the reader is empty (at connect time)
    ├── CardRemoved                card pulled or reset mid-operation: "re-insert and retry"
    ├── PcscError(hresult)         any other PC/SC failure (sharing violation, comm error, ...)
    ├── NotPivCard                 the card has no PIV application
    ├── BadResponse                the card answered 9000 but with malformed data
    ├── PrintError                 the printed side (QR, card face) cannot be made
    │   ├── QrTooLarge(version)    the text needs a QR version above what a card can carry
    │   └── ScriptNotShapeable     no installed font and layout engine can draw the script
    └── ApduError(sw)              the card refused a command; ``sw`` kept for logs only
        ├── NotFound               6A82 file/object not found, 6A88 referenced data not found
        ├── SecurityStatusNotSatisfied  6982 (PIN or management key needed first)
        ├── WrongPin(retries_left) 63Cx with x > 0 (PIN or PUK, see ``reference``)
        ├── PinBlocked             6983, or 63C0 (the last try was just used)
        ├── ManagementKeyRejected  management-key mutual authentication failed
        ├── WrongLength            6700
        ├── NotSupported           6D00 (INS), 6E00 (CLA), 6A81 (function)
        ├── ConditionsNotSatisfied 6985
        ├── IncorrectData          6A80
        └── NoSpace                6A84 (card memory full / object too large)

``error_for_sw`` is the single place that maps a status word to a class.
"""

from __future__ import annotations


class CardError(Exception):
    """Base of every card, reader and PC/SC error raised by ``cardio``."""


class NoPcscService(CardError):
    def __init__(self, message: str = "no PC/SC service running (start pcscd)") -> None:
        super().__init__(message)


class ReaderNotFound(CardError):
    """No reader matches the requested name (or the match is ambiguous)."""


class NoCard(CardError):
    """The reader has no card in it."""


class CardRemoved(CardError):
    """The card was removed or reset during the operation; re-insert it and retry."""

    def __init__(self, message: str = "card removed or reset: re-insert it and retry") -> None:
        super().__init__(message)


class PcscError(CardError):
    """A PC/SC failure with no more specific meaning; ``hresult`` is the PC/SC code."""

    def __init__(self, message: str, hresult: int) -> None:
        super().__init__(f"{message} (PC/SC 0x{hresult & 0xFFFFFFFF:08X})")
        self.hresult = hresult & 0xFFFFFFFF


class NotPivCard(CardError):
    def __init__(self, message: str = "the card has no PIV application") -> None:
        super().__init__(message)


class BadResponse(CardError):
    """The card reported success but its response data is malformed."""


class PrintError(CardError):
    """The printed side of a card (its QR code, its face) cannot be made."""


class QrTooLarge(PrintError):
    def __init__(self, version: int, limit: int) -> None:
        super().__init__(
            f"the QR text needs QR version {version}; a card face carries at most version {limit}"
        )
        self.version = version
        self.limit = limit


class ScriptNotShapeable(PrintError):
    """No installed font with a complex-text layout engine can draw this text (never tofu)."""


class ApduError(CardError):
    """The card refused a command with status word ``sw``."""

    def __init__(self, sw: int, message: str | None = None) -> None:
        self.sw = sw
        super().__init__(message or f"card refused the command (SW {sw:04X})")


class NotFound(ApduError):
    def __init__(self, sw: int = 0x6A82, message: str | None = None) -> None:
        super().__init__(sw, message or f"not found on the card (SW {sw:04X})")


class SecurityStatusNotSatisfied(ApduError):
    def __init__(self, sw: int = 0x6982, message: str | None = None) -> None:
        super().__init__(sw, message or "security status not satisfied (PIN or key needed)")


class WrongPin(ApduError):
    """Wrong PIN (or PUK: ``reference``); ``retries_left`` tries remain before blocking."""

    def __init__(self, retries_left: int, sw: int | None = None, reference: str = "PIN") -> None:
        self.retries_left = retries_left
        self.reference = reference
        super().__init__(
            0x63C0 | retries_left if sw is None else sw,
            f"wrong {reference}: {retries_left} attempt(s) left",
        )


class PinBlocked(ApduError):
    def __init__(self, sw: int = 0x6983, reference: str = "PIN") -> None:
        self.reference = reference
        super().__init__(sw, f"{reference} blocked")


class ManagementKeyRejected(ApduError):
    """Mutual authentication with the management key failed.

    ``sw`` is the card's status word; 9000 means the card answered but its cryptogram did not
    match, i.e. the card does not hold the key we used.
    """

    def __init__(self, sw: int, message: str = "management key rejected") -> None:
        super().__init__(sw, message)


class WrongLength(ApduError):
    def __init__(self, sw: int = 0x6700, message: str | None = None) -> None:
        super().__init__(sw, message or "wrong length (SW 6700)")


class NotSupported(ApduError):
    def __init__(self, sw: int = 0x6D00, message: str | None = None) -> None:
        super().__init__(sw, message or f"command not supported by the card (SW {sw:04X})")


class ConditionsNotSatisfied(ApduError):
    def __init__(self, sw: int = 0x6985, message: str | None = None) -> None:
        super().__init__(sw, message or "conditions of use not satisfied (SW 6985)")


class IncorrectData(ApduError):
    def __init__(self, sw: int = 0x6A80, message: str | None = None) -> None:
        super().__init__(sw, message or "incorrect data in the command (SW 6A80)")


class NoSpace(ApduError):
    def __init__(self, sw: int = 0x6A84, message: str | None = None) -> None:
        super().__init__(sw, message or "not enough memory on the card (SW 6A84)")


_BY_SW: dict[int, type[ApduError]] = {
    0x6A82: NotFound,
    0x6A88: NotFound,
    0x6982: SecurityStatusNotSatisfied,
    0x6983: PinBlocked,
    0x6700: WrongLength,
    0x6D00: NotSupported,
    0x6E00: NotSupported,
    0x6A81: NotSupported,
    0x6985: ConditionsNotSatisfied,
    0x6A80: IncorrectData,
    0x6A84: NoSpace,
}


def error_for_sw(sw: int) -> ApduError:
    """The typed error for a non-9000 status word (61xx/6Cxx are handled before this)."""
    if sw & 0xFFF0 == 0x63C0:
        retries = sw & 0x0F
        return PinBlocked(sw) if retries == 0 else WrongPin(retries, sw)
    cls = _BY_SW.get(sw)
    if cls is None:
        return ApduError(sw)
    return cls(sw)
