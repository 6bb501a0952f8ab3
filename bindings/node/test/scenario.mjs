// The runner of the shared scenarios (tests/scenarios/*.json, format in its README.md) for
// JavaScript engines: the native Engine of this package and the WASI component through jco
// (examples/node-host). It only translates each step into a method call; the expectations are
// in the JSON. It also checks the audit events each step emitted and, at the end, that no event
// contains a secret the run handled.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateSync } from "otplib";
import { SoftAuthenticator } from "./softauthn.mjs";

const SCENARIOS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "tests", "scenarios");

/** A step did not go as the scenario says. */
export class ScenarioFailed extends Error {}

/** A scenario file by name ("security_tab"). */
export function load(name) {
  return JSON.parse(readFileSync(join(SCENARIOS, `${name}.json`), "utf8"));
}

/** The TOTP code of a base32 secret at `t`, by otplib (independent of twofa). */
export function totpCode(secret, t, { algorithm = "SHA1", digits = 6, period = 30 } = {}) {
  return generateSync({ secret, epoch: t, algorithm: algorithm.toLowerCase(), digits, period });
}

/** A well-formed code that is none of the secret's codes within two steps of `t`. */
export function wrongTotp(secret, t) {
  const valid = new Set([-2, -1, 0, 1, 2].map((k) => totpCode(secret, t + 30 * k)));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, "0");
    if (!valid.has(code)) return code;
  }
}

/** The first run of 6+ digits in the last message to `address`. */
export function mailedCode(outbox, address) {
  const message = outbox.findLast((m) => m.to === address);
  if (!message) throw new ScenarioFailed(`no mail to ${address}`);
  const found = message.text.match(/\d{6,}/);
  if (!found) throw new ScenarioFailed(`no code in the mail to ${address}`);
  return found[0];
}

/** A path segment of the scenario (the core's snake_case names) as this surface names it. */
const segment = (name) =>
  name === "options_json" ? "options" : name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

/** The value at a dotted path (field names, array indexes, `length`). */
export function lookup(value, path) {
  for (const name of path ? path.split(".") : []) {
    if (name === "length" && (Array.isArray(value) || typeof value === "string")) value = value.length;
    else if (Array.isArray(value)) value = value[Number(name)];
    else if (value !== null && typeof value === "object" && segment(name) in value) value = value[segment(name)];
    else throw new ScenarioFailed(`no ${JSON.stringify(name)} in ${JSON.stringify(value)} (path ${path})`);
  }
  return value;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** Fields of an outcome whose strings are secrets (README, "Events"). */
const SECRET_FIELDS = new Set(["secret", "uri", "token", "codes", "document"]);

/** Every string under a secret field of `value`, added to `secrets`. */
function collectSecrets(value, secrets, secret = false) {
  if (typeof value === "string") {
    if (secret && value.length > 0) secrets.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectSecrets(v, secrets, secret);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) collectSecrets(v, secrets, secret || SECRET_FIELDS.has(k));
  }
}

/** Whether `value` meets `expected` (a JSON value or a matcher object). */
export function matches(value, expected) {
  if (expected !== null && typeof expected === "object" && !Array.isArray(expected)) {
    const [[matcher, arg], ...rest] = Object.entries(expected);
    if (rest.length === 0) {
      if (matcher === "gt") return typeof value === "number" && value > arg;
      if (matcher === "prefix") return typeof value === "string" && value.startsWith(arg);
      if (matcher === "contains") return (typeof value === "string" || Array.isArray(value)) && value.includes(arg);
      if (matcher === "not") return !matches(value, arg);
    }
  }
  return same(value, expected);
}

/** Runs one scenario against an engine whose clock and outbox the runner controls. */
export class Runner {
  /**
   * @param {object} engine an object with the camelCase operations of twofa's Engine
   * @param {{t: number}} clock the engine's clock, which the runner sets
   * @param {{to: string, text: string}[]} outbox every message the engine's mailer delivered
   * @param {string} origin the browser origin of the WebAuthn ceremonies
   * @param {{events?: object[], open?: (config: object) => object}} [options] `events`: every
   *   audit event the engine's event handler received, in order (steps with `events` need it);
   *   `open(config)`: an engine like `engine` (same store, clock, mailer and event handler) with
   *   another config, closed after use if it has `close` (`without_admin` steps need it)
   */
  constructor(engine, clock, outbox, origin, { events = null, open = null } = {}) {
    Object.assign(this, { engine, clock, outbox, origin, events, open });
    this.vars = new Map();
    this.authenticators = new Map();
    this.transcript = [];
    /** Every value of the run that is a secret: codes computed or mailed, secret outcome fields. */
    this.secrets = new Set();
    /** The scenario's config (set by `run`). */
    this.config = null;
  }

  /** Evaluates a value expression. */
  async value(v) {
    if (typeof v === "string" && v.startsWith("$")) {
      const [name, ...path] = v.slice(1).split(".");
      if (!this.vars.has(name)) throw new ScenarioFailed(`variable ${name} was never saved`);
      return lookup(this.vars.get(name), path.join("."));
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const now = this.clock.t;
    // Wrong codes are no secrets (and "000000" would be found in every timestamp).
    if ("totp" in v) return this.secret(totpCode(await this.value(v.totp), now, v));
    if ("wrong_totp" in v) return wrongTotp(await this.value(v.wrong_totp), now);
    if ("mailed_code" in v) return this.secret(mailedCode(this.outbox, v.mailed_code));
    if ("wrong_mailed_code" in v) {
      return [...mailedCode(this.outbox, v.wrong_mailed_code)].map((d) => (Number(d) + 1) % 10).join("");
    }
    if ("webauthn_create" in v || "webauthn_get" in v) {
      if (!this.authenticators.has(v.authenticator)) {
        this.authenticators.set(v.authenticator, new SoftAuthenticator(this.origin));
      }
      const key = this.authenticators.get(v.authenticator);
      const response =
        "webauthn_create" in v
          ? await key.register(await this.value(v.webauthn_create), { sameCredential: v.same_credential === true })
          : await key.signIn(await this.value(v.webauthn_get), { signCount: v.sign_count });
      return JSON.stringify(response);
    }
    const result = {};
    for (const [k, x] of Object.entries(v)) result[k] = await this.value(x);
    return result;
  }

  /** Records `code` as a secret of the run and returns it. */
  secret(code) {
    this.secrets.add(code);
    return code;
  }

  /** Calls the engine method of a canonical operation with the step's arguments (on `e`,
   * by default the runner's engine). */
  call(op, user, a, e = this.engine) {
    const calls = {
      security_status: () => e.securityStatus(user),
      set_contact_email: () => e.setContactEmail(user, a.address, a.step_up),
      contact_email_begin: () => e.contactEmailBegin(user, a.address, a.step_up),
      contact_email_confirm: () => e.contactEmailConfirm(user, a.code, a.step_up),
      mark_order_created: () => e.markOrderCreated(user),
      totp_enroll_begin: () => e.totpEnrollBegin(user, a.account_name, a.step_up),
      totp_enroll_confirm: () => e.totpEnrollConfirm(user, a.code, a.step_up),
      email_enroll_begin: () => e.emailEnrollBegin(user, a.address, a.step_up),
      email_enroll_confirm: () => e.emailEnrollConfirm(user, a.code, a.step_up),
      webauthn_register_begin: () => e.webauthnRegisterBegin(user, a.friendly_name, a.step_up),
      webauthn_register_finish: () => e.webauthnRegisterFinish(user, a.credential_json, a.step_up),
      rename_method: () => e.renameMethod(user, a.method_id, a.label, a.step_up),
      remove_method: () => e.removeMethod(user, a.method_id, a.step_up),
      recovery_codes_generate: () => e.recoveryCodesGenerate(user, a.step_up),
      login_begin: () => e.loginBegin(user, { deviceToken: a.device_token }),
      login_send_email_code: () => e.loginSendEmailCode(user, a.challenge),
      login_verify: () =>
        e.loginVerify(user, a.challenge, a.proof.kind, a.proof.value, { rememberDevice: a.remember_device }),
      revoke_remembered_device: () => e.revokeRememberedDevice(user, a.device_id),
      revoke_remembered_devices: () => e.revokeRememberedDevices(user),
      "admin.totp_import": () =>
        e.admin().totpImport(user, a.secret, { algorithm: a.algorithm, digits: a.digits, period: a.period }),
      "admin.delete_user": () => e.admin().deleteUser(user),
      "admin.reset_user": () => e.admin().resetUser(user, a.actor, a.reason),
      "admin.export_user": () => e.admin().exportUser(user, a.key),
      "admin.import_user": () => e.admin().importUser(user, a.document, a.key),
    };
    if (!(op in calls)) throw new ScenarioFailed(`unknown op ${op}`);
    return calls[op]();
  }

  /** Runs one step (all its repeats). */
  async step(index, step) {
    if ("time" in step) return void (this.clock.t = step.time);
    if ("advance" in step) return void (this.clock.t += step.advance);
    const { op, user } = step;
    const where = `step ${index} (${op} ${user}${step.note ? `: ${step.note}` : ""})`;
    const expect = step.expect ?? "ok";
    if ("events" in step && this.events === null) throw new ScenarioFailed(`${where}: this runner records no events`);
    if (step.without_admin && this.open === null) throw new ScenarioFailed(`${where}: this runner cannot open engines`);
    for (let run = 0; run < (step.repeat ?? 1); run++) {
      const args = await this.value(step.args ?? {});
      const sentBefore = this.outbox.length;
      const eventsBefore = this.events?.length ?? 0;
      let got;
      let subject;
      const engine = step.without_admin ? this.open({ ...this.config, admin: false }) : this.engine;
      try {
        subject = (await this.call(op, user, args, engine)) ?? {};
        collectSecrets(subject, this.secrets);
        got = "ok";
        this.transcript.push(`${op} ${user}: ok`);
      } catch (error) {
        if (typeof error?.code !== "number") throw error;
        got = error.name;
        subject = { name: error.name, code: error.code, retryAfter: error.retryAfter };
        const suffix = error.retryAfter != null ? ` retry_after=${error.retryAfter}` : "";
        this.transcript.push(`${op} ${user}: ${error.name}${suffix}`);
        if (expect === "ok") throw new ScenarioFailed(`${where}: expected success, got ${error.name}: ${error.message}`);
      } finally {
        if (engine !== this.engine) engine.close?.();
      }
      if (got !== expect) throw new ScenarioFailed(`${where}: expected ${expect}, got ${got}`);
      for (const [path, expected] of Object.entries(step.check ?? {})) {
        const actual = lookup(subject, path);
        if (!matches(actual, expected)) {
          throw new ScenarioFailed(`${where}: ${path} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
        }
      }
      for (const [name, path] of Object.entries(step.save ?? {})) this.vars.set(name, lookup(subject, path));
      const sent = this.outbox.length - sentBefore;
      if ("mails" in step && sent !== step.mails) {
        throw new ScenarioFailed(`${where}: ${sent} mails sent, expected ${step.mails}`);
      }
      if ("events" in step) this.checkEvents(where, this.events.slice(eventsBefore), step.events);
    }
  }

  /** Checks the events a step emitted against the step's `events` (count, then listed fields). */
  checkEvents(where, emitted, expected) {
    const shown = JSON.stringify(emitted);
    if (emitted.length !== expected.length) {
      throw new ScenarioFailed(`${where}: ${emitted.length} events emitted, expected ${expected.length}: ${shown}`);
    }
    for (const [i, fields] of expected.entries()) {
      for (const [field, value] of Object.entries(fields)) {
        let actual;
        try {
          actual = lookup(emitted[i], field);
        } catch {
          throw new ScenarioFailed(`${where}: event ${i} has no ${field}: ${shown}`);
        }
        if (!matches(actual, value)) {
          throw new ScenarioFailed(
            `${where}: event ${i} ${field} is ${JSON.stringify(actual)}, expected ${JSON.stringify(value)}: ${shown}`,
          );
        }
      }
    }
  }

  /** Fails if a string of any recorded event contains a secret of the run (numbers are not
   * searched: a 6-digit code may well occur inside a timestamp). */
  checkNoSecretInEvents() {
    for (const [i, event] of (this.events ?? []).entries()) {
      for (const text of Object.values(event).filter((v) => typeof v === "string")) {
        for (const secret of this.secrets) {
          if (text.includes(secret)) {
            throw new ScenarioFailed(`event ${i} contains a secret of the run: ${JSON.stringify(event)}`);
          }
        }
      }
    }
  }

  /** Runs every step; resolves to the transcript. */
  async run(scenario) {
    this.config = scenario.config;
    for (const [index, step] of scenario.steps.entries()) await this.step(index, step);
    this.checkNoSecretInEvents();
    return this.transcript;
  }
}
