"""Write the web verifier's copy of the reason order from the Python verifier's.

The order in which reasons decide a result's status (``STATUS_PRIORITY`` in
``idsvc/verification/rules.py``) is written once, in Python. The web verifier (plain ES modules,
no build step) reads it from ``mobile_api/static/verify/reasons.js``, which this script writes;
``tests/web/test_reasons_js.py`` fails while the checked-in file differs from what it writes.

    python scripts/web_reasons.py           # rewrite reasons.js
    python scripts/web_reasons.py --check   # exit 1 if reasons.js is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from idsvc.verification.rules import STATUS_PRIORITY

TARGET = Path(__file__).resolve().parents[1] / "mobile_api" / "static" / "verify" / "reasons.js"

HEADER = """\
// Written by scripts/web_reasons.py from STATUS_PRIORITY in idsvc/verification/rules.py: do not
// edit; change the order there and run `python scripts/web_reasons.py`
// (tests/web/test_reasons_js.py fails until this file matches).
"""


def render(priority: Iterable[tuple[str, str]] = STATUS_PRIORITY) -> str:
    """The text of reasons.js for this (reason, status) order."""
    rows = "".join(
        f"  Object.freeze([{json.dumps(str(reason))}, {json.dumps(status)}]),\n"
        for reason, status in priority
    )
    return (
        f"{HEADER}\n"
        "/** [reason, status] pairs, the most serious first: a result's status is that of the\n"
        ' * first reason here it holds ("valid" with no reason, "invalid" with none of these). */\n'
        f"export const STATUS_PRIORITY = Object.freeze([\n{rows}]);\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is up to date")
    parser.add_argument("--target", type=Path, default=TARGET, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    wanted = render()
    current = args.target.read_text(encoding="utf-8") if args.target.exists() else None
    if args.check:
        if current != wanted:
            print(f"{args.target} is out of date: run python scripts/web_reasons.py")
            return 1
        return 0
    if current != wanted:
        args.target.write_text(wanted, encoding="utf-8")
        print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
