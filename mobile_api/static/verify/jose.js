// Compact JWS (RFC 7515) verification with WebCrypto, in the order idsvc/formats/jws.py
// uses, so that a token gets the same failure here and there. Verification throws; it never
// returns false.

import { b64urlDecode, FormatError, utf8Decode, utf8Encode } from "./b64.js";
import { parseObject } from "./strict-json.js";

export class JwsError extends Error {}
export class MalformedJws extends JwsError {}
export class UnsupportedAlgorithm extends JwsError {}
export class UnknownKey extends JwsError {}
export class BadSignature extends JwsError {}

const ALGS = new Set(["ES256", "EdDSA"]);
const COMPACT = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;
const MAX_LENGTH = 16384;

/** An issuer public key made usable by WebCrypto, with the algorithm it serves. */
export class PublicKey {
  constructor(alg, cryptoKey) {
    this.alg = alg;
    this.cryptoKey = cryptoKey;
  }

  /** Import a public EC P-256 or Ed25519 JWK; anything else throws. */
  static async fromJwk(jwk) {
    if (jwk === null || typeof jwk !== "object") throw new FormatError("JWK is not an object");
    if ("d" in jwk) throw new FormatError("JWK carries private key material");
    if ("use" in jwk && jwk.use !== "sig") throw new FormatError("JWK use is not sig");
    let alg, params, data;
    if (jwk.kty === "EC" && jwk.crv === "P-256") {
      alg = "ES256";
      params = { name: "ECDSA", namedCurve: "P-256" };
      data = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
    } else if (jwk.kty === "OKP" && jwk.crv === "Ed25519" && !("y" in jwk)) {
      alg = "EdDSA";
      params = { name: "Ed25519" };
      data = { kty: "OKP", crv: "Ed25519", x: jwk.x };
    } else {
      throw new FormatError("only EC P-256 and OKP Ed25519 keys are accepted");
    }
    if ("alg" in jwk && jwk.alg !== alg) throw new FormatError("JWK alg does not fit its key");
    return new PublicKey(alg, await crypto.subtle.importKey("jwk", data, params, false, ["verify"]));
  }

  /** Verify a raw signature (r||s for ES256, as JWS and COSE carry it); throws if bad. */
  async verify(alg, signature, data) {
    if (alg !== this.alg) throw new UnsupportedAlgorithm(`alg ${alg} does not fit this key`);
    if (signature.length !== 64) throw new BadSignature(`${alg} signature must be 64 bytes`);
    const params = alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "Ed25519" };
    if (!(await crypto.subtle.verify(params, this.cryptoKey, signature, data))) {
      throw new BadSignature("signature does not verify");
    }
  }
}

function segment(text, what) {
  try {
    return b64urlDecode(text);
  } catch (e) {
    throw new MalformedJws(`${what}: ${e.message}`);
  }
}

function jsonSegment(bytes, what) {
  try {
    return parseObject(utf8Decode(bytes));
  } catch (e) {
    throw new MalformedJws(`${what}: ${e.message}`);
  }
}

/**
 * Verify a compact JWS and return {header, payload}. `keyFor(header)` returns a PublicKey
 * (or throws / returns null: UnknownKey). `expectedTyp` is compared exactly.
 */
export async function verifyCompact(token, { keyFor, expectedTyp }) {
  if (typeof token !== "string") throw new MalformedJws("token must be text");
  if (token.length > MAX_LENGTH) throw new MalformedJws("token too long");
  if (!COMPACT.test(token)) throw new MalformedJws("not a compact JWS");
  const [h, p, s] = token.split(".");
  const payloadBytes = segment(p, "payload");
  const signature = segment(s, "signature");
  const header = jsonSegment(segment(h, "header"), "header");
  if ("crit" in header) throw new MalformedJws("crit header parameters are not supported");
  if (typeof header.alg !== "string") throw new MalformedJws("header alg missing");
  if (!ALGS.has(header.alg)) throw new UnsupportedAlgorithm("alg not allowed");
  if ("kid" in header && typeof header.kid !== "string") throw new MalformedJws("kid not text");
  if (expectedTyp !== null && header.typ !== expectedTyp) throw new MalformedJws("unexpected typ");
  let key;
  try {
    key = await keyFor(header);
  } catch {
    key = null;
  }
  if (!key) throw new UnknownKey("no key for this token");
  await key.verify(header.alg, signature, utf8Encode(token.slice(0, h.length + 1 + p.length)));
  return { header, payload: jsonSegment(payloadBytes, "payload") };
}
