"""Test helpers for operators: a centre on a fresh database, and one-time codes computed by
an independent TOTP implementation (pyca/cryptography's), never by ours."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from idsvc.services import Services
from idsvc.staff.operators import Actor, Enrolment
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

PASSWORD = "a long enough passphrase"
EMPLOYEE = "LA-MOHA-000101"


def secret_of(uri: str) -> bytes:
    query = parse_qs(urlsplit(uri).query)
    text = query["secret"][0]
    return base64.b32decode(text + "=" * (-len(text) % 8))


def code(secret: bytes, at: datetime) -> str:
    return (
        TOTP(secret, 6, SHA1(), 30, enforce_key_length=False).generate(int(at.timestamp())).decode()
    )


def make_centre(home: Path, db_url: str, *, fresh: bool = True, **settings: object) -> Services:
    """A centre over ``db_url``; ``fresh`` initialises it and loads the sample register."""
    params: dict[str, object] = {"operator_password_cost": 14} | settings
    svc = make_service(make_settings(home, db_url, **params))
    if fresh:
        svc.credentials.init(now=NOW, actor="test-admin")
        svc.register.import_hr(
            SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test-hr", now=NOW
        )
    return svc


class People:
    """Operators created at the console, with their TOTP secrets for the tests to use."""

    def __init__(self, centre: Services) -> None:
        self.centre = centre  # with no maker-checker on operator changes: the console adds
        self.secrets: dict[str, bytes] = {}
        self.step = 0

    def add(self, name: str, role: str, office: str = "Vientiane") -> bytes:
        result = self.centre.staff.add_operator(
            name, role=role, office=office, password=PASSWORD, by=None, now=NOW
        )
        assert isinstance(result, Enrolment), result
        self.secrets[name] = secret_of(result.otpauth_uri)
        return self.secrets[name]

    def actor(self, name: str) -> Actor:
        # Each login moves a minute on: a TOTP step is accepted only once per operator.
        self.step += 1
        at = NOW + timedelta(minutes=self.step)
        return self.centre.staff.authenticate(name, PASSWORD, code(self.secrets[name], at), now=at)
