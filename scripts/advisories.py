"""Judge pip-audit's JSON report of a lock file, asking PyPI's project JSON for what it skipped.

pip-audit's PyPI service reads ``/pypi/<name>/<version>/json``. Some networks (a caching
mirror in front of pypi.org, as on our build machines) answer only the project document
``/pypi/<name>/json``; pip-audit then skips every pin as "not found". That project document
also carries the advisories (OSV data) of the project's *latest* release, so a pin that is the
latest release can still be judged; an older pin cannot, and stays UNKNOWN.

    python scripts/advisories.py REPORT.json IGNORE_FILE [INDEX_URL]

Prints one line per package and a summary. Exit 0: every pin judged, none vulnerable.
Exit 1: a known vulnerability that the ignore file does not accept. Exit 2: no vulnerability
found, but some pins could not be judged (UNKNOWN, never reported as clean).

The ignore file holds one accepted advisory per line: ``ID  YYYY-MM-DD  why``; the id may be
any of its aliases (PYSEC, GHSA, CVE). An acceptance stops counting after its date, so an
accepted risk is looked at again.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi"
EXIT_CLEAN, EXIT_VULNERABLE, EXIT_UNKNOWN = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    name: str
    version: str
    advisories: tuple[str, ...]  # ids of known, not accepted vulnerabilities
    unknown: str | None = None  # why the pin could not be judged


def accepted_ids(path: Path, today: date) -> set[str]:
    """Advisory ids accepted until a date still to come (comments and blank lines skipped)."""
    accepted: set[str] = set()
    if not path.exists():
        return accepted
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("#", 1)[0].split(maxsplit=2)
        if not fields:
            continue
        if len(fields) < 3:
            raise SystemExit(f"{path}:{number}: expected 'ID YYYY-MM-DD reason'")
        try:
            until = date.fromisoformat(fields[1])
        except ValueError:
            raise SystemExit(f"{path}:{number}: {fields[1]!r} is not a date") from None
        if until >= today:
            accepted.add(fields[0].upper())
    return accepted


def _open_advisories(vulns: list[dict[str, Any]], accepted: set[str]) -> tuple[str, ...]:
    found = []
    for vuln in vulns:
        if vuln.get("withdrawn"):
            continue
        names = {
            str(vuln.get("id", "")).upper(),
            *(str(a).upper() for a in vuln.get("aliases", [])),
        }
        if not names & accepted:
            found.append(str(vuln.get("id")))
    return tuple(sorted(set(found)))


def _project_document(index: str, name: str) -> dict[str, Any]:
    # index is PYPI or an http(s) mirror given on the command line, never input from a package.
    with urllib.request.urlopen(f"{index}/{name}/json", timeout=20) as response:  # noqa: S310
        loaded: dict[str, Any] = json.load(response)
    return loaded


def _judge_skipped(index: str, name: str, version: str, accepted: set[str]) -> Verdict:
    try:
        document = _project_document(index, name)
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        return Verdict(name, version, (), unknown=f"project JSON unavailable ({exc})")
    latest = str(document.get("info", {}).get("version", ""))
    if latest != version:
        return Verdict(
            name, version, (), unknown=f"pinned {version}, latest {latest}: no per-version data"
        )
    return Verdict(name, version, _open_advisories(document.get("vulnerabilities", []), accepted))


def judge(report: dict[str, Any], accepted: set[str], index: str = PYPI) -> list[Verdict]:
    verdicts: list[Verdict] = []
    skipped: list[tuple[str, str]] = []
    for dep in report.get("dependencies", []):
        name = str(dep["name"])
        if "skip_reason" in dep:
            # pip-audit names the version only inside its message: "... could not be audited:
            # name (1.2.3)".
            reason = str(dep["skip_reason"])
            version = reason.rsplit("(", 1)[-1].rstrip(")") if reason.endswith(")") else ""
            skipped.append((name, version))
            continue
        vulns = [{"id": v["id"], "aliases": v.get("aliases", [])} for v in dep.get("vulns", [])]
        verdicts.append(Verdict(name, str(dep["version"]), _open_advisories(vulns, accepted)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts += pool.map(lambda nv: _judge_skipped(index, nv[0], nv[1], accepted), skipped)
    return sorted(verdicts, key=lambda v: v.name)


def exit_code(verdicts: list[Verdict]) -> int:
    if any(v.advisories for v in verdicts):
        return EXIT_VULNERABLE
    if any(v.unknown for v in verdicts):
        return EXIT_UNKNOWN
    return EXIT_CLEAN


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 64
    report = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    accepted = accepted_ids(Path(argv[2]), datetime.now(UTC).date())
    verdicts = judge(report, accepted, argv[3] if len(argv) == 4 else PYPI)
    for v in verdicts:
        if v.advisories:
            print(f"VULNERABLE {v.name}=={v.version}: {', '.join(v.advisories)}")
        elif v.unknown:
            print(f"UNKNOWN    {v.name}=={v.version}: {v.unknown}")
        else:
            print(f"ok         {v.name}=={v.version}")
    bad = sum(1 for v in verdicts if v.advisories)
    unknown = sum(1 for v in verdicts if v.unknown and not v.advisories)
    print(
        f"{len(verdicts)} pins: {bad} vulnerable, {unknown} unknown, "
        f"{len(verdicts) - bad - unknown} clean"
    )
    return exit_code(verdicts)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
