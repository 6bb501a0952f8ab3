// The engine: one Promise-returning method per canonical operation, made from the table of the
// core's requests (OPERATIONS). Each runs libtwofa's sans-IO operation state machine: libtwofa
// decides and says what to do next (load a key, write it if its version matches, delete it,
// send a message); this file performs that action with await and feeds the result back. Retries
// after conflicts and the arming of emailed codes stay in the core; nothing here blocks the event
// loop on I/O. With a built-in store (MemoryStore, SqliteStore), libtwofa performs the store
// actions itself in one call, and only mail and audit events come here.

import { TwofaError, cString, call, codes, takeError } from "./errors.js";
import { constants, lib, takeString } from "./native.js";
import { FAILED, NativeStore, SqliteStore, copyAction, perform, reason, withFailure } from "./stores.js";

const { TWOFA_ACTION_DONE: DONE, TWOFA_ACTION_SEND: SEND, TWOFA_ACTION_EMIT: EMIT, TWOFA_CALLBACK_OK: OK } = constants;
const FEED = {
  [constants.TWOFA_ACTION_LOAD]: lib.twofa_operation_feed_load,
  [constants.TWOFA_ACTION_WRITE]: lib.twofa_operation_feed_write,
  [constants.TWOFA_ACTION_DELETE]: lib.twofa_operation_feed_delete,
};

const released = new FinalizationRegistry((core) => lib.twofa_core_free(core));

/** snake_case → camelCase, remembered: results use a few dozen distinct keys. */
const camelCase = new Map();
const camel = (name) => {
  let c = camelCase.get(name);
  if (c === undefined) {
    c = name.replace(/_([a-z0-9])/g, (_, ch) => ch.toUpperCase());
    if (camelCase.size < 1000) camelCase.set(name, c);
  }
  return c;
};

/** A JSON outcome of the core as a plain JS object: camelCase keys, no `type` tag, and the
 * WebAuthn options (JSON text in the core) as objects. */
export function outcome(json) {
  const convert = (value) => {
    if (Array.isArray(value)) return value.map(convert);
    if (value === null || typeof value !== "object") return value;
    const result = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === "type") continue;
      if (key === "options_json") result.options = JSON.parse(v);
      else if (key === "webauthn_options") result.webauthnOptions = v === null ? null : JSON.parse(v);
      else result[camel(key)] = convert(v);
    }
    return result;
  };
  return convert(JSON.parse(json));
}

/** JSON given as an object is serialised; anything else passes as it is (the core checks it). */
const text = (value) => (value !== null && typeof value === "object" ? JSON.stringify(value) : value);
/** A step-up token as returned (`{token, expiresAt}`) or as its text. */
const token = (stepUp) => (stepUp && typeof stepUp === "object" ? stepUp.token : stepUp);

// The core's request of each operation, built from the arguments of its method after `user`;
// the engine sends every request through one sans-IO operation (`#run`). An argument left out
// is left out of the request: the core applies its default.

/** The Engine's methods. */
const OPERATIONS = {
  /** The user's methods, policy state and advice. */
  securityStatus: () => ({ op: "security_status" }),
  /** Sets where security notices go, at once and unproved; the old and the new address are
   * told. Once the user has a usable method or recovery codes it needs a step-up token. */
  setContactEmail: (address, stepUp) => ({ op: "set_contact_email", address, step_up: token(stepUp) }),
  /** Emails a code to a new notice address (`contactEmailConfirm` then makes it the contact
   * email); a step-up token is needed as for `setContactEmail`. */
  contactEmailBegin: (address, stepUp) => ({ op: "contact_email_begin", address, step_up: token(stepUp) }),
  /** Makes the address proved by the code of `contactEmailBegin` the contact email; the old and
   * the new address are told. */
  contactEmailConfirm: (code, stepUp) => ({ op: "contact_email_confirm", code, step_up: token(stepUp) }),
  /** Records that the account has created orders: from now on 2FA is required. */
  markOrderCreated: () => ({ op: "mark_order_created" }),
  /** Starts an authenticator-app enrolment: the secret, otpauth URI and QR code. */
  totpEnrollBegin: (accountName, stepUp) => ({
    op: "totp_enroll_begin",
    account_name: accountName,
    step_up: token(stepUp),
  }),
  /** Confirms the pending authenticator app with a code from it. */
  totpEnrollConfirm: (code, stepUp) => ({ op: "totp_enroll_confirm", code, step_up: token(stepUp) }),
  /** Emails a code to a new address. */
  emailEnrollBegin: (address, stepUp) => ({ op: "email_enroll_begin", address, step_up: token(stepUp) }),
  /** Confirms the pending address with the emailed code. */
  emailEnrollConfirm: (code, stepUp) => ({ op: "email_enroll_confirm", code, step_up: token(stepUp) }),
  /** Starts registering a WebAuthn device: `options` for `navigator.credentials.create`. */
  webauthnRegisterBegin: (friendlyName, stepUp) => ({
    op: "webauthn_register_begin",
    friendly_name: friendlyName,
    step_up: token(stepUp),
  }),
  /** Finishes the registration with the browser's `PublicKeyCredential.toJSON()`. */
  webauthnRegisterFinish: (credential, stepUp) => ({
    op: "webauthn_register_finish",
    credential_json: text(credential),
    step_up: token(stepUp),
  }),
  /** Renames a method. */
  renameMethod: (methodId, label, stepUp) => ({
    op: "rename_method",
    method_id: methodId,
    label,
    step_up: token(stepUp),
  }),
  /** Removes a method, unless policy forbids it; every step-up token of the user is revoked. */
  removeMethod: (methodId, stepUp) => ({ op: "remove_method", method_id: methodId, step_up: token(stepUp) }),
  /** Replaces the recovery codes with a fresh set, shown once. */
  recoveryCodesGenerate: (stepUp) => ({ op: "recovery_codes_generate", step_up: token(stepUp) }),
  /** Starts a sign-in (after the host checked the password). A `deviceToken` from an earlier
   * `loginVerify` with `rememberDevice` skips the second factor while it is valid; an invalid,
   * expired or revoked one is ignored. */
  loginBegin: ({ deviceToken } = {}) => ({ op: "login_begin", device_token: deviceToken }),
  /** Emails a fresh sign-in code for the challenge. */
  loginSendEmailCode: (challenge) => ({ op: "login_send_email_code", challenge }),
  /** Verifies a second factor of `kind` "totp", "email", "recovery" (a code) or "webauthn"
   * (the browser's `PublicKeyCredential.toJSON()`, as an object or JSON text). With
   * `rememberDevice` (and `remember_device.enabled` in the config), the success carries a
   * `deviceToken` for this browser. */
  loginVerify: (challenge, kind, value, { rememberDevice } = {}) => ({
    op: "login_verify",
    challenge,
    proof: { kind, value: text(value) },
    remember_device: rememberDevice,
  }),
  /** Revokes one remembered device (its id from `securityStatus`). */
  revokeRememberedDevice: (deviceId) => ({ op: "revoke_remembered_device", device_id: deviceId }),
  /** Revokes every remembered device of the user. */
  revokeRememberedDevices: () => ({ op: "revoke_remembered_devices" }),
};

/** The methods of `engine.admin()`: each fails with `forbidden` unless the config has
 * `"admin": true`. */
const ADMIN_OPERATIONS = {
  /** Imports a confirmed TOTP secret (base32), replacing any authenticator app. */
  totpImport: (secret, { algorithm = "SHA1", digits = 6, period = 30 } = {}) => ({
    op: "totp_import",
    secret,
    algorithm,
    digits,
    period,
  }),
  /** Deletes everything twofa stores about the user. */
  deleteUser: () => ({ op: "delete_user" }),
  /** Removes every second factor, recovery code and remembered device of a user who lost
   * access, recording `actor` and `reason`; the user is told at every known address. */
  resetUser: (actor, reason) => ({ op: "reset_user", actor, reason }),
  /** Exports the user's second factors as a document sealed with `key` (base64, 32+ bytes). */
  exportUser: (key) => ({ op: "export_user", key }),
  /** Imports a document made by `exportUser` for this same user id, sealed with `key`. */
  importUser: (document, key) => ({ op: "import_user", document, key }),
};

/** The methods that resolve to nothing rather than to the outcome (which has no news for the
 * caller). */
const RESOLVE_TO_NOTHING = new Set([
  "markOrderCreated",
  "revokeRememberedDevice",
  "revokeRememberedDevices",
  "deleteUser",
]);

/** Runs the operation `name` of `table` with `args`, through `run(user, request)`; resolves to
 * its outcome (nothing for RESOLVE_TO_NOTHING). */
async function operate(table, name, run, user, args) {
  const result = await run(user, table[name](...args));
  return RESOLVE_TO_NOTHING.has(name) ? undefined : result;
}

/**
 * A twofa engine: a validated config, a store, a mailer and a clock.
 *
 * `store` is omitted for the embedded SQLite store at the config's `sqlite_path`, or a
 * `MemoryStore`/`SqliteStore`, or any object with `get`/`put`/`delete` (see stores.js), which may
 * be async. `mailer(message)` delivers `{to, subject, text, html}` (it may return a Promise;
 * throwing or rejecting means not delivered). `clock()` returns Unix seconds. `onEvent(event)`
 * receives each audit event (the core's SecurityEvent with camelCase keys: `kind`, `user`, `at`,
 * `method`, `methodId`, `reason`, `actor`) once the change it reports is stored, and may return
 * a Promise, which is awaited; whatever it throws or rejects with is ignored: an audit handler
 * never fails an operation, whose change is already durable.
 */
export class Engine {
  #core;
  #store;
  /** The SQLite store the engine opened itself (no `store` option), closed with it. */
  #ownStore = null;
  #mailer;
  #clock;
  #onEvent;

  constructor(config, { store, mailer, clock, onEvent } = {}) {
    if (onEvent != null && typeof onEvent !== "function") throw new TypeError("onEvent must be a function");
    const json = cString(typeof config === "string" ? config : JSON.stringify(config), "config");
    const out = [null];
    call(lib.twofa_core_new, json, out);
    this.#core = out[0];
    released.register(this, this.#core, this);
    if (store == null) {
      const path = JSON.parse(json).sqlite_path;
      if (typeof path !== "string") {
        this.close();
        throw new TwofaError(codes.invalid_input, "invalid input: no store given and config.sqlite_path is unset");
      }
      store = this.#ownStore = new SqliteStore(path);
    }
    this.#store = store;
    this.#mailer = mailer ?? null;
    this.#clock = clock ?? (() => Date.now() / 1000);
    this.#onEvent = onEvent ?? null;
  }

  /** Releases the engine now rather than at garbage collection (and the SQLite store it opened
   * itself when no `store` was given). Operations in progress must have finished. */
  close() {
    if (this.#core === null) return;
    released.unregister(this);
    lib.twofa_core_free(this.#core);
    this.#core = null;
    this.#ownStore?.close();
  }

  /** Runs one operation to its end; resolves to its outcome object. */
  async #run(user, request, admin = false) {
    if (this.#core === null) throw new TwofaError(codes.invalid_input, "invalid input: the engine was closed");
    const out = [null];
    const start = admin ? lib.twofa_admin_operation_new : lib.twofa_operation_new;
    call(start, this.#core, cString(user, "user"), JSON.stringify(request), this.#now(), out);
    const op = out[0];
    const failures = { [codes.storage]: [], [codes.mail]: [] };
    const native = this.#store instanceof NativeStore ? this.#store : null;
    try {
      const action = {};
      for (;;) {
        if (native) await native.runOperation(op, action);
        else call(lib.twofa_operation_next, op, action);
        if (action.kind === DONE) break;
        if (action.kind === EMIT) {
          await this.#emit(op, action.event_json);
          continue;
        }
        const status =
          action.kind === SEND
            ? await this.#send(op, { ...action }, failures[codes.mail])
            : FEED[action.kind](op, ...(await perform(this.#store, copyAction(action), failures[codes.storage])));
        if (status !== 0) throw new TwofaError(status, lib.twofa_last_error_message());
      }
      const json = [null];
      const err = [null];
      const status = lib.twofa_operation_finish(op, json, err);
      if (status !== 0) throw withFailure(takeError(status, err[0]), failures[status]?.at(-1));
      return outcome(takeString(json[0]));
    } finally {
      lib.twofa_operation_free(op);
    }
  }

  /** The clock's time as whole Unix seconds; a failing or nonsensical clock is `internal`. */
  #now() {
    let now;
    try {
      now = this.#clock();
    } catch (error) {
      throw new TwofaError(codes.internal, "internal error: the clock failed", { callback: "now", cause: error });
    }
    if (typeof now !== "number" || !Number.isFinite(now) || now < 0) {
      throw new TwofaError(codes.internal, `internal error: the clock returned ${reason(now)}`, { callback: "now" });
    }
    return Math.floor(now);
  }

  async #send(op, { to, subject, text, html }, failures) {
    try {
      if (!this.#mailer) throw new Error("no mailer");
      await this.#mailer({ to, subject, text, html });
      return lib.twofa_operation_feed_send(op, OK, null);
    } catch (error) {
      failures.push({ error, callback: "send_mail" });
      return lib.twofa_operation_feed_send(op, FAILED, reason(error));
    }
  }

  /** Hands one audit event (its JSON, copied before anything is awaited) to `onEvent`, then
   * tells the operation it was handled: a handler that throws or rejects is ignored. */
  async #emit(op, json) {
    if (this.#onEvent) {
      try {
        await this.#onEvent(outcome(json));
      } catch {
        // Deliberately ignored: the change is committed and the event handler cannot fail it.
      }
    }
    call(lib.twofa_operation_feed_emitted, op);
  }

  /** The admin capability of this engine: the methods of ADMIN_OPERATIONS. Give it only to
   * administrative code. */
  admin() {
    const run = (user, request) => this.#run(user, request, true);
    const admin = (name) => (user, ...args) => operate(ADMIN_OPERATIONS, name, run, user, args);
    return Object.fromEntries(Object.keys(ADMIN_OPERATIONS).map((name) => [name, admin(name)]));
  }

  // The methods of OPERATIONS, defined as class methods are (not enumerable).
  static {
    for (const name of Object.keys(OPERATIONS)) {
      const value = function (user, ...args) {
        return operate(OPERATIONS, name, (u, request) => this.#run(u, request), user, args);
      };
      Object.defineProperty(Engine.prototype, name, { value, writable: true, configurable: true });
    }
  }
}

