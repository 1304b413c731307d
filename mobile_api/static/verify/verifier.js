// The one verification function of the web verifier: the same rules, order and reason codes
// as idsvc/verification/rules.py (`verify_credential`), over the phone's offline TrustSnapshot.
// Nothing in a credential is believed before its signature checks out; after that every
// problem is collected (an expired and revoked credential reports both).

import { BadSignature, MalformedJws, UnknownKey, UnsupportedAlgorithm, verifyCompact } from "./jose.js";
import { CLOCK_SKEW, StatusIndexError, StatusUnavailable, TrustStale } from "./trust.js";

export const CREDENTIAL_TYP = "civil-servant-credential+jwt";
export const LEEWAY = CLOCK_SKEW;
const HOLDER_CLAIMS = [
  "name", "name_latin", "birthdate", "ministry", "unit", "position", "grade", "category",
  "card_serial",
];
const STATUS_PRIORITY = [
  ["CARD_NOT_GENUINE", "not_genuine"],
  ["REVOKED", "revoked"],
  ["HOLDER_INACTIVE", "revoked"],
  ["SUSPENDED", "suspended"],
  ["EXPIRED", "expired"],
  ["NOT_YET_VALID", "not_yet_valid"],
  ["STATUS_UNAVAILABLE", "unknown"],
  ["TRUST_STALE", "unknown"],
];

export class Malformed extends Error {}

export function summary(reasons) {
  if (!reasons.length) return "valid";
  for (const [reason, status] of STATUS_PRIORITY) if (reasons.includes(reason)) return status;
  return "invalid";
}

export const fail = (reason, format) => ({
  valid: false, status: summary([reason]), reasons: [reason], holder: null,
  credential_id: null, issuer: null, expires_at: null, freshness: null, format,
});

// The dates Python's datetime can hold (years 1-9999): outside them a date is malformed.
const MIN_DATE = -62135596800;
const MAX_DATE = 253402300799;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function numericDate(value, claim) {
  if (!Number.isInteger(value) || value < MIN_DATE || value > MAX_DATE) {
    throw new Malformed(`claim ${claim} missing, not an integer or not a date`);
  }
  return value;
}

/** Text that can be stored and shown: no NUL, no lone surrogate. */
export function text(value, claim) {
  if (typeof value !== "string" || value.includes("\u0000") || LONE_SURROGATE.test(value)) {
    throw new Malformed(`claim ${claim} missing or not text`);
  }
  return value;
}

function isoDate(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const d = m && new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  if (!d || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3] || +m[1] < 1) {
    throw new Malformed("birthdate is not an ISO date");
  }
}

/** The status claim's (uri, idx), checked as idsvc/formats/status_list.py does. */
export function parseReference(claim) {
  const ref = claim !== null && typeof claim === "object" ? claim.status_list : undefined;
  if (ref === null || typeof ref !== "object" || Array.isArray(ref)) {
    throw new Malformed("status claim has no status_list object");
  }
  const { idx, uri } = ref;
  if (!Number.isInteger(idx) || idx < 0) throw new Malformed("status_list.idx");
  if (typeof uri !== "string" || !uri || uri.length > 2048 || !/^[\x21-\x7e]+$/.test(uri)) {
    throw new Malformed("status_list.uri");
  }
  let url;
  try {
    url = new URL(uri);
  } catch {
    throw new Malformed("status_list.uri");
  }
  if (!["https:", "http:"].includes(url.protocol) || !url.host) throw new Malformed("status_list.uri");
  return { uri, idx };
}

/** Holder view shown to an official: the same members as Holder.minimal() in Python. */
export function holderOf(payload) {
  for (const claim of HOLDER_CLAIMS) {
    if (typeof payload[claim] !== "string") throw new Malformed(`claim ${claim}`);
  }
  if (typeof payload.sub !== "string" || !payload.sub) throw new Malformed("claim sub");
  isoDate(payload.birthdate);
  const { name, name_latin, ministry, position, category, card_serial } = payload;
  return { employee_id: payload.sub, name, name_latin, ministry, position, category, card_serial };
}

/**
 * Apply validity period and status to a credential whose signature and issuer were checked.
 * `claims`: {iss, jti, exp, nbf, holder, uri, idx} already read (throws Malformed before).
 */
export async function judge(claims, { trust, now, format, extra = {} }) {
  const reasons = [];
  if (now > claims.exp + LEEWAY) reasons.push("EXPIRED");
  if (now + LEEWAY < claims.nbf) reasons.push("NOT_YET_VALID");
  try {
    const value = await trust.statusOf(claims.uri, claims.idx, claims.iss, now);
    if (value === 2) reasons.push("SUSPENDED");
    else if (value !== 0) reasons.push("REVOKED");
  } catch (e) {
    // An index beyond the list: the draft says reject; the credential is not well formed.
    if (e instanceof StatusIndexError) return fail("MALFORMED", format);
    if (e instanceof TrustStale) reasons.push("TRUST_STALE");
    else if (e instanceof StatusUnavailable) reasons.push("STATUS_UNAVAILABLE");
    else throw e;
  }
  return {
    valid: reasons.length === 0,
    status: summary(reasons),
    reasons,
    holder: { ...claims.holder, ...extra },
    credential_id: claims.jti,
    issuer: claims.iss,
    expires_at: new Date(claims.exp * 1000).toISOString(),
    freshness: await trust.freshness(claims.uri, claims.iss, now),
    format,
  };
}

/** Verify a JWT credential. `now` in seconds since the epoch. Never throws for bad input. */
export async function verifyJwt(token, { trust, now }) {
  let signerIss;
  let verified;
  try {
    verified = await verifyCompact(token.trim(), {
      expectedTyp: CREDENTIAL_TYP,
      keyFor: async (header) => {
        if (typeof header.kid !== "string") return null;
        const entry = await trust.keyFor(header.kid);
        signerIss = entry?.iss;
        return entry?.key;
      },
    });
  } catch (e) {
    if (e instanceof UnknownKey) return fail("UNKNOWN_KEY", "jwt");
    if (e instanceof BadSignature) return fail("BAD_SIGNATURE", "jwt");
    if (e instanceof MalformedJws || e instanceof UnsupportedAlgorithm) return fail("MALFORMED", "jwt");
    throw e;
  }
  const payload = verified.payload;
  // A key of issuer A must not vouch for a token that claims issuer B.
  if (payload.iss !== signerIss) return fail("UNKNOWN_KEY", "jwt");
  let claims;
  try {
    const exp = numericDate(payload.exp, "exp");
    const nbf = numericDate("nbf" in payload ? payload.nbf : payload.iat, "nbf");
    if ("iat" in payload) numericDate(payload.iat, "iat");
    const holder = holderOf(payload);
    for (const [claim, value] of Object.entries(holder)) text(value, claim);
    const { uri, idx } = parseReference(payload.status);
    const jti = text(payload.jti, "jti");
    const iss = text(payload.iss, "iss");
    claims = { iss, jti, exp, nbf, holder, uri, idx };
  } catch (e) {
    if (e instanceof Malformed) return fail("MALFORMED", "jwt");
    throw e;
  }
  return judge(claims, { trust, now, format: "jwt" });
}

const BASE45 = /^[0-9A-Z $%*+\-./:]+$/;
let claim169 = null;

/** The QR text inside `raw`: the fragment of a tap URL, or the text itself (trimmed). */
export function printedTextOf(raw) {
  const trimmed = raw.trim();
  const hash = trimmed.indexOf("#");
  if (/^https?:\/\//.test(trimmed) && hash >= 0) return decodeURIComponent(trimmed.slice(hash + 1));
  return trimmed;
}

/**
 * Verify what was scanned, tapped or pasted: the printed card's Claim 169 QR (told apart by
 * its alphabet: base45 has no lower case, a JWT always has), a tap URL carrying it, or a JWT.
 */
export async function verifyPresented(raw, { trust, now }) {
  if (typeof raw !== "string") return fail("MALFORMED", null);
  let printed;
  try {
    printed = printedTextOf(raw);
  } catch {
    return fail("MALFORMED", "claim169");
  }
  if (!BASE45.test(printed)) return verifyJwt(raw, { trust, now });
  claim169 ??= await import("./claim169.js");
  return claim169.verifyClaim169(printed, { trust, now });
}
