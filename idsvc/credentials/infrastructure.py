"""What every feature shares in one process: settings, the database, the issuer key rings and
their signers, and the readiness check of the schema (``require_ready``).

``idsvc.services.Services`` builds one ``Infrastructure`` per process and hands it to each
feature (``idsvc/<feature>/use_cases.py``); no feature builds its own. It lives in
``credentials`` because the key rings and signers are the issuers' (``credentials.issuers``):
the features may use each other, the base (``audit``, ``storage``, ...) may not, so the base
is handed only what it needs (``idsvc.audit.use_cases.Audit`` takes the database).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from sqlalchemy.orm import Session

from idsvc import DEFAULT_ISSUER
from idsvc.config import Settings
from idsvc.credentials import issuers
from idsvc.credentials.issuers import Issuer
from idsvc.errors import NotInitialised
from idsvc.storage.db import Database, SchemaOutdated, require_current_schema
from keys.ca import IssuerCA
from keys.keyring import FileBackend, Pkcs11Backend
from keys.signer import Signer

PassphraseSource = Callable[[], bytes]


class Infrastructure:
    def __init__(
        self, settings: Settings, db: Database, passphrase: PassphraseSource | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self._passphrase = passphrase
        self.rings = issuers.KeyRings(settings.keys_dir)
        self._issuer_records = issuers.IssuerRecords()
        self._schema_checked = False
        self._signers: dict[str, Signer] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, passphrase: PassphraseSource | None = None
    ) -> Infrastructure:
        return cls(settings, Database(settings.resolved_database_url), passphrase)

    # -- readiness ------------------------------------------------------------------------------
    def require_ready(self) -> None:
        """Raise ``NotInitialised`` unless the database has the current schema.

        Checked once per process: it costs a query, and a schema does
        not go backwards under a running service (a dead database still fails loudly at the next
        transaction)."""
        if self._schema_checked:
            return
        try:
            require_current_schema(self.db.engine)
        except SchemaOutdated as exc:
            raise NotInitialised(str(exc)) from exc
        self._schema_checked = True

    def mark_ready(self) -> None:
        """The schema was just brought to the current revision (``idsvc init``)."""
        self._schema_checked = True

    # -- keys -----------------------------------------------------------------------------------
    @cached_property
    def key_backend(self) -> FileBackend | Pkcs11Backend:
        s = self.settings
        if s.pkcs11_module:
            if not s.pkcs11_token or s.pkcs11_pin is None:
                raise NotInitialised("IDSVC_PKCS11_TOKEN and IDSVC_PKCS11_PIN must be set")
            return Pkcs11Backend(s.pkcs11_module, s.pkcs11_token, s.pkcs11_pin.get_secret_value())
        if self._passphrase is None:
            raise NotInitialised("no key passphrase: set IDSVC_KEY_PASSPHRASE(_FILE)")
        return FileBackend(self._passphrase())

    def issuer(self, session: Session, slug: str = DEFAULT_ISSUER) -> Issuer:
        return issuers.load_issuer(session, self.rings, slug, self._issuer_records)

    def signer(self, issuer: Issuer) -> Signer:
        # Decrypting a key file costs ~0.5 ms (PBKDF2); keep each active key once loaded.
        kid = issuer.ring.active().kid
        signer = self._signers.get(kid)
        if signer is None:
            signer = self._signers[kid] = issuer.ring.signer(self.key_backend)
        return signer

    def ca(self, issuer: Issuer) -> IssuerCA:
        return issuer.ring.issuer_ca(self.key_backend)
