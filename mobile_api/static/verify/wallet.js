// Receiving the phone credential by OpenID4VCI 1.0, pre-authorized code flow: read the offer
// (the desk's QR, its openid-credential-offer:// link, or the page's own #offer= link), then
// issuer metadata → token (with the transaction code read out at the desk) → nonce → a new
// non-extractable P-256 key → proof JWT → credential. The credential is checked before it is
// kept: the issuer's signature with the keys the page already trusts, every disclosure's
// digest, and that it is bound to this phone's key. Only the page's own origin is ever
// contacted: an offer naming another issuer is refused (the CSP would block it anyway).

import { MalformedJws, verifyCompact } from "./jose.js";
import { disclosedClaims, parseSdJwt, signJwt } from "./sd-jwt.js";
import { loadSnapshot, refresh } from "./store.js";
import { newHolderKey } from "./wallet-store.js";

export const OFFER_SCHEME = "openid-credential-offer:";
export const PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
export const PROOF_TYP = "openid4vci-proof+jwt";
const FORMATS = ["dc+sd-jwt", "vc+sd-jwt"]; // in order of preference
const WAIT_MS = 15_000;

/** A failure the page explains to the holder: `code` is an i18n key. */
export class WalletError extends Error {
  constructor(code, detail = "") {
    super(`${code}${detail ? `: ${detail}` : ""}`);
    this.code = code;
  }
}

/** An absolute URL of this page's own origin, else WalletError("foreign"). */
export function ownUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new WalletError("foreign", "not a URL");
  }
  if (url.origin !== location.origin) throw new WalletError("foreign", url.origin);
  return url;
}

/** fetch() for the wallet's protocol calls: own origin only, no cookies, a time limit;
 * resolves to {status, body} (body: parsed JSON or null). Network failures: WalletError. */
export async function call(url, init = {}) {
  ownUrl(url);
  let response;
  try {
    response = await fetch(url, {
      credentials: "omit", cache: "no-store", signal: AbortSignal.timeout(WAIT_MS), ...init,
    });
  } catch {
    throw new WalletError("network");
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/** `/.well-known/<name>` of an issuer identifier, with its path appended (RFC 8414 §3.1). */
export function wellKnown(identifier, name) {
  const url = ownUrl(identifier);
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.origin}/.well-known/${name}${path}`;
}

/**
 * The offer in an `openid-credential-offer://?credential_offer=…` (or `credential_offer_uri`)
 * link or in the offer's JSON itself: {issuer, configurationIds, code, txCode}.
 */
export async function readOffer(text) {
  const raw = String(text || "").trim();
  let offer;
  try {
    if (raw.startsWith("{")) {
      offer = JSON.parse(raw);
    } else if (raw.toLowerCase().startsWith(OFFER_SCHEME)) {
      const query = new URLSearchParams(raw.slice(raw.indexOf("?") + 1));
      if (query.has("credential_offer")) {
        offer = JSON.parse(query.get("credential_offer"));
      } else if (query.has("credential_offer_uri")) {
        const { status, body } = await call(query.get("credential_offer_uri"));
        if (status !== 200) throw new WalletError("offer_gone");
        offer = body;
      }
    }
  } catch (e) {
    if (e instanceof WalletError) throw e;
    throw new WalletError("offer_bad", "not JSON");
  }
  const grant = offer?.grants?.[PRE_AUTHORIZED_GRANT];
  const code = grant?.["pre-authorized_code"];
  const ids = offer?.credential_configuration_ids;
  if (typeof offer?.credential_issuer !== "string" || typeof code !== "string" || !code ||
      !Array.isArray(ids) || !ids.length || !ids.every((id) => typeof id === "string")) {
    throw new WalletError("offer_bad");
  }
  ownUrl(offer.credential_issuer);
  const txCode = grant.tx_code && typeof grant.tx_code === "object" ? grant.tx_code : null;
  return { issuer: offer.credential_issuer.replace(/\/+$/, ""), configurationIds: ids, code, txCode };
}

function configurationFor(metadata, ids) {
  const supported = metadata.credential_configurations_supported || {};
  for (const format of FORMATS) {
    const id = ids.find((candidate) => supported[candidate]?.format === format);
    if (id) return id;
  }
  throw new WalletError("issuer_refused", "no SD-JWT VC configuration offered");
}

async function token(issuer, metadata, offer, txCode) {
  const server = metadata.authorization_servers?.[0] || issuer;
  const { status, body } = await call(wellKnown(server, "oauth-authorization-server"));
  if (status !== 200 || typeof body?.token_endpoint !== "string") {
    throw new WalletError("issuer_refused", "no token endpoint");
  }
  const form = new URLSearchParams({ grant_type: PRE_AUTHORIZED_GRANT, "pre-authorized_code": offer.code });
  if (offer.txCode) form.set("tx_code", txCode);
  const answer = await call(body.token_endpoint, { method: "POST", body: form });
  if (answer.status === 400 && answer.body?.error === "invalid_grant") throw new WalletError("tx_wrong");
  if (answer.status !== 200 || typeof answer.body?.access_token !== "string") {
    throw new WalletError("issuer_refused", answer.body?.error || `HTTP ${answer.status}`);
  }
  return answer.body.access_token;
}

async function nonce(metadata) {
  if (!metadata.nonce_endpoint) return undefined;
  const { status, body } = await call(metadata.nonce_endpoint, { method: "POST" });
  if (status !== 200 || typeof body?.c_nonce !== "string") throw new WalletError("issuer_refused", "no nonce");
  return body.c_nonce;
}

async function requestCredential(issuer, metadata, accessToken, configuration, holder) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const claims = { aud: issuer, iat: Math.floor(Date.now() / 1000) };
    const c_nonce = await nonce(metadata);
    if (c_nonce !== undefined) claims.nonce = c_nonce;
    const proof = await signJwt({ typ: PROOF_TYP, jwk: holder.jwk }, claims, holder.keys.privateKey);
    const { status, body } = await call(metadata.credential_endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${accessToken}` },
      body: JSON.stringify({ credential_configuration_id: configuration, proofs: { jwt: [proof] } }),
    });
    const credential = body?.credentials?.[0]?.credential;
    if (status === 200 && typeof credential === "string") return credential;
    // A nonce that expired between the two calls: one more try with a fresh one.
    if (body?.error !== "invalid_nonce") throw new WalletError("issuer_refused", body?.error || `HTTP ${status}`);
  }
  throw new WalletError("issuer_refused", "invalid_nonce");
}

/** The key the page trusts for `kid` ({iss, key}), downloading the key sets once if needed. */
async function issuerKey(kid) {
  let entry = await (await loadSnapshot()).snapshot.keyFor(kid);
  if (!entry) {
    await refresh().catch(() => 1);
    entry = await (await loadSnapshot()).snapshot.keyFor(kid);
  }
  return entry;
}

/** The claims of a credential as issued, after checking it; WalletError("credential_bad"). */
export async function checkCredential(credential, jwk) {
  try {
    const parsed = await parseSdJwt(credential);
    if (parsed.kb) throw new WalletError("credential_bad", "issued with a key-binding JWT");
    let signer;
    const { header, payload } = await verifyCompact(parsed.jwt, {
      expectedTyp: null,
      keyFor: async (h) => {
        signer = typeof h.kid === "string" ? await issuerKey(h.kid) : undefined;
        return signer?.key;
      },
    });
    if (!FORMATS.includes(header.typ)) throw new MalformedJws(`typ ${header.typ}`);
    if (payload.iss !== signer.iss) throw new WalletError("credential_bad", "iss is not the key's issuer");
    const claims = disclosedClaims(payload, parsed.disclosures);
    const bound = claims.cnf?.jwk;
    if (!bound || bound.x !== jwk.x || bound.y !== jwk.y || bound.crv !== jwk.crv) {
      throw new WalletError("credential_bad", "not bound to this phone's key");
    }
    return claims;
  } catch (e) {
    if (e instanceof WalletError) throw e;
    throw new WalletError("credential_bad", e.message);
  }
}

/** Run the whole issuance for `offer` (readOffer) with the holder's transaction code; resolves
 * to the card to keep (wallet-store.js). */
export async function receive(offer, txCode) {
  const { status, body: metadata } = await call(wellKnown(offer.issuer, "openid-credential-issuer"));
  if (status !== 200 || typeof metadata?.credential_endpoint !== "string") {
    throw new WalletError("issuer_refused", "no issuer metadata");
  }
  const configuration = configurationFor(metadata, offer.configurationIds);
  const accessToken = await token(offer.issuer, metadata, offer, txCode);
  const holder = await newHolderKey();
  const credential = await requestCredential(offer.issuer, metadata, accessToken, configuration, holder);
  const claims = await checkCredential(credential, holder.jwk);
  return {
    credential, claims, issuer: offer.issuer, configuration,
    keys: holder.keys, jwk: holder.jwk, received_at: new Date().toISOString(),
  };
}
