// The demo's logic, one method per JSON endpoint: accounts (email + scrypt password), orders,
// and the twofa engine calls of the Security tab, the sign-in with a second factor and the
// "Confirm it's you" step-up. HTTP, cookies and CSRF are server.mjs's; this file gets the
// session object and the parsed body, and says what to answer.
//
// Sessions hold, server side only: `userId` (signed in), `pending` (a sign-in waiting for its
// second factor), `stepUp` (the latest step-up token: proof of a recent second factor, which
// twofa requires for every change of the user's methods) and `stepUpChallenge` (a "Confirm it's
// you" in progress). A browser may also hold, per account, a device token from "Don't ask again
// on this browser": server.mjs keeps it in a cookie and hands it over as `client.deviceToken`.

import { randomBytes, randomUUID, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { TwofaError } from "twofa";

const scrypt = promisify(scryptCallback);
const SCRYPT = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 1024;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const KINDS = ["totp", "email", "webauthn", "recovery"];
const PRODUCTS = ["Coffee beans", "Tea sampler", "Notebook", "Desk lamp", "Headphones", "Plant pot", "Backpack"];

/** A refusal answered as JSON `{error, message, ...extra}` with an HTTP status. */
export class AppError extends Error {
  constructor(status, error, message, extra = {}) {
    super(message);
    this.status = status;
    this.error = error;
    this.extra = extra;
  }
}

// Errors in plain words

/** The HTTP status of each twofa error; anything else is 500. */
const STATUS = {
  invalid_input: 400,
  invalid_code: 401,
  expired: 401,
  replayed: 401,
  webauthn_rejected: 401,
  step_up_required: 403,
  policy_violation: 403,
  not_enrolled: 409,
  conflict: 409,
  not_found: 404,
  forbidden: 403,
  rate_limited: 429,
  locked_out: 429,
  mail: 503,
  storage: 503,
};

const seconds = (n) => `${n} second${n === 1 ? "" : "s"}`;

/** What the user reads for a twofa error; `context` says where it happened. */
export function plainWords(error, context = "") {
  const wait = Math.max(1, Math.ceil(error.retryAfter ?? 1));
  switch (error.name) {
    case "invalid_code":
      return "That code is not right.";
    case "expired":
      if (context === "totp") return "This setup has expired: turn the switch off and on again for a new QR code.";
      if (context === "webauthn") return "This registration has expired: start again.";
      return "That code has expired: ask for a new one.";
    case "replayed":
      return "That code was already used: wait for the next one.";
    case "locked_out":
      return `Too many attempts: try again in ${seconds(wait)}.`;
    case "rate_limited":
      return `Please wait ${seconds(wait)} before asking for a new code.`;
    case "policy_violation":
      return "2FA is required for your account: keep at least one method.";
    case "webauthn_rejected":
      return error.message.includes("already registered")
        ? "This security key is already registered."
        : "The security key could not be verified.";
    case "step_up_required":
      return "Confirm it's you first.";
    case "not_enrolled":
      if (context === "recovery") return "Set up a method first: recovery codes back up your other methods.";
      if (context === "email-code") return "No email address is set up for your account.";
      return "There is nothing to confirm: start again.";
    case "not_found":
      if (error.message.includes("code")) return "No code is waiting: ask for a new one.";
      return "That item no longer exists: reload the page.";
    case "invalid_input":
      return invalidInput(error.message, context);
    case "conflict":
      return "Your account changed at the same time elsewhere: try again.";
    case "mail":
      return "The email could not be sent: try again in a moment.";
    default:
      return "Something went wrong on our side: try again.";
  }
}

function invalidInput(message, context) {
  if (message.includes("already a confirmed method")) return "That address is already set up.";
  if (message.includes("email address")) return "That email address is not valid.";
  if (message.includes("name")) return "Give it a name of 1 to 64 characters.";
  if (message.includes("code")) {
    return context === "recovery-code"
      ? "That is not a recovery code: they look like xxxxx-xxxxx."
      : "Enter the code as shown: digits only.";
  }
  return "That input is not valid.";
}

/** A twofa error as an AppError (plain words, the HTTP status, retryAfter when there is one). */
export function fromTwofa(error, context) {
  const extra = error.retryAfter == null ? {} : { retryAfter: error.retryAfter };
  return new AppError(STATUS[error.name] ?? 500, error.name, plainWords(error, context), extra);
}

/** Runs a twofa call; its failure becomes an AppError in plain words. */
async function engineCall(context, fn) {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof TwofaError) throw fromTwofa(error, context);
    throw error;
  }
}

// Accounts

/** A salted scrypt hash. */
async function hashPassword(password, salt = randomBytes(16)) {
  return { salt, hash: await scrypt(password, salt, 32, SCRYPT) };
}

/** Accounts and their orders, kept in a JSON file (rewritten whole on each change). Each account
 * has a random id, which is its twofa user id. */
export class Accounts {
  #path;
  #byId = new Map();
  #byEmail = new Map();
  // Checked for unknown emails, so that they take as long as a wrong password.
  #decoy = hashPassword(randomUUID());

  constructor(path) {
    this.#path = path;
    if (existsSync(path)) {
      for (const a of JSON.parse(readFileSync(path, "utf8")).accounts) this.#index(a);
    }
  }

  #index(account) {
    this.#byId.set(account.id, account);
    this.#byEmail.set(account.email, account);
  }

  #save() {
    const tmp = `${this.#path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ accounts: [...this.#byId.values()] }, null, 1), { mode: 0o600 });
    renameSync(tmp, this.#path);
  }

  byId(id) {
    return (id && this.#byId.get(id)) || null;
  }

  byEmail(email) {
    return this.#byEmail.get(email) ?? null;
  }

  hasEmail(email) {
    return this.#byEmail.has(email);
  }

  /** Creates an account (the email must be free); returns it. */
  async create(id, email, password, now) {
    const { salt, hash } = await hashPassword(password);
    if (this.#byEmail.has(email)) throw new AppError(409, "email_taken", "An account with this email already exists.");
    const account = { id, email, salt: salt.toString("hex"), hash: hash.toString("hex"), created: now, orders: [] };
    this.#index(account);
    this.#save();
    return account;
  }

  /** The account, if the password is right (compared in constant time). */
  async authenticate(email, password) {
    const account = this.#byEmail.get(email) ?? null;
    const stored = account ?? (await this.#decoy);
    const salt = account ? Buffer.from(account.salt, "hex") : stored.salt;
    const expected = account ? Buffer.from(account.hash, "hex") : stored.hash;
    const { hash } = await hashPassword(password, salt);
    return timingSafeEqual(hash, expected) && account ? account : null;
  }

  addOrder(account, now) {
    const number = account.orders.length + 1;
    const order = { id: randomUUID(), number, item: PRODUCTS[(number - 1) % PRODUCTS.length], created: now };
    account.orders.unshift(order);
    this.#save();
    return order;
  }
}

// Request bodies

function text(body, name, max = 1024) {
  const value = body[name];
  if (typeof value !== "string" || value.length > max) {
    throw new AppError(400, "invalid_input", `${name}: a string is required.`);
  }
  return value;
}

function credentialOf(body, name) {
  const value = body[name];
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AppError(400, "invalid_input", `${name}: the browser's credential.toJSON() is required.`);
  }
  return value;
}

/** The proof of a sign-in or step-up: `{kind, value}`. */
function proofOf(body) {
  const kind = text(body, "kind");
  if (!KINDS.includes(kind)) throw new AppError(400, "invalid_input", "kind: totp, email, webauthn or recovery.");
  return { kind, value: kind === "webauthn" ? credentialOf(body, "value") : text(body, "value", 64) };
}

const normalEmail = (value) => value.trim().toLowerCase();
/** The context of a proof's errors (for their plain words). */
const codeContext = (kind) => (kind === "recovery" ? "recovery-code" : kind);
const SIGNIN_GONE = "This sign-in has expired.";
const STEPUP_GONE = "This confirmation has expired: please try again.";

// The endpoints

/** The endpoints over a twofa engine, its admin handle, the audit log and the accounts. `now()`
 * is the engine's clock; `rememberDays` how long "Don't ask again on this browser" lasts (0: not
 * offered). */
export class App {
  constructor({ engine, admin, events, accounts, now, rememberDays = 0 }) {
    this.engine = engine;
    this.admin = admin;
    this.events = events;
    this.accounts = accounts;
    this.now = now;
    this.rememberDays = rememberDays;
  }

  /** The signed-in account of the session, else a 401. */
  account(session) {
    const account = this.accounts.byId(session?.userId);
    if (!account) throw new AppError(401, "not_signed_in", "Sign in first.", { next: "/signin" });
    return account;
  }

  /** The engine's security status of an account. */
  status(account) {
    return engineCall("status", () => this.engine.securityStatus(account.id));
  }

  /** Whether a status means "set up 2FA before anything else": required, none set up, and the
   * grace period (twofa's `enrollmentDeadline`) is over, as twofa's sign-in decides it. */
  enrolmentDue(status) {
    return !status.compliant && (status.enrollmentDeadline == null || this.now() >= status.enrollmentDeadline);
  }

  /** A 403 unless the account meets the 2FA policy or is in its grace period (the client then
   * goes to /security). */
  async requireCompliant(account) {
    if (this.enrolmentDue(await this.status(account))) {
      throw new AppError(403, "enrollment_required", "2FA is required for accounts that have created orders.", {
        next: "/security",
      });
    }
  }

  // Sign-up, sign-in, sign-out. They return {data, signIn?: session fields, signOut?: true};
  // the server starts a fresh session (new cookie, new CSRF token) for signIn.

  async signup(_session, body) {
    const email = normalEmail(text(body, "email", 254));
    const password = text(body, "password", MAX_PASSWORD);
    if (!EMAIL.test(email)) throw new AppError(400, "invalid_input", "That email address is not valid.");
    if (password.length < MIN_PASSWORD) {
      throw new AppError(400, "invalid_input", `Choose a password of at least ${MIN_PASSWORD} characters.`);
    }
    if (this.accounts.hasEmail(email)) {
      throw new AppError(409, "email_taken", "An account with this email already exists.");
    }
    const id = randomUUID();
    // Security notices (a method was added, ...) go to the contact address, and a WebAuthn
    // device is registered under it; twofa validates it before anything is stored.
    await engineCall("signup", () => this.engine.setContactEmail(id, email));
    const account = await this.accounts.create(id, email, password, this.now());
    return { status: 201, data: { next: "/orders" }, signIn: { userId: account.id } };
  }

  async signin(_session, body, client) {
    const email = normalEmail(text(body, "email", 254));
    const account = await this.accounts.authenticate(email, text(body, "password", MAX_PASSWORD));
    if (!account) throw new AppError(401, "invalid_credentials", "Wrong email or password.");
    // A device token from "Don't ask again on this browser" skips the second factor while twofa
    // accepts it; one it refuses (expired, forgotten, reset) is ignored, and its cookie dropped.
    const deviceToken = client.deviceToken(account.id);
    const challenge = await engineCall("signin", () => this.engine.loginBegin(account.id, { deviceToken }));
    const forgetDevice = deviceToken && !challenge.rememberedDevice ? account.id : null;
    if (challenge.challengeId === null) {
      // No second factor asked (none set up, or a remembered browser): signed in; if policy
      // requires 2FA and its grace period is over, straight to the Security tab.
      const next = challenge.enrollmentRequired ? "/security" : "/orders";
      return {
        data: {
          next,
          enrollmentRequired: challenge.enrollmentRequired,
          enrollmentDeadline: challenge.enrollmentDeadline,
          rememberedDevice: Boolean(challenge.rememberedDevice),
        },
        signIn: { userId: account.id },
        forgetDevice,
      };
    }
    const pending = {
      userId: account.id,
      challengeId: challenge.challengeId,
      methods: challenge.methods,
      webauthnOptions: challenge.webauthnOptions,
      expiresAt: challenge.expiresAt,
    };
    return { data: { next: "/signin/2fa", methods: challenge.methods }, signIn: { pending }, forgetDevice };
  }

  /** The pending sign-in of the session, else a 401 sending the user back to /signin. */
  pending(session) {
    if (!session?.pending) {
      throw new AppError(401, "no_pending_signin", "Sign in with your password first.", { next: "/signin" });
    }
    return session.pending;
  }

  /** What /signin/2fa shows (`rememberDays`: 0 when "Don't ask again" is not offered). */
  signinChallenge(session) {
    const { methods, webauthnOptions, expiresAt } = this.pending(session);
    return { methods, webauthnOptions, expiresAt, rememberDays: this.rememberDays };
  }

  async signinSendCode(session) {
    const pending = this.pending(session);
    const sent = await this.#challengeCall(pending, "email-code", SIGNIN_GONE, () =>
      this.engine.loginSendEmailCode(pending.userId, pending.challengeId),
    );
    return { data: { ...sent, now: Math.floor(this.now()) } };
  }

  async signinVerify(session, body) {
    const pending = this.pending(session);
    const { kind, value } = proofOf(body);
    const rememberDevice = body.remember === true && this.rememberDays > 0;
    const success = await this.#challengeCall(pending, codeContext(kind), SIGNIN_GONE, () =>
      this.engine.loginVerify(pending.userId, pending.challengeId, kind, value, { rememberDevice }),
    );
    const flash =
      success.recoveryCodesLeft == null
        ? null
        : `You signed in with a recovery code: ${success.recoveryCodesLeft} left. Generate new ones on the Security tab when few are left.`;
    const device = success.deviceToken;
    return {
      data: {
        next: "/orders",
        method: success.method,
        recoveryCodesLeft: success.recoveryCodesLeft,
        rememberedUntil: device?.expiresAt ?? null,
      },
      signIn: { userId: pending.userId, stepUp: success.stepUp, flash },
      // The token goes into this browser's cookie only, never into a page or a JSON answer.
      rememberDevice: device ? { userId: pending.userId, token: device.token, expiresAt: device.expiresAt } : null,
    };
  }

  /** Runs a call on a sign-in or step-up challenge. A challenge that expired or is gone asks
   * to start again (`restart: true`, `gone` the words for it) rather than blaming the code. */
  async #challengeCall(challenge, context, gone, fn) {
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof TwofaError)) throw error;
      const challengeGone =
        (error.name === "not_found" && error.message.includes("challenge")) ||
        (error.name === "expired" && challenge.expiresAt <= this.now());
      if (challengeGone) throw new AppError(401, "expired", gone, { restart: true });
      throw fromTwofa(error, context);
    }
  }

  signout() {
    return { data: { next: "/signin" }, signOut: true };
  }

  // Orders

  async orders(session) {
    const account = this.account(session);
    await this.requireCompliant(account);
    return { data: { orders: account.orders } };
  }

  /** Creates an order; the account now needs 2FA, so it may have to go to the Security tab. */
  async createOrder(session) {
    const account = this.account(session);
    await this.requireCompliant(account);
    const order = this.accounts.addOrder(account, this.now());
    await engineCall("order", () => this.engine.markOrderCreated(account.id));
    const { compliant } = await this.status(account);
    return { status: 201, data: { order, orders: account.orders, next: compliant ? null : "/security" } };
  }

  // The Security tab

  /** What the Security tab shows: the status and the account's recent security events. */
  async security(session) {
    const account = this.account(session);
    const [status, events] = await Promise.all([this.status(account), this.events.recent(account.id)]);
    return { data: { email: account.email, now: Math.floor(this.now()), status, events } };
  }

  // Remembered browsers: forgetting one (or all) makes the next sign-in there ask for the second
  // factor again; the browser's cookie is dropped at that sign-in.

  async forgetDevice(session, body) {
    const account = this.account(session);
    const deviceId = text(body, "deviceId", 256);
    await engineCall("device", () => this.engine.revokeRememberedDevice(account.id, deviceId));
    return { data: { ok: true } };
  }

  async forgetAllDevices(session) {
    const account = this.account(session);
    await engineCall("device", () => this.engine.revokeRememberedDevices(account.id));
    return { data: { ok: true } };
  }

  // Admin: reset a user who lost every second factor. The admin password is checked by the
  // server (`client.isAdmin`); twofa's admin handle removes the methods, recovery codes and
  // remembered browsers, records who and why, and mails the user.

  async adminReset(_session, body, client) {
    if (!client.isAdmin(text(body, "password", MAX_PASSWORD))) {
      throw new AppError(403, "not_admin", "Wrong admin password.");
    }
    const email = normalEmail(text(body, "email", 254));
    const actor = text(body, "actor", 256).trim();
    const reason = text(body, "reason", 1024).trim();
    if (!actor || !reason) throw new AppError(400, "invalid_input", "Give your name and the reason for the reset.");
    const account = this.accounts.byEmail(email);
    if (!account) throw new AppError(404, "no_account", "No account has this email address.");
    const done = await engineCall("admin", () => this.admin.resetUser(account.id, actor, reason));
    return { data: { email, methodsRemoved: done.methodsRemoved, notices: done.notices } };
  }

  /** Runs a change of the user's methods with the session's step-up token. */
  async #change(session, context, fn) {
    const account = this.account(session);
    const result = await engineCall(context, () => fn(account, session.stepUp?.token ?? null));
    // The first method also proves a second factor: keep the token it comes with.
    if (result?.stepUp) session.stepUp = result.stepUp;
    return result;
  }

  /** A method-added outcome without its step-up token (that stays in the session). */
  static added({ method, notices }) {
    return { data: { method, notices } };
  }

  async totpBegin(session) {
    const setup = await this.#change(session, "totp", (a, stepUp) => this.engine.totpEnrollBegin(a.id, a.email, stepUp));
    return { data: { secret: setup.secret, uri: setup.uri, qrSvg: stripXmlDeclaration(setup.qrSvg), expiresAt: setup.expiresAt } };
  }

  async totpConfirm(session, body) {
    const code = text(body, "code", 64);
    return App.added(await this.#change(session, "totp", (a, s) => this.engine.totpEnrollConfirm(a.id, code, s)));
  }

  async emailBegin(session, body) {
    const address = normalEmail(text(body, "address", 254));
    const sent = await this.#change(session, "email", (a, s) => this.engine.emailEnrollBegin(a.id, address, s));
    return { data: { ...sent, now: Math.floor(this.now()) } };
  }

  async emailConfirm(session, body) {
    const code = text(body, "code", 64);
    return App.added(await this.#change(session, "email", (a, s) => this.engine.emailEnrollConfirm(a.id, code, s)));
  }

  async webauthnBegin(session, body) {
    const name = text(body, "name", 256);
    const registration = await this.#change(session, "webauthn", (a, s) => this.engine.webauthnRegisterBegin(a.id, name, s));
    return { data: registration };
  }

  async webauthnFinish(session, body) {
    const credential = credentialOf(body, "credential");
    return App.added(
      await this.#change(session, "webauthn", (a, s) => this.engine.webauthnRegisterFinish(a.id, credential, s)),
    );
  }

  async renameMethod(session, body) {
    const methodId = text(body, "methodId", 256);
    const label = text(body, "label", 256);
    return { data: await this.#change(session, "rename", (a, s) => this.engine.renameMethod(a.id, methodId, label, s)) };
  }

  /** Removes a method. twofa then revokes every step-up token of the user: the next change
   * asks "Confirm it's you" again. */
  async removeMethod(session, body) {
    const methodId = text(body, "methodId", 256);
    const notices = await this.#change(session, "remove", (a, s) => this.engine.removeMethod(a.id, methodId, s));
    session.stepUp = null;
    return { data: { notices } };
  }

  async recoveryGenerate(session) {
    const { codes, notices } = await this.#change(session, "recovery", (a, s) => this.engine.recoveryCodesGenerate(a.id, s));
    return { data: { codes, notices } };
  }

  // "Confirm it's you": a sign-in challenge answered while signed in; its step-up token is kept
  // in the session and the page retries what it was doing.

  async stepUpBegin(session) {
    const account = this.account(session);
    const challenge = await engineCall("stepup", () => this.engine.loginBegin(account.id));
    if (challenge.challengeId === null) {
      session.stepUpChallenge = null;
      return { data: { required: false, methods: [] } };
    }
    session.stepUpChallenge = { challengeId: challenge.challengeId, expiresAt: challenge.expiresAt };
    return {
      data: {
        required: true,
        methods: challenge.methods,
        webauthnOptions: challenge.webauthnOptions,
        expiresAt: challenge.expiresAt,
      },
    };
  }

  #stepUpChallenge(session) {
    if (!session.stepUpChallenge) {
      throw new AppError(409, "no_challenge", STEPUP_GONE, { restart: true });
    }
    return session.stepUpChallenge;
  }

  async stepUpSendCode(session) {
    const account = this.account(session);
    const challenge = this.#stepUpChallenge(session);
    const sent = await this.#challengeCall(challenge, "email-code", STEPUP_GONE, () =>
      this.engine.loginSendEmailCode(account.id, challenge.challengeId),
    );
    return { data: { ...sent, now: Math.floor(this.now()) } };
  }

  async stepUpVerify(session, body) {
    const account = this.account(session);
    const challenge = this.#stepUpChallenge(session);
    const { kind, value } = proofOf(body);
    const success = await this.#challengeCall(challenge, codeContext(kind), STEPUP_GONE, () =>
      this.engine.loginVerify(account.id, challenge.challengeId, kind, value),
    );
    session.stepUp = success.stepUp;
    session.stepUpChallenge = null;
    return { data: { ok: true, method: success.method, expiresAt: success.stepUp.expiresAt, recoveryCodesLeft: success.recoveryCodesLeft } };
  }
}

/** The core's QR code for inlining in HTML: without its `<?xml ...?>` declaration. */
export function stripXmlDeclaration(svg) {
  return svg.replace(/^\s*<\?xml[^>]*\?>\s*/, "");
}
