"""The order of reasons is written once, in Python (``STATUS_PRIORITY`` in
idsvc/verification/rules.py): the web verifier's reasons.js is what scripts/web_reasons.py
writes from it, and no other module of the page spells an order of its own."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from idsvc.verification.rules import STATUS_PRIORITY, Reason

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "mobile_api" / "static" / "verify"
GENERATED = STATIC / "reasons.js"


def generator() -> ModuleType:
    """scripts/web_reasons.py, loaded as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "web_reasons", ROOT / "scripts" / "web_reasons.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reasons_js_is_what_the_generator_writes_from_python() -> None:
    assert GENERATED.read_text(encoding="utf-8") == generator().render(), (
        "mobile_api/static/verify/reasons.js is out of date: run python scripts/web_reasons.py"
    )


def test_reasons_js_holds_the_python_order() -> None:
    pairs = re.findall(r'\["([A-Z_]+)", "([a-z_]+)"\]', GENERATED.read_text(encoding="utf-8"))
    assert pairs == [(str(reason), status) for reason, status in STATUS_PRIORITY]


def test_check_mode_fails_on_a_stale_copy_and_writing_mends_it(tmp_path: Path) -> None:
    web_reasons = generator()
    target = tmp_path / "reasons.js"
    swapped = [STATUS_PRIORITY[1], STATUS_PRIORITY[0], *STATUS_PRIORITY[2:]]
    target.write_text(web_reasons.render(swapped), encoding="utf-8")
    assert web_reasons.main(["--check", "--target", str(target)]) == 1
    assert web_reasons.main(["--target", str(target)]) == 0
    assert web_reasons.main(["--check", "--target", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8")
    target.unlink()
    assert web_reasons.main(["--check", "--target", str(target)]) == 1


# An order of reasons: two reason codes in one array literal, or a table of arrays whose first
# member is a reason code.
_CODE = "|".join(reason.value for reason in Reason)
ORDER = re.compile(rf'\[\s*"(?:{_CODE})"\s*,\s*"(?:{_CODE})"|\[\s*\[\s*"(?:{_CODE})"')


def test_no_other_module_spells_an_order_of_reasons() -> None:
    others = [p for p in STATIC.glob("*.js") if p != GENERATED]
    spelled = {p.name for p in others if ORDER.search(p.read_text(encoding="utf-8"))}
    assert spelled == set(), "read the order from reasons.js instead"
    # The check sees the two copies the page used to carry (app.js, verifier.js).
    headline = 'const HEADLINE = [\n  "CARD_NOT_GENUINE", "BAD_SIGNATURE", "UNKNOWN_KEY",\n];\n'
    priority = 'const STATUS_PRIORITY = [\n  ["CARD_NOT_GENUINE", "not_genuine"],\n];\n'
    assert ORDER.search(headline) and ORDER.search(priority)
