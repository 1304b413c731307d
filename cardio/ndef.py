"""NDEF messages and the NFC Forum Type 4 Tag (T4T, mapping version 2.0) command set.

A phone that taps the card reads one NDEF message holding a URI record with the verify URL,
e.g. ``https://id.example.gov.la/v/<credential id>``.

Records (NFC Forum NDEF 1.0): header byte ``MB ME CF SR IL TNF``, type length, payload length
(1 byte when SR, else 4), optional id length, type, id, payload. A URI record is TNF 1
(well-known), type ``U``, payload = one URI identifier code (NFC Forum URI RTD 1.0, table 3:
``0x04`` = ``https://``, ...) followed by the rest of the URI in UTF-8. Chunked records (CF) are
not supported.

T4T file access (NFC Forum Type 4 Tag technical specification, 2.0):

- SELECT the NDEF application ``00 A4 04 00 07 D2760000850101 00``;
- SELECT the capability container ``00 A4 00 0C 02 E103``; READ BINARY its 15 bytes: CCLEN,
  mapping version, MLe (max read), MLc (max write), and the NDEF file control TLV (file id,
  maximum file size, read/write access);
- SELECT the NDEF file (normally ``E104``); its first two bytes NLEN give the message length.
- Writing: NLEN = 0, then the message in UPDATE BINARY chunks of at most MLc bytes from offset
  2, then the real NLEN, so a reader never sees a half-written message as valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .apdu import ApduConnection
from .errors import BadResponse, CardError, NotFound
from .transport import Transport

NDEF_AID = bytes.fromhex("D2760000850101")
CC_FILE_ID = 0xE103
DEFAULT_NDEF_FILE_ID = 0xE104

TNF_EMPTY = 0x00
TNF_WELL_KNOWN = 0x01
TNF_MEDIA = 0x02
TNF_ABSOLUTE_URI = 0x03
TNF_EXTERNAL = 0x04

_MB, _ME, _CF, _SR, _IL = 0x80, 0x40, 0x20, 0x10, 0x08

# NFC Forum URI Record Type Definition 1.0, table 3 (URI identifier codes).
URI_PREFIXES = (
    "",
    "http://www.",
    "https://www.",
    "http://",
    "https://",
    "tel:",
    "mailto:",
    "ftp://anonymous:anonymous@",
    "ftp://ftp.",
    "ftps://",
    "sftp://",
    "smb://",
    "nfs://",
    "ftp://",
    "dav://",
    "news:",
    "telnet://",
    "imap:",
    "rtsp://",
    "urn:",
    "pop:",
    "sip:",
    "sips:",
    "tftp:",
    "btspp://",
    "btl2cap://",
    "btgoep://",
    "tcpobex://",
    "irdaobex://",
    "file://",
    "urn:epc:id:",
    "urn:epc:tag:",
    "urn:epc:pat:",
    "urn:epc:raw:",
    "urn:epc:",
    "urn:nfc:",
)


class NdefError(ValueError):
    """Bytes that are not a well-formed NDEF message (or not the record we need)."""


@dataclass(frozen=True)
class NdefRecord:
    tnf: int
    type: bytes
    payload: bytes
    id: bytes = b""

    def encode(self, *, first: bool = True, last: bool = True) -> bytes:
        if len(self.type) > 255 or len(self.id) > 255:
            raise NdefError("record type and id are limited to 255 bytes")
        short = len(self.payload) <= 255
        header = self.tnf & 0x07
        header |= (_MB if first else 0) | (_ME if last else 0)
        header |= (_SR if short else 0) | (_IL if self.id else 0)
        out = bytes((header, len(self.type)))
        out += len(self.payload).to_bytes(1 if short else 4, "big")
        if self.id:
            out += bytes((len(self.id),))
        return out + self.type + self.id + self.payload


def parse_records(data: bytes) -> list[NdefRecord]:
    """All records of an NDEF message (MB on the first, ME on the last)."""
    records: list[NdefRecord] = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise NdefError("truncated record header")
        header, type_len = data[offset], data[offset + 1]
        offset += 2
        if header & _CF:
            raise NdefError("chunked records are not supported")
        if bool(header & _MB) != (not records):
            raise NdefError("MB flag must be set on the first record only")
        size_len = 1 if header & _SR else 4
        payload_len = int.from_bytes(data[offset : offset + size_len], "big")
        offset += size_len
        id_len = 0
        if header & _IL:
            if offset >= len(data):
                raise NdefError("truncated id length")
            id_len = data[offset]
            offset += 1
        end = offset + type_len + id_len + payload_len
        if end > len(data):
            raise NdefError("record runs past the end of the message")
        rtype = data[offset : offset + type_len]
        rid = data[offset + type_len : offset + type_len + id_len]
        payload = data[offset + type_len + id_len : end]
        records.append(NdefRecord(header & 0x07, rtype, payload, rid))
        offset = end
        if header & _ME:
            if offset != len(data):
                raise NdefError("bytes after the record flagged ME")
            return records
    raise NdefError("empty message or no record flagged ME")


def uri_record(url: str) -> bytes:
    """One URI record (flagged as a complete one-record message), shortest prefix code."""
    code = 0
    for index, prefix in enumerate(URI_PREFIXES):
        if prefix and url.startswith(prefix) and len(prefix) > len(URI_PREFIXES[code]):
            code = index
    payload = bytes((code,)) + url[len(URI_PREFIXES[code]) :].encode()
    return NdefRecord(TNF_WELL_KNOWN, b"U", payload).encode()


def ndef_message(records: Iterable[bytes | NdefRecord]) -> bytes:
    """Join records into one message, setting MB on the first and ME on the last."""
    parsed: list[NdefRecord] = []
    for record in records:
        parsed.extend([record] if isinstance(record, NdefRecord) else parse_records(record))
    if not parsed:
        raise NdefError("an NDEF message needs at least one record")
    last = len(parsed) - 1
    return b"".join(r.encode(first=i == 0, last=i == last) for i, r in enumerate(parsed))


def parse_uri_message(data: bytes) -> str:
    """The URI of the first URI record in the message."""
    for record in parse_records(data):
        if record.tnf == TNF_WELL_KNOWN and record.type == b"U":
            if not record.payload:
                raise NdefError("empty URI record")
            code = record.payload[0]
            if code >= len(URI_PREFIXES):
                raise NdefError(f"reserved URI identifier code 0x{code:02X}")
            try:
                return URI_PREFIXES[code] + record.payload[1:].decode()
            except UnicodeDecodeError as exc:
                raise NdefError("URI is not UTF-8") from exc
    raise NdefError("no URI record in the message")


@dataclass(frozen=True)
class CapabilityContainer:
    mapping_version: int
    max_read: int  # MLe
    max_write: int  # MLc
    file_id: int
    max_size: int  # of the NDEF file, NLEN included
    read_access: int
    write_access: int

    @classmethod
    def parse(cls, data: bytes) -> CapabilityContainer:
        if len(data) < 15 or data[7] != 0x04 or data[8] < 6:
            raise BadResponse(f"malformed NDEF capability container {data.hex().upper()}")
        cc = cls(
            mapping_version=data[2],
            max_read=int.from_bytes(data[3:5], "big"),
            max_write=int.from_bytes(data[5:7], "big"),
            file_id=int.from_bytes(data[9:11], "big"),
            max_size=int.from_bytes(data[11:13], "big"),
            read_access=data[13],
            write_access=data[14],
        )
        if cc.mapping_version >> 4 != 2:
            raise BadResponse(f"unsupported T4T mapping version {cc.mapping_version:02X}")
        if cc.max_read < 1 or cc.max_write < 1 or not 2 < cc.max_size <= 0x7FFF:
            raise BadResponse("NDEF capability container has impossible sizes")
        return cc


class NdefSession:
    """Reads and writes the NDEF message of a Type 4 Tag application."""

    def __init__(self, transport: Transport) -> None:
        self.connection = ApduConnection(transport, extended=False)
        try:
            self.connection.send(0x00, 0xA4, 0x04, 0x00, NDEF_AID, le=0)
        except NotFound as exc:
            raise NotFound(exc.sw, "the card has no NDEF (Type 4 Tag) application") from exc
        self._select_file(CC_FILE_ID)
        self.capabilities = CapabilityContainer.parse(self._read(0, 15))
        self._select_file(self.capabilities.file_id)

    def _select_file(self, file_id: int) -> None:
        self.connection.send(0x00, 0xA4, 0x00, 0x0C, file_id.to_bytes(2, "big"))

    def _read(self, offset: int, length: int) -> bytes:
        data = self.connection.send(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length)
        if len(data) != length:
            raise BadResponse(f"READ BINARY returned {len(data)} bytes, asked {length}")
        return data

    def _update(self, offset: int, data: bytes) -> None:
        self.connection.send(0x00, 0xD6, offset >> 8, offset & 0xFF, data)

    def read_message(self) -> bytes:
        """The NDEF message bytes (without NLEN); ``b""`` when the tag is empty."""
        if self.capabilities.read_access != 0x00:
            raise CardError("the NDEF file is not readable")
        nlen = int.from_bytes(self._read(0, 2), "big")
        if nlen > self.capabilities.max_size - 2:
            raise BadResponse(f"NLEN {nlen} exceeds the NDEF file size")
        chunk = min(self.capabilities.max_read, 255)
        out = b""
        while len(out) < nlen:
            out += self._read(2 + len(out), min(chunk, nlen - len(out)))
        return out

    def fits(self, message: bytes) -> bool:
        """Whether ``message`` fits this card's NDEF file (with its 2-byte length, NLEN)."""
        return len(message) + 2 <= self.capabilities.max_size

    def write_message(self, message: bytes) -> None:
        if self.capabilities.write_access != 0x00:
            raise CardError("the NDEF file is read-only")
        if len(message) + 2 > self.capabilities.max_size:
            raise ValueError(
                f"message of {len(message)} bytes exceeds the tag's "
                f"{self.capabilities.max_size - 2}"
            )
        chunk = min(self.capabilities.max_write, 255)
        self._update(0, b"\x00\x00")
        for start in range(0, len(message), chunk):
            self._update(2 + start, message[start : start + chunk])
        self._update(0, len(message).to_bytes(2, "big"))

    def close(self) -> None:
        self.connection.close()
