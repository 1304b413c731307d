// Base45 (RFC 9285), strict: the 45-character alphabet only (no lower case), no length of
// 1 mod 3, no group worth more than its bytes can hold.

export class Base45Error extends Error {}

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

export function base45Decode(text) {
  if (text.length % 3 === 1) throw new Base45Error("base45 length is 1 mod 3");
  const out = new Uint8Array(Math.floor(text.length / 3) * 2 + (text.length % 3 === 2 ? 1 : 0));
  let o = 0;
  const digit = (i) => {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUE[c] : -1;
    if (v < 0) throw new Base45Error("character outside the base45 alphabet");
    return v;
  };
  for (let i = 0; i < text.length; i += 3) {
    if (i + 2 < text.length) {
      const n = digit(i) + digit(i + 1) * 45 + digit(i + 2) * 2025;
      if (n > 0xffff) throw new Base45Error("base45 group too large");
      out[o++] = n >> 8;
      out[o++] = n & 0xff;
    } else {
      const n = digit(i) + digit(i + 1) * 45;
      if (n > 0xff) throw new Base45Error("base45 group too large");
      out[o++] = n;
    }
  }
  return out;
}
