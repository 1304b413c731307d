// Strict base64url and UTF-8, as idsvc/formats/jws.py reads them: no padding, no stray
// low bits in the last character (one token, one spelling), UTF-8 that must decode cleanly.

export class FormatError extends Error {}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;
const CANONICAL_LAST = { 2: "AQgw", 3: "AEIMQUYcgkosw048" };

/** Decode unpadded base64url; `canonical` refuses set unused bits in the last character. */
export function b64urlDecode(text, { canonical = true } = {}) {
  const rem = text.length % 4;
  if (rem === 1) throw new FormatError("impossible base64url length");
  if (canonical && rem && !CANONICAL_LAST[rem].includes(text[text.length - 1])) {
    throw new FormatError("non-canonical base64url");
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0, bits = 0, o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUE[c] : -1;
    if (v < 0) throw new FormatError("character outside the base64url alphabet");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();

export function utf8Decode(bytes) {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new FormatError("not valid UTF-8");
  }
}

export function utf8Encode(text) {
  return ENCODER.encode(text);
}
