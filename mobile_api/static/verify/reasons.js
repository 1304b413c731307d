// Written by scripts/web_reasons.py from STATUS_PRIORITY in idsvc/verification/rules.py: do not
// edit; change the order there and run `python scripts/web_reasons.py`
// (tests/web/test_reasons_js.py fails until this file matches).

/** [reason, status] pairs, the most serious first: a result's status is that of the
 * first reason here it holds ("valid" with no reason, "invalid" with none of these). */
export const STATUS_PRIORITY = Object.freeze([
  Object.freeze(["CARD_NOT_GENUINE", "not_genuine"]),
  Object.freeze(["HOLDER_BINDING_INVALID", "not_genuine"]),
  Object.freeze(["REVOKED", "revoked"]),
  Object.freeze(["HOLDER_INACTIVE", "revoked"]),
  Object.freeze(["SUSPENDED", "suspended"]),
  Object.freeze(["EXPIRED", "expired"]),
  Object.freeze(["NOT_YET_VALID", "not_yet_valid"]),
  Object.freeze(["STATUS_UNAVAILABLE", "unknown"]),
  Object.freeze(["TRUST_STALE", "unknown"]),
]);
