// A small CBOR (RFC 8949) decoder for the printed QR: definite lengths only, nesting capped,
// integers within JavaScript's safe range. `deterministic` also refuses anything that is not
// in RFC 8949 §4.2.1 core deterministic encoding (shortest forms, map keys in bytewise order,
// so no duplicate keys): the idsvc Claim 169 payload is encoded that way (docs/claim169.md).

export class CborError extends Error {}

export class Tagged {
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}

const TEXT = new TextDecoder("utf-8", { fatal: true });

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Decode one CBOR item that must fill `bytes` exactly. */
export function decode(bytes, { maxDepth = 16, deterministic = false } = {}) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;

  const need = (n) => {
    if (pos + n > bytes.length) throw new CborError("truncated CBOR");
  };

  const argument = (info) => {
    if (info < 24) return info;
    let value;
    if (info === 24) { need(1); value = bytes[pos]; pos += 1; if (deterministic && value < 24) throw new CborError("not shortest form"); }
    else if (info === 25) { need(2); value = view.getUint16(pos); pos += 2; if (deterministic && value < 256) throw new CborError("not shortest form"); }
    else if (info === 26) { need(4); value = view.getUint32(pos); pos += 4; if (deterministic && value < 65536) throw new CborError("not shortest form"); }
    else if (info === 27) {
      need(8);
      const big = view.getBigUint64(pos);
      pos += 8;
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new CborError("integer too large");
      value = Number(big);
      if (deterministic && value < 2 ** 32) throw new CborError("not shortest form");
    } else throw new CborError("indefinite or reserved length");
    return value;
  };

  const item = (depth) => {
    if (depth > maxDepth) throw new CborError("CBOR nested too deeply");
    need(1);
    const initial = bytes[pos++];
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      if (info === 23) return undefined;
      if (info === 25) { need(2); const v = view.getFloat16 ? view.getFloat16(pos) : NaN; pos += 2; return v; }
      if (info === 26) { need(4); const v = view.getFloat32(pos); pos += 4; return v; }
      if (info === 27) { need(8); const v = view.getFloat64(pos); pos += 8; return v; }
      throw new CborError("unsupported simple value");
    }
    const arg = argument(info);
    switch (major) {
      case 0: return arg;
      case 1: return -1 - arg;
      case 2: case 3: {
        need(arg);
        const slice = bytes.subarray(pos, pos + arg);
        pos += arg;
        if (major === 2) return slice;
        try { return TEXT.decode(slice); } catch { throw new CborError("text is not UTF-8"); }
      }
      case 4: {
        const out = [];
        for (let i = 0; i < arg; i++) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        const map = new Map();
        let previous = null;
        for (let i = 0; i < arg; i++) {
          const start = pos;
          const key = item(depth + 1);
          const encoded = bytes.subarray(start, pos);
          if (deterministic && previous && compareBytes(previous, encoded) >= 0) {
            throw new CborError("map keys not in deterministic order");
          }
          previous = encoded;
          if (key !== null && typeof key === "object") throw new CborError("unsupported map key");
          if (map.has(key)) throw new CborError("duplicate map key");
          map.set(key, item(depth + 1));
        }
        return map;
      }
      default: // 6: tag
        return new Tagged(arg, item(depth + 1));
    }
  };

  const value = item(0);
  if (pos !== bytes.length) throw new CborError("bytes after the CBOR item");
  return value;
}

/** CBOR head (major type + length) for the Sig_structure we build. */
export function head(major, length) {
  if (length < 24) return Uint8Array.of((major << 5) | length);
  if (length < 256) return Uint8Array.of((major << 5) | 24, length);
  if (length < 65536) return Uint8Array.of((major << 5) | 25, length >> 8, length & 0xff);
  return Uint8Array.of((major << 5) | 26, length >>> 24, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff);
}
