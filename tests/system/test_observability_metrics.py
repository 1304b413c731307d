"""``/metrics`` in one process, and the Grafana dashboard and alert rules against it: every
metric they query is one the service really exports."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import api_for
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "idsvc.json"
ALERTS = ROOT / "deploy" / "grafana" / "idsvc-alerts.yml"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def exported(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    text = "\n".join(exprs) + ALERTS.read_text(encoding="utf-8")
    return set(re.findall(r"\b(idsvc_[a-z_]+)", text))


@pytest.fixture
def metrics_text(tmp_path: Path) -> str:
    published = tmp_path / "public"
    published.mkdir()
    settings = make_settings(
        tmp_path / "home",
        f"sqlite:///{tmp_path / 'idsvc.sqlite3'}",
        published_dir=published,
        metrics_access="open",
    )
    exp = int((NOW + timedelta(hours=20)).timestamp())
    index = {"status_lists": {"1": {"uri": "u", "exp": exp, "bits_sha256": "0"}}}
    (published / "index.json").write_text(json.dumps(index))
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr.csv", actor="test-hr", now=NOW)
    svc.credentials.issue("LA-MOHA-000101", actor="test-desk", now=NOW)
    with api_for(svc) as api:
        before = api.http.get("/metrics").text
        assert api.http.post("/v1/verifications", json={"credential": "x.y.z"}).status_code == 200
        r = api.http.get("/metrics")
    svc.infra.db.dispose()
    assert r.status_code == 200
    # In one process the counters are the process's (pytest runs several apps): the change
    # is what this app added.
    return r.text + "\n# BEFORE\n" + before


def test_the_alert_rules_are_well_formed() -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"]
    assert len(rules) >= 8
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    documented = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert [r["alert"] for r in rules if f"`{r['alert']}`" not in documented] == []


def test_the_dashboard_and_alerts_query_only_exported_metrics(metrics_text: str) -> None:
    names = exported(metrics_text.split("\n# BEFORE\n")[0])
    missing = sorted(
        q for q in queried() if q not in names and not any(q.endswith(s) for s in SUFFIXES)
    )
    missing += sorted(
        q
        for q in queried()
        if any(q.endswith(s) for s in SUFFIXES)
        and q not in names
        and q.rsplit("_", 1)[0] not in names
    )
    assert not missing, missing


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_one_process_counts_once_with_bounded_labels(metrics_text: str) -> None:
    after, before = metrics_text.split("\n# BEFORE\n")
    samples, earlier = values(after), values(before)
    key = (
        "idsvc_checks_total",
        (("kind", "verification"), ("reason", "MALFORMED"), ("result", "invalid")),
    )
    assert samples[key] - earlier.get(key, 0) == 1
    route = (("method", "POST"), ("route", "/v1/verifications"), ("status", "200"))
    assert (
        samples[("idsvc_http_requests_total", route)]
        - earlier.get(("idsvc_http_requests_total", route), 0)
        == 1
    )
    assert samples[("idsvc_credential_events_total", (("action", "issue"),))] == 1
    age = samples[("idsvc_status_list_age_seconds", (("list", "1"),))]
    assert age > 0  # signed 24 ttls before its exp; the clock is now, the exp near NOW
    assert samples[("idsvc_database_totals_up", ())] == 1


def test_metrics_need_an_admin_client_by_default(tmp_path: Path) -> None:
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    svc.credentials.init(now=NOW, actor="test-admin")
    with api_for(svc) as api:
        assert api.http.get("/metrics").status_code == 401
        assert api.http.get("/healthz").json() == {"status": "alive"}
    svc.infra.db.dispose()
