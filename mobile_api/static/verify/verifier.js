// The one verification function of the web verifier: the same rules, order and reason codes
// as idsvc/verification/rules.py (`verify_credential`), over the phone's offline TrustSnapshot.
// Nothing in a credential is believed before its signature checks out; after that every
// problem is collected (an expired and revoked credential reports both). This module reads
// the JWT and tells the two forms apart; claim169.js reads the printed QR; the rules both
// share once a credential is read are in rules.js.

import { BadSignature, MalformedJws, UnknownKey, UnsupportedAlgorithm, verifyCompact } from "./jose.js";
import { fail, judge, Malformed, numericDate, text } from "./rules.js";

export const CREDENTIAL_TYP = "civil-servant-credential+jwt";
const HOLDER_CLAIMS = [
  "name", "name_latin", "birthdate", "ministry", "unit", "position", "grade", "category",
  "card_serial",
];

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
