// "My card": the page's own wallet, for the civil servant. It receives the phone credential
// from an offer (scanned, pasted, or opened as /verify/#offer=<the offer link, %-encoded>),
// shows it, answers an official's request (scanned, pasted, or /verify/#request=<link>) with
// the claims the holder agrees to show, and opens the holder's own page: the record, the
// credentials, who checked them, and "report an error". Values reach the page only through
// textContent and checked data: URLs.

import { answer, decline, fetchRequest, REQUEST_SCHEME } from "./presentation.js";
import { openSession, readOwnPage, reportError } from "./holder.js";
import { decodeFile, scanCamera } from "./scanner.js";
import { loadSnapshot, refresh } from "./store.js";
import { loadCard, removeCard, saveCard } from "./wallet-store.js";
import { OFFER_SCHEME, readOffer, receive, WalletError } from "./wallet.js";

const $ = (id) => document.getElementById(id);
const PHOTO = /^data:image\/(jpeg|png|webp);base64,[A-Za-z0-9+/]+={0,2}$/;
// The record's fields as the holder's page shows them, in this order (never national_id).
const RECORD_FIELDS = [
  "name_local", "name_latin", "sex", "date_of_birth", "ministry", "ministry_local", "unit",
  "position", "position_local", "grade", "category", "status", "status_date", "hire_date",
  "contract_end",
];
const FIX_FIELDS = [...RECORD_FIELDS, "photo"];

const state = {
  t: (key) => key, card: null, status: null, offer: null, request: null, session: null, own: null,
  busy: false,
};

function show(id, visible) {
  $(id).hidden = !visible;
}

function say(key, values) {
  const element = $("wallet-message");
  element.dataset.key = key || "";
  element.textContent = key ? state.t(key, values) : "";
}

function failed(error) {
  // Only i18n keys reach the holder; the detail is for whoever debugs (never a secret).
  if (!(error instanceof WalletError)) console.warn("wallet:", error);
  say(error instanceof WalletError ? `w_${error.code}` : "w_network");
}

const day = (iso) => (typeof iso === "string" ? iso.slice(0, 10) : "");
const two = (n) => String(n).padStart(2, "0");

/** "2026-12-07 17:05" in the phone's own time zone: digits read the same in every language. */
function localTime(iso) {
  const t = new Date(iso);
  if (isNaN(t)) return "";
  const date = `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())}`;
  return `${date} ${two(t.getHours())}:${two(t.getMinutes())}`;
}

function item(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  list.append(li);
  return li;
}

function renderCard() {
  const card = state.card;
  show("card-view", !!card);
  show("wallet-empty", !card);
  show("own-open", !!card);
  show("card-remove", !!card);
  if (!card) {
    delete $("wallet").dataset.card;
    delete $("wallet").dataset.status;
    return;
  }
  const c = card.claims;
  $("card-name").textContent = c.name || "";
  $("card-latin").textContent = c.name_latin || "";
  // Both scripts where the credential carries both (the local one first).
  const both = (local, latin) => [local, latin].filter((v) => typeof v === "string" && v).join("\n");
  $("card-ministry").textContent = both(c.ministry_local, c.ministry);
  $("card-position").textContent = both(c.position_local, c.position);
  const photo = $("card-photo");
  const src = typeof c.photo === "string" && PHOTO.test(c.photo) ? c.photo : null;
  photo.hidden = !src;
  if (src) photo.src = src;
  const expires = Number.isInteger(c.exp) ? new Date(c.exp * 1000).toISOString().slice(0, 10) : "";
  $("card-expires").textContent = expires ? state.t("expires", { date: expires }) : "";
  $("wallet").dataset.card = c.jti || "held";
  $("wallet").dataset.status = state.status || "";
  const warning = ["revoked", "suspended"].includes(state.status) ? `card_${state.status}` : null;
  $("card-state").textContent = warning ? state.t(warning) : "";
  $("card-view").classList.toggle("cancelled", !!warning);
}

/** The card's own status bit, from the status list on the phone (brought up to date first when
 * online): a holder learns that the card was cancelled before an official does. */
async function checkOwnStatus() {
  const card = state.card;
  const ref = card?.claims?.status?.status_list;
  if (!ref) return;
  if (navigator.onLine) await refresh({ force: true }).catch(() => 1);
  let status = null; // not known from here: say nothing rather than guess
  try {
    const { snapshot } = await loadSnapshot();
    const value = await snapshot.statusOf(ref.uri, ref.idx, card.claims.iss, Math.floor(Date.now() / 1000));
    status = value === 0 ? "live" : value === 2 ? "suspended" : "revoked";
  } catch {
    status = null;
  }
  if (state.card !== card) return; // removed or replaced meanwhile
  state.status = status;
  renderCard();
}

function renderConsent() {
  const request = state.request;
  show("consent", !!request);
  show("wallet-input", !request && !state.offer);
  if (!request) return;
  $("consent-who").textContent = state.t("consent_who", { who: request.verifier || location.host });
  const list = $("consent-claims");
  list.replaceChildren();
  for (const claim of request.claims) {
    const held = claim.name in state.card.claims;
    const li = item(list, "");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = claim.name;
    box.checked = held && (claim.required || claim.chosen !== false);
    box.disabled = !held || claim.required; // asked without an alternative: share it or refuse all
    box.addEventListener("change", () => { claim.chosen = box.checked; });
    const shown = claim.name === "photo" ? "" : `: ${state.card.claims[claim.name] ?? "—"}`;
    label.append(box, ` ${state.t(`c_${claim.name}`)}${shown}`);
    if (claim.required) label.append(` (${state.t("consent_required")})`);
    li.append(label);
  }
}

function renderOwn() {
  const own = state.own;
  show("own-page", !!own);
  if (!own) return;
  const record = $("own-record");
  record.replaceChildren();
  for (const field of RECORD_FIELDS) {
    const value = own.record?.[field];
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = state.t(`f_${field}`);
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    record.append(dt, dd);
  }
  const credentials = $("own-credentials");
  credentials.replaceChildren();
  for (const c of own.credentials || []) {
    item(credentials, state.t("credential_line", {
      kind: state.t(`kind_${c.kind}`), state: state.t(`state_${c.state}`), until: day(c.expires_at),
    }));
  }
  const checks = $("own-checks");
  checks.replaceChildren();
  for (const check of own.checks) {
    const who = check.by || state.t(check.caller === "anonymous" ? "who_anyone" : "who_client");
    const key = `res_${check.result}`;
    const result = state.t(key) === key ? String(check.result ?? "") : state.t(key);
    item(checks, `${localTime(check.checked_at)} · ${who} · ${result}`);
  }
  if (!own.checks.length) item(checks, state.t("checks_none"));
  const corrections = $("own-corrections");
  corrections.replaceChildren();
  for (const c of own.corrections || []) {
    const line = `${day(c.created_at)} · ${state.t(`f_${c.field}`)} · ${state.t(`fix_${c.status}`)}`;
    const li = item(corrections, line);
    li.dataset.status = c.status;
    if (c.answer) li.append(document.createElement("br"), String(c.answer));
  }
  if (!(own.corrections || []).length) item(corrections, state.t("corrections_none"));
}

/** Redraw every text in the current language (called by app.js on a language change). */
export function applyWalletLanguage(translate) {
  state.t = translate;
  const select = $("fix-field");
  const chosen = select.value;
  select.replaceChildren();
  for (const field of FIX_FIELDS) {
    const option = document.createElement("option");
    option.value = field;
    option.textContent = translate(`f_${field}`);
    select.append(option);
  }
  if (chosen) select.value = chosen;
  const shown = $("wallet-message").dataset.key;
  if (shown) say(shown);
  renderCard();
  renderConsent();
  renderOwn();
}

async function busy(action) {
  if (state.busy) return;
  state.busy = true;
  $("wallet").dataset.busy = "1";
  try {
    await action();
  } catch (error) {
    failed(error);
  } finally {
    state.busy = false;
    delete $("wallet").dataset.busy;
  }
}

function resetFlow() {
  state.offer = null;
  state.request = null;
  show("tx-box", false);
  renderConsent();
}

/** Take a scanned or pasted code: an offer, or an official's request. */
export function take(text) {
  const raw = String(text || "").trim();
  return busy(async () => {
    say(null);
    resetFlow();
    state.own = null;
    renderOwn();
    if (raw.toLowerCase().startsWith(REQUEST_SCHEME)) {
      if (!state.card) throw new WalletError("no_card");
      say("w_fetching");
      state.request = await fetchRequest(raw);
      $("wallet-text").value = "";
      say(null);
      renderConsent();
    } else if (raw.toLowerCase().startsWith(OFFER_SCHEME) || raw.startsWith("{")) {
      state.offer = await readOffer(raw);
      $("wallet-text").value = "";
      show("wallet-input", false);
      show("tx-box", true);
      // The keyboard and length the issuer announces for its code (OpenID4VCI tx_code).
      const { txCode } = state.offer;
      $("tx-code").value = "";
      $("tx-code").inputMode = txCode?.input_mode === "text" ? "text" : "numeric";
      $("tx-code").maxLength = Number.isInteger(txCode?.length) && txCode.length > 0 ? txCode.length : 12;
      $("tx-code").focus();
      if (!state.offer.txCode) await receiveOffer();
    } else {
      throw new WalletError("unknown_code");
    }
  });
}

async function receiveOffer() {
  say("w_receiving");
  const card = await receive(state.offer, $("tx-code").value.trim());
  await saveCard(card);
  state.card = card;
  state.status = null;
  resetFlow();
  $("wallet-text").value = "";
  renderCard();
  say("w_received");
  checkOwnStatus(); // in the background: the card is kept and shown already
}

async function openOwnPage() {
  say("w_fetching");
  state.session = await openSession(state.card);
  state.own = await readOwnPage(state.session);
  say(null);
  renderOwn();
  $("own-page").scrollIntoView();
}

export async function openWallet() {
  $("home").hidden = true;
  $("wallet").hidden = false;
  state.card = await loadCard().catch(() => null);
  state.status = null;
  renderCard();
  renderConsent();
  checkOwnStatus(); // in the background: a link being opened need not wait for the lists
}

export function wireWallet() {
  let scanning = null;
  $("wallet-scan").addEventListener("click", async () => {
    say(null);
    scanning = new AbortController();
    show("wallet-camera", true);
    show("wallet-stop", true);
    try {
      const text = await scanCamera($("wallet-camera"), scanning.signal);
      if (text) await take(text);
    } catch {
      say("no_camera");
    } finally {
      show("wallet-camera", false);
      show("wallet-stop", false);
    }
  });
  $("wallet-stop").addEventListener("click", () => scanning?.abort());
  $("wallet-photo").addEventListener("change", async (event) => {
    say(null);
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    const text = await decodeFile(file).catch(() => null);
    if (text) await take(text); else say("no_code");
  });
  $("wallet-go").addEventListener("click", () => take($("wallet-text").value));
  $("tx-ok").addEventListener("click", () => busy(receiveOffer));
  $("consent-send").addEventListener("click", () => busy(async () => {
    const names = [...$("consent-claims").querySelectorAll("input:checked")].map((box) => box.value);
    say("w_sending");
    await answer(state.request, state.card, names);
    resetFlow();
    say("w_sent");
  }));
  $("consent-no").addEventListener("click", () => busy(async () => {
    const request = state.request;
    resetFlow();
    await decline(request);
    say("w_declined");
  }));
  $("own-open").addEventListener("click", () => busy(openOwnPage));
  $("fix-send").addEventListener("click", () => busy(async () => {
    const text = $("fix-text").value.trim();
    if (!text) return say("w_fix_empty");
    if (!state.session) state.session = await openSession(state.card);
    try {
      await reportError(state.session, $("fix-field").value, text);
    } catch (error) {
      // A session lasts minutes: after a long pause open a new one, once.
      if (error?.code !== "session_expired") throw error;
      state.session = await openSession(state.card);
      await reportError(state.session, $("fix-field").value, text);
    }
    $("fix-text").value = "";
    state.own = await readOwnPage(state.session);
    renderOwn();
    say("w_fix_sent");
  }));
  $("card-remove").addEventListener("click", () => busy(async () => {
    if (!confirm(state.t("remove_confirm"))) return;
    await removeCard();
    state.card = null;
    state.status = null;
    state.own = null;
    state.session = null;
    resetFlow();
    renderCard();
    renderOwn();
  }));
  $("wallet-close").addEventListener("click", () => {
    scanning?.abort();
    resetFlow();
    say(null);
    $("wallet").hidden = true;
    $("home").hidden = false;
  });
}
