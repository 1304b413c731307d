"""Persistent state of a virtual PIV card: what survives the card being pulled.

THIS IS A TRAINING / TEST CARD, NEVER A REAL CREDENTIAL STORE. The JSON file holds the PIN, the
PUK, the management key and the slot private keys in the clear (PKCS#8 PEM), because the point
of the virtual card is to run the real PC/SC path at a desk with no hardware. The file is
written atomically with mode 0600 so that a half-written card never appears and other local
users cannot read it, but nothing here protects keys the way a chip does.

Volatile state (selected application, PIN verified, management key authenticated) is not here:
it lives in the applets and dies with a power cycle.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "idsvc-virtual-piv/1"

DEFAULT_PIN = "123456"
DEFAULT_PUK = "12345678"
DEFAULT_RETRIES = 3
# SP 800-73-4 / YubiKey factory default management key (TDES, "0102030405060708" x 3).
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")
MGMT_TDES = 0x03

NDEF_FILE_SIZE = 2048


@dataclass(repr=False)
class Secret:
    """A PIN or PUK with its retry counter. ``repr`` is left off so it never reaches a log."""

    value: str
    retries: int = DEFAULT_RETRIES
    max_retries: int = DEFAULT_RETRIES
    default: str = ""

    @property
    def blocked(self) -> bool:
        return self.retries <= 0

    @property
    def is_default(self) -> bool:
        return self.value == self.default

    def __repr__(self) -> str:
        return f"Secret(retries={self.retries}/{self.max_retries})"


@dataclass(repr=False)
class SlotKey:
    algorithm: int  # PIV algorithm id: 0x11 P-256, 0x14 P-384
    pem: str  # PKCS#8, unencrypted (see module docstring)
    generated: bool = True

    def __repr__(self) -> str:
        return f"SlotKey(algorithm=0x{self.algorithm:02X}, generated={self.generated})"


def default_ccc(serial: int) -> bytes:
    """Card Capability Container (5FC107) value: OpenSC reads it while identifying the card.

    Card identifier F0 = GSC-RID A000000116, manufacturer FF (none), card type 02 (JavaCard),
    then a 14-byte card id made from the serial so two virtual cards are told apart.
    """
    card_id = b"idsvc-" + serial.to_bytes(8, "big")
    return (
        bytes.fromhex("F015A000000116FF02")
        + card_id
        + bytes.fromhex("F10121F20121F300F40100F50110F600F700FA00FB00FC00FD00FE00")
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass
class CardState:
    serial: int
    pin: Secret = field(default_factory=lambda: Secret(DEFAULT_PIN, default=DEFAULT_PIN))
    puk: Secret = field(default_factory=lambda: Secret(DEFAULT_PUK, default=DEFAULT_PUK))
    management_key: bytes = field(default=DEFAULT_MANAGEMENT_KEY, repr=False)
    management_key_type: int = MGMT_TDES
    # PIV data objects by tag (0x5FC102 ...): the value of the 53 container as written.
    objects: dict[int, bytes] = field(default_factory=dict, repr=False)
    keys: dict[int, SlotKey] = field(default_factory=dict)
    # NFC Forum Type 4 NDEF file: 2-byte NLEN followed by the NDEF message.
    ndef: bytes = field(default=b"\x00\x00", repr=False)

    @classmethod
    def blank(cls, serial: int) -> CardState:
        """A factory-fresh card: default PIN/PUK/management key, only the CCC written."""
        return cls(serial=serial, objects={0x5FC107: default_ccc(serial)})

    @property
    def management_key_is_default(self) -> bool:
        return (
            self.management_key_type == MGMT_TDES and self.management_key == DEFAULT_MANAGEMENT_KEY
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "serial": self.serial,
            "pin": _secret_json(self.pin),
            "puk": _secret_json(self.puk),
            "management_key": self.management_key.hex(),
            "management_key_type": self.management_key_type,
            "objects": {f"{tag:X}": _b64(value) for tag, value in sorted(self.objects.items())},
            "keys": {
                f"{slot:02X}": {"algorithm": k.algorithm, "pem": k.pem, "generated": k.generated}
                for slot, k in sorted(self.keys.items())
            },
            "ndef": _b64(self.ndef),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CardState:
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a virtual card state file (format {doc.get('format')!r})")
        return cls(
            serial=int(doc["serial"]),
            pin=_secret_from(doc["pin"], DEFAULT_PIN),
            puk=_secret_from(doc["puk"], DEFAULT_PUK),
            management_key=bytes.fromhex(doc["management_key"]),
            management_key_type=int(doc["management_key_type"]),
            objects={int(tag, 16): _unb64(v) for tag, v in doc["objects"].items()},
            keys={
                int(slot, 16): SlotKey(int(k["algorithm"]), str(k["pem"]), bool(k["generated"]))
                for slot, k in doc["keys"].items()
            },
            ndef=_unb64(doc["ndef"]),
        )

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) with mode 0600, whatever the umask."""
        path = Path(path)
        payload = json.dumps(self.to_json(), indent=1, sort_keys=True).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> CardState:
        with open(path, "rb") as src:
            return cls.from_json(json.load(src))

    @classmethod
    def load_or_blank(cls, path: Path, serial: int | None = None) -> CardState:
        """Load ``path``; if missing, create a blank card there (random serial by default)."""
        path = Path(path)
        if path.exists():
            return cls.load(path)
        state = cls.blank(serial if serial is not None else _random_serial())
        state.save(path)
        return state


def _random_serial() -> int:
    # 8 digits, like a YubiKey serial; not a security value.
    return 10_000_000 + int.from_bytes(os.urandom(4), "big") % 90_000_000


def _secret_json(secret: Secret) -> dict[str, Any]:
    return {"value": secret.value, "retries": secret.retries, "max_retries": secret.max_retries}


def _secret_from(doc: dict[str, Any], default: str) -> Secret:
    return Secret(str(doc["value"]), int(doc["retries"]), int(doc["max_retries"]), default)
