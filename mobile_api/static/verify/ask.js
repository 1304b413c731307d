// The official's side of a phone credential check: create a presentation request, show it as
// a QR (and as a link, for a wallet on the same phone), and poll the service with the request's
// poll token until the holder's phone has answered or the request has expired. The service
// checks the presentation (signature, key binding, expiry, status list) and answers with the
// same result a scanned card gets; app.js shows it with the same view and reason texts.

const POLL_MS = 1_500;
const WAIT_MS = 8_000;

/** Draw `text` as a QR code on `canvas` (lean-qr, loaded on first use). */
export async function drawQr(canvas, text) {
  const { generate } = await import("./vendor/lean-qr.js");
  generate(text).toCanvas(canvas, { on: [0, 0, 0], off: [255, 255, 255], pad: 4 });
}

async function json(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** POST /v1/presentation-requests: {id, openid4vp_uri, expires_at, poll_token}, or throws. */
export async function createRequest(claims) {
  const response = await fetch("/v1/presentation-requests", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(claims ? { claims } : {}),
    credentials: "omit",
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const body = await json(response);
  if (response.status === 429) throw Object.assign(new Error("rate limited"), { code: "rate_limited" });
  if (response.status !== 201 || typeof body?.openid4vp_uri !== "string" || typeof body?.poll_token !== "string") {
    throw Object.assign(new Error(`HTTP ${response.status}`), { code: "ask_failed" });
  }
  return body;
}

/**
 * Poll the request until it is answered (resolves to the service's result with `disclosed`,
 * or to {error} when the holder declined), has expired or `signal` aborts (resolves to null).
 * A lost connection is waited out: the next poll tries again.
 */
export async function waitForAnswer(request, signal) {
  const url = `/v1/presentation-requests/${encodeURIComponent(request.id)}`;
  const expires = Date.parse(request.expires_at);
  while (!signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (signal.aborted) return null;
    let body = null;
    try {
      const response = await fetch(url, {
        headers: { "presentation-poll-token": request.poll_token, accept: "application/json" },
        credentials: "omit",
        cache: "no-store",
        signal: AbortSignal.timeout(WAIT_MS),
      });
      body = response.ok ? await json(response) : null;
      if (response.status === 404) return null; // gone: expired and swept
    } catch {
      body = null; // offline for a moment: ask again at the next tick
    }
    if (body?.status === "expired" || (body?.status === "pending" && Date.now() > expires)) return null;
    if (body && body.status !== "pending") {
      if (Array.isArray(body.result?.reasons)) return body.result;
      // The wallet said no (OpenID4VP error response) or sent nothing usable.
      return { error: String(body.result?.error || body.status) };
    }
    if (!body && Date.now() > expires) return null;
  }
  return null;
}

const $ = (id) => document.getElementById(id);
let waiting = null; // the AbortController of the request on screen

function status(key, t) {
  $("ask-status").dataset.key = key;
  $("ask-status").textContent = t(key);
}

/** Redraw the asking screen's status in the current language. */
export function applyAskLanguage(t) {
  const key = $("ask-status").dataset.key;
  if (key) status(key, t);
}

/**
 * The "Ask for the phone credential" screen: make a request, show it, wait; `showResult` gets
 * the service's result (the same view as a scanned card's).
 */
export async function startAsking({ t, showResult }) {
  waiting?.abort();
  const controller = new AbortController();
  waiting = controller;
  const screen = $("asking");
  $("home").hidden = true;
  screen.hidden = false;
  delete screen.dataset.link;
  $("ask-qr").hidden = true;
  $("ask-link").hidden = true;
  status("ask_creating", t);
  let request;
  try {
    request = await createRequest();
    await drawQr($("ask-qr"), request.openid4vp_uri);
  } catch (e) {
    status(e.code === "rate_limited" ? "rate_limited" : "ask_failed", t);
    return;
  }
  if (controller.signal.aborted) return;
  $("ask-qr").hidden = false;
  $("ask-link").hidden = false;
  $("ask-link").href = request.openid4vp_uri;
  screen.dataset.link = request.openid4vp_uri;
  status("ask_waiting", t);
  const result = await waitForAnswer(request, controller.signal);
  if (controller.signal.aborted) return;
  $("ask-qr").hidden = true;
  $("ask-link").hidden = true;
  if (!result) {
    status("ask_expired", t);
  } else if (result.error) {
    status("ask_declined", t);
  } else {
    screen.hidden = true;
    showResult(result);
  }
}

export function stopAsking() {
  waiting?.abort();
  waiting = null;
  $("asking").hidden = true;
  $("home").hidden = false;
}
