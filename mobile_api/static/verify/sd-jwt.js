// SD-JWT (RFC 9901) for the page's own wallet: split a credential into its issuer JWT and
// disclosures, check every disclosure against the signed `_sd` digests, and build a
// presentation holding only the disclosures the holder chose, closed by a key-binding JWT
// signed with the wallet's non-extractable key. Signing compact JWS with a WebCrypto key is
// here too (the proof JWT of OpenID4VCI uses it). Verifying the issuer's signature is
// jose.js's job; this module never trusts a claim by itself.

import { b64urlDecode, FormatError, utf8Decode, utf8Encode } from "./b64.js";
import { parseObject } from "./strict-json.js";

export const SD_ALG = "sha-256";
export const KB_TYP = "kb+jwt";
const ECDSA = { name: "ECDSA", hash: "SHA-256" };
const MAX_CREDENTIAL = 200_000; // a photo disclosure is tens of KB; anything far bigger is not ours

export class SdJwtError extends Error {}

/** Unpadded base64url of bytes. */
export function b64urlEncode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const b64urlJson = (value) => b64urlEncode(utf8Encode(JSON.stringify(value)));

/** base64url(SHA-256(ASCII text)): a disclosure's digest and a KB-JWT's sd_hash. */
export async function sha256B64url(text) {
  return b64urlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8Encode(text))));
}

/** A compact JWS (ES256) over `header` and `payload`, signed by a WebCrypto private key. */
export async function signJwt(header, payload, privateKey) {
  const input = `${b64urlJson({ ...header, alg: "ES256" })}.${b64urlJson(payload)}`;
  const signature = await crypto.subtle.sign(ECDSA, privateKey, utf8Encode(input));
  return `${input}.${b64urlEncode(new Uint8Array(signature))}`;
}

/** The payload of a compact JWT, read without checking its signature (the caller does). */
export function unverifiedPayload(jwt) {
  try {
    return parseObject(utf8Decode(b64urlDecode(jwt.split(".")[1] || "")));
  } catch (e) {
    throw new SdJwtError(`payload: ${e.message}`);
  }
}

async function readDisclosure(encoded) {
  let value;
  try {
    value = JSON.parse(utf8Decode(b64urlDecode(encoded)));
  } catch (e) {
    throw new SdJwtError(`disclosure: ${e instanceof FormatError ? e.message : "not JSON"}`);
  }
  // Object properties only ([salt, name, value]): the credential has no array elements.
  if (!Array.isArray(value) || value.length !== 3 || typeof value[0] !== "string" ||
      typeof value[1] !== "string" || value[1] === "_sd" || value[1] === "...") {
    throw new SdJwtError("disclosure is not [salt, name, value]");
  }
  return { encoded, name: value[1], value: value[2], digest: await sha256B64url(encoded) };
}

/** {jwt, disclosures: [{encoded, name, value, digest}], kb} of `<jwt>~<d>~…~[<kb-jwt>]`. */
export async function parseSdJwt(text) {
  if (typeof text !== "string" || text.length > MAX_CREDENTIAL) throw new SdJwtError("too long");
  const parts = text.trim().split("~");
  if (parts.length < 2) throw new SdJwtError("not an SD-JWT: no ~");
  const [jwt, ...rest] = parts;
  const kb = rest.pop() || null;
  if (rest.some((part) => !part)) throw new SdJwtError("empty disclosure");
  return { jwt, disclosures: await Promise.all(rest.map(readDisclosure)), kb };
}

/**
 * The claims the issuer signed plus those the disclosures reveal. Every disclosure's digest
 * must be in `_sd` exactly once (an unreferenced one was not signed by the issuer).
 */
export function disclosedClaims(payload, disclosures) {
  if (payload._sd_alg !== undefined && payload._sd_alg !== SD_ALG) {
    throw new SdJwtError(`_sd_alg ${payload._sd_alg} is not ${SD_ALG}`);
  }
  const digests = Array.isArray(payload._sd) ? payload._sd : [];
  const claims = {};
  for (const [name, value] of Object.entries(payload)) {
    if (name !== "_sd" && name !== "_sd_alg") claims[name] = value;
  }
  const seen = new Set();
  for (const d of disclosures) {
    if (seen.has(d.digest) || digests.filter((x) => x === d.digest).length !== 1) {
      throw new SdJwtError(`disclosure of ${d.name} is not signed by the issuer`);
    }
    if (d.name in claims) throw new SdJwtError(`claim ${d.name} disclosed twice`);
    seen.add(d.digest);
    claims[d.name] = d.value;
  }
  return claims;
}

/**
 * A presentation of `credential` (the SD-JWT as issued, ending with `~`) that discloses only
 * `names`, bound to `aud` and `nonce` by a KB-JWT signed with `privateKey`.
 */
export async function present(credential, names, { privateKey, aud, nonce, now }) {
  const parsed = await parseSdJwt(credential);
  const keep = new Set(names);
  const kept = parsed.disclosures.filter((d) => keep.has(d.name)).map((d) => d.encoded);
  const withoutKb = [parsed.jwt, ...kept].join("~") + "~";
  const kbJwt = await signJwt(
    { typ: KB_TYP },
    { iat: Math.floor(now / 1000), aud, nonce, sd_hash: await sha256B64url(withoutKb) },
    privateKey,
  );
  return withoutKb + kbJwt;
}
