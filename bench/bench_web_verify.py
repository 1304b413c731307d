"""The officials' web verifier: time from decoded text to result in the browser (offline path,
median of 100) next to the same verification in Python, in the same run; and the bytes a phone
downloads on its first visit and on a later, cached visit.

    .venv/bin/python bench/bench_web_verify.py [--runs 100]

Setup (not timed): a temp IDSVC_HOME on SQLite (init, sample HR import, one Khmer and one Lao
credential), the app on a free 127.0.0.1 port, Debian's Chromium through Playwright at a
360 x 640 viewport. Both sides verify offline from the same trust data: the page from its
cached JWKS and status-list tokens (``verifyPresented`` over the snapshot ``store.js`` loads),
Python with ``verify_credential`` over ``idsvc.verification.offline`` fed the very same documents.
"Warm" is what an official sees when scanning card after card (keys imported and the status
list inflated once); "cold" includes that first work. Bytes are counted at the server (the
body of every answer), so they include what the service worker fetches. Not a test.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import sync_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from idsvc.verification.offline import CachedStatus, CachedStatusList, JwksTrust  # noqa: E402
from idsvc.verification.rules import verify_credential  # noqa: E402
from mobile_api.app import create_app  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, PHONE  # noqa: E402
from tests.support.settings import SAMPLE_CSV, make_service, make_settings  # noqa: E402

IN_PAGE = """
async ([texts, runs]) => {
  const { loadSnapshot } = await import("/verify/store.js");
  const { verifyPresented } = await import("/verify/verifier.js");
  const out = {};
  for (const [name, text] of Object.entries(texts)) {
    const now = Math.floor(Date.now() / 1000);
    let { snapshot } = await loadSnapshot();
    let t0 = performance.now();
    const first = await verifyPresented(text, { trust: snapshot, now });
    const cold = performance.now() - t0;
    // Timers in a page without cross-origin isolation tick in 0.1 ms steps: each of the
    // `runs` samples times a batch of 10 verifications.
    const times = [];
    for (let i = 0; i < runs; i++) {
      t0 = performance.now();
      for (let j = 0; j < 10; j++) {
        const r = await verifyPresented(text, { trust: snapshot, now });
        if (!r.valid) throw new Error(name + " " + r.reasons);
      }
      times.push((performance.now() - t0) / 10);
    }
    times.sort((a, b) => a - b);
    out[name] = { cold, median: times[Math.floor(times.length / 2)], valid: first.valid };
  }
  return out;
}
"""


class ByteCounter:
    """Counts response body bytes, so a phase's transfer can be read off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bytes = 0
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.bytes += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                self.requests += 1
            await send(message)

        await self.app(scope, receive, counting)


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    """Median over ``runs`` samples of a batch of 10 calls, per call (as the page measures)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        times.append((time.perf_counter() - t0) * 100)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        svc = make_service(make_settings(tmp / "home", f"sqlite:///{tmp / 'b.sqlite3'}"))
        svc.settings.public_url = base
        now = datetime.now(UTC)
        svc.credentials.init(now=now, actor="bench")
        svc.register.import_hr(
            SAMPLE_CSV.read_bytes(), source_name="hr.csv", actor="bench", now=now
        )
        khmer = svc.credentials.issue("KH-MCS-010002", actor="bench", now=now)
        lao = svc.credentials.issue("LA-MOHA-000101", actor="bench", now=now)
        assert khmer.qr_text is not None
        texts = {"JWT ES256": khmer.token, "Claim 169 QR": khmer.qr_text, "JWT (Lao)": lao.token}

        counter = ByteCounter(create_app(svc, clock=lambda: datetime.now(UTC)))
        server = uvicorn.Server(uvicorn.Config(counter, log_config=None, lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport=PHONE, is_mobile=True)
                page = context.new_page()
                page.goto(f"{base}/verify/")
                page.wait_for_function("() => navigator.serviceWorker.controller !== null")
                page.wait_for_timeout(1500)  # let the worker finish its background fetches
                first = (counter.bytes, counter.requests)
                before = counter.bytes, counter.requests
                page.reload()
                page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
                page.wait_for_timeout(1500)
                cached = (counter.bytes - before[0], counter.requests - before[1])
                context.set_offline(True)
                js = page.evaluate(IN_PAGE, [texts, args.runs])
                tokens = page.evaluate(
                    """async () => {
                      const c = await caches.open("idsvc-verify-trust-v1");
                      const out = {};
                      for (const r of await c.keys()) {
                        const m = await c.match(r);
                        out[r.url] = [await m.text(), Number(m.headers.get("x-fetched-at"))];
                      }
                      return out;
                    }"""
                )
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)

        issuer = svc.settings.issuer
        jwks = svc.credentials.jwks()
        trust = JwksTrust({issuer: jwks})
        lists = {
            uri: CachedStatusList(text, datetime.fromtimestamp(at, tz=UTC))
            for uri, (text, at) in tokens.items()
            if "/status-lists/" in uri
        }
        at = datetime.now(UTC) + timedelta(seconds=1)
        print(f"verification, offline path, median of {args.runs} (ms); warm = keys and list ready")
        print(
            f"{'form':<14}{'browser warm':>14}{'browser cold':>14}{'Python warm':>13}{'ratio':>8}"
        )
        for name, text in texts.items():
            status = CachedStatus(lists, trust)
            result = verify_credential(text, trust=trust, status=status, holders=None, now=at)
            assert result.valid, (name, result.reasons)
            py = median_ms(
                lambda t=text, s=status: verify_credential(  # type: ignore[misc]
                    t, trust=trust, status=s, holders=None, now=at
                ),
                args.runs,
            )
            r = js[name]
            ratio = r["median"] / py
            print(f"{name:<14}{r['median']:>14.3f}{r['cold']:>14.2f}{py:>13.3f}{ratio:>7.2f}x")
        print()
        print("page weight (bytes of response bodies, as served, no compression)")
        print(f"  first visit (page, precache, keys, lists): {first[0]:>9,} B, {first[1]} requests")
        print(
            f"  later visit (revalidated with ETags)     : {cached[0]:>9,} B, {cached[1]} requests"
        )
        svc.infra.db.dispose()


if __name__ == "__main__":
    main()
