// Answering an official's request by OpenID4VP 1.0 (request by reference, direct_post): fetch
// the signed request object from request_uri, check it (its signature by the key of the x5c
// leaf certificate, and that the client_id is `x509_hash:` of exactly that certificate, so the
// QR cannot be pointed at another verifier's request), read which claims the DCQL query asks
// for, and post back a presentation holding only the disclosures the holder agreed to, bound
// to this request by a key-binding JWT (aud = client_id, nonce, sd_hash).

import { b64urlDecode } from "./b64.js";
import { PublicKey, verifyCompact } from "./jose.js";
import { b64urlEncode, present } from "./sd-jwt.js";
import { call, ownUrl, WalletError } from "./wallet.js";

export const REQUEST_SCHEME = "openid4vp:";
export const REQUEST_TYP = "oauth-authz-req+jwt";
export const CLIENT_ID_PREFIX = "x509_hash:";
const FORMATS = new Set(["dc+sd-jwt", "vc+sd-jwt"]);
const CN = "550403"; // OID 2.5.4.3, commonName
const ORGANIZATION = "55040a"; // OID 2.5.4.10

/** {clientId, requestUri} of an `openid4vp://?client_id=…&request_uri=…` link. */
export function readRequestLink(text) {
  const raw = String(text || "").trim();
  if (!raw.toLowerCase().startsWith(REQUEST_SCHEME)) throw new WalletError("request_bad", "not openid4vp:");
  const query = new URLSearchParams(raw.slice(raw.indexOf("?") + 1));
  const clientId = query.get("client_id");
  const requestUri = query.get("request_uri");
  if (!clientId || !requestUri) throw new WalletError("request_bad", "client_id or request_uri missing");
  ownUrl(requestUri);
  return { clientId, requestUri };
}

// DER, just enough of it to find a certificate's public key and subject (RFC 5280 §4.1).
function element(bytes, at) {
  const tag = bytes[at];
  let length = bytes[at + 1];
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count < 1 || count > 3) throw new WalletError("request_bad", "DER length");
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | bytes[start + i];
    start += count;
  }
  const end = start + length;
  if (tag === undefined || end > bytes.length) throw new WalletError("request_bad", "DER truncated");
  return { tag, at, start, end };
}

function children(bytes, parent) {
  const out = [];
  for (let at = parent.start; at < parent.end; at = out[out.length - 1].end) out.push(element(bytes, at));
  return out;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The subject's organisation (else common name) of a Name, for the holder to read: the
 * service's request-signing certificate names the ministry as its organisation. */
function subjectName(der, name) {
  const found = {};
  for (const set of children(der, name)) {
    for (const pair of children(der, set)) {
      const [oid, value] = children(der, pair);
      if (oid?.tag === 0x06 && value) {
        const text = new TextDecoder().decode(der.subarray(value.start, value.end));
        found[hex(der.subarray(oid.start, oid.end))] = text;
      }
    }
  }
  return found[ORGANIZATION] || found[CN] || "";
}

/** {spki, subject} of a DER certificate. */
export function readCertificate(der) {
  const certificate = element(der, 0);
  const tbs = children(der, certificate)[0];
  const fields = children(der, tbs);
  const rest = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields; // explicit version
  const [, , , , subject, spki] = rest; // serial, signature, issuer, validity, subject, key
  if (!spki || spki.tag !== 0x30 || subject.tag !== 0x30) throw new WalletError("request_bad", "certificate");
  return { spki: der.slice(spki.at, spki.end), subject: subjectName(der, subject) };
}

async function keyOf(spki) {
  try {
    return new PublicKey("ES256", await crypto.subtle.importKey(
      "spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]));
  } catch {
    const key = await crypto.subtle.importKey("spki", spki, { name: "Ed25519" }, false, ["verify"]);
    return new PublicKey("EdDSA", key);
  }
}

function standardBase64(text) {
  if (typeof text !== "string") throw new WalletError("request_bad", "x5c");
  return b64urlDecode(text.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""), { canonical: false });
}

/** [{name, required}] of the DCQL query's one SD-JWT VC credential query. A claim is optional
 * only when some claim set leaves it out (DCQL §6.4.1: without claim_sets, all are asked). */
export function askedClaims(query) {
  const claims = Array.isArray(query?.claims) ? query.claims : [];
  const named = claims.map((c) => ({ id: c.id, name: Array.isArray(c.path) ? c.path[0] : undefined }));
  if (!named.length || named.some((c) => typeof c.name !== "string")) {
    throw new WalletError("request_bad", "claims must name top-level claims");
  }
  const sets = Array.isArray(query.claim_sets) ? query.claim_sets : null;
  return named.map((c) => ({
    name: c.name,
    required: !sets || sets.every((set) => Array.isArray(set) && set.includes(c.id)),
  }));
}

/**
 * Fetch and check the request behind an openid4vp:// link: {clientId, verifier (the
 * certificate's subject), responseUri, nonce, state, queryId, claims: [{name, required}]}.
 */
export async function fetchRequest(link, { now = Date.now() } = {}) {
  const { clientId, requestUri } = readRequestLink(link);
  if (!clientId.startsWith(CLIENT_ID_PREFIX)) {
    throw new WalletError("request_bad", "client_id prefix not supported");
  }
  const { status, body } = await call(requestUri, { headers: { accept: "application/oauth-authz-req+jwt" } });
  if (status !== 200 || typeof body !== "string") throw new WalletError("request_gone", `HTTP ${status}`);
  let certificate;
  let verified;
  try {
    verified = await verifyCompact(body.trim(), {
      expectedTyp: REQUEST_TYP,
      keyFor: async (header) => {
        const der = standardBase64(header.x5c?.[0]);
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
        if (CLIENT_ID_PREFIX + b64urlEncode(digest) !== clientId) return null;
        certificate = readCertificate(der);
        return keyOf(certificate.spki);
      },
    });
  } catch (e) {
    throw new WalletError("request_bad", `request object: ${e.message}`);
  }
  const claims = verified.payload;
  if (claims.client_id !== clientId) throw new WalletError("request_bad", "client_id differs from the link's");
  if (claims.response_type !== "vp_token" || claims.response_mode !== "direct_post") {
    throw new WalletError("request_bad", "only vp_token by direct_post");
  }
  if (Number.isInteger(claims.exp) && claims.exp * 1000 < now) throw new WalletError("request_gone", "expired");
  if (typeof claims.nonce !== "string" || !claims.nonce) throw new WalletError("request_bad", "nonce");
  ownUrl(claims.response_uri);
  const queries = claims.dcql_query?.credentials;
  const query = Array.isArray(queries) ? queries.find((q) => FORMATS.has(q?.format)) : null;
  if (!query || typeof query.id !== "string") throw new WalletError("request_bad", "no SD-JWT VC asked for");
  return {
    clientId, verifier: certificate.subject, responseUri: claims.response_uri,
    nonce: claims.nonce, state: claims.state, queryId: query.id, claims: askedClaims(query),
  };
}

async function post(request, fields) {
  const form = new URLSearchParams(fields);
  if (typeof request.state === "string") form.set("state", request.state);
  const { status, body } = await call(request.responseUri, { method: "POST", body: form });
  if (status !== 200) throw new WalletError("answer_refused", body?.error || `HTTP ${status}`);
}

/** Send the presentation of `card` disclosing `names` (the holder's choice). */
export async function answer(request, card, names) {
  const presentation = await present(card.credential, names, {
    privateKey: card.keys.privateKey, aud: request.clientId, nonce: request.nonce, now: Date.now(),
  });
  await post(request, { vp_token: JSON.stringify({ [request.queryId]: [presentation] }) });
}

/** Tell the official the holder said no (OpenID4VP §8.5: error access_denied). */
export async function decline(request) {
  await post(request, { error: "access_denied", error_description: "the holder declined" });
}
