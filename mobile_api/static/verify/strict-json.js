// JSON.parse keeps the last of two members with the same name; the Python verifier refuses
// such objects (two JOSE libraries would disagree on what was signed). This scanner finds
// duplicate names before JSON.parse builds the value, so both verifiers agree.

import { FormatError } from "./b64.js";

const WS = /[ \t\n\r]*/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
const MAX_DEPTH = 64;

function scan(text) {
  let pos = 0;
  const skip = () => { WS.lastIndex = pos; WS.exec(text); pos = WS.lastIndex; };
  const token = (re) => {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new FormatError("not valid JSON");
    pos = re.lastIndex;
    return m[0];
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) throw new FormatError("JSON nested too deeply");
    skip();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const seen = new Set();
      skip();
      if (text[pos] === "}") { pos++; return; }
      for (;;) {
        skip();
        const name = JSON.parse(token(STRING));
        if (seen.has(name)) throw new FormatError("duplicate member name");
        seen.add(name);
        skip();
        if (text[pos++] !== ":") throw new FormatError("not valid JSON");
        value(depth + 1);
        skip();
        const sep = text[pos++];
        if (sep === "}") return;
        if (sep !== ",") throw new FormatError("not valid JSON");
      }
    } else if (c === "[") {
      pos++;
      skip();
      if (text[pos] === "]") { pos++; return; }
      for (;;) {
        value(depth + 1);
        skip();
        const sep = text[pos++];
        if (sep === "]") return;
        if (sep !== ",") throw new FormatError("not valid JSON");
      }
    } else if (c === '"') {
      token(STRING);
    } else {
      token(LITERAL);
    }
  };
  value(0);
  skip();
  if (pos !== text.length) throw new FormatError("trailing characters after JSON");
}

/** Parse a JSON object, refusing duplicate member names and non-objects. */
export function parseObject(text) {
  scan(text);
  const value = JSON.parse(text);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new FormatError("not a JSON object");
  }
  return value;
}
