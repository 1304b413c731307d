// The phone's copy of the trust data, in Cache Storage so that both the page and the service
// worker (background refresh) read and write the same copy. Each stored answer carries the
// time it was fetched (x-fetched-at, seconds): the page shows that age; freshness rules use the
// status-list token's own iat/ttl/exp (trust.js), not HTTP cache headers.

import { clampTtl, DEFAULT_HARD_LIMIT, TrustSnapshot } from "./trust.js";
import { b64urlDecode, utf8Decode } from "./b64.js";

export const TRUST_CACHE = "idsvc-verify-trust-v1";
const CONFIG = new URL("config.json", import.meta.url).href;
const FETCHED_AT = "x-fetched-at";
const SEEN_LISTS = new URL("seen-status-lists", import.meta.url).href;

const seconds = (clock) => Math.floor(clock() / 1000);

async function cached(cache, url) {
  const response = await cache.match(url);
  if (!response) return null;
  return { text: await response.text(), fetchedAt: Number(response.headers.get(FETCHED_AT)) };
}

async function put(cache, url, text, fetchedAt, type) {
  await cache.put(
    url,
    new Response(text, { headers: { "content-type": type, [FETCHED_AT]: String(fetchedAt) } }),
  );
}

function claimsOf(token) {
  try {
    return JSON.parse(utf8Decode(b64urlDecode(token.split(".")[1], { canonical: false })));
  } catch {
    return null;
  }
}

async function download(url) {
  const response = await fetch(url, { cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

/** Status-list URIs met in credentials that the service's config did not list. */
export async function rememberList(uri) {
  const cache = await caches.open(TRUST_CACHE);
  const seen = JSON.parse((await cached(cache, SEEN_LISTS))?.text || "[]");
  if (!seen.includes(uri)) {
    seen.push(uri);
    await put(cache, SEEN_LISTS, JSON.stringify(seen.slice(-64)), 0, "application/json");
  }
}

/**
 * Download what is due: the config and key sets every time; a status list when there is no
 * copy, when its copy is past its (clamped) ttl, or when `force` is set. Returns the number
 * of documents that could not be fetched (0: all fresh).
 */
export async function refresh({ clock = Date.now, force = false } = {}) {
  const cache = await caches.open(TRUST_CACHE);
  const now = seconds(clock);
  let failures = 0;
  let config;
  try {
    const text = await download(CONFIG);
    config = JSON.parse(text);
    await put(cache, CONFIG, text, now, "application/json");
  } catch {
    failures++;
    const copy = await cached(cache, CONFIG);
    if (!copy) return failures;
    config = JSON.parse(copy.text);
  }
  const lists = new Set(JSON.parse((await cached(cache, SEEN_LISTS))?.text || "[]"));
  for (const issuer of config.issuers || []) {
    const jwksUrl = new URL(issuer.jwks_uri, CONFIG).href;
    try {
      await put(cache, jwksUrl, await download(jwksUrl), now, "application/json");
    } catch {
      failures++;
    }
    for (const uri of issuer.status_lists || []) lists.add(uri);
  }
  for (const uri of lists) {
    const copy = await cached(cache, uri);
    const claims = copy && claimsOf(copy.text);
    const due = !claims || force || now >= copy.fetchedAt + clampTtl(claims.ttl);
    if (!due) continue;
    try {
      await put(cache, uri, await download(uri), now, "application/statuslist+jwt");
    } catch {
      failures++;
    }
  }
  return failures;
}

/**
 * The TrustSnapshot held on the phone, and facts for the page: `oldest` fetch time of a
 * status list (seconds, or null when there is none), `config`.
 */
export async function loadSnapshot() {
  const cache = await caches.open(TRUST_CACHE);
  const configCopy = await cached(cache, CONFIG);
  const config = configCopy ? JSON.parse(configCopy.text) : { issuers: [] };
  const issuers = [];
  const statusLists = {};
  let oldest = null;
  for (const issuer of config.issuers || []) {
    const copy = await cached(cache, new URL(issuer.jwks_uri, CONFIG).href);
    if (copy) issuers.push({ iss: issuer.iss, jwks: JSON.parse(copy.text) });
  }
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    if (!response.headers.get("content-type")?.startsWith("application/statuslist+jwt")) continue;
    const fetchedAt = Number(response.headers.get(FETCHED_AT));
    statusLists[request.url] = { token: await response.text(), fetched_at: fetchedAt };
    oldest = oldest === null ? fetchedAt : Math.min(oldest, fetchedAt);
  }
  const hardLimit = config.hard_limit_seconds || DEFAULT_HARD_LIMIT;
  const snapshot = new TrustSnapshot({ issuers, status_lists: statusLists }, { hardLimit });
  return { snapshot, oldest, config };
}
