// The printed card's QR: MOSIP Claim 169 in a COSE_Sign1 CWT, zlib, base45, exactly as
// docs/claim169.md profiles it and idsvc/formats/claim169.py reads it. Same reason codes as
// the JWT path (the rules after the signature are rules.js, shared with verifier.js); the
// payload is decoded only after the signature has verified.

import { base45Decode } from "./base45.js";
import { decode as cbor, head, Tagged } from "./cbor.js";
import { UnsupportedAlgorithm } from "./jose.js";
import { fail, judge, Malformed, numericDate, text } from "./rules.js";
import { inflateCapped } from "./zlib.js";

const MAX_TEXT_CHARS = 4296;
const MAX_INFLATED_BYTES = 8192;
const MAX_FACE_BYTES = 2048;
const KID_HINT_BYTES = 8;
const MAX_LIST_NAME_BYTES = 32;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ALGS = new Map([[-7, "ES256"], [-8, "EdDSA"]]);
const CATEGORIES = new Map([[1, "civil_servant"], [2, "contract_official"], [3, "contract_teacher"], [4, "temporary"]]);
const SIGNATURE1 = new TextEncoder().encode("Signature1");
const FORMAT = "claim169";

class BadSignature extends Error {}
class UnknownKey extends Error {}

async function inflate(data) {
  // RFC 1950 header: deflate, window <= 32 KiB, checksum, no preset dictionary. Brotli and
  // raw data are refused.
  if (data.length < 6 || (data[0] & 0x0f) !== 8 || data[0] >> 4 > 7 || ((data[0] << 8) | data[1]) % 31 || data[1] & 0x20) {
    throw new Malformed("not zlib-compressed");
  }
  try {
    return await inflateCapped(data, MAX_INFLATED_BYTES);
  } catch {
    throw new Malformed("zlib data is corrupt, truncated, too big or followed by bytes");
  }
}

function parse(bytes, options) {
  try {
    return cbor(bytes, { maxDepth: 16, ...options });
  } catch {
    throw new Malformed("not valid CBOR");
  }
}

const isMap = (v) => v instanceof Map;

function get(map, key, kind, what) {
  const value = map.get(key);
  if (kind === "uint") {
    if (!Number.isInteger(value) || value < 0) throw new Malformed(`${what} not an unsigned integer`);
    return value;
  }
  if (kind === "map" ? !isMap(value) : kind === "bytes" ? !(value instanceof Uint8Array) : typeof value !== kind) {
    throw new Malformed(`${what} missing or of the wrong type`);
  }
  if (typeof value === "string" && (!value || value.includes("\u0000"))) throw new Malformed(`${what} empty`);
  return value;
}

const optional = (map, key, kind, what) => (map.has(key) ? get(map, key, kind, what) : null);

const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function uuidText(bytes) {
  const hex = hexOf(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The card serial: 8 bytes holding a 60-bit number, written as 12 Crockford base32 digits. */
function serialText(raw) {
  if (raw.length !== 8 || raw[0] >> 4) throw new Malformed("card serial is not a 60-bit number");
  let value = 0n;
  for (const b of raw) value = (value << 8n) | BigInt(b);
  let out = "";
  for (let shift = 55n; shift >= 0n; shift -= 5n) out += CROCKFORD[Number((value >> shift) & 31n)];
  return out;
}

function imageType(image) {
  if (image[0] === 0xff && image[1] === 0xd8 && image[2] === 0xff) return "jpeg";
  const ascii = (from, to) => String.fromCharCode(...image.subarray(from, to));
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  if (image[0] === 0x89 && ascii(1, 4) === "PNG") return "png";
  return null;
}

function face(value) {
  if (value === undefined) return null;
  if (!Array.isArray(value) || !value.length || !isMap(value[0])) throw new Malformed("face");
  const image = get(value[0], 0, "bytes", "face data");
  if (image.length > MAX_FACE_BYTES) throw new Malformed("face image too big");
  const type = imageType(image);
  if (!type) return null; // shown only when it is a picture the browser may display
  let binary = "";
  for (const b of image) binary += String.fromCharCode(b);
  return `data:image/${type};base64,${btoa(binary)}`;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** RFC 9052 §4.4: ["Signature1", protected, h'' (external_aad), payload], CBOR-encoded. */
function sigStructure(protectedBytes, payload) {
  return concat(
    Uint8Array.of(0x84), head(3, SIGNATURE1.length), SIGNATURE1,
    head(2, protectedBytes.length), protectedBytes, Uint8Array.of(0x40),
    head(2, payload.length), payload,
  );
}

async function decodeCose(qrText) {
  if (qrText.length > MAX_TEXT_CHARS) throw new Malformed("QR text too long");
  let compressed;
  try {
    compressed = base45Decode(qrText);
  } catch {
    throw new Malformed("not base45");
  }
  let cose = parse(await inflate(compressed));
  if (cose instanceof Tagged && cose.tag === 61) cose = cose.value;
  if (!(cose instanceof Tagged) || cose.tag !== 18) throw new Malformed("not a COSE_Sign1");
  const parts = cose.value;
  if (!Array.isArray(parts) || parts.length !== 4) throw new Malformed("COSE_Sign1 is not an array of 4");
  const [protectedBytes, unprotected, payload, signature] = parts;
  if (!(protectedBytes instanceof Uint8Array) || !isMap(unprotected) ||
      !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) {
    throw new Malformed("COSE_Sign1 parts have the wrong types");
  }
  return { protectedBytes, payload, signature };
}

function header(protectedBytes) {
  const map = parse(protectedBytes);
  if (!isMap(map) || map.size !== 2 || !map.has(1) || !map.has(4)) {
    throw new Malformed("protected header must hold exactly alg and kid");
  }
  const alg = ALGS.get(map.get(1));
  if (!alg) throw new UnsupportedAlgorithm("alg must be ES256 (-7) or EdDSA (-8)");
  const hint = map.get(4);
  if (!(hint instanceof Uint8Array) || hint.length !== KID_HINT_BYTES) throw new Malformed("kid must be an 8-byte hint");
  return { alg, hint };
}

function absoluteUri(reference, issuer) {
  let uri;
  try {
    uri = new URL(reference, issuer).href;
  } catch {
    throw new Malformed("status list URI");
  }
  if (!/^https?:\/\//.test(uri)) throw new Malformed("status list URI is not http(s)");
  return uri;
}

/**
 * The status list: its name (8) under `status-lists/` of a base (10, a reference against iss;
 * absent: the root of the issuer's host), or a URI reference against iss (9).
 */
function statusUri(card, iss) {
  if (card.has(8) === card.has(9)) throw new Malformed("status list: exactly one of 8 and 9");
  if (card.has(9)) {
    if (card.has(10)) throw new Malformed("status list base without a name");
    return absoluteUri(get(card, 9, "string", "status list URI"), iss);
  }
  const name = get(card, 8, "bytes", "status list name");
  if (!name.length || name.length > MAX_LIST_NAME_BYTES) throw new Malformed("status list name");
  const base = absoluteUri(optional(card, 10, "string", "status list base") ?? "/", iss);
  return absoluteUri(`status-lists/${hexOf(name)}`, base);
}

function claimsOf(map) {
  if (!isMap(map)) throw new Malformed("CWT claims are not a map");
  const identity = get(map, 169, "map", "identity (169)");
  const job = get(map, -65537, "map", "employment and status (-65537)");
  const cti = get(map, 7, "bytes", "cti (7)");
  if (cti.length !== 16) throw new Malformed("cti is not 16 bytes");
  const gender = optional(identity, 9, "uint", "gender");
  if (gender !== null && ![1, 2, 3].includes(gender)) throw new Malformed("gender");
  const category = CATEGORIES.get(get(job, 5, "uint", "staff category"));
  if (!category) throw new Malformed("staff category");
  const iss = get(map, 1, "string", "iss (1)");
  if (!iss.startsWith("https://")) throw new Malformed("iss is not https");
  const iat = get(map, 6, "uint", "iat"), exp = get(map, 4, "uint", "exp");
  const nbf = optional(map, 5, "uint", "nbf") ?? iat; // absent: valid from iat (what we issue)
  const employeeId = get(identity, 1, "string", "id");
  const nameLatin = get(identity, 4, "string", "full name");
  const nameLocal = optional(identity, 19, "string", "secondary full name");
  const dob = optional(identity, 8, "string", "date of birth");
  if (dob !== null) {
    const m = /^(\d{4})(\d{2})(\d{2})$/.exec(dob);
    const d = m && new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    if (!d || +m[1] < 1 || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) {
      throw new Malformed("date of birth is not YYYYMMDD");
    }
  }
  const ministry = get(job, 1, "string", "ministry");
  const position = get(job, 3, "string", "position");
  const cardSerial = serialText(get(job, 6, "bytes", "card serial"));
  // The same members as the JWT's holder view (never the date of birth).
  const holder = {
    employee_id: employeeId, name: nameLocal || nameLatin, name_latin: nameLatin,
    ministry, position, category, card_serial: cardSerial,
  };
  const uri = statusUri(job, iss);
  const idx = get(job, 7, "uint", "status index");
  return { iss, iat, nbf, exp, jti: uuidText(cti), holder, uri, idx, photo: face(identity.get(62)) };
}

async function verified(qrText, trust) {
  const { protectedBytes, payload, signature } = await decodeCose(qrText);
  const { alg, hint } = header(protectedBytes);
  // The hint only selects the key (no key or two keys with it: UNKNOWN_KEY); the signature
  // below is what proves it.
  const entry = await trust.keyForHint(hint);
  if (!entry) throw new UnknownKey("no single key for this hint");
  try {
    await entry.key.verify(alg, signature, sigStructure(protectedBytes, payload));
  } catch {
    throw new BadSignature("signature does not verify");
  }
  const raw = parse(payload);
  const claims = claimsOf(raw);
  // Only deterministic CBOR is ever signed by idsvc: anything else was not made by us.
  parse(payload, { deterministic: true });
  return { claims, signerIss: entry.iss };
}

/** Verify the QR text (already taken out of a tap URL). Never throws for bad input. */
export async function verifyClaim169(qrText, { trust, now }) {
  let result;
  try {
    result = await verified(qrText, trust);
  } catch (e) {
    if (e instanceof UnknownKey) return fail("UNKNOWN_KEY", FORMAT);
    if (e instanceof BadSignature) return fail("BAD_SIGNATURE", FORMAT);
    if (e instanceof Malformed || e instanceof UnsupportedAlgorithm) return fail("MALFORMED", FORMAT);
    throw e;
  }
  const { claims, signerIss } = result;
  if (claims.iss !== signerIss) return fail("UNKNOWN_KEY", FORMAT);
  try {
    numericDate(claims.exp, "exp");
    numericDate(claims.nbf, "nbf");
    numericDate(claims.iat, "iat");
    for (const [name, value] of Object.entries(claims.holder)) text(value, name);
  } catch (e) {
    if (e instanceof Malformed) return fail("MALFORMED", FORMAT);
    throw e;
  }
  const extra = claims.photo ? { photo: claims.photo } : {};
  return judge(claims, { trust, now, format: FORMAT, extra });
}
