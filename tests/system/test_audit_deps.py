"""``scripts/audit-deps``' judge (scripts/advisories.py) against a PyPI-shaped index on loopback:
a pinned latest release is judged from the project document's advisories, an older pin stays
UNKNOWN (never clean), accepted advisories are ignored only until their date, and pip-audit's
own findings count."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "advisories.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("advisories", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["advisories"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


advisories = _load()

VULN = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-0001", "GHSA-xxxx-yyyy-zzzz"],
    "fixed_in": [],
    "withdrawn": None,
}


class _Index(BaseHTTPRequestHandler):
    projects: ClassVar[dict[str, dict[str, Any]]] = {
        "safe": {"info": {"version": "2.0"}, "vulnerabilities": []},
        "risky": {"info": {"version": "1.5"}, "vulnerabilities": [VULN]},
        "withdrawn": {
            "info": {"version": "3.0"},
            "vulnerabilities": [VULN | {"withdrawn": "2099-01-01"}],
        },
    }

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[0]
        doc = self.projects.get(name)
        body = json.dumps(doc).encode() if doc else b"{}"
        self.send_response(200 if doc else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _skipped(name: str, version: str) -> dict[str, str]:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})",
    }


def test_skipped_pins_are_judged_from_the_project_document(index: str) -> None:
    report = {
        "dependencies": [
            _skipped("safe", "2.0"),
            _skipped("risky", "1.5"),
            _skipped("safe-old", "0.1"),
            _skipped("withdrawn", "3.0"),
        ]
    }
    verdicts = {v.name: v for v in advisories.judge(report, set(), index)}
    assert verdicts["safe"].advisories == () and verdicts["safe"].unknown is None
    assert verdicts["risky"].advisories == ("PYSEC-2099-1",)
    assert verdicts["withdrawn"].advisories == () and verdicts["withdrawn"].unknown is None
    assert "unavailable" in verdicts["safe-old"].unknown  # 404: no project document
    assert advisories.exit_code(list(verdicts.values())) == advisories.EXIT_VULNERABLE


def test_an_older_pin_is_unknown_never_clean(index: str) -> None:
    report = {"dependencies": [_skipped("safe", "1.9")]}
    (verdict,) = advisories.judge(report, set(), index)
    assert verdict.unknown == "pinned 1.9, latest 2.0: no per-version data"
    assert advisories.exit_code([verdict]) == advisories.EXIT_UNKNOWN


def test_pip_audit_findings_count_and_accepted_ones_are_ignored(index: str, tmp_path: Path) -> None:
    report = {
        "dependencies": [
            {"name": "a", "version": "1", "vulns": [{"id": "GHSA-1", "aliases": ["CVE-1"]}]},
            {"name": "b", "version": "1", "vulns": []},
        ]
    }
    verdicts = advisories.judge(report, set(), index)
    assert advisories.exit_code(verdicts) == advisories.EXIT_VULNERABLE
    ignore = tmp_path / "audit-ignore"
    ignore.write_text(
        "# comment\n\nCVE-1  2026-12-31  not reachable from idsvc (test)\n"
        "cve-2099-0001 2026-01-01 lapsed\n",
        encoding="utf-8",
    )
    accepted = advisories.accepted_ids(ignore, date(2026, 11, 26))
    assert accepted == {"CVE-1"}  # the lapsed acceptance no longer counts
    assert advisories.exit_code(advisories.judge(report, accepted, index)) == advisories.EXIT_CLEAN
    risky = {"dependencies": [_skipped("risky", "1.5")]}
    assert advisories.exit_code(advisories.judge(risky, accepted, index)) == 1


def test_a_malformed_ignore_line_stops_the_audit(tmp_path: Path) -> None:
    ignore = tmp_path / "audit-ignore"
    ignore.write_text("CVE-1 someday because\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="is not a date"):
        advisories.accepted_ids(ignore, date(2026, 11, 26))
    ignore.write_text("CVE-1\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="expected 'ID YYYY-MM-DD reason'"):
        advisories.accepted_ids(ignore, date(2026, 11, 26))
