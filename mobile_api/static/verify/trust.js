// The offline trust a phone holds: issuer keys (JWKS) and status-list tokens with the time
// they were fetched. Same rules as idsvc/verification/offline.py (read its docstring): data age is
// now - iat; past the clamped ttl it is "stale" (warn); past exp or the hard limit it is
// "too_old" (TRUST_STALE), and so is a list whose iat lies further ahead than CLOCK_SKEW (a
// server clock set ahead: its age says nothing); missing, forged or unreadable lists are
// STATUS_UNAVAILABLE.

import { b64urlDecode } from "./b64.js";
import { PublicKey, verifyCompact } from "./jose.js";
import { StatusList } from "./statuslist.js";

export const STATUSLIST_TYP = "statuslist+jwt";
export const TTL_FLOOR = 300;
export const TTL_CEILING = 86400;
export const DEFAULT_HARD_LIMIT = 7 * 86400;
// How far the phone's clock may disagree with an issuer's (seconds): for a credential's exp
// and nbf (verifier.js) and a status list's iat. Python: idsvc.verification.rules.CLOCK_SKEW.
export const CLOCK_SKEW = 60;

export class StatusUnavailable extends Error {}
export class TrustStale extends Error {}
export class StatusIndexError extends Error {}

export function clampTtl(ttl) {
  if (typeof ttl !== "number" || !(ttl > 0)) return TTL_FLOOR;
  return Math.floor(Math.min(Math.max(ttl, TTL_FLOOR), TTL_CEILING));
}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export class TrustSnapshot {
  /**
   * `data`: {issuers: [{iss, jwks}], status_lists: {uri: {token, fetched_at}}} (fetched_at
   * in seconds); `hardLimit` in seconds.
   */
  constructor(data, { hardLimit = DEFAULT_HARD_LIMIT } = {}) {
    this.data = data;
    this.hardLimit = hardLimit;
    this._keys = null;
    this._hints = null;
    this._lists = new Map();
  }

  async keys() {
    if (this._keys) return this._keys;
    const keys = new Map();
    const clashes = new Set();
    for (const { iss, jwks } of this.data.issuers || []) {
      for (const jwk of Array.isArray(jwks?.keys) ? jwks.keys : []) {
        if (typeof jwk?.kid !== "string") continue;
        let key;
        try {
          key = await PublicKey.fromJwk(jwk);
        } catch {
          continue; // an unusable JWK: its tokens are UNKNOWN_KEY
        }
        if (keys.has(jwk.kid) && keys.get(jwk.kid).iss !== iss) clashes.add(jwk.kid);
        keys.set(jwk.kid, { iss, key });
      }
    }
    for (const kid of clashes) keys.delete(kid);
    this._keys = keys;
    return keys;
  }

  /** {iss, key} for a kid, or undefined. */
  async keyFor(kid) {
    return (await this.keys()).get(kid);
  }

  /**
   * {iss, key} for the printed QR's kid hint (the first 8 bytes of the RFC 7638 thumbprint
   * that is the JWKS kid), or undefined when no key, or more than one, has that hint.
   */
  async keyForHint(hint) {
    if (!this._hints) {
      const hints = new Map();
      const shared = new Set();
      for (const [kid, entry] of await this.keys()) {
        let thumbprint;
        try {
          thumbprint = b64urlDecode(kid);
        } catch {
          continue; // not a thumbprint: no hint reaches it
        }
        if (kid.length !== 43 || thumbprint.length !== 32) continue;
        const id = hexOf(thumbprint.subarray(0, 8));
        if (hints.has(id)) shared.add(id);
        hints.set(id, entry);
      }
      for (const id of shared) hints.delete(id);
      this._hints = hints;
    }
    return this._hints.get(hexOf(hint));
  }

  async _check(uri, iss) {
    const cached = this.data.status_lists?.[uri];
    if (!cached) throw new StatusUnavailable(uri);
    const id = `${iss}\n${uri}`;
    if (!this._lists.has(id)) this._lists.set(id, this._verify(cached.token, uri, iss));
    const checked = await this._lists.get(id);
    if (!checked) throw new StatusUnavailable(uri);
    return checked;
  }

  async _verify(token, uri, iss) {
    try {
      let signer;
      const { payload } = await verifyCompact(token, {
        expectedTyp: STATUSLIST_TYP,
        keyFor: async (header) => {
          const entry = await this.keyFor(header.kid);
          signer = entry?.iss;
          return entry?.key;
        },
      });
      if (signer !== iss || payload.sub !== uri || payload.iss !== iss) return null;
      const ttl = "ttl" in payload ? payload.ttl : 1;
      if (!isNumber(payload.iat) || !isNumber(payload.exp) || !isNumber(ttl) || ttl <= 0) {
        return null;
      }
      return { claims: payload, list: await StatusList.decode(payload.status_list) };
    } catch {
      return null;
    }
  }

  /** Status value at (uri, idx); throws StatusUnavailable or TrustStale. */
  async statusOf(uri, idx, iss, now) {
    const checked = await this._check(uri, iss);
    if ((await this.freshness(uri, iss, now)) === "too_old") throw new TrustStale(uri);
    try {
      return checked.list.get(idx);
    } catch {
      throw new StatusIndexError(uri);
    }
  }

  /**
   * "fresh", "stale" (past ttl: warn), "too_old" (past exp or hard limit, or signed further
   * ahead of `now` than CLOCK_SKEW), "missing".
   */
  async freshness(uri, iss, now) {
    let claims;
    try {
      ({ claims } = await this._check(uri, iss));
    } catch {
      return "missing";
    }
    const age = now - claims.iat;
    if (now >= claims.exp || age > this.hardLimit || -age > CLOCK_SKEW) return "too_old";
    if (age > clampTtl(claims.ttl)) return "stale";
    return "fresh";
  }
}
