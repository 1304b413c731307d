"""The PKCS#11 signer against a real SoftHSM2 token."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keys.errors import HsmError, UnsupportedAlgorithm
from keys.hsm import Pkcs11Signer
from keys.jwk import public_jwk, thumbprint
from keys.signer import Signer, verify_signature
from tests.support.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm


def _generate(token: SoftHsmToken, label: str, alg: str) -> Pkcs11Signer:
    return Pkcs11Signer.generate(token.module, token.label, token.pin, label, alg)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_sign_and_verify_with_cryptography(
    softhsm_token: SoftHsmToken, key_label: str, alg: str
) -> None:
    created = _generate(softhsm_token, key_label, alg)
    signer = Pkcs11Signer.open(
        softhsm_token.module, softhsm_token.label, softhsm_token.pin, key_label
    )
    assert isinstance(signer, Signer)
    assert (signer.kid, signer.alg) == (created.kid, alg)
    assert signer.kid == thumbprint(public_jwk(signer.public_key()))

    data = b"eyJhbGciOi.eyJzdWIiOi"
    signature = signer.sign(data)
    assert len(signature) == 64
    public = signer.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, data)
    verify_signature(public, alg, data, signature)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_private_key_cannot_leave_the_token(
    softhsm_token: SoftHsmToken, key_label: str, alg: str
) -> None:
    signer = _generate(softhsm_token, key_label, alg)
    protection = signer.key_protection()
    assert protection.sensitive and protection.always_sensitive and protection.token_object
    assert not protection.extractable and protection.never_extractable

    # An independent PKCS#11 client tries to read and to wrap the private key. This is the
    # only place outside keys/hsm.py that touches the binding, to check the token itself.
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    token = pkcs11.lib(softhsm_token.module).get_token(token_label=softhsm_token.label)
    with token.open(rw=True, user_pin=softhsm_token.pin) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, label=key_label)
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]
        wrapping = session.generate_key(KeyType.AES, 256, store=False)
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            cast(Any, wrapping).wrap_key(private)  # a WrapMixin method, not in the stubs


def test_wrong_pin(softhsm_token: SoftHsmToken, key_label: str) -> None:
    _generate(softhsm_token, key_label, "ES256")
    wrong_pin = "0000" if softhsm_token.pin != "0000" else "1111"
    with pytest.raises(HsmError, match="PIN incorrect") as caught:
        Pkcs11Signer.open(softhsm_token.module, softhsm_token.label, wrong_pin, key_label)
    assert wrong_pin not in str(caught.value)
    assert softhsm_token.pin not in str(caught.value)
    # A failed login leaves the token usable with the right PIN.
    signer = Pkcs11Signer.open(
        softhsm_token.module, softhsm_token.label, softhsm_token.pin, key_label
    )
    assert len(signer.sign(b"x")) == 64


def test_unknown_token_and_key(softhsm_token: SoftHsmToken, key_label: str) -> None:
    with pytest.raises(HsmError, match="no token"):
        Pkcs11Signer.open(softhsm_token.module, "no-such-token", softhsm_token.pin, key_label)
    with pytest.raises(HsmError, match="no private key"):
        Pkcs11Signer.open(softhsm_token.module, softhsm_token.label, softhsm_token.pin, key_label)
    with pytest.raises(HsmError, match="does not exist"):
        Pkcs11Signer.open("/nonexistent/libpkcs11.so", softhsm_token.label, "1", key_label)
    with pytest.raises(HsmError, match="absolute"):
        Pkcs11Signer.open("libsofthsm2.so", softhsm_token.label, "1", key_label)


def test_label_is_never_reused(softhsm_token: SoftHsmToken, key_label: str) -> None:
    first = _generate(softhsm_token, key_label, "ES256")
    with pytest.raises(HsmError, match="already holds"):
        _generate(softhsm_token, key_label, "EdDSA")
    again = Pkcs11Signer.open(
        softhsm_token.module, softhsm_token.label, softhsm_token.pin, key_label
    )
    assert again.kid == first.kid


def test_unsupported_algorithm(softhsm_token: SoftHsmToken, key_label: str) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        _generate(softhsm_token, key_label, "RS256")


def test_signers_are_usable_from_several_threads(
    softhsm_token: SoftHsmToken, key_label: str
) -> None:
    signers = [
        _generate(softhsm_token, f"{key_label}-ec", "ES256"),
        _generate(softhsm_token, f"{key_label}-ed", "EdDSA"),
    ]
    start = threading.Barrier(8)

    def work(index: int) -> None:
        signer = signers[index % 2]
        start.wait()
        for round_ in range(5):
            data = f"thread {index} round {round_}".encode()
            verify_signature(signer.public_key(), signer.alg, data, signer.sign(data))

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(work, i) for i in range(8)]:
            future.result()


def test_repr_hides_the_pin(softhsm_token: SoftHsmToken, key_label: str) -> None:
    signer = _generate(softhsm_token, key_label, "EdDSA")
    assert softhsm_token.pin not in repr(signer)
    assert key_label in repr(signer)


def _sign_in_child(signer: Pkcs11Signer, connection: Connection) -> None:
    data = b"signed in a forked worker"
    connection.send(signer.sign(data))


def test_signer_survives_fork(softhsm_token: SoftHsmToken, key_label: str) -> None:
    # API servers often load the module in a parent and fork workers afterwards.
    signer = _generate(softhsm_token, key_label, "ES256")
    assert len(signer.sign(b"in the parent")) == 64
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_sign_in_child, args=(signer, sender))
    child.start()
    assert receiver.poll(20), "child did not answer"
    signature = receiver.recv()
    child.join(20)
    assert child.exitcode == 0
    verify_signature(signer.public_key(), "ES256", b"signed in a forked worker", signature)
    assert len(signer.sign(b"in the parent again")) == 64
