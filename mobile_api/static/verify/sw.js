// Service worker: keeps the page itself on the phone (so it opens with no network, also from a
// card's tap URL under /v/), and refreshes the trust data in the background (periodic sync
// where the browser offers it; the open page refreshes too). Trust data lives in its own
// cache (store.js); this worker never answers API requests.

import { refresh, TRUST_CACHE } from "./store.js";

const VERSION = "2026-12-07.4"; // a phone credential worded as a phone; withheld claims unlabelled
const SHELL_CACHE = `idsvc-verify-shell-${VERSION}`;
const PAGE = "/verify/";
const SHELL = [
  PAGE,
  "/verify/app.css",
  "/verify/app.js",
  "/verify/ask.js",
  "/verify/b64.js",
  "/verify/base45.js",
  "/verify/cbor.js",
  "/verify/claim169.js",
  "/verify/holder.js",
  "/verify/i18n.js",
  "/verify/jose.js",
  "/verify/my-card.js",
  "/verify/presentation.js",
  "/verify/reasons.js",
  "/verify/rules.js",
  "/verify/scanner.js",
  "/verify/sd-jwt.js",
  "/verify/statuslist.js",
  "/verify/store.js",
  "/verify/strict-json.js",
  "/verify/trust.js",
  "/verify/verifier.js",
  "/verify/wallet-store.js",
  "/verify/wallet.js",
  "/verify/zlib.js",
  "/verify/manifest.webmanifest",
  "/verify/icons/icon-192.png",
  "/verify/icons/icon-512.png",
  "/verify/fonts/NotoSansLao-Regular.woff2",
  "/verify/fonts/NotoSansKhmer-Regular.woff2",
  "/verify/vendor/jsQR.js",
  "/verify/vendor/lean-qr.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "no-cache" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(
        names.filter((n) => n.startsWith("idsvc-verify-shell-") && n !== SHELL_CACHE)
          .map((n) => caches.delete(n)),
      ))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return url.origin === self.location.origin &&
    (url.pathname.startsWith("/verify/") || url.pathname.startsWith("/v/")) &&
    url.pathname !== "/verify/config.json";
}

// Cache first for the page and its files (the phone may be offline or on a slow line), with
// the copy brought up to date in the background for the next visit.
async function fromShell(request) {
  const url = new URL(request.url);
  const key = request.mode === "navigate" ? PAGE : url.pathname;
  const cache = await caches.open(SHELL_CACHE);
  const copy = await cache.match(key);
  const update = fetch(key, { cache: "no-cache" })
    .then(async (response) => {
      if (response.ok) await cache.put(key, response.clone());
      return response;
    });
  if (copy) {
    update.catch(() => {});
    return copy;
  }
  return update;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !isShell(url)) return;
  event.respondWith(fromShell(event.request));
});

self.addEventListener("periodicsync", (event) => {
  if (event.tag === "idsvc-trust") event.waitUntil(refresh());
});

self.addEventListener("message", (event) => {
  if (event.data === "refresh-trust") event.waitUntil(refresh());
});

export { TRUST_CACHE };
