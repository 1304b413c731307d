// The wallet's one record on the phone, in IndexedDB: the phone credential as issued, its
// claims, and the holder's key pair. The private key is a WebCrypto CryptoKey made with
// extractable=false: IndexedDB keeps the key object itself (structured clone), so the page
// can sign with it after a reload while no script, ours included, can ever read it out.

const DB = "idsvc-wallet";
const STORE = "cards";
const KEY = "phone"; // one phone credential per person, and one person per phone's wallet

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** {credential, claims, issuer, configuration, keys: {privateKey, publicKey}, jwk, received_at},
 * or null when this phone holds no credential. */
export async function loadCard() {
  return (await run("readonly", (store) => store.get(KEY))) ?? null;
}

export async function saveCard(card) {
  await run("readwrite", (store) => store.put(card, KEY));
}

export async function removeCard() {
  await run("readwrite", (store) => store.delete(KEY));
}

/** A fresh P-256 key pair whose private half can sign but never be exported. */
export async function newHolderKey() {
  const keys = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keys.publicKey);
  return { keys, jwk: { kty, crv, x, y } };
}
