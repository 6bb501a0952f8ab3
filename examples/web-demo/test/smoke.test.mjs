// Smoke test of the web demo: `node server.mjs --test-clock` on a free port, driven over HTTP
// like a browser (a cookie jar, the CSRF token read from each page's <meta>), through the JSON
// endpoints the pages call. TOTP codes come from otplib at the engine's clock, which the test
// moves with POST /__test/advance. The browser UI itself is covered by the Playwright suite.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { generateSync } from "otplib";
import { startDemo } from "../server.mjs";

const SERVER = join(dirname(fileURLToPath(import.meta.url)), "..", "server.mjs");
const EMAIL = "ada@example.com";
const PASSWORD = "correct horse battery";

let child;
let base;
let dataDir;

/** Starts the demo as `make demo`-style users would, and waits for the URL it prints. */
before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "twofa-web-demo-test-"));
  child = spawn(process.execPath, [SERVER, "--test-clock"], {
    env: { ...process.env, PORT: "0", SMTP_PORT: "0", DEMO_DATA_DIR: join(dataDir, "data") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  base = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const url = out.match(/http:\/\/localhost:\d+/);
      if (url) resolve(url[0]);
    });
    child.once("exit", (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
    setTimeout(() => reject(new Error(`server did not start: ${out}${stderr}`)), 15_000).unref();
  });
});

after(() => {
  child?.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
});

/** A browser tab: keeps the session cookie and the page's CSRF token. */
class Tab {
  cookie = null;
  csrf = null;

  #remember(response) {
    const set = response.headers.get("set-cookie");
    if (set) this.cookie = /Max-Age=0/.test(set) ? null : set.split(";")[0];
  }

  /** GETs a page without following redirects; reads its CSRF token and page state. */
  async page(path) {
    const response = await fetch(base + path, { redirect: "manual", headers: this.cookie ? { cookie: this.cookie } : {} });
    this.#remember(response);
    const html = await response.text();
    const csrf = html.match(/<meta name="csrf-token" content="([^"]+)">/);
    if (csrf) this.csrf = csrf[1];
    const state = html.match(/<script type="application\/json" id="page-state">(.*?)<\/script>/s);
    return { status: response.status, location: response.headers.get("location"), html, state: state && JSON.parse(state[1]) };
  }

  async post(path, body = {}, { csrf = true } = {}) {
    const headers = { "content-type": "application/json" };
    if (this.cookie) headers.cookie = this.cookie;
    if (csrf) headers["x-csrf-token"] = this.csrf;
    const response = await fetch(base + path, { method: "POST", headers, body: JSON.stringify(body) });
    this.#remember(response);
    return { status: response.status, body: await response.json() };
  }

  async getJson(path) {
    const response = await fetch(base + path, { headers: this.cookie ? { cookie: this.cookie } : {} });
    return { status: response.status, body: await response.json() };
  }
}

/** Moves the engine clock on and returns the authenticator app's code at the new time. */
async function nextTotp(secret, seconds = 30) {
  const { now } = await (await fetch(`${base}/__test/advance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seconds }) })).json();
  return generateSync({ secret, epoch: now });
}

const mail = async () => (await fetch(`${base}/mail.json`)).json();

test("sign-up, order, 2FA required, TOTP enrolment, sign-in with TOTP, step-up, mailbox", async () => {
  const tab = new Tab();

  // Sign-up: the page gives a session and its CSRF token; a POST without it is refused.
  assert.equal((await tab.page("/signup")).status, 200);
  const refused = await tab.post("/api/signup", { email: EMAIL, password: PASSWORD }, { csrf: false });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error, "csrf");
  const signup = await tab.post("/api/signup", { email: EMAIL, password: PASSWORD });
  assert.equal(signup.status, 201);
  assert.equal(signup.body.next, "/orders");

  // Orders: the first one makes 2FA required, so the user is sent to the Security tab.
  const orders = await tab.page("/orders");
  assert.equal(orders.status, 200);
  assert.deepEqual(orders.state.orders, []);
  const order = await tab.post("/api/orders");
  assert.equal(order.status, 201);
  assert.equal(order.body.next, "/security");
  for (const path of ["/orders", "/"]) {
    const page = await tab.page(path);
    assert.equal(page.status, 303);
    assert.match(page.location, /^\/(security|orders)$/);
  }
  assert.equal((await tab.page("/orders")).location, "/security");
  assert.equal((await tab.page("/mail")).status, 200);
  const security = await tab.page("/security");
  assert.equal(security.status, 200);
  assert.match(security.html, /id="attention"/);
  assert.equal(security.state.status.twoFactorRequired, true);
  assert.equal(security.state.status.compliant, false);
  assert.deepEqual(security.state.status.recommendations, ["enable_two_factor"]);
  assert.equal(security.state.status.contactEmail, EMAIL);
  assert.equal((await tab.post("/api/orders")).body.error, "enrollment_required");

  // TOTP enrolment: the first method needs no step-up and brings a step-up token.
  const setup = await tab.post("/api/totp/begin");
  assert.equal(setup.status, 200);
  assert.match(setup.body.secret, /^[A-Z2-7]+$/);
  assert.match(setup.body.qrSvg, /^<svg/);
  const current = await nextTotp(setup.body.secret, 0);
  const wrong = await tab.post("/api/totp/confirm", { code: current === "000000" ? "111111" : "000000" });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.message, "That code is not right.");
  const added = await tab.post("/api/totp/confirm", { code: current });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  assert.equal(added.body.method.kind, "totp");
  assert.equal(added.body.notices.sent, 1);
  assert.equal(added.body.stepUp, undefined, "the step-up token stays on the server");
  assert.equal((await tab.page("/orders")).status, 200);

  // Policy: the only method of an account that must have 2FA cannot be removed.
  const remove = await tab.post("/api/methods/remove", { methodId: added.body.method.id });
  assert.equal(remove.status, 403);
  assert.equal(remove.body.error, "policy_violation");
  assert.equal(remove.body.message, "2FA is required for your account: keep at least one method.");

  // Sign out, then sign in again: password, then the authenticator app.
  assert.equal((await tab.post("/api/signout")).body.next, "/signin");
  assert.equal((await tab.page("/orders")).location, "/signin");
  await tab.page("/signin");
  assert.equal((await tab.post("/api/signin", { email: EMAIL, password: "wrong password" })).status, 401);
  const signin = await tab.post("/api/signin", { email: EMAIL, password: PASSWORD });
  assert.equal(signin.body.next, "/signin/2fa");
  const challenge = await tab.page("/signin/2fa");
  assert.equal(challenge.status, 200);
  assert.deepEqual(challenge.state.methods, ["totp"]);
  assert.equal((await tab.page("/orders")).location, "/signin", "not signed in before the second factor");
  const code = await nextTotp(setup.body.secret);
  const verified = await tab.post("/api/signin/2fa/verify", { kind: "totp", value: code });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.equal(verified.body.next, "/orders");
  assert.equal((await tab.page("/orders")).status, 200);

  // Step-up: after the window, a change is refused until "Confirm it's you".
  await nextTotp(setup.body.secret, 601);
  const stale = await tab.post("/api/recovery/generate");
  assert.equal(stale.status, 403);
  assert.equal(stale.body.error, "step_up_required");
  const stepUp = await tab.post("/api/stepup/begin");
  assert.deepEqual(stepUp.body.methods, ["totp"]);
  const old = await tab.post("/api/stepup/verify", { kind: "totp", value: code });
  assert.equal(old.body.error, "invalid_code", "a code from 10 minutes ago does not confirm");
  const confirmed = await tab.post("/api/stepup/verify", { kind: "totp", value: await nextTotp(setup.body.secret) });
  assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
  const codes = await tab.post("/api/recovery/generate");
  assert.equal(codes.status, 200);
  assert.equal(codes.body.codes.length, 10);

  // The mailbox: the notices went over SMTP to the contact address, newest first.
  const messages = await mail();
  assert.ok(messages.length >= 2);
  assert.ok(messages.every((m) => m.to === EMAIL));
  assert.match(messages[0].subject, /new recovery codes/);
  assert.ok(messages.some((m) => /a sign-in method was added/.test(m.subject) && /authenticator app/.test(m.text)));
  const mailbox = await tab.page("/mail");
  assert.equal(mailbox.state.messages.length, messages.length);
});

test("the test clock is off unless asked for", async () => {
  const dir = mkdtempSync(join(tmpdir(), "twofa-web-demo-test-"));
  const quiet = { log() {}, warn() {}, error() {}, info() {} };
  const demo = await startDemo({ port: 0, dataDir: join(dir, "data"), log: quiet });
  try {
    const response = await fetch(`${demo.url}/__test/advance`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ seconds: 3600 }),
    });
    assert.equal(response.status, 404);
    assert.equal((await fetch(`${demo.url}/__test/clock`)).status, 404);
  } finally {
    await demo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
