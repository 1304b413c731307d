// The holder's own page, by proof of possession of the phone credential's key: a fresh nonce
// from the service, a presentation whose key-binding JWT names `{issuer}/v1/holder` and that
// nonce (used once: a replayed presentation opens nothing), and the short session it buys
// reads the record, the credentials, who checked them, and the correction requests.

import { present } from "./sd-jwt.js";
import { call, WalletError } from "./wallet.js";

/** A session token ({token, expires_at}) for the holder of `card`. */
export async function openSession(card) {
  const base = card.issuer;
  const nonce = await call(`${base}/v1/holder/nonce`, { method: "POST" });
  if (nonce.status !== 200 || typeof nonce.body?.nonce !== "string") {
    throw new WalletError("holder_refused", `nonce HTTP ${nonce.status}`);
  }
  // Nothing to disclose: the service reads the record from the register by the credential's
  // id; the key-binding JWT is the proof.
  const presentation = await present(card.credential, [], {
    privateKey: card.keys.privateKey, aud: `${base}/v1/holder`, nonce: nonce.body.nonce, now: Date.now(),
  });
  const session = await call(`${base}/v1/holder/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ presentation }),
  });
  if (session.status !== 200 && session.status !== 201) {
    throw new WalletError("holder_refused", session.body?.code || session.body?.title || `HTTP ${session.status}`);
  }
  return { base, token: session.body.token };
}

async function authorised(session, path, init = {}) {
  const { status, body } = await call(`${session.base}${path}`, {
    ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${session.token}` },
  });
  if (status === 401) throw new WalletError("session_expired");
  if (status === 422 || status === 409 || status === 429) {
    throw new WalletError("fix_refused", body?.detail || `HTTP ${status}`);
  }
  if (status < 200 || status > 299) throw new WalletError("holder_refused", body?.detail || `HTTP ${status}`);
  return body;
}

/** {record, credentials, corrections} and the who-checked list, read at once. */
export async function readOwnPage(session) {
  const [me, checks] = await Promise.all([
    authorised(session, "/v1/holder/me"),
    authorised(session, "/v1/holder/who-checked"),
  ]);
  return { ...me, checks: Array.isArray(checks) ? checks : checks?.checks || checks?.items || [] };
}

/** Ask HR to correct `field` of the record; resolves to the request as stored. */
export function reportError(session, field, text) {
  return authorised(session, "/v1/holder/corrections", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ field, text }),
  });
}
