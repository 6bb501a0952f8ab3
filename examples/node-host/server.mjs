// A Node web backend using twofa: enrolment and sign-in with an authenticator app, email codes,
// WebAuthn and recovery codes, as a JSON API on node:http (no framework). The JSON API is the
// one of examples/python-host.
//
// The host keeps what twofa leaves to it: accounts (in memory, scrypt password hashes), sessions
// (a random token in an HttpOnly, SameSite=Strict cookie) and mail (SMTP through nodemailer).
// twofa keeps the second factors in its embedded SQLite store, or with `--postgres URL` in
// PostgreSQL (pgstore.mjs). Run `node server.mjs --help`; GET / lists the endpoints.

import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import nodemailer from "nodemailer";
import { Engine, TwofaError, libraryVersion } from "twofa";

const scrypt = promisify(scryptCallback);

export const ISSUER = "Example Shop";
const DEFAULT_MAIL_FROM = `${ISSUER} <no-reply@localhost>`;
const SESSION_COOKIE = "session";
const MAX_BODY_BYTES = 64 * 1024;
const USERNAME = /^[A-Za-z0-9._-]{3,64}$/;
const MIN_PASSWORD_CHARS = 8;
const SCRYPT = { N: 2 ** 14, r: 8, p: 1 };

/** The HTTP status of each twofa error (any other error: 500). */
const ERROR_STATUS = {
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
  rate_limited: 429,
  locked_out: 429,
  storage: 503,
  mail: 503,
};

const ENDPOINTS = `\
twofa Node host: a JSON API (POST bodies are JSON objects, sent as application/json).

  POST /api/signup            {username, password}   create an account and sign in
  POST /api/login             {username, password}   check the password; returns the 2FA challenge
  POST /api/login/email-code                         email a sign-in code
  POST /api/login/verify      {kind, value}          kind: totp | email | webauthn | recovery
  POST /api/logout

Signed in (the Security tab):
  GET  /api/security                                 methods, policy, recommendations
  POST /api/totp/begin        {account_name?}        secret, otpauth URI, QR code (SVG)
  POST /api/totp/confirm      {code}
  POST /api/email/begin       {address}              emails a confirmation code
  POST /api/email/confirm     {code}
  POST /api/webauthn/begin    {name}                 options for navigator.credentials.create
  POST /api/webauthn/finish   {credential}           PublicKeyCredential.toJSON()
  POST /api/methods/rename    {method_id, label}
  POST /api/methods/remove    {method_id}
  POST /api/recovery-codes                           a new set, shown once
  POST /api/orders                                   the account placed an order: 2FA is now required
  POST /api/contact-email     {address}              emails a code to a new notice address
  POST /api/contact-email/confirm {code}             security notices go there from now on
`;

/** A failure of the host itself, answered as {"error": name, "message": message}. */
class ApiError extends Error {
  constructor(status, name, message) {
    super(message);
    this.status = status;
    this.code = name;
  }
}

const token = () => randomBytes(32).toString("base64url");

// Accounts

/** A salted scrypt hash of a password. */
async function hashPassword(password, salt = randomBytes(16)) {
  return { salt, digest: await scrypt(password, salt, 32, SCRYPT) };
}

/** The accounts, in memory, by username. Each gets a random twofa user id, so a name used again
 * (after a restart) never meets an older account's second factors. */
class Users {
  #byName = new Map();
  // Checked when the name is unknown, so that takes as long as a wrong password.
  #decoy = hashPassword(token());

  /** Creates an account; null if the name is taken. */
  async add(username, password) {
    const hash = await hashPassword(password);
    if (this.#byName.has(username)) return null;
    const user = { id: randomBytes(16).toString("base64url"), username, ...hash };
    this.#byName.set(username, user);
    return user;
  }

  /** The account, if the password is right (compared in constant time). */
  async authenticate(username, password) {
    const user = this.#byName.get(username) ?? null;
    const { salt, digest } = user ?? (await this.#decoy);
    const matches = timingSafeEqual((await hashPassword(password, salt)).digest, digest);
    return user && matches ? user : null;
  }
}

// Sessions: {user, signedIn, challengeId, stepUp} by a random cookie token. `signedIn` is false
// while a second factor is pending; `stepUp`, the latest step-up token, never leaves the server.

class Sessions {
  #byToken = new Map();

  /** Stores a session under a new token (ending the one it replaces); returns the token. */
  start(session, replacing) {
    if (replacing) this.#byToken.delete(replacing);
    const fresh = token();
    this.#byToken.set(fresh, session);
    return fresh;
  }

  get(t) {
    return (t && this.#byToken.get(t)) || null;
  }

  /** Changes fields of an existing session. */
  update(t, changes) {
    const session = this.get(t);
    if (session) this.#byToken.set(t, { ...session, ...changes });
  }

  end(t) {
    if (t) this.#byToken.delete(t);
  }
}

// Mail

/**
 * twofa's mailer: delivers each message over SMTP as multipart/alternative (text and HTML).
 * A rejection is reported by twofa as `mail` for a code and in `notices.failed` for a notice.
 * By default it speaks plain SMTP without authentication (a local relay); other `smtp` options
 * (auth, secure, tls, ...) go to nodemailer as they are.
 */
function smtpMailer({ host = "127.0.0.1", port = 8025, from = DEFAULT_MAIL_FROM, ...options }, log) {
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 10_000,
    ...options,
  });
  return async ({ to, subject, text, html }) => {
    try {
      await transport.sendMail({ from, to, subject, text, html });
    } catch (error) {
      log.warn(`SMTP delivery via ${host}:${port} failed: ${error.message}`);
      throw error;
    }
  };
}

// The API

/** Typed access to the fields of a JSON request body. */
class Body {
  constructor(fields) {
    this.fields = fields;
  }

  text(name) {
    const value = this.fields[name];
    if (typeof value !== "string") throw new ApiError(400, "invalid_input", `${name}: a string is required`);
    return value;
  }

  optionalText(name) {
    return this.fields[name] == null ? null : this.text(name);
  }

  object(name) {
    const value = this.fields[name];
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ApiError(400, "invalid_input", `${name}: an object is required`);
    }
    return value;
  }
}

/** A twofa result with snake_case keys, as the JSON API spells them. */
function snake(value) {
  if (Array.isArray(value)) return value.map(snake);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snake(v)]),
  );
}

const errorBody = (name, message, retryAfter = null) => ({ error: name, message, retry_after: retryAfter });
/** A new method, without the step-up token (it stays in the session). */
const methodAdded = (added) => ({ method: snake(added.method), notices: snake(added.notices) });

/** The endpoints over a twofa engine, the accounts and the sessions (HTTP is `handle`'s). */
class App {
  constructor(engine, log) {
    this.engine = engine;
    this.log = log;
    this.users = new Users();
    this.sessions = new Sessions();
    // Endpoints open to anyone: (call) → reply. `call` is {body, token}.
    this.public = {
      "POST /api/signup": this.signup,
      "POST /api/login": this.login,
      "POST /api/login/email-code": this.loginEmailCode,
      "POST /api/login/verify": this.loginVerify,
      "POST /api/logout": this.logout,
    };
    // Endpoints of a signed-in session: (call) → reply. `call` adds {session, user}.
    this.signedIn = {
      "GET /api/security": this.security,
      "POST /api/totp/begin": this.totpBegin,
      "POST /api/totp/confirm": this.totpConfirm,
      "POST /api/email/begin": this.emailBegin,
      "POST /api/email/confirm": this.emailConfirm,
      "POST /api/webauthn/begin": this.webauthnBegin,
      "POST /api/webauthn/finish": this.webauthnFinish,
      "POST /api/methods/rename": this.renameMethod,
      "POST /api/methods/remove": this.removeMethod,
      "POST /api/recovery-codes": this.recoveryCodes,
      "POST /api/orders": this.orderCreated,
      "POST /api/contact-email": this.contactEmailBegin,
      "POST /api/contact-email/confirm": this.contactEmailConfirm,
    };
  }

  /** Runs the endpoint; every failure becomes a JSON error reply {status, body}. */
  async handle(method, path, body, sessionToken) {
    try {
      const route = `${method} ${path}`;
      if (route in this.public) return await this.public[route].call(this, { body, token: sessionToken });
      if (!(route in this.signedIn)) throw new ApiError(404, "not_found", `no endpoint ${route}`);
      const session = this.sessions.get(sessionToken);
      if (!session?.signedIn) throw new ApiError(401, "not_signed_in", "sign in first");
      return await this.signedIn[route].call(this, { body, token: sessionToken, session, user: session.user.id });
    } catch (error) {
      if (error instanceof ApiError) return { status: error.status, body: errorBody(error.code, error.message) };
      if (error instanceof TwofaError) return this.twofaError(error);
      this.log.error(`${method} ${path} failed:`, error);
      return { status: 500, body: errorBody("internal", "the server could not complete the request") };
    }
  }

  twofaError(error) {
    const status = ERROR_STATUS[error.name] ?? 500;
    if (status >= 500) {
      // The message never holds a secret, but the cause (a store or mailer error) may name
      // internals: log it, answer generically.
      this.log.error(`twofa ${error.name}: ${error.message}`, error.cause ?? "");
    }
    const message = status < 500 ? error.message : "the server could not complete the request";
    return { status, body: errorBody(error.name, message, error.retryAfter) };
  }

  /** A reply starting `session` under a fresh token (a token never gains rights), with its cookie. */
  newSession(body, session, replacing, status = 200) {
    return { status, body, newSession: this.sessions.start(session, replacing) };
  }

  /** Keeps the step-up token a first method comes with. */
  keepStepUp(call, added) {
    if (added.stepUp) this.sessions.update(call.token, { stepUp: added.stepUp });
  }

  // Sign-up and sign-in

  /** Creates an account and signs it in (it has no second factor yet). */
  async signup({ body, token: replacing }) {
    const username = body.text("username");
    const password = body.text("password");
    if (!USERNAME.test(username)) throw new ApiError(400, "invalid_input", "username: 3 to 64 of A-Z a-z 0-9 . _ -");
    if (password.length < MIN_PASSWORD_CHARS) {
      throw new ApiError(400, "invalid_input", `password: at least ${MIN_PASSWORD_CHARS} characters`);
    }
    const user = await this.users.add(username, password);
    if (!user) throw new ApiError(409, "username_taken", "that username is taken");
    return this.newSession({ signed_in: true, username }, { user, signedIn: true }, replacing, 201);
  }

  /** Checks the password, then starts twofa's sign-in: either the session is signed in at once
   * (no second factor needed) or a challenge is pending. */
  async login({ body, token: replacing }) {
    const user = await this.users.authenticate(body.text("username"), body.text("password"));
    if (!user) throw new ApiError(401, "invalid_credentials", "wrong username or password");
    const challenge = await this.engine.loginBegin(user.id);
    const signedIn = challenge.challengeId === null;
    const reply = {
      signed_in: signedIn,
      second_factor_required: challenge.secondFactorRequired,
      // Policy requires 2FA the user has not set up: the UI sends them to the Security tab.
      enrollment_required: challenge.enrollmentRequired,
      methods: challenge.methods,
      webauthn_options: challenge.webauthnOptions,
      challenge_id: challenge.challengeId,
      expires_at: challenge.expiresAt,
    };
    return this.newSession(reply, { user, signedIn, challengeId: challenge.challengeId }, replacing);
  }

  /** The session of a sign-in waiting for its second factor. */
  pending(sessionToken) {
    const session = this.sessions.get(sessionToken);
    if (!session?.challengeId) throw new ApiError(401, "no_pending_login", "sign in with your password first");
    return session;
  }

  /** Emails a sign-in code to the user's confirmed addresses. */
  async loginEmailCode({ token: t }) {
    const session = this.pending(t);
    return { status: 200, body: snake(await this.engine.loginSendEmailCode(session.user.id, session.challengeId)) };
  }

  /** Verifies the second factor; the session is then signed in, with a step-up token. */
  async loginVerify({ body, token: t }) {
    const session = this.pending(t);
    const kind = body.text("kind");
    const value = kind === "webauthn" ? body.object("value") : body.text("value");
    const success = await this.engine.loginVerify(session.user.id, session.challengeId, kind, value);
    const reply = {
      signed_in: true,
      method: success.method,
      method_id: success.methodId,
      recovery_codes_left: success.recoveryCodesLeft,
      notices: snake(success.notices),
    };
    return this.newSession(reply, { user: session.user, signedIn: true, stepUp: success.stepUp }, t);
  }

  /** Ends the session. */
  async logout({ token: t }) {
    this.sessions.end(t);
    return { status: 200, body: { signed_in: false }, clearSession: true };
  }

  // The Security tab

  /** The user's methods, policy state and advice. */
  async security({ user, session }) {
    return { status: 200, body: { username: session.user.username, ...snake(await this.engine.securityStatus(user)) } };
  }

  /** Starts enrolling an authenticator app (named after the username unless given). */
  async totpBegin({ body, user, session }) {
    const accountName = body.optionalText("account_name") || session.user.username;
    const setup = await this.engine.totpEnrollBegin(user, accountName, session.stepUp);
    return { status: 200, body: snake(setup) };
  }

  /** Confirms the authenticator app with a code from it. */
  async totpConfirm(call) {
    const added = await this.engine.totpEnrollConfirm(call.user, call.body.text("code"), call.session.stepUp);
    this.keepStepUp(call, added);
    return { status: 200, body: methodAdded(added) };
  }

  /** Emails a confirmation code to a new address. */
  async emailBegin({ body, user, session }) {
    return { status: 200, body: snake(await this.engine.emailEnrollBegin(user, body.text("address"), session.stepUp)) };
  }

  /** Confirms the address with the emailed code. */
  async emailConfirm(call) {
    const added = await this.engine.emailEnrollConfirm(call.user, call.body.text("code"), call.session.stepUp);
    this.keepStepUp(call, added);
    return { status: 200, body: methodAdded(added) };
  }

  /** Starts registering a WebAuthn device: options for navigator.credentials.create. */
  async webauthnBegin({ body, user, session }) {
    const registration = await this.engine.webauthnRegisterBegin(user, body.text("name"), session.stepUp);
    return { status: 200, body: { options: registration.options, expires_at: registration.expiresAt } };
  }

  /** Finishes the registration with the browser's PublicKeyCredential.toJSON(). */
  async webauthnFinish(call) {
    const added = await this.engine.webauthnRegisterFinish(call.user, call.body.object("credential"), call.session.stepUp);
    this.keepStepUp(call, added);
    return { status: 200, body: methodAdded(added) };
  }

  /** Renames a method. */
  async renameMethod({ body, user, session }) {
    const method = await this.engine.renameMethod(user, body.text("method_id"), body.text("label"), session.stepUp);
    return { status: 200, body: snake(method) };
  }

  /** Removes a method. twofa then revokes every step-up token of the user, so the session drops
   * its own: further changes need a new sign-in. */
  async removeMethod({ body, user, session, token: t }) {
    const notices = await this.engine.removeMethod(user, body.text("method_id"), session.stepUp);
    this.sessions.update(t, { stepUp: null });
    return { status: 200, body: { notices: snake(notices) } };
  }

  /** Replaces the recovery codes with a fresh set, shown once. */
  async recoveryCodes({ user, session }) {
    const { codes, notices } = await this.engine.recoveryCodesGenerate(user, session.stepUp);
    return { status: 200, body: { codes, notices: snake(notices) } };
  }

  /** Records an order (2FA becomes required); returns the new security status. */
  async orderCreated(call) {
    await this.engine.markOrderCreated(call.user);
    return this.security(call);
  }

  /** Emails a code to a new address for security notices (proved before it is used). */
  async contactEmailBegin({ body, user, session }) {
    return { status: 200, body: snake(await this.engine.contactEmailBegin(user, body.text("address"), session.stepUp)) };
  }

  /** Makes the proved address the one security notices go to; the old and the new one are told. */
  async contactEmailConfirm({ body, user, session }) {
    const notices = await this.engine.contactEmailConfirm(user, body.text("code"), session.stepUp);
    return { status: 200, body: { notices: snake(notices) } };
  }
}

// HTTP

/** The request's JSON object. Requiring application/json also keeps cross-site HTML forms out
 * (they cannot send it), on top of the SameSite=Strict cookie. */
async function jsonBody(request) {
  const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  // The body is read to its end even when refused, so the connection stays usable.
  const raw = await new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () => resolve(size <= MAX_BODY_BYTES ? Buffer.concat(chunks) : null));
    request.on("error", reject);
  });
  if (type !== "application/json") throw new ApiError(415, "invalid_input", "send a JSON body as application/json");
  if (raw === null) throw new ApiError(413, "invalid_input", "the body is too large");
  let fields;
  try {
    fields = raw.length ? JSON.parse(raw.toString("utf8")) : {};
  } catch {
    throw new ApiError(400, "invalid_input", "the body is not JSON");
  }
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new ApiError(400, "invalid_input", "the body must be a JSON object");
  }
  return new Body(fields);
}

/** The session cookie's value, if any. */
function sessionToken(request) {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === SESSION_COOKIE) return value.join("=") || null;
  }
  return null;
}

/** Writes a response; codes, secrets and QR codes are in them, so they are never cached. */
function send(response, status, data, contentType, headers = {}) {
  response.writeHead(status, {
    "Content-Type": contentType,
    "Content-Length": Buffer.byteLength(data),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  response.end(data);
}

/** Writes an App reply as JSON, with its cookie and Retry-After. */
function reply(response, { status, body, newSession, clearSession }) {
  const headers = {};
  const attributes = "Path=/; HttpOnly; SameSite=Strict";
  if (newSession) headers["Set-Cookie"] = `${SESSION_COOKIE}=${newSession}; ${attributes}`;
  else if (clearSession) headers["Set-Cookie"] = `${SESSION_COOKIE}=; ${attributes}; Max-Age=0`;
  if (status === 429 && Number.isInteger(body.retry_after)) headers["Retry-After"] = String(body.retry_after);
  send(response, status, JSON.stringify(body), "application/json", headers);
}

/** Handles one HTTP request. */
async function serve(app, request, response) {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (request.method === "GET" && path === "/") return send(response, 200, ENDPOINTS, "text/plain; charset=utf-8");
  if (request.method !== "GET" && request.method !== "POST") {
    return reply(response, { status: 405, body: errorBody("invalid_input", `method ${request.method} not allowed`) });
  }
  let body = new Body({});
  if (request.method === "POST") {
    try {
      body = await jsonBody(request);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return reply(response, { status: error.status, body: errorBody(error.code, error.message) });
    }
  }
  reply(response, await app.handle(request.method, path, body, sessionToken(request)));
}

/** The twofa config: the README's defaults plus the key, WebAuthn on localhost and the store. */
export function twofaConfig(masterKey, origin, dbPath) {
  return {
    issuer: ISSUER,
    keys: [{ id: "k1", secret: Buffer.from(masterKey).toString("base64") }],
    webauthn: { rp_id: "localhost", rp_name: ISSUER, origins: [origin] },
    sqlite_path: dbPath,
  };
}

/**
 * Starts the host on 127.0.0.1:`port` (0: any free port) with the twofa engine on `store`, by
 * default the SQLite store at `dbPath`, mailing through `smtp` ({host, port, from, ...nodemailer
 * options}). The WebAuthn origin defaults to http://localhost:<port>; `clock` (Unix seconds) to
 * the system clock; `log` (info/warn/error) to the console, which also gets twofa's audit events
 * (`log.info("audit {...}")`).
 * @returns {Promise<{server: import("node:http").Server, port: number, origin: string, engine: Engine, close(): Promise<void>}>}
 */
export async function createServer({ port = 8081, smtp = {}, dbPath, store, clock, masterKey, origin, log = console } = {}) {
  if (!dbPath) throw new TypeError("createServer: dbPath is required");
  if (!masterKey || Buffer.from(masterKey).length < 32) throw new TypeError("createServer: masterKey of 32+ bytes is required");
  let app = null;
  const server = createHttpServer((request, response) => {
    response.on("finish", () => log.info(`${request.method} ${request.url} ${response.statusCode}`));
    if (!app) return send(response, 503, "starting", "text/plain");
    serve(app, request, response).catch((error) => {
      log.error(`${request.method} ${request.url} failed:`, error);
      if (!response.headersSent) reply(response, { status: 500, body: errorBody("internal", "the server could not complete the request") });
      else response.destroy();
    });
  });
  await new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", done);
  });
  // The WebAuthn origin needs the port, so the engine is made once the server is bound.
  const bound = server.address().port;
  const webOrigin = origin ?? `http://localhost:${bound}`;
  let engine;
  try {
    // Audit events (sign-ins, failures, method changes; never a secret) go to the log, as one
    // JSON line each; a real host would send them to its security log.
    const onEvent = (event) => log.info(`audit ${JSON.stringify(event)}`);
    engine = new Engine(twofaConfig(masterKey, webOrigin, dbPath), { store, mailer: smtpMailer(smtp, log), clock, onEvent });
  } catch (error) {
    server.close();
    throw error;
  }
  app = new App(engine, log);
  const close = () =>
    new Promise((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
  return { server, port: bound, origin: webOrigin, engine, close };
}

/** TWOFA_MASTER_KEY (standard base64 of at least 32 bytes), or a random key for this run. */
function masterKeyFrom(env) {
  const text = env.TWOFA_MASTER_KEY;
  if (!text) {
    console.error(
      "WARNING: TWOFA_MASTER_KEY is not set; using a random master key for this run only. " +
        "What twofa stores under it cannot be read by a later run. " +
        "For a lasting key: export TWOFA_MASTER_KEY=$(openssl rand -base64 32)",
    );
    return randomBytes(32);
  }
  const key = Buffer.from(text, "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || key.toString("base64") !== text) {
    throw new Error("TWOFA_MASTER_KEY: not standard base64");
  }
  if (key.length < 32) throw new Error("TWOFA_MASTER_KEY: must decode to at least 32 bytes");
  return key;
}

const USAGE = `Usage: node server.mjs [options]

  --port N          HTTP port on 127.0.0.1 (default 8081)
  --smtp-host HOST  SMTP server (default 127.0.0.1, or env SMTP_HOST)
  --smtp-port N     SMTP port (default 8025, or env SMTP_PORT)
  --mail-from FROM  the From of every message (default "${DEFAULT_MAIL_FROM}")
  --db PATH         twofa's SQLite file (default: in a fresh temporary directory deleted at exit;
                    accounts are in memory)
  --postgres URL    keep twofa's data in this PostgreSQL database instead (pgstore.mjs)
  --origin URL      the WebAuthn origin of the web UI (default http://localhost:<port>)

Env: TWOFA_MASTER_KEY (base64, 32+ bytes; default a random key for this run).`;

/** Runs the server until interrupted (Ctrl-C or SIGTERM). */
export async function main(argv = process.argv.slice(2), env = process.env) {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8081" },
      "smtp-host": { type: "string", default: env.SMTP_HOST ?? "127.0.0.1" },
      "smtp-port": { type: "string", default: env.SMTP_PORT ?? "8025" },
      "mail-from": { type: "string", default: DEFAULT_MAIL_FROM },
      db: { type: "string" },
      postgres: { type: "string" },
      origin: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (args.help) return console.log(USAGE);
  const masterKey = masterKeyFrom(env);
  const scratch = args.db ? null : mkdtempSync(join(tmpdir(), "twofa-node-host-"));
  const dbPath = args.db ?? join(scratch, "twofa.db");
  const smtp = { host: args["smtp-host"], port: Number(args["smtp-port"]), from: args["mail-from"] };
  let store;
  if (args.postgres) {
    const { PostgresStore } = await import("./pgstore.mjs");
    store = new PostgresStore(args.postgres);
    await store.createSchema();
  }
  const host = await createServer({ port: Number(args.port), smtp, dbPath, store, masterKey, origin: args.origin });
  const where = store ? "PostgreSQL" : dbPath;
  console.log(`twofa ${libraryVersion}: http://localhost:${host.port} (mail via SMTP ${smtp.host}:${smtp.port}, 2FA data in ${where})`);
  const stop = async () => {
    await host.close();
    await store?.end();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
