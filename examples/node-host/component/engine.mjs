// ComponentEngine: the twofa engine as a WASI component (transpiled by jco, see build.mjs),
// behind the same API as the native `Engine` of the `twofa` package: camelCase methods that
// return Promises, the same result objects (camelCase keys, `null` for none, numbers for u64
// times, WebAuthn options as objects) and the same errors (`.code`, snake_case `.name`,
// `.retryAfter`). Code written against `Engine` runs on it unchanged; it needs no native
// library, only Node and the generated module (run build.mjs first).
//
// Differences that remain: the store, the mailer and the event handler are called synchronously
// (jco imports are synchronous; a Promise from `onEvent` is not awaited), and every call runs
// the component on the calling thread.

import { engine as wit } from "./gen/twofa/twofa.js";
import { MapStore, StoreConflict, withHost } from "./host.mjs";

export { MapStore, StoreConflict };

/** The stable status codes by name, as in the WIT `error` variant (and libtwofa's header). */
export const codes = Object.freeze({
  invalid_input: 1,
  invalid_code: 2,
  expired: 3,
  replayed: 4,
  rate_limited: 5,
  locked_out: 6,
  not_enrolled: 7,
  step_up_required: 8,
  policy_violation: 9,
  not_found: 10,
  webauthn_rejected: 11,
  storage: 12,
  conflict: 13,
  mail: 14,
  unsupported_schema: 15,
  panic: 16,
  internal: 17,
  forbidden: 18,
});

/** The core's message of each error (core/src/error.rs), from the WIT payload. */
const MESSAGES = {
  invalid_input: (m) => `invalid input: ${m}`,
  invalid_code: () => "the code is not valid",
  expired: () => "expired: start again",
  replayed: () => "this code was already used",
  rate_limited: (s) => `too soon: retry in ${s} s`,
  locked_out: (s) => `too many failed attempts: retry in ${s} s`,
  not_enrolled: () => "no such method or pending enrolment",
  step_up_required: () => "a valid step-up token is required",
  policy_violation: (m) => `refused by policy: ${m}`,
  not_found: (m) => `not found: ${m}`,
  webauthn_rejected: (m) => `WebAuthn response rejected: ${m}`,
  storage: (m) => `storage failed: ${m}`,
  conflict: () => "concurrent updates kept conflicting: retry",
  mail: (m) => `mail delivery failed: ${m}`,
  unsupported_schema: () => "the stored record comes from a newer twofa version",
  panic: () => "internal panic caught at the boundary",
  internal: (m) => `internal error: ${m}`,
  forbidden: (m) => `forbidden: ${m}`,
};

/** A failure reported by the twofa component, shaped like the native package's TwofaError. */
export class TwofaError extends Error {
  constructor(code, message, { retryAfter = null, callback = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.name = Object.keys(codes).find((name) => codes[name] === code) ?? "internal";
    this.retryAfter = retryAfter;
    this.callback = callback;
  }
}

const snake = (kebab) => kebab.replaceAll("-", "_");
const invalid = (message) => new TwofaError(codes.invalid_input, MESSAGES.invalid_input(message));

/** A thrown WIT `error` (`{tag, val}`, in a ComponentError's payload) as a TwofaError; anything
 * else (a trap, a bug) as `internal`. */
function failure(thrown) {
  if (thrown instanceof TwofaError) return thrown;
  const payload = thrown !== null && typeof thrown === "object" && "payload" in thrown ? thrown.payload : thrown;
  const name = typeof payload?.tag === "string" ? snake(payload.tag) : null;
  if (name === null || !(name in codes)) {
    const what = thrown instanceof Error ? thrown.message : String(thrown);
    return new TwofaError(codes.internal, MESSAGES.internal(`the component failed: ${what}`), { cause: thrown });
  }
  const timed = name === "rate_limited" || name === "locked_out";
  const retryAfter = timed ? Number(payload.val) : null;
  return new TwofaError(codes[name], MESSAGES[name](timed ? retryAfter : payload.val), { retryAfter });
}

// Arguments: checked here, so that a wrong type is `invalid_input` as in the native engine
// rather than a TypeError from jco's lowering.

function text(name, value) {
  if (typeof value !== "string") throw invalid(`${name}: a string is required`);
  return value;
}

/** A JSON argument: text as is, anything else serialised (as the native engine does). */
const json = (name, value) => text(name, typeof value === "string" ? value : JSON.stringify(value));

/** A step-up token argument (a token object, its text, or none) as `option<string>`. */
function stepUp(value) {
  const token = value !== null && typeof value === "object" ? value.token : value;
  return token == null ? undefined : text("step_up", token);
}

// Results: WIT records (kebab enums, `undefined` for none, BigInt for u64) → the native shapes.

const none = (value, convert = (v) => v) => (value === undefined || value === null ? null : convert(value));
const num = (value) => Number(value);
const notices = (n) => ({ sent: n.sent, failed: [...n.failed] });
const token = (t) => ({ token: t.token, expiresAt: num(t.expiresAt) });
const method = (m) => ({
  id: m.id,
  kind: m.kind,
  label: m.label,
  created: num(m.created),
  lastUsed: none(m.lastUsed, num),
  flagged: m.flagged,
});

const convert = {
  securityStatus: (s) => ({
    methods: s.methods.map(method),
    recoveryCodesLeft: s.recoveryCodesLeft,
    twoFactorRequired: s.twoFactorRequired,
    compliant: s.compliant,
    recommendations: s.recommendations.map(snake),
    warnings: s.warnings.map(snake),
    contactEmail: none(s.contactEmail),
    pending: { totp: s.pending.totp, email: none(s.pending.email), webauthn: s.pending.webauthn },
    lockedUntil: none(s.lockedUntil, num),
    enrollmentDeadline: none(s.enrollmentDeadline, num),
    rememberedDevices: s.rememberedDevices.map((d) => ({
      id: d.id,
      method: d.method,
      created: num(d.created),
      expiresAt: num(d.expiresAt),
      lastUsed: none(d.lastUsed, num),
    })),
    lastReset: none(s.lastReset, (r) => ({ actor: r.actor, reason: r.reason, at: num(r.at) })),
  }),
  notices,
  method,
  totpSetup: (t) => ({ secret: t.secret, uri: t.uri, qrSvg: t.qrSvg, expiresAt: num(t.expiresAt) }),
  methodAdded: (m) => ({ method: method(m.method), stepUp: none(m.stepUp, token), notices: notices(m.notices) }),
  codeSent: (c) => ({ sentTo: [...c.sentTo], expiresAt: num(c.expiresAt), resendAfter: num(c.resendAfter) }),
  registration: (r) => ({ options: JSON.parse(r.optionsJson), expiresAt: num(r.expiresAt) }),
  recoveryCodes: (r) => ({ codes: [...r.codes], notices: notices(r.notices) }),
  challenge: (c) => ({
    challengeId: none(c.challengeId),
    secondFactorRequired: c.secondFactorRequired,
    enrollmentRequired: c.enrollmentRequired,
    methods: [...c.methods],
    webauthnOptions: none(c.webauthnOptions, JSON.parse),
    expiresAt: none(c.expiresAt, num),
    enrollmentDeadline: none(c.enrollmentDeadline, num),
    rememberedDevice: none(c.rememberedDevice),
  }),
  loginSuccess: (s) => ({
    method: s.method,
    methodId: none(s.methodId),
    stepUp: token(s.stepUp),
    recoveryCodesLeft: none(s.recoveryCodesLeft),
    deviceToken: none(s.deviceToken, (t) => ({ token: t.token, deviceId: t.deviceId, expiresAt: num(t.expiresAt) })),
    notices: notices(s.notices),
  }),
  resetDone: (r) => ({ methodsRemoved: r.methodsRemoved, notices: notices(r.notices) }),
  userExport: (document) => ({ document }),
  userImported: (i) => ({ methods: i.methods.map(method), skipped: [...i.skipped] }),
  /** A WIT security-event as the native package's event (snake_case kinds, camelCase keys). */
  event: (e) => ({
    kind: snake(e.kind),
    user: e.user,
    at: num(e.at),
    method: none(e.method),
    methodId: none(e.methodId),
    reason: none(e.reason),
    actor: none(e.actor),
  }),
  nothing: () => undefined,
};

const PROOFS = new Set(["totp", "email", "webauthn", "recovery"]);
const ALGORITHMS = { SHA1: "sha1", SHA256: "sha256", SHA512: "sha512" };

/**
 * The twofa engine as a WASI component, with the API of the native `Engine`.
 *
 * `store`: an object with synchronous `get(key)` → `{value, version}` | null,
 * `put(key, value, expectedVersion)` → new version, `delete(key, expectedVersion)`, throwing
 * `StoreConflict` on a version mismatch; default a fresh in-memory `MapStore`.
 * `mailer(message)`: delivers `{to, subject, text, html}` synchronously (throwing means not
 * delivered). `clock()`: Unix seconds (default the system clock). `onEvent(event)`: receives
 * each audit event, shaped as the native package's (`kind`, `user`, `at`, `method`, `methodId`,
 * `reason`, `actor`), synchronously once the change it reports is stored; whatever it throws is
 * ignored (a returned Promise is not awaited).
 */
export class ComponentEngine {
  #engine;
  #admin = null;
  #config;
  #host;

  constructor(config, { store, mailer, clock, onEvent } = {}) {
    if (onEvent != null && typeof onEvent !== "function") throw new TypeError("onEvent must be a function");
    this.#config = json("config", config);
    this.#host = {
      store: store ?? new MapStore(),
      mailer: mailer ?? null,
      emit: onEvent ? (event) => onEvent(convert.event(event)) : null,
      clock: clock ?? (() => Date.now() / 1000),
    };
    this.#engine = this.#enter(() => wit.Engine.open(this.#config));
  }

  /** Runs a component call with this engine's host; a WIT error becomes a TwofaError. */
  #enter(call) {
    try {
      return withHost(this.#host, call);
    } catch (thrown) {
      throw failure(thrown);
    }
  }

  /** One engine operation: `args()` builds (and checks) the arguments, so that a bad one
   * rejects the Promise as in the native engine; the result is converted to the native shape. */
  async #call(operation, result, args) {
    const values = args();
    if (!this.#engine) throw new TwofaError(codes.invalid_input, MESSAGES.invalid_input("the engine is closed"));
    return convert[result](this.#enter(() => this.#engine[operation](...values)));
  }

  securityStatus(user) {
    return this.#call("securityStatus", "securityStatus", () => [text("user", user)]);
  }

  /** Sets where notices go, for an address the host has already proved: a change from another
   * address is told to both (a first address is not mailed). Needs a step-up token once the
   * user has a method. */
  setContactEmail(user, address, step) {
    return this.#call("setContactEmail", "notices", () => [text("user", user), text("address", address), stepUp(step)]);
  }

  /** Sends a confirmation code to a new notice address; `contactEmailConfirm` makes it the
   * notice address. */
  contactEmailBegin(user, address, step) {
    return this.#call("contactEmailBegin", "codeSent", () => [text("user", user), text("address", address), stepUp(step)]);
  }

  /** Makes the address of `contactEmailBegin` the notice address with the code sent to it; a
   * previous address and the new one are told. */
  contactEmailConfirm(user, code, step) {
    return this.#call("contactEmailConfirm", "notices", () => [text("user", user), text("code", code), stepUp(step)]);
  }

  markOrderCreated(user) {
    return this.#call("markOrderCreated", "nothing", () => [text("user", user)]);
  }

  totpEnrollBegin(user, accountName, step) {
    return this.#call("totpEnrollBegin", "totpSetup", () => [text("user", user), text("account_name", accountName), stepUp(step)]);
  }

  totpEnrollConfirm(user, code, step) {
    return this.#call("totpEnrollConfirm", "methodAdded", () => [text("user", user), text("code", code), stepUp(step)]);
  }

  emailEnrollBegin(user, address, step) {
    return this.#call("emailEnrollBegin", "codeSent", () => [text("user", user), text("address", address), stepUp(step)]);
  }

  emailEnrollConfirm(user, code, step) {
    return this.#call("emailEnrollConfirm", "methodAdded", () => [text("user", user), text("code", code), stepUp(step)]);
  }

  webauthnRegisterBegin(user, friendlyName, step) {
    return this.#call("webauthnRegisterBegin", "registration", () => [
      text("user", user),
      text("friendly_name", friendlyName),
      stepUp(step),
    ]);
  }

  webauthnRegisterFinish(user, credential, step) {
    return this.#call("webauthnRegisterFinish", "methodAdded", () => [
      text("user", user),
      json("credential_json", credential),
      stepUp(step),
    ]);
  }

  renameMethod(user, methodId, label, step) {
    return this.#call("renameMethod", "method", () => [
      text("user", user),
      text("method_id", methodId),
      text("label", label),
      stepUp(step),
    ]);
  }

  removeMethod(user, methodId, step) {
    return this.#call("removeMethod", "notices", () => [text("user", user), text("method_id", methodId), stepUp(step)]);
  }

  recoveryCodesGenerate(user, step) {
    return this.#call("recoveryCodesGenerate", "recoveryCodes", () => [text("user", user), stepUp(step)]);
  }

  /** A `deviceToken` from an earlier `loginVerify` with `rememberDevice` skips the second factor
   * while it is valid; an invalid, expired or revoked one is ignored. */
  loginBegin(user, { deviceToken = null } = {}) {
    return this.#call("loginBegin", "challenge", () => [
      text("user", user),
      deviceToken == null ? undefined : text("device_token", deviceToken),
    ]);
  }

  loginSendEmailCode(user, challenge) {
    return this.#call("loginSendEmailCode", "codeSent", () => [text("user", user), text("challenge", challenge)]);
  }

  /** `kind` "totp", "email", "recovery" (a code) or "webauthn" (PublicKeyCredential JSON). With
   * `rememberDevice` (and `remember_device.enabled` in the config), the success carries a
   * `deviceToken` for this browser. */
  loginVerify(user, challenge, kind, value, { rememberDevice = false } = {}) {
    return this.#call("loginVerify", "loginSuccess", () => {
      if (!PROOFS.has(kind)) throw invalid(`proof.kind: one of ${[...PROOFS].join(", ")} is required`);
      if (typeof rememberDevice !== "boolean") throw invalid("remember_device: a boolean is required");
      const proof = { tag: kind, val: json("proof.value", value) };
      return [text("user", user), text("challenge", challenge), proof, rememberDevice];
    });
  }

  /** Revokes one remembered device (its id from `securityStatus`). */
  revokeRememberedDevice(user, deviceId) {
    return this.#call("revokeRememberedDevice", "nothing", () => [text("user", user), text("device_id", deviceId)]);
  }

  /** Revokes every remembered device of the user. */
  revokeRememberedDevices(user) {
    return this.#call("revokeRememberedDevices", "nothing", () => [text("user", user)]);
  }

  /** The admin capability (opened on first use). Give it only to administrative code. Its
   * operations fail with `forbidden` unless the config has `"admin": true`. */
  admin() {
    const admin = () => (this.#admin ??= this.#enter(() => wit.Admin.open(this.#config)));
    const call = async (operation, args) => {
      const values = args();
      return this.#enter(() => admin()[operation](...values));
    };
    return {
      /** Imports a confirmed TOTP secret (base32), replacing any authenticator app. */
      totpImport: async (user, secret, { algorithm = "SHA1", digits = 6, period = 30 } = {}) =>
        convert.methodAdded(
          await call("totpImport", () => {
            if (!(algorithm in ALGORITHMS)) throw invalid("algorithm: SHA1, SHA256 or SHA512");
            if (!Number.isInteger(digits) || digits < 0 || digits > 255) throw invalid("digits: an integer");
            if (!Number.isSafeInteger(period) || period < 0) throw invalid("period: a non-negative integer");
            return [text("user", user), text("secret", secret), ALGORITHMS[algorithm], digits, BigInt(period)];
          }),
        ),
      /** Deletes everything twofa stores about the user. */
      deleteUser: async (user) => {
        await call("deleteUser", () => [text("user", user)]);
      },
      /** Removes every second factor, recovery code and remembered device of a user who lost
       * access, recording `actor` and `reason`; the user is told at every known address. */
      resetUser: async (user, actor, reason) =>
        convert.resetDone(await call("resetUser", () => [text("user", user), text("actor", actor), text("reason", reason)])),
      /** Exports the user's second factors as a document sealed with `key` (base64, 32+ bytes). */
      exportUser: async (user, key) => convert.userExport(await call("exportUser", () => [text("user", user), text("key", key)])),
      /** Imports a document made by `exportUser` for this same user id, sealed with `key`. */
      importUser: async (user, document, key) =>
        convert.userImported(
          await call("importUser", () => [text("user", user), text("document", document), text("key", key)]),
        ),
    };
  }

  /** Frees the component's engine (and admin) resources; the engine is unusable afterwards. */
  close() {
    this.#admin?.[Symbol.dispose]();
    this.#engine?.[Symbol.dispose]();
    this.#admin = this.#engine = null;
  }

  [Symbol.dispose]() {
    this.close();
  }
}
