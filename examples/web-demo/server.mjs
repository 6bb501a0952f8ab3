// The twofa web demo: a small user panel (sign-up, sign-in, orders) whose Security tab sets up
// and uses every second factor twofa offers. One process: this HTTP server (node:http, no
// framework), the twofa engine on its embedded SQLite store, and a local SMTP server whose
// mailbox is shown at /mail.
//
//   node server.mjs [--test-clock]      env: PORT (8080), SMTP_PORT (free port), DEMO_DATA_DIR,
//                                       DEMO_GRACE_DAYS (7), DEMO_REMEMBER_DAYS (30),
//                                       DEMO_ADMIN_PASSWORD (random, printed)
//
// This file does HTTP: routes, pages, sessions (HttpOnly SameSite=Lax cookie), the remembered-
// browser cookies (HttpOnly SameSite=Strict, one per account) and CSRF (a token per session, in
// <meta name="csrf-token"> and sent back as the X-CSRF-Token header on every POST). app.mjs does
// the accounts and the twofa calls; mail.mjs the SMTP server and mailbox; events.mjs the audit log.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Engine, SqliteStore, libraryVersion } from "twofa";
import { App, AppError, Accounts } from "./app.mjs";
import { EventLog } from "./events.mjs";
import { Mailbox, smtpMailer, startSmtpServer } from "./mail.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const PUBLIC = join(HERE, "public");
const REPO_ROOT = resolve(HERE, "..", "..");
const ISSUER = "twofa demo";
const MAIL_FROM = `${ISSUER} <security@localhost>`;
const COOKIE = "sid";
const SESSION_IDLE_MS = 8 * 3600 * 1000;
const MAX_SESSIONS = 10_000;
const MAX_BODY = 64 * 1024;
/** Marks a data directory as the demo's, so that only such a directory is ever emptied. */
const DATA_MARKER = ".twofa-web-demo";

// Sessions: in memory, by a random cookie value. Every visitor gets one on their first page (it
// carries the CSRF token the sign-in form needs); signing in or out starts a new one.

class Sessions {
  #byId = new Map();

  /** A new session with `fields`, a fresh id and CSRF token; `replacing` is ended. */
  start(fields = {}, replacing = null) {
    if (replacing) this.#byId.delete(replacing);
    const session = { id: randomBytes(32).toString("base64url"), csrf: randomBytes(32).toString("base64url"), ...fields };
    session.seen = Date.now();
    this.#byId.set(session.id, session);
    // Oldest first (Map order, refreshed by get): drop the idle and the surplus.
    for (const [id, s] of this.#byId) {
      if (this.#byId.size <= MAX_SESSIONS && Date.now() - s.seen < SESSION_IDLE_MS) break;
      this.#byId.delete(id);
    }
    return session;
  }

  get(id) {
    const session = id ? this.#byId.get(id) : undefined;
    if (!session) return null;
    if (Date.now() - session.seen > SESSION_IDLE_MS) {
      this.#byId.delete(id);
      return null;
    }
    session.seen = Date.now();
    this.#byId.delete(id);
    this.#byId.set(id, session);
    return session;
  }

  end(id) {
    if (id) this.#byId.delete(id);
  }
}

// HTTP helpers

const SECURITY_HEADERS = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

function send(res, status, body, type, headers = {}) {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), ...SECURITY_HEADERS, ...headers });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function sendJson(res, status, value, headers = {}) {
  send(res, status, JSON.stringify(value), "application/json; charset=utf-8", headers);
}

function redirect(res, location, headers = {}) {
  send(res, 303, "", "text/plain", { Location: location, ...headers });
}

function cookieValue(req, name) {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return null;
}

const sessionCookie = (id) => `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`;
const clearedCookie = `${COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;

// Remembered browsers: twofa's device token for an account, kept only in this browser, in a cookie
// of that account (several accounts may share a browser) that scripts cannot read and that is
// never sent from another site; Secure when the demo is served over https (behind a proxy).

/** The cookie name of an account's device token (account ids are UUIDs: valid cookie names). */
const deviceCookieName = (userId) => `device-${userId}`;
const isHttps = (req) => Boolean(req.socket.encrypted) || req.headers["x-forwarded-proto"] === "https";
const deviceCookie = (req, userId, token, maxAge) =>
  `${deviceCookieName(userId)}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${isHttps(req) ? "; Secure" : ""}`;
const clearedDeviceCookie = (req, userId) =>
  `${deviceCookieName(userId)}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${isHttps(req) ? "; Secure" : ""}`;

/** The JSON object of a POST body (application/json, at most 64 KiB). */
async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  }
  if (size > MAX_BODY) throw new AppError(413, "invalid_input", "The request is too large.");
  if (size === 0) return {};
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") throw new AppError(415, "invalid_input", "Send JSON (application/json).");
  let value;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new AppError(400, "invalid_input", "The request is not valid JSON.");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AppError(400, "invalid_input", "The request must be a JSON object.");
  }
  return value;
}

function sameToken(a, b) {
  const x = Buffer.from(String(a ?? ""));
  const y = Buffer.from(String(b ?? ""));
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

// Pages: public/layout.html around public/<page>.html, with the session's CSRF token, the nav and
// the page's initial state (JSON read by the page's module, so it renders before `load`).

const read = (name) => readFileSync(join(PUBLIC, name), "utf8");
const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
/** JSON safe inside <script type="application/json">. */
const scriptJson = (value) =>
  JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");

const NAV_SIGNED_IN = [
  ["/orders", "Orders"],
  ["/security", "Security"],
  ["/mail", "Mailbox"],
  ["/admin", "Admin"],
];
const NAV_SIGNED_OUT = [
  ["/signin", "Sign in"],
  ["/signup", "Sign up"],
  ["/mail", "Mailbox"],
  ["/admin", "Admin"],
];

function nav(path, signedIn) {
  const links = (signedIn ? NAV_SIGNED_IN : NAV_SIGNED_OUT).map(
    ([href, label]) => `<li><a href="${href}"${href === path ? ' aria-current="page"' : ""}>${label}</a></li>`,
  );
  if (signedIn) links.push('<li><button type="button" id="signout" class="linklike">Sign out</button></li>');
  return `<ul>${links.join("")}</ul>`;
}

function renderPage({ page, title, state = {}, path, session, signedIn }) {
  const values = {
    csrf: escapeHtml(session.csrf),
    title: escapeHtml(title),
    nav: nav(path, signedIn),
    body: read(`${page}.html`),
    script: `${page}.js`,
    state: scriptJson({ ...state, flash: takeFlash(session) }),
  };
  return read("layout.html").replace(/\{\{(\w+)\}\}/g, (_, name) => values[name] ?? "");
}

function takeFlash(session) {
  const flash = session.flash ?? null;
  session.flash = null;
  return flash;
}

const STATIC_TYPES = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml" };

function serveStatic(res, path) {
  const name = path.slice("/static/".length);
  const ext = name.slice(name.lastIndexOf("."));
  if (!/^[a-z0-9-]+\.[a-z]+$/.test(name) || !STATIC_TYPES[ext] || !existsSync(join(PUBLIC, name))) {
    return send(res, 404, "not found", "text/plain; charset=utf-8");
  }
  send(res, 200, readFileSync(join(PUBLIC, name)), STATIC_TYPES[ext]);
}

// The data directory

/** Empties (or creates) the demo's data directory; refuses a non-empty one it did not make. */
function prepareDataDir(dir) {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length && !entries.includes(DATA_MARKER)) {
      throw new Error(`${dir} is not empty and is not a twofa web demo data directory: refusing to clear it`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, DATA_MARKER), "twofa web demo data: deleted and recreated on each start\n");
}

/** TWOFA_MASTER_KEY (standard base64 of 32+ bytes), else a random key: the data is recreated
 * on every start anyway. */
function masterKey(env) {
  if (!env.TWOFA_MASTER_KEY) return randomBytes(32);
  const key = Buffer.from(env.TWOFA_MASTER_KEY, "base64");
  if (key.length < 32) throw new Error("TWOFA_MASTER_KEY must be standard base64 of at least 32 bytes");
  return key;
}

/** A number of days from the environment (fractions allowed), as seconds; twofa checks the
 * range it accepts. */
function daysOf(env, name, fallback) {
  const value = env[name] ?? String(fallback);
  const days = Number(value);
  if (value.trim() === "" || !Number.isFinite(days) || days < 0) {
    throw new Error(`${name} must be a number of days (0 or more)`);
  }
  return Math.round(days * 86400);
}

/** DEMO_ADMIN_PASSWORD, else a random one (printed at start). */
function adminPassword(env) {
  return env.DEMO_ADMIN_PASSWORD || randomBytes(12).toString("base64url");
}

// The server

/**
 * Starts the demo: SMTP server, twofa engine (SQLite at <dataDir>/twofa.sqlite3), its admin
 * handle, the audit log (<dataDir>/events.sqlite3) and HTTP server on 127.0.0.1:`port` (0: a free
 * port). `testClock` enables POST /__test/advance.
 * @returns {Promise<{url: string, port: number, smtpPort: number, adminPassword: string, close(): Promise<void>}>}
 */
export async function startDemo({ port = 8080, smtpPort = 0, dataDir, testClock = false, env = process.env, log = console }) {
  const gracePeriod = daysOf(env, "DEMO_GRACE_DAYS", 7);
  const rememberFor = daysOf(env, "DEMO_REMEMBER_DAYS", 30);
  const admin = { password: adminPassword(env) };
  prepareDataDir(dataDir);
  const mailbox = new Mailbox();
  const smtp = await startSmtpServer(mailbox, smtpPort, log);
  const mailer = smtpMailer({ port: smtp.port, from: MAIL_FROM }, log);

  // The engine's clock: real time plus an offset only the test clock moves.
  let offset = 0;
  const now = () => Date.now() / 1000 + offset;

  const sessions = new Sessions();
  let app = null; // made once the port is known (the WebAuthn origin includes it)

  const server = createServer((req, res) => {
    if (!app) return send(res, 503, "starting", "text/plain");
    handle(req, res).catch((error) => {
      if (error instanceof AppError) return sendJson(res, error.status, { error: error.error, message: error.message, ...error.extra });
      log.error(`${req.method} ${req.url}:`, error);
      if (!res.headersSent) sendJson(res, 500, { error: "internal", message: "Something went wrong on our side: try again." });
      else res.destroy();
    });
  });
  await new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", done);
  });
  const bound = server.address().port;
  const origin = `http://localhost:${bound}`;
  const config = {
    issuer: ISSUER,
    keys: [{ id: "demo", secret: masterKey(env).toString("base64") }],
    webauthn: { rp_id: "localhost", rp_name: ISSUER, origins: [origin] },
    // After the first order, 2FA is required; sign-in goes on without it for the grace period.
    policy: { grace_period_secs: gracePeriod },
    // "Don't ask again on this browser" at the second-factor step.
    remember_device: rememberFor > 0 ? { enabled: true, ttl_secs: rememberFor } : { enabled: false },
  };
  // One SQLite store for both handles: the user-facing engine and the admin handle, whose config
  // alone grants the admin capability.
  const store = new SqliteStore(join(dataDir, "twofa.sqlite3"));
  const events = new EventLog(join(dataDir, "events.sqlite3"), log);
  const options = { store, mailer, clock: now, onEvent: events.record };
  const engine = new Engine(config, options);
  const adminEngine = new Engine({ ...config, admin: true }, options);
  app = new App({
    engine,
    admin: adminEngine.admin(),
    events,
    accounts: new Accounts(join(dataDir, "accounts.json")),
    now,
    rememberDays: rememberFor / 86400,
  });

  /** The request's session, or a new anonymous one (with its cookie on the response). */
  function sessionOf(req, res) {
    const existing = sessions.get(cookieValue(req, COOKIE));
    if (existing) return existing;
    const session = sessions.start();
    res.setHeader("Set-Cookie", sessionCookie(session.id));
    return session;
  }

  /** Whether the session's account must go to /security first (2FA required, none set up,
   * and the grace period is over). */
  async function mustEnrol(session) {
    return app.enrolmentDue(await app.status(app.account(session)));
  }

  // GET pages: (session) → {page, title, state} or a redirect path.
  const pages = {
    "/": async (s) => (s.userId ? "/orders" : "/signin"),
    "/signup": async (s) => (s.userId ? "/orders" : { page: "signup", title: "Sign up" }),
    "/signin": async (s) => (s.userId ? "/orders" : { page: "signin", title: "Sign in" }),
    "/signin/2fa": async (s) =>
      s.pending ? { page: "signin-2fa", title: "Two-step verification", state: app.signinChallenge(s) } : "/signin",
    "/orders": async (s) => {
      if (!s.userId) return "/signin";
      if (await mustEnrol(s)) return "/security";
      return { page: "orders", title: "Orders", state: { email: app.account(s).email, ...(await app.orders(s)).data } };
    },
    "/security": async (s) => (s.userId ? { page: "security", title: "Security", state: (await app.security(s)).data } : "/signin"),
    "/mail": async () => ({ page: "mail", title: "Mailbox", state: { messages: mailbox.list() } }),
    "/admin": async () => ({ page: "admin", title: "Admin" }),
  };

  // POST /api endpoints: app method names. `signedIn` ones need a session with an account.
  const api = {
    "/api/signup": "signup",
    "/api/signin": "signin",
    "/api/signin/2fa/send-code": "signinSendCode",
    "/api/signin/2fa/verify": "signinVerify",
    "/api/signout": "signout",
    "/api/orders": "createOrder",
    "/api/totp/begin": "totpBegin",
    "/api/totp/confirm": "totpConfirm",
    "/api/email/begin": "emailBegin",
    "/api/email/confirm": "emailConfirm",
    "/api/webauthn/begin": "webauthnBegin",
    "/api/webauthn/finish": "webauthnFinish",
    "/api/methods/rename": "renameMethod",
    "/api/methods/remove": "removeMethod",
    "/api/recovery/generate": "recoveryGenerate",
    "/api/stepup/begin": "stepUpBegin",
    "/api/stepup/send-code": "stepUpSendCode",
    "/api/stepup/verify": "stepUpVerify",
    "/api/devices/forget": "forgetDevice",
    "/api/devices/forget-all": "forgetAllDevices",
    "/api/admin/reset": "adminReset",
  };
  const apiGet = {
    "/api/security": "security",
    "/api/orders": "orders",
    "/api/signin/2fa": "signinChallenge",
  };

  async function handle(req, res) {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method === "HEAD" ? "GET" : req.method;

    if (method === "GET") {
      if (path.startsWith("/static/")) return serveStatic(res, path);
      if (path === "/mail.json") return sendJson(res, 200, mailbox.list());
      if (testClock && path === "/__test/clock") return sendJson(res, 200, { now: Math.floor(now()), offset });
      if (path in apiGet) {
        const session = sessions.get(cookieValue(req, COOKIE));
        const result = await app[apiGet[path]](session);
        return sendJson(res, 200, result.data ?? result);
      }
      if (!(path in pages)) return send(res, 404, "Not found", "text/plain; charset=utf-8");
      const session = sessionOf(req, res);
      const page = await pages[path](session);
      if (typeof page === "string") return redirect(res, page);
      return send(res, 200, renderPage({ ...page, path, session, signedIn: Boolean(session.userId) }), "text/html; charset=utf-8");
    }

    if (method !== "POST") return send(res, 405, "Method not allowed", "text/plain", { Allow: "GET, HEAD, POST" });

    // Test support: only with --test-clock (never by default), and without CSRF (no session).
    if (path.startsWith("/__test/") && !testClock) {
      req.resume();
      throw new AppError(404, "not_found", "No such endpoint (the test clock is off).");
    }
    if (path === "/__test/advance") {
      const { seconds } = await readJson(req);
      if (!Number.isFinite(seconds) || seconds < 0 || seconds > 10 * 365 * 86400) {
        throw new AppError(400, "invalid_input", "seconds: a number from 0 up");
      }
      offset += seconds;
      return sendJson(res, 200, { now: Math.floor(now()), offset });
    }

    // CSRF: every POST carries the session's token in X-CSRF-Token.
    const session = sessions.get(cookieValue(req, COOKIE));
    if (!session || !sameToken(req.headers["x-csrf-token"], session.csrf)) {
      req.resume();
      throw new AppError(403, "csrf", "Your session has expired: reload the page and try again.");
    }
    if (!(path in api)) throw new AppError(404, "not_found", "No such endpoint.");
    const body = await readJson(req);
    // What app.mjs may read of the browser besides the session: an account's device token, and
    // the admin password it must compare against.
    const client = {
      deviceToken: (userId) => cookieValue(req, deviceCookieName(userId)) || null,
      isAdmin: (password) => sameToken(password, admin.password),
    };
    const result = await app[api[path]](session, body, client);
    const cookies = [];
    if (result.signIn) {
      // A new session (new cookie and CSRF token) for each change of who is signed in.
      const fresh = sessions.start(result.signIn, session.id);
      cookies.push(sessionCookie(fresh.id));
    } else if (result.signOut) {
      sessions.end(session.id);
      cookies.push(clearedCookie);
    }
    if (result.rememberDevice) {
      const { userId, token, expiresAt } = result.rememberDevice;
      cookies.push(deviceCookie(req, userId, token, Math.max(0, Math.floor(expiresAt - now()))));
    } else if (result.forgetDevice) {
      // The token was refused (expired, forgotten, or the methods were reset): drop it.
      cookies.push(clearedDeviceCookie(req, result.forgetDevice));
    }
    return sendJson(res, result.status ?? 200, result.data, cookies.length ? { "Set-Cookie": cookies } : {});
  }

  const close = async () => {
    await new Promise((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
    await smtp.close();
    mailer.close();
    engine.close();
    adminEngine.close();
    store.close();
    events.close();
  };
  return { url: `http://localhost:${bound}`, port: bound, smtpPort: smtp.port, adminPassword: admin.password, close };
}

const USAGE = `Usage: node server.mjs [--test-clock]

Starts the twofa web demo on http://localhost:$PORT (default 8080), bound to 127.0.0.1.

  --test-clock   enable POST /__test/advance {seconds} (moves the engine clock forward) and
                 GET /__test/clock; also env TWOFA_DEMO_TEST_CLOCK=1. For end-to-end tests only.

Env: PORT (HTTP port, default 8080; 0 for a free one), SMTP_PORT (the local SMTP server, default a
free port), DEMO_DATA_DIR (default target/web-demo/ in the repository; emptied on start),
TWOFA_MASTER_KEY (base64 of 32+ bytes; default random, as the data is recreated on start),
DEMO_GRACE_DAYS (how long sign-in goes on without 2FA once it is required; default 7),
DEMO_REMEMBER_DAYS (how long "Don't ask again on this browser" lasts; default 30, 0 turns it off),
DEMO_ADMIN_PASSWORD (the password of /admin; default random, printed at start).`;

async function main() {
  const { values } = parseArgs({
    options: { "test-clock": { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return console.log(USAGE);
  const env = process.env;
  const testClock = values["test-clock"] || env.TWOFA_DEMO_TEST_CLOCK === "1";
  const demo = await startDemo({
    port: Number(env.PORT ?? 8080),
    smtpPort: Number(env.SMTP_PORT ?? 0),
    dataDir: resolve(env.DEMO_DATA_DIR ?? join(REPO_ROOT, "target", "web-demo")),
    testClock,
    env,
  });
  console.log(`twofa web demo (libtwofa ${libraryVersion}): ${demo.url}`);
  console.log(`  mail: SMTP on 127.0.0.1:${demo.smtpPort}, delivered mail at ${demo.url}/mail`);
  if (!env.DEMO_ADMIN_PASSWORD) console.log(`  admin: ${demo.url}/admin, password ${demo.adminPassword}`);
  if (testClock) console.log("  test clock ON: POST /__test/advance {seconds} moves the engine clock");
  const stop = async () => {
    await demo.close();
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
