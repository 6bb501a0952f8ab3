// Smoke test of the web demo: `node server.mjs --test-clock` on a free port, driven over HTTP
// like a browser (a cookie jar, the CSRF token read from each page's <meta>), through the JSON
// endpoints the pages call. TOTP codes come from otplib at the engine's clock, which the test
// moves with POST /__test/advance. The browser UI itself is covered by the Playwright suite.
// Besides the Security tab's methods: the grace period before 2FA is enforced, "Don't ask again
// on this browser" (its cookie), the recent security events, and the admin reset.

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
const ADMIN_PASSWORD = "admin password for the smoke test";
const DAY = 86400;

let child;
let base;
let dataDir;

/** Starts the demo as `make demo`-style users would, and waits for the URL it prints. */
before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "twofa-web-demo-test-"));
  child = spawn(process.execPath, [SERVER, "--test-clock"], {
    env: {
      ...process.env,
      PORT: "0",
      SMTP_PORT: "0",
      DEMO_DATA_DIR: join(dataDir, "data"),
      DEMO_GRACE_DAYS: "7",
      DEMO_REMEMBER_DAYS: "30",
      DEMO_ADMIN_PASSWORD: ADMIN_PASSWORD,
    },
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

/** A browser tab: keeps the cookies (the session's, remembered browsers') and the page's CSRF
 * token. `setCookies` holds the Set-Cookie lines of the last answer. */
class Tab {
  jar = new Map();
  csrf = null;
  setCookies = [];

  get cookie() {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join("; ") || null;
  }

  #remember(response) {
    this.setCookies = response.headers.getSetCookie();
    for (const line of this.setCookies) {
      const [pair] = line.split(";");
      const [name, value] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
      if (/Max-Age=0/.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
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

/** Moves the engine clock `seconds` on; returns its time. */
async function advance(seconds) {
  const { now } = await (await fetch(`${base}/__test/advance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seconds }) })).json();
  return now;
}

/** Moves the engine clock on and returns the authenticator app's code at the new time. */
async function nextTotp(secret, seconds = 30) {
  return generateSync({ secret, epoch: await advance(seconds) });
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

  // Orders: the first one makes 2FA required, so the user is sent to the Security tab, which
  // gives the deadline: for the grace period (7 days) the account still works without 2FA.
  const orders = await tab.page("/orders");
  assert.equal(orders.status, 200);
  assert.deepEqual(orders.state.orders, []);
  const order = await tab.post("/api/orders");
  assert.equal(order.status, 201);
  assert.equal(order.body.next, "/security");
  const inGrace = await tab.page("/security");
  assert.equal(inGrace.state.status.compliant, false);
  const deadline = inGrace.state.status.enrollmentDeadline;
  assert.ok(Math.abs(deadline - (inGrace.state.now + 7 * DAY)) <= 5, `the deadline is 7 days away: ${deadline}`);
  assert.equal((await tab.page("/orders")).status, 200, "orders still open during the grace period");
  assert.equal((await tab.getJson("/api/orders")).status, 200);
  await tab.post("/api/signout");
  await tab.page("/signin");
  const graceSignin = await tab.post("/api/signin", { email: EMAIL, password: PASSWORD });
  assert.equal(graceSignin.body.next, "/orders", "sign-in without 2FA during the grace period");
  assert.equal(graceSignin.body.enrollmentRequired, false);
  assert.equal(graceSignin.body.enrollmentDeadline, deadline);

  // After the deadline: every page but the Security tab sends the user there to enrol.
  await advance(7 * DAY);
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
  assert.ok(security.state.now >= deadline);
  assert.deepEqual(security.state.status.recommendations, ["enable_two_factor"]);
  assert.equal(security.state.status.contactEmail, EMAIL);
  assert.equal((await tab.post("/api/orders")).body.error, "enrollment_required");
  await tab.post("/api/signout");
  await tab.page("/signin");
  const lateSignin = await tab.post("/api/signin", { email: EMAIL, password: PASSWORD });
  assert.equal(lateSignin.body.next, "/security", "after the deadline, sign-in sends the user to enrol");
  assert.equal(lateSignin.body.enrollmentRequired, true);
  await tab.page("/security"); // the new session's CSRF token

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

/** Signs `tab` in with email and password, then (if asked) the authenticator app; the answer
 * of the last step, with its Set-Cookie lines. */
async function signIn(tab, email, secret, { remember = false } = {}) {
  await tab.page("/signin");
  const signin = await tab.post("/api/signin", { email, password: PASSWORD });
  if (signin.body.next === "/signin/2fa") {
    await tab.page("/signin/2fa");
    const verified = await tab.post("/api/signin/2fa/verify", { kind: "totp", value: await nextTotp(secret), remember });
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    verified.setCookies = tab.setCookies;
    await tab.page("/security");
    return verified;
  }
  signin.setCookies = tab.setCookies;
  await tab.page("/security");
  return signin;
}

test("remember this browser, forget it; recent security events; admin reset", async () => {
  const email = "grace@example.com";
  const tab = new Tab();
  await tab.page("/signup");
  assert.equal((await tab.post("/api/signup", { email, password: PASSWORD })).status, 201);
  await tab.page("/security");
  const setup = await tab.post("/api/totp/begin");
  assert.equal((await tab.post("/api/totp/confirm", { code: await nextTotp(setup.body.secret, 0) })).status, 200);
  await tab.post("/api/signout");

  // "Don't ask again on this browser": the token goes into an HttpOnly, SameSite=Strict cookie
  // of this account, never into the JSON answer.
  const remembered = await signIn(tab, email, setup.body.secret, { remember: true });
  assert.equal(remembered.body.next, "/orders");
  const deviceLine = remembered.setCookies.find((line) => line.startsWith("device-"));
  assert.ok(deviceLine, `a device cookie is set: ${remembered.setCookies}`);
  assert.match(deviceLine, /; HttpOnly/);
  assert.match(deviceLine, /; SameSite=Strict/);
  assert.doesNotMatch(deviceLine, /; Secure/, "plain http on localhost");
  const maxAge = Number(deviceLine.match(/Max-Age=(\d+)/)[1]);
  assert.ok(Math.abs(maxAge - 30 * DAY) <= 5, `Max-Age is 30 days: ${maxAge}`);
  const token = deviceLine.split(";")[0].split("=")[1];
  assert.ok(!JSON.stringify(remembered.body).includes(token), "the token is not in the answer");
  assert.ok(remembered.body.rememberedUntil > 0);
  await tab.post("/api/signout");

  // The next sign-in skips the second factor.
  const skipped = await signIn(tab, email, setup.body.secret);
  assert.equal(skipped.body.next, "/orders");
  assert.equal(skipped.body.rememberedDevice, true);
  let security = (await tab.getJson("/api/security")).body;
  assert.equal(security.status.rememberedDevices.length, 1);
  const [device] = security.status.rememberedDevices;
  assert.equal(device.method, "totp");
  assert.ok(device.lastUsed >= device.created);
  assert.ok(device.expiresAt > security.now);

  // The events the Security tab lists: newest first, without secrets.
  const kinds = security.events.map((e) => e.kind);
  assert.deepEqual(kinds.slice(0, 3), ["login_succeeded", "device_remembered", "login_succeeded"], kinds.join());
  assert.equal(security.events[0].reason, "remembered_device");
  assert.equal(security.events[1].method, "totp");
  assert.equal(security.events[2].method, "totp");
  assert.ok(kinds.includes("method_added"));
  assert.ok(security.events.every((e) => e.at > 0));
  assert.ok(!JSON.stringify(security.events).includes(token), "no token in the events");

  // Forget it: the next sign-in asks for the second factor again and drops the cookie.
  assert.equal((await tab.post("/api/devices/forget", { deviceId: device.id })).status, 200);
  security = (await tab.getJson("/api/security")).body;
  assert.deepEqual(security.status.rememberedDevices, []);
  assert.equal(security.events[0].kind, "remembered_devices_revoked");
  assert.equal(security.events[0].reason, "user");
  assert.equal((await tab.post("/api/devices/forget", { deviceId: device.id })).status, 404);
  await tab.post("/api/signout");
  await tab.page("/signin");
  const asked = await tab.post("/api/signin", { email, password: PASSWORD });
  assert.equal(asked.body.next, "/signin/2fa");
  assert.ok(tab.setCookies.some((line) => line.startsWith("device-") && /Max-Age=0/.test(line)), "the refused token's cookie is cleared");
  assert.ok(![...tab.jar.keys()].some((name) => name.startsWith("device-")));
  await tab.page("/signin/2fa");
  const wrong = await tab.post("/api/signin/2fa/verify", { kind: "totp", value: "000000", remember: true });
  assert.equal(wrong.status, 401);
  const back = await tab.post("/api/signin/2fa/verify", { kind: "totp", value: await nextTotp(setup.body.secret), remember: true });
  assert.equal(back.status, 200);
  await tab.page("/security");
  security = (await tab.getJson("/api/security")).body;
  assert.ok(security.events.some((e) => e.kind === "login_failed" && e.reason === "invalid_code" && e.method === "totp"));
  assert.equal(security.status.rememberedDevices.length, 1);

  // "Forget all".
  assert.equal((await tab.post("/api/devices/forget-all")).status, 200);
  assert.deepEqual((await tab.getJson("/api/security")).body.status.rememberedDevices, []);

  // Admin reset: the wrong password is refused; the right one removes the methods, records who
  // and why, and mails the user.
  const admin = new Tab();
  assert.equal((await admin.page("/admin")).status, 200);
  const reset = { email, actor: "Grace's admin", reason: "lost phone, identity checked" };
  const refused = await admin.post("/api/admin/reset", { ...reset, password: "guess" });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error, "not_admin");
  assert.equal((await admin.post("/api/admin/reset", { ...reset, email: "nobody@example.com", password: ADMIN_PASSWORD })).status, 404);
  const done = await admin.post("/api/admin/reset", { ...reset, password: ADMIN_PASSWORD });
  assert.equal(done.status, 200, JSON.stringify(done.body));
  assert.equal(done.body.methodsRemoved, 1);
  assert.equal(done.body.notices.sent, 1);
  security = (await tab.getJson("/api/security")).body;
  assert.deepEqual(security.status.methods, []);
  assert.deepEqual(security.status.lastReset, { actor: reset.actor, reason: reset.reason, at: security.status.lastReset.at });
  const event = security.events.find((e) => e.kind === "admin_reset");
  assert.equal(event.actor, reset.actor);
  assert.equal(event.reason, reset.reason);
  assert.ok(security.events.some((e) => e.kind === "method_removed" && e.reason === "admin_reset"));
  const [newest] = (await mail()).filter((m) => m.to === email);
  assert.match(newest.subject, /your two-factor methods were reset/);
  assert.match(newest.text, /lost phone, identity checked/);
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
