// IETF Token Status List: the {bits, lst} object of a statuslist+jwt, read as
// idsvc/formats/status_list.py reads it (ZLIB via DecompressionStream("deflate"), capped so
// that a ZLIB bomb cannot fill the phone's memory).

import { b64urlDecode } from "./b64.js";
import { inflateCapped, TooBig } from "./zlib.js";

export class StatusListError extends Error {}

export const MAX_BYTES = 1048576;

async function inflate(compressed, maxBytes) {
  try {
    return await inflateCapped(compressed, maxBytes);
  } catch (e) {
    throw new StatusListError(
      e instanceof TooBig ? "status list inflates beyond the limit" : "lst is not valid ZLIB data",
    );
  }
}

export class StatusList {
  constructor(bits, data) {
    this.bits = bits;
    this.data = data;
    this.perByte = 8 / bits;
    this.size = data.length * this.perByte;
  }

  static async decode(obj, maxBytes = MAX_BYTES) {
    if (obj === null || typeof obj !== "object") throw new StatusListError("not an object");
    const { bits, lst } = obj;
    if (![1, 2, 4, 8].includes(bits)) throw new StatusListError("bits must be 1, 2, 4 or 8");
    if (typeof lst !== "string") throw new StatusListError("lst missing");
    if (lst.length > ((maxBytes + Math.floor(maxBytes / 8192) + 64) * 4) / 3 + 4) {
      throw new StatusListError("lst too long");
    }
    let compressed;
    try {
      compressed = b64urlDecode(lst, { canonical: false });
    } catch {
      throw new StatusListError("lst is not base64url");
    }
    const data = await inflate(compressed, maxBytes);
    if (!data.length) throw new StatusListError("status list is empty");
    return new StatusList(bits, data);
  }

  get(idx) {
    if (!Number.isInteger(idx) || idx < 0 || idx >= this.size) {
      throw new StatusListError("index outside the list");
    }
    const byte = Math.floor(idx / this.perByte);
    const shift = (idx % this.perByte) * this.bits;
    return (this.data[byte] >> shift) & ((1 << this.bits) - 1);
  }
}
