"""The load rig shared by ``load_mixed.py`` and the ``fault_*.py`` drills (and their short
versions in ``tests/system/``): a prepared idsvc home, ``idsvc serve`` as a real process, and
``wrk`` driving a mixed workload through a generated Lua script.

Why ``wrk`` (Debian package ``wrk``) and not locust: on a 2-core machine the load generator
shares the CPU with the server it measures; wrk is C with a LuaJIT hook per request and costs a
fraction of what a Python generator does, and it has no Python dependencies to pin. The Lua
script (``load_mix.lua``) picks each request's kind from a weighted rota, counts every answer by
kind and status (and checks the body where the answer has a known shape), and measures each
request's latency with ``clock_gettime`` through LuaJIT's FFI.

Each wrk thread drives ONE connection (``-t N -c N``), so a response always belongs to the
thread's last request: that is what makes per-kind accounting exact. HR updates are
countable: each creates one new person with a unique employee id, sent with that id as its
``Idempotency-Key``. A thread sends an HR update that was answered 5xx or never answered
(its connection died: a killed worker) again at its next HR turn, with the same key, as a real
HR system would; so every id sent must end up answered 2xx and stored exactly once (except
the few still pending when the run ends), each with its own ``hr.import`` audit event
(``target_id`` = SHA-256 of the records, as ``idsvc.register.hr_sync`` makes it).
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from base64 import urlsafe_b64decode
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from idsvc.clients.api_clients import ApiClients  # noqa: E402
from idsvc.config import Settings  # noqa: E402
from idsvc.formats.hr_csv import COLUMNS  # noqa: E402
from idsvc.register.hr_sync import request_hash  # noqa: E402
from idsvc.services import Services  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_server  # noqa: E402

# The drills use these through this module: one import for the whole rig.
from load_server import IDSVC as IDSVC  # noqa: E402
from load_server import Served as Served  # noqa: E402
from load_server import free_port as free_port  # noqa: E402
from load_server import problems_in_log as problems_in_log  # noqa: E402

SAMPLE_CSV = ROOT / "idsvc" / "data" / "hr_sample.csv"
HOLDER = "KH-MCS-010002"  # active in the sample register
PAYROLL_PREFIX = "KH-LDPAY-"
# Requests per 20 of each kind: verifications dominate, as in production.
MIX: dict[str, int] = {
    "verify_jwt": 5,
    "verify_qr": 3,
    "payroll": 2,
    "jwks": 1,
    "jwks_inm": 2,
    "status": 1,
    "status_inm": 2,
    "hr": 2,
    "challenge": 2,
}
OK_STATUS: dict[str, set[int]] = {
    "verify_jwt": {200},
    "verify_qr": {200},
    "payroll": {200},
    "jwks": {200},
    "jwks_inm": {200, 304},  # 200 for a thread's first (no ETag yet)
    "status": {200},
    "status_inm": {200, 304},  # 200 when the list's minute or content moved on
    "hr": {200},
    "challenge": {201},
    "bare": {200},
}


def hr_record(employee_id: str) -> dict[str, str]:
    return {
        "employee_id": employee_id,
        "name_local": "ສົມພອນ ແກ້ວມະນີ",
        "name_latin": "Somphone Keomany",
        "sex": "F",
        "date_of_birth": "1984-03-12",
        "ministry": "Ministry of Home Affairs",
        "unit": "Load Test Unit",
        "position": "Officer",
        "grade": "K3",
        "category": "civil_servant",
        "status": "active",
        "status_date": "2020-01-01",
        "hire_date": "2020-01-01",
    }


def hr_prefix(phase: str) -> str:
    """Employee ids of a run's HR updates start with this (the agency code names the phase)."""
    return f"LA-LD{phase}"


def hr_id(phase: str, thread: int, seq: int) -> str:
    return f"{hr_prefix(phase)}{thread}-{seq:06d}"


def payroll_record(
    i: int, status: str = "active", status_date: str = "2015-01-01"
) -> dict[str, str]:
    """Synthetic person ``i`` of the payroll register, as an HR record."""
    return {
        "employee_id": f"{PAYROLL_PREFIX}{i:06d}",
        "name_local": "សុខ ចន្ថា",
        "name_latin": "Sok Chantha",
        "sex": "M" if i % 2 else "F",
        "date_of_birth": "1980-01-01",
        "ministry": "Ministry of Civil Service",
        "unit": "Payroll Unit",
        "position": "Officer",
        "grade": "K2",
        "category": "civil_servant",
        "status": status,
        "status_date": status_date,
        "hire_date": "2015-01-01",
    }


def synthetic_csv(count: int) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for i in range(count):
        writer.writerow(payroll_record(i))
    return out.getvalue().encode()


@dataclass
class Prepared:
    """A service home ready to serve: env for ``idsvc serve``, tokens and client secrets."""

    env: dict[str, str]
    settings: Settings
    passphrase: str
    jwt: str
    qr: str
    status_path: str
    verifier_secret: str
    bank_secret: str
    hr_secret: str
    payroll_ids: list[str]

    def service(self) -> Services:
        return Services.from_settings(self.settings, lambda: self.passphrase.encode())


def prepare(
    home: Path, db_url: str, *, people: int = 200, extra_env: dict[str, str] | None = None
) -> Prepared:
    """``init``, the sample register plus ``people`` synthetic ones, a credential and three API
    clients (verify, payroll, hr:write), in-process; the served process reads the same env."""
    passphrase = secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
        "IDSVC_HOME": str(home),
        "IDSVC_DATABASE_URL": db_url,
        "IDSVC_KEY_PASSPHRASE": passphrase,
        # Counters run on every request but never refuse: the load is one loopback address.
        "IDSVC_RATE_LIMIT_ANONYMOUS": str(10**9),
        "IDSVC_RATE_LIMIT_CLIENT": str(10**9),
        **(extra_env or {}),
    }
    settings = Settings(home=home, database_url=db_url, key_passphrase=SecretStr(passphrase))
    svc = Services.from_settings(settings, lambda: passphrase.encode())
    now = datetime.now(UTC)
    try:
        svc.credentials.init(now=now, actor="load-rig")
        svc.register.import_hr(
            SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="load", now=now
        )
        svc.register.import_hr(
            synthetic_csv(people), source_name="payroll.csv", actor="load", now=now
        )
        cred = svc.credentials.issue(HOLDER, actor="load-rig", now=now)
        clients = ApiClients(svc.infra.db)
        secrets_ = [
            clients.add(name, [scope], now)[1]
            for name, scope in (
                ("Load Verifier", "verify"),
                ("Load Bank", "payroll"),
                ("Load HR", "hr:write"),
            )
        ]
    finally:
        svc.infra.db.dispose()
    payload = json.loads(urlsafe_b64decode(cred.token.split(".")[1] + "=="))
    status_uri: str = payload["status"]["status_list"]["uri"]
    assert cred.qr_text is not None
    return Prepared(
        env=env,
        settings=settings,
        passphrase=passphrase,
        jwt=cred.token,
        qr=cred.qr_text,
        status_path="/status-lists/" + status_uri.rsplit("/", 1)[1],
        verifier_secret=secrets_[0],
        bank_secret=secrets_[1],
        hr_secret=secrets_[2],
        payroll_ids=[f"{PAYROLL_PREFIX}{i:06d}" for i in range(people)],
    )


# -- the server ---------------------------------------------------------------------------------


def serve_idsvc(prep: Prepared, log: Path, workers: int = 2) -> Served:
    return load_server.serve_idsvc(prep.env, log, workers)


def serve_bare(prep: Prepared, tmp: Path, workers: int = 2) -> Served:
    svc = prep.service()
    try:
        jwks = svc.credentials.jwks()
    finally:
        svc.infra.db.dispose()
    return load_server.serve_bare(prep.env, jwks, tmp, workers)


# -- the load -----------------------------------------------------------------------------------

MIX_LUA = Path(__file__).with_name("load_mix.lua")


def _lua_safe(text: str) -> str:
    if "]==]" in text:
        raise ValueError("text would end a Lua long string")
    return text


def mix_script(
    prep: Prepared,
    out: Path,
    *,
    phase: str,
    mix: dict[str, int],
    payroll_batch: int = 100,
    bare_path: str = "/bare",
) -> str:
    rota: list[str] = []
    for kind, weight in mix.items():
        rota += [kind] * weight
    # Interleave the kinds so that a short run still sees each of them.
    rota = [rota[i] for i in sorted(range(len(rota)), key=lambda i: (i * 7919) % len(rota))]
    batch = prep.payroll_ids[:payroll_batch]
    values = {
        "ROTA": ", ".join(f'"{k}"' for k in rota),
        "PHASE": phase,
        "OUT": str(out),
        "JWT_BODY": json.dumps({"credential": prep.jwt}),
        "QR_BODY": json.dumps({"credential": prep.qr}),
        "PAYROLL_BODY": json.dumps({"items": [{"employee_id": i} for i in batch]}),
        "PAYROLL_ACTIVE": str(len(batch)),
        "HR_BODY": json.dumps({"records": [hr_record("@ID@")]}, ensure_ascii=False),
        "STATUS_PATH": prep.status_path,
        "BARE_PATH": bare_path,
        "VERIFIER": prep.verifier_secret,
        "BANK": prep.bank_secret,
        "HR": prep.hr_secret,
    }
    script = MIX_LUA.read_text(encoding="utf-8")
    for name, value in values.items():
        script = script.replace(f"@{name}@", _lua_safe(value))
    return script


@dataclass
class LoadResult:
    seconds: float
    requests: int
    socket_errors: dict[str, int]
    counts: dict[str, Counter[str]]
    latencies: dict[str, list[int]]  # microseconds, per kind
    hr_sent: set[str]
    hr_ok: set[str]
    hr_5xx: list[str]
    hr_pending: set[str]  # sent, never answered 2xx: in flight at the end, or still refused
    hr_retried: int
    threads: int
    wrk_output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    @property
    def answered(self) -> int:
        return sum(c for by in self.counts.values() for s, c in by.items() if s != "lost")

    def all_latencies(self) -> list[int]:
        return sorted(v for values in self.latencies.values() for v in values)

    def statuses(self, predicate: Any) -> int:
        return sum(
            c
            for by in self.counts.values()
            for s, c in by.items()
            if s != "lost" and predicate(int(s.split("_")[0]))
        )

    def unexpected(self, also_ok: frozenset[int] = frozenset()) -> dict[str, dict[str, int]]:
        """Answers other than each kind's expected statuses (plus ``also_ok``)."""
        bad: dict[str, dict[str, int]] = {}
        for kind, by in self.counts.items():
            for s, c in by.items():
                if s == "lost":
                    continue
                if "_" in s or int(s) not in OK_STATUS[kind] | also_ok:
                    bad.setdefault(kind, {})[s] = c
        return bad

    def lost(self) -> int:
        return sum(by.get("lost", 0) for by in self.counts.values())


def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return float(sorted_values[k])


def run_wrk(
    base: str,
    prep: Prepared,
    tmp: Path,
    *,
    seconds: float,
    connections: int,
    phase: str,
    mix: dict[str, int] | None = None,
    bare_path: str = "/bare",
) -> LoadResult:
    """wrk with ``connections`` threads of one connection each, for ``seconds``."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (scripts/system-packages)")
    out = tmp / f"wrk-{phase}.out"
    script = tmp / f"wrk-{phase}.lua"
    script.write_text(
        mix_script(prep, out, phase=phase, mix=mix or MIX, bare_path=bare_path),
        encoding="utf-8",
    )
    cmd = [
        "wrk",
        f"-t{connections}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        base,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout} {proc.stderr}")
    return parse_wrk_out(out.read_text(encoding="utf-8"), phase, proc.stdout)


class BackgroundWrk:
    """``run_wrk`` on a thread while a drill breaks something; ``join`` returns its result and
    raises what went wrong in it, so a failed load run never reads as a quiet one."""

    def __init__(
        self, base: str, prep: Prepared, tmp: Path, *, seconds: float, connections: int, phase: str
    ) -> None:
        self._result: LoadResult | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = run_wrk(
                    base, prep, tmp, seconds=seconds, connections=connections, phase=phase
                )
            except BaseException as exc:  # raised again by join, in the drill's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"wrk-{phase}")

    def start(self) -> None:
        self._thread.start()

    def join(self) -> LoadResult:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def parse_wrk_out(text: str, phase: str, wrk_output: str) -> LoadResult:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    latencies: dict[str, list[int]] = defaultdict(list)
    hr_ok: set[str] = set()
    hr_5xx: list[str] = []
    hr_pending: set[str] = set()
    hr_sent: set[str] = set()
    retried = threads = 0
    requests, duration = 0, 0
    errors: dict[str, int] = {}
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] == "summary":
            requests, duration = int(f[1]), int(f[2])
            errors = dict(
                zip(
                    ("connect", "read", "write", "status", "timeout"), map(int, f[3:8]), strict=True
                )
            )
        elif f[0] == "thread":
            tid, seq = int(f[1]), int(f[2])
            retried += int(f[3])
            threads += 1
            hr_sent |= {hr_id(phase, tid, s) for s in range(1, seq + 1)}
        elif f[0] == "count":
            counts[f[1]][f[2]] += int(f[3])
        elif f[0] == "lat":
            latencies[f[1]].append(int(f[2]))
        elif f[0] == "hr_ok":
            hr_ok.add(f[1])
        elif f[0] == "hr_5xx":
            hr_5xx.append(f[1])
        elif f[0] == "hr_pending":
            hr_pending.add(f[1])
    for values in latencies.values():
        values.sort()
    return LoadResult(
        seconds=duration / 1e6,
        requests=requests,
        socket_errors=errors,
        counts=dict(counts),
        latencies=dict(latencies),
        hr_sent=hr_sent,
        hr_ok=hr_ok,
        hr_5xx=hr_5xx,
        hr_pending=hr_pending,
        hr_retried=retried,
        threads=threads,
        wrk_output=wrk_output,
    )


# -- what was stored ----------------------------------------------------------------------------


@dataclass
class Stored:
    people: set[str]  # HR-update people in the register
    audited: Counter[str]  # hr.import events per request hash (target_id)
    audit_line: str
    audit_ok: bool

    def audit_missing(self, ids: set[str]) -> set[str]:
        """Ids whose request has no ``hr.import`` event, or more than one."""
        return {i for i in ids if self.audited[request_hash([hr_record(i)])] != 1}


def stored_ids(prep: Prepared, prefix: str) -> set[str]:
    """Employee ids in the register that start with ``prefix``."""
    from sqlalchemy import select

    from idsvc.storage.tables import CivilServantRow

    svc = prep.service()
    try:
        with svc.infra.db.transaction() as session:
            return set(
                session.execute(
                    select(CivilServantRow.employee_id).where(
                        CivilServantRow.employee_id.like(f"{prefix}%")
                    )
                ).scalars()
            )
    finally:
        svc.infra.db.dispose()


def stored(prep: Prepared, phase: str) -> Stored:
    """People the HR updates of a wrk ``phase`` created, the HR client's audit events, and
    the audit chain checked (the use case behind ``idsvc audit verify``, in-process: the
    command costs seconds of start-up on a busy machine and adds nothing here)."""
    from sqlalchemy import select

    from idsvc.audit.chain import AuditError
    from idsvc.storage.tables import AuditEventRow

    people = stored_ids(prep, hr_prefix(phase))
    svc = prep.service()
    try:
        with svc.infra.db.transaction() as session:
            audited = Counter(
                session.execute(
                    select(AuditEventRow.target_id).where(
                        AuditEventRow.action == "hr.import",
                        AuditEventRow.actor == "api-client:Load HR",
                    )
                ).scalars()
            )
        try:
            check = svc.audit.verify_chain()
        except AuditError as exc:
            return Stored(people, audited, str(exc), False)
    finally:
        svc.infra.db.dispose()
    return Stored(people, audited, f"audit chain intact: {check.events} events", True)


def hr_failures(load: LoadResult, kept: Stored) -> list[str]:
    """Lost or doubled HR updates: what "nothing lost" means for the HR part of a run."""
    found = []
    sent, ok, people = load.hr_sent, load.hr_ok, kept.people
    if ok - people:
        found.append(f"{len(ok - people)} HR updates answered 2xx but not stored")
    if people - sent:
        found.append(f"{len(people - sent)} people stored that were never sent")
    # At the end each connection may have one update in flight (answered too late to count,
    # landed or not); more means updates that never got through.
    if len(load.hr_pending) > load.threads:
        found.append(f"{len(load.hr_pending)} HR updates never answered 2xx")
    if sent - ok != load.hr_pending:
        found.append("HR accounting inconsistent (sent - answered != pending)")
    missing = kept.audit_missing(people)
    if missing:
        found.append(f"{len(missing)} stored HR updates without exactly one audit event")
    if not kept.audit_ok:
        found.append(f"audit verify failed: {kept.audit_line}")
    return found


def latency_line(label: str, values: list[int], rps: float) -> str:
    return (
        f"{label:34} {rps:8.0f} req/s   p50 {percentile(values, 50) / 1000:7.2f} ms   "
        f"p99 {percentile(values, 99) / 1000:7.2f} ms   n={len(values)}"
    )


def per_kind_lines(result: LoadResult) -> list[str]:
    lines = []
    for kind in sorted(result.counts):
        values = result.latencies.get(kind, [])
        statuses = " ".join(f"{s}:{c}" for s, c in sorted(result.counts[kind].items()))
        lines.append(
            f"  {kind:11} p50 {percentile(values, 50) / 1000:7.2f} ms  "
            f"p99 {percentile(values, 99) / 1000:7.2f} ms   {statuses}"
        )
    return lines
