// The page: wires the scanner, NFC and paste box to the verifier, shows the result full
// screen, keeps the trust data fresh. Every decoded value reaches the page through
// textContent or a checked data: URL, never as HTML.

import { initialLanguage, LANGUAGES, translate } from "./i18n.js";
import { decisive, summary } from "./rules.js";
import { loadSnapshot, refresh } from "./store.js";
import { verifyPresented } from "./verifier.js";
import { decodeFile, scanCamera } from "./scanner.js";
import { applyAskLanguage, startAsking, stopAsking } from "./ask.js";
import { applyWalletLanguage, openWallet, take, wireWallet } from "./my-card.js";

const $ = (id) => document.getElementById(id);
const REFRESH_EVERY_MS = 60_000;
const FIRST_REFRESH_WAIT_MS = 6_000;
const SERVER_WAIT_MS = 8_000;
// Red: do not accept the card (revoked, not genuine, not a credential at all); orange: not
// now, or not known from here (suspended, expired, not yet valid, status unknown).
const RED_STATUSES = new Set(["not_genuine", "revoked", "invalid"]);
// The results a phone credential words as its own (the rest say the same of either).
const HAS_PHONE_WORDS = new Set(["VALID", "REVOKED", "SUSPENDED", "EXPIRED"]);
const PHOTO = /^data:image\/(jpeg|png|webp);base64,[A-Za-z0-9+/]+={0,2}$/;

const state = {
  lang: "en", trust: null, oldest: null, config: null, last: null, refreshing: null,
  pendingId: null, // a tap link's credential id still to ask the service about (was offline)
};

const t = (key, values) => translate(state.lang, key, values);
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The reason shown in large letters: the one that decides the result's status (the most
 * serious, in the order of reasons.js); a reason that stops the check (BAD_SIGNATURE,
 * UNKNOWN_KEY, MALFORMED) is always the only one. */
export function headline(result) {
  if (result.valid) return "VALID";
  return decisive(result.reasons) || result.reasons[0] || "MALFORMED";
}

function colourOf(code) {
  if (code === "VALID") return "green";
  return RED_STATUSES.has(summary([code])) ? "red" : "orange";
}

function age(seconds) {
  if (seconds < 3600) return t("minutes", { n: Math.max(0, Math.round(seconds / 60)) });
  if (seconds < 2 * 86400) return t("hours", { n: Math.round(seconds / 3600) });
  return t("days", { n: Math.round(seconds / 86400) });
}

function showDataAge() {
  const element = $("data-age");
  if (state.oldest === null) {
    element.textContent = t("data_none");
  } else {
    element.textContent = t("data_age", { age: age(nowSeconds() - state.oldest) });
  }
  element.dataset.oldest = state.oldest ?? "";
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  document.title = t("title");
  const shown = $("message").dataset.key;
  if (shown) setText("message", t(shown));
  showDataAge();
  if (state.last) render(state.last);
  applyAskLanguage(t);
  applyWalletLanguage(t);
}

async function reloadTrust() {
  const { snapshot, oldest, config } = await loadSnapshot();
  state.trust = snapshot;
  state.oldest = oldest;
  state.config = config;
  showDataAge();
}

/** Download what is due (everything with `force`); resolves to the number of failures. */
async function refreshTrust({ force = false } = {}) {
  if (!navigator.onLine) return 1;
  state.refreshing ??= refresh({ force })
    .then(async (failures) => { await reloadTrust(); return failures; })
    .finally(() => { state.refreshing = null; });
  return state.refreshing;
}

/** What was scanned or tapped: the fragment of a tap URL, else the text itself. */
export function presentedText(raw) {
  const text = raw.trim();
  const hash = text.indexOf("#");
  if (!/^https?:\/\//i.test(text) || hash < 0) return text;
  try {
    return decodeURIComponent(text.slice(hash + 1));
  } catch {
    return text.slice(hash + 1); // bad %-escapes: the verifier will call it MALFORMED
  }
}

async function askServer(text) {
  for (const path of state.config?.verify_api || ["/v1/verifications", "/v1/verify"]) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ credential: text }),
      credentials: "omit",
      signal: AbortSignal.timeout(SERVER_WAIT_MS),
    });
    if (response.status === 404 || response.status === 405) continue;
    if (!response.ok) return null;
    const body = await response.json();
    return Array.isArray(body.reasons) && typeof body.valid === "boolean" ? body : null;
  }
  return null;
}

/**
 * A tap link that lost its QR fragment names only the credential: ask the service about that
 * id. Resolves to {server} (the answer, a scanned card's minimal view without the photo) or
 * {message} (an i18n key: unknown id, no network, too many checks).
 */
async function askServerById(id) {
  let response;
  try {
    response = await fetch(`/v1/credentials/${encodeURIComponent(id)}/verification`, {
      headers: { accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(SERVER_WAIT_MS),
    });
  } catch {
    return { message: "by_id_offline" };
  }
  if (response.status === 404) return { message: "unknown_credential" };
  if (response.status === 429) return { message: "rate_limited" };
  const body = response.ok ? await response.json().catch(() => null) : null;
  if (body && Array.isArray(body.reasons) && typeof body.valid === "boolean") return { server: body };
  return { message: "by_id_offline" };
}

function setText(id, text) {
  $(id).textContent = text || "";
}

/** `local` is null for a check by credential id (the phone had no code of its own to check)
 * and for a phone credential's answer (`via` "wallet": the service checked the presentation). */
function render({ local, server, via }) {
  const shown = server || local;
  const code = headline(shown);
  const section = $("result");
  section.className = colourOf(code);
  section.dataset.verdict = code;
  section.dataset.source = server ? "server" : "phone";
  section.dataset.reasons = shown.reasons.join(" ");
  section.dataset.freshness = local?.freshness || "";
  section.dataset.checked = local ? "code" : via || "id";
  setText("verdict", t(code));
  // A phone credential is not a card: its own words where they differ (valid, cancelled).
  setText("reason", t(via === "wallet" && HAS_PHONE_WORDS.has(code) ? `why_${code}_phone` : `why_${code}`));
  // A phone credential shows what its holder chose to disclose (photo included).
  const holder = { ...(local?.holder || {}), ...(server?.holder || {}), ...(server?.disclosed || {}) };
  setText("holder-name", holder.name);
  setText("holder-latin", holder.name_latin);
  setText("holder-ministry", holder.ministry);
  setText("holder-position", holder.position);
  // No empty "Ministry"/"Position" label: a code that did not verify names nobody, and a
  // phone's holder may keep either to themselves.
  $("holder-ministry-row").hidden = !holder.ministry;
  $("holder-position-row").hidden = !holder.position;
  $("holder-details").hidden = !holder.ministry && !holder.position;
  const photo = $("holder-photo");
  const src = typeof holder.photo === "string" && PHOTO.test(holder.photo) ? holder.photo : null;
  photo.hidden = !src;
  if (src) photo.src = src; else photo.removeAttribute("src");
  const expires = shown.expires_at ? new Date(shown.expires_at) : null;
  // ISO dates (2031-11-24) read the same in every language and cannot be misread as M/D.
  setText("expires", expires && !isNaN(expires) ? t("expires", { date: expires.toISOString().slice(0, 10) }) : "");
  const note = via === "wallet" ? "wallet_note" : "by_id_note";
  setText("phone-verdict", local ? t("phone", { verdict: t(headline(local)) }) : t(note));
  setText("server-verdict", server ? t("server", { verdict: t(code) }) : t("offline"));
  const stale = local?.freshness === "stale";
  // The age of the phone's lists says nothing about an answer the service gave by id.
  setText("result-age", !local ? "" : stale ? t("data_stale") : $("data-age").textContent);
  $("home").hidden = true;
  section.hidden = false;
  $("again").focus();
}

async function verify(raw) {
  state.pendingId = null; // a code in hand: a check by id still waiting is moot
  const text = presentedText(raw);
  const local = await verifyPresented(text, { trust: state.trust, now: nowSeconds() });
  state.last = { local, server: null };
  render(state.last);
  if (!navigator.onLine) return;
  try {
    const server = await askServer(text);
    if (server && state.last.local === local) {
      state.last = { local, server };
      render(state.last);
    }
  } catch {
    // No answer from the service: the phone's own verdict stands, marked as offline.
  }
}

function message(key) {
  setText("message", key ? t(key) : "");
  $("message").dataset.key = key || "";
}

/** The wallet's own links, /verify/#offer=<offer link> (from the desk) and #request=<openid4vp
 * link>, %-encoded: "My card" takes them. Resolves to whether the page's fragment was one. */
async function takeWalletLink() {
  const link = /^#(offer|request)=(.+)$/.exec(location.hash);
  if (!link) return false;
  // Out of the address bar and the history: a used offer is no use to anyone.
  history.replaceState(null, "", location.pathname + location.search);
  $("result").hidden = true;
  stopAsking();
  await openWallet();
  await take(safeDecode(link[2]));
  return true;
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // bad %-escapes: the wallet will say the code is not one it knows
  }
}

/** The credential id of a tap URL (/v/<id>), or null. */
function tappedId() {
  const [, root, id] = location.pathname.split("/");
  if (root !== "v" || !id) return null;
  try {
    return decodeURIComponent(id);
  } catch {
    return id; // bad %-escapes: the service will not know it
  }
}

/** Online, the service's verdict on a tap link's credential id; offline, what to do. */
async function verifyById(id) {
  state.pendingId = id;
  if (!navigator.onLine) {
    message("by_id_offline");
    return;
  }
  const answer = await askServerById(id);
  if (state.pendingId !== id) return; // the official has moved on meanwhile
  if (answer.message !== "by_id_offline") state.pendingId = null; // else retry when online
  if (answer.server) {
    message(null);
    state.last = { local: null, server: answer.server };
    render(state.last);
  } else {
    message(answer.message);
  }
}

function wire() {
  const select = $("language");
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = name;
    select.append(option);
  }
  select.value = state.lang;
  select.addEventListener("change", () => {
    state.lang = select.value;
    localStorage.setItem("idsvc.lang", state.lang);
    applyLanguage();
  });

  let scanning = null;
  $("scan").addEventListener("click", async () => {
    message(null);
    scanning = new AbortController();
    $("camera").hidden = false;
    $("stop").hidden = false;
    try {
      const text = await scanCamera($("camera"), scanning.signal);
      if (text) await verify(text);
    } catch {
      message("no_camera");
    } finally {
      $("camera").hidden = true;
      $("stop").hidden = true;
    }
  });
  $("stop").addEventListener("click", () => scanning?.abort());

  $("photo").addEventListener("change", async (event) => {
    message(null);
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    let text = null;
    try {
      text = await decodeFile(file);
    } catch {
      text = null;
    }
    if (text) await verify(text); else message("no_code");
  });

  $("check").addEventListener("click", () => {
    const text = $("paste").value;
    if (text.trim()) verify(text);
  });

  if ("NDEFReader" in globalThis) {
    $("tap").hidden = false;
    $("tap").addEventListener("click", async () => {
      try {
        const reader = new globalThis.NDEFReader();
        await reader.scan();
        message("tap_ready");
        reader.addEventListener("reading", ({ message: ndef }) => {
          for (const record of ndef.records) {
            if (record.recordType === "url" || record.recordType === "text") {
              verify(new TextDecoder(record.encoding || "utf-8").decode(record.data));
              return;
            }
          }
        });
      } catch {
        message("no_nfc");
      }
    });
  }

  $("refresh").addEventListener("click", async () => {
    message("refreshing");
    const failures = await refreshTrust({ force: true }).catch(() => 1);
    message(failures ? "update_failed" : "updated");
  });

  $("ask").addEventListener("click", () => {
    message(null);
    startAsking({
      t,
      showResult: (server) => {
        state.last = { local: null, server, via: "wallet" };
        render(state.last);
      },
    });
  });
  $("ask-cancel").addEventListener("click", stopAsking);
  $("open-wallet").addEventListener("click", () => openWallet());
  wireWallet();

  $("again").addEventListener("click", () => {
    $("result").hidden = true;
    $("home").hidden = false;
    state.last = null;
    state.pendingId = null;
    history.replaceState(null, "", location.pathname + location.search);
  });

  // A wallet link opened while the page is open changes only the fragment.
  window.addEventListener("hashchange", () => { takeWalletLink(); });
  window.addEventListener("online", () => {
    refreshTrust();
    if (state.pendingId && !state.last) verifyById(state.pendingId);
  });
  setInterval(() => refreshTrust(), REFRESH_EVERY_MS);
}

function activated(registration) {
  const worker = registration.installing || registration.waiting || registration.active;
  if (!worker || worker.state === "activated") return Promise.resolve();
  return new Promise((resolve) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated" || worker.state === "redundant") resolve();
    });
  });
}

/** Install the worker for the page and for the card's tap URLs (/v/<id>#<QR>), so both open
 * offline; resolves once both are active. */
async function registerWorker() {
  if (!("serviceWorker" in navigator)) throw new Error("no service workers here");
  const script = "/verify/sw.js";
  const registrations = await Promise.all([
    navigator.serviceWorker.register(script, { scope: "/verify/", type: "module" }),
    navigator.serviceWorker.register(script, { scope: "/v/", type: "module" }),
  ]);
  await Promise.all(registrations.map(activated));
  const registration = registrations[0];
  if ("periodicSync" in registration) {
    registration.periodicSync.register("idsvc-trust", { minInterval: 3600_000 }).catch(() => {});
  }
}

async function start() {
  state.lang = initialLanguage(localStorage.getItem("idsvc.lang"), navigator.languages);
  wire();
  applyLanguage();
  await reloadTrust();
  const first = navigator.onLine ? refreshTrust() : null;
  if (first && location.hash.length > 1) {
    // A tap URL: give the first refresh a moment so that a new phone has keys to check with.
    await Promise.race([first.catch(() => {}), new Promise((r) => setTimeout(r, FIRST_REFRESH_WAIT_MS))]);
  }
  if (await takeWalletLink()) {
    // "My card" took the fragment: an offer or an official's request, not a card to check.
  } else if (location.hash.length > 1) {
    await verify(location.href);
  } else if (tappedId()) {
    // A card whose NFC file was too small for the QR, or a link that lost its #fragment.
    await verifyById(tappedId());
  } else if (location.pathname.startsWith("/v/")) {
    message("no_payload");
  }
  await (first || Promise.resolve()).catch(() => {});
  document.documentElement.dataset.ready = "1";
  // Installing the worker (it keeps the page for offline use) never holds the page up.
  registerWorker()
    .then(() => { document.documentElement.dataset.installed = "1"; })
    .catch(() => {});
}

start();
