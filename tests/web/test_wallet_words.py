"""The words of the phone-credential parts of the page (ask.js, my-card.js, wallet.js,
presentation.js, holder.js, index.html) exist in English, Lao and Khmer, and the three
languages have the same keys: a missing word would show as its key on a civil servant's phone."""

from __future__ import annotations

import re
from pathlib import Path

from idsvc.formats.credentials import DISCLOSABLE
from idsvc.wallet import corrections

STATIC = Path(__file__).resolve().parents[2] / "mobile_api" / "static" / "verify"
LANGUAGES = ("en", "lo", "km")


def keys_by_language() -> dict[str, set[str]]:
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    found: dict[str, set[str]] = {}
    for lang in LANGUAGES:
        block = re.search(rf"^  {lang}: \{{\n(.*?)^  \}},$", source, re.MULTILINE | re.DOTALL)
        assert block, f"no {lang} block in i18n.js"
        found[lang] = set(re.findall(r"^    (\w+):", block.group(1), re.MULTILINE))
    return found


def wallet_keys() -> set[str]:
    """Every key the wallet's modules name literally (dynamic ones are listed below)."""
    keys: set[str] = set()
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    keys |= set(re.findall(r'data-i18n="(\w+)"', html))
    for name in ("ask.js", "my-card.js", "wallet.js", "presentation.js", "holder.js"):
        code = (STATIC / name).read_text(encoding="utf-8")
        keys |= set(re.findall(r'\b(?:say|status|state\.t)\("(\w+)"', code))
        keys |= {f"w_{k}" for k in re.findall(r'new WalletError\("(\w+)"', code)}
    return keys


def test_the_three_languages_have_the_same_words() -> None:
    found = keys_by_language()
    assert found["lo"] == found["en"], found["en"] ^ found["lo"]
    assert found["km"] == found["en"], found["en"] ^ found["km"]


def test_every_word_the_wallet_uses_is_there() -> None:
    english = keys_by_language()["en"]
    used = wallet_keys()
    assert {"w_tx_wrong", "w_request_bad", "ask_waiting", "consent_who"} <= used, "read them all"
    # Built from data (my-card.js): the server's correction fields and disclosable claims, the
    # credential states, the results of the who-checked log; and the new reason.
    used |= {f"f_{f}" for f in corrections.FIELDS} | {f"c_{c}" for c in DISCLOSABLE}
    states = ["pending", "live", "suspended", "superseded", "revoked", "expired"]
    results = ["valid", "revoked", "suspended", "expired", "not_yet_valid", "not_genuine"]
    used |= {f"state_{s}" for s in states} | {f"res_{r}" for r in [*results, "unknown", "invalid"]}
    used |= {f"fix_{s}" for s in ("open", "accepted", "rejected")}
    used |= {"card_revoked", "card_suspended", "kind_card", "kind_phone"}
    used |= {"HOLDER_BINDING_INVALID", "why_HOLDER_BINDING_INVALID"}
    used |= {f"why_{code}_phone" for code in ("VALID", "REVOKED", "SUSPENDED", "EXPIRED")}
    assert used - english == set()
