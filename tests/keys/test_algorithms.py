"""``keys.algorithms.es256_der_from_raw``: the DER that OpenSSL verifies, built from byte
prefixes, is exactly what cryptography's own ``encode_dss_signature`` makes of r and s."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from keys.algorithms import es256_der_from_raw
from keys.errors import BadSignature

# First bytes that choose the DER form: zero (INTEGER shortened), high bit clear, high bit set.
FIRST = st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF])
REST = st.binary(min_size=31, max_size=31)


@given(FIRST, REST, FIRST, REST)
def test_matches_encode_dss_signature_in_every_form(
    r_first: int, r_rest: bytes, s_first: int, s_rest: bytes
) -> None:
    r = bytes([r_first]) + r_rest
    s = bytes([s_first]) + s_rest
    expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    assert es256_der_from_raw(r + s) == expected


@pytest.mark.parametrize("size", [0, 63, 65, 96])
def test_a_signature_of_another_size_is_refused(size: int) -> None:
    with pytest.raises(BadSignature, match="64 bytes"):
        es256_der_from_raw(b"\x01" * size)
