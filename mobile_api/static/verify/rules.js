// The rules both credential forms share once their signature and shape have been checked
// (verifier.js for the JWT, claim169.js for the printed QR): validity period, status list,
// the result's status and its shape. The same rules and reason codes as `verify_credential`
// in idsvc/verification/rules.py. A module of its own so that neither form imports the other.

import { STATUS_PRIORITY } from "./reasons.js";
import { CLOCK_SKEW, StatusIndexError, StatusUnavailable, TrustStale } from "./trust.js";

export const LEEWAY = CLOCK_SKEW;

/** A credential that is not well formed: its codec throws this, the verdict is MALFORMED. */
export class Malformed extends Error {}

const deciding = (reasons) => STATUS_PRIORITY.find(([reason]) => reasons.includes(reason));

/** The reason that decides the status of a result holding `reasons` (the most serious one),
 * or undefined when none of them is in STATUS_PRIORITY. */
export const decisive = (reasons) => deciding(reasons)?.[0];

/** A result's status from its reasons, as `_summary` in idsvc/verification/rules.py. */
export function summary(reasons) {
  if (!reasons.length) return "valid";
  return deciding(reasons)?.[1] ?? "invalid";
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
