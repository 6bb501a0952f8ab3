// End-to-end tests of the Node host: the server on a free port, a real SMTP server (smtp-server)
// receiving its mail, and the JSON API driven over HTTP with fetch and a cookie jar, as a
// browser would. WebAuthn uses the software authenticator of bindings/node/test/softauthn.mjs.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { simpleParser } from "mailparser";
import { generateSync } from "otplib";
import { SMTPServer } from "smtp-server";
import { SoftAuthenticator } from "../../../bindings/node/test/softauthn.mjs";
import { createServer } from "../server.mjs";

const PASSWORD = "correct horse battery";

/** An SMTP server on a free loopback port keeping every message (parsed: to, subject, text, html). */
class Mailbox {
  messages = [];

  async start() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData: (stream, _session, done) => {
        // Parsed before the SMTP reply, so a message is here by the time twofa's call returns.
        simpleParser(stream).then(
          (mail) => {
            this.messages.push({ to: mail.to.text, subject: mail.subject, text: mail.text, html: mail.html || "" });
            done();
          },
          (error) => done(error),
        );
      },
    });
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = this.server.server.address().port;
    return this;
  }

  close() {
    return new Promise((resolve) => this.server.close(resolve));
  }

  /** The messages to `to` whose subject contains `subjectPart`, oldest first. */
  received(to, subjectPart) {
    return this.messages.filter((m) => m.to === to && m.subject.includes(subjectPart));
  }

  /** The code in the latest such message, which must show it in its text and HTML parts. */
  lastCode(to, subjectPart) {
    const message = this.received(to, subjectPart).at(-1);
    assert.ok(message, `no mail to ${to} about "${subjectPart}"`);
    const code = message.text.match(/\b(\d{6})\b/)?.[1];
    assert.ok(code, `no code in ${JSON.stringify(message.text)}`);
    assert.ok(message.html.includes(`<b>${code}</b>`), `the HTML part lacks the code: ${message.html}`);
    return code;
  }
}

/** A clock the test moves forward, so each TOTP code is for a new time step. */
class Clock {
  t = Math.floor(Date.now() / 1000);
  now = () => this.t;

  /** Moves to the next 30 s step and returns the authenticator app's code then (by otplib). */
  nextTotp(secret) {
    this.t += 30;
    return generateSync({ secret, epoch: this.t });
  }
}

/** A client of the API keeping its session cookie, as a browser tab would. */
class Browser {
  cookies = new Map();

  constructor(base) {
    this.base = base;
  }

  /** Sends a request; returns {status, body, headers} (body: JSON, or text). */
  async request(method, path, body, { contentType = "application/json" } = {}) {
    const headers = {};
    if (this.cookies.size) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (body !== undefined) headers["Content-Type"] = contentType;
    const data = body === undefined || typeof body === "string" ? body : JSON.stringify(body);
    const response = await fetch(this.base + path, { method, headers, body: data });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair, ...attributes] = cookie.split(";").map((s) => s.trim());
      const [name, value] = pair.split("=");
      if (attributes.some((a) => /^max-age=0$/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    const json = (response.headers.get("content-type") ?? "").startsWith("application/json");
    return { status: response.status, body: json ? JSON.parse(text) : text, headers: response.headers };
  }

  /** POSTs and returns the JSON of a successful response. */
  async post(path, body = {}) {
    const { status, body: reply } = await this.request("POST", path, body);
    assert.ok(status === 200 || status === 201, `${path}: ${status} ${JSON.stringify(reply)}`);
    return reply;
  }

  async security() {
    const { status, body } = await this.request("GET", "/api/security");
    assert.equal(status, 200, JSON.stringify(body));
    return body;
  }

  /** Signs in with the password; returns the challenge. */
  login(username) {
    return this.post("/api/login", { username, password: PASSWORD });
  }
}

/** A loopback port free right now (nothing listens on it afterwards). */
async function freePort() {
  const server = createNetServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The host on a free port with a fresh SQLite file; `close()` stops it and removes the file. */
async function startHost(smtpPort, clock) {
  const dir = mkdtempSync(join(tmpdir(), "twofa-node-host-test-"));
  const logs = [];
  /** twofa's audit events, from the `audit {...}` lines of the log. */
  const audit = [];
  const info = (...a) => {
    const line = a.join(" ");
    if (line.startsWith("audit ")) audit.push(JSON.parse(line.slice("audit ".length)));
  };
  const log = { info, warn: (...a) => logs.push(a.join(" ")), error: (...a) => logs.push(a.join(" ")) };
  const host = await createServer({
    port: 0,
    smtp: { host: "127.0.0.1", port: smtpPort },
    dbPath: join(dir, "twofa.db"),
    masterKey: randomBytes(32),
    clock: clock?.now,
    log,
  });
  return {
    ...host,
    logs,
    audit,
    browser: () => new Browser(`http://127.0.0.1:${host.port}`),
    close: async () => {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("the Node host", () => {
  let mailbox;
  let host;
  const clock = new Clock();

  before(async () => {
    mailbox = await new Mailbox().start();
    host = await startHost(mailbox.port, clock);
  });

  after(async () => {
    await host?.close();
    await mailbox?.close();
  });

  test("every method enrolled and used to sign in, then a wrong code", async () => {
    const browser = host.browser();
    const address = "alice@example.com";

    // Sign up: signed in at once, nothing set up yet.
    assert.equal((await browser.post("/api/signup", { username: "alice", password: PASSWORD })).signed_in, true);
    const status = await browser.security();
    assert.deepEqual([status.methods, status.two_factor_required], [[], false]);

    // Authenticator app: the first method needs no step-up and gives one (kept server-side).
    const setup = await browser.post("/api/totp/begin");
    assert.ok(setup.uri.startsWith("otpauth://totp/") && setup.qr_svg.includes("<svg"));
    let added = await browser.post("/api/totp/confirm", { code: clock.nextTotp(setup.secret) });
    assert.equal(added.method.kind, "totp");
    assert.ok(!("step_up" in added));
    await browser.post("/api/logout");
    assert.equal((await browser.request("GET", "/api/security")).status, 401);

    // Sign in with the app.
    let challenge = await browser.login("alice");
    assert.equal(challenge.signed_in, false);
    assert.deepEqual(challenge.methods, ["totp"]);
    assert.equal((await browser.request("GET", "/api/security")).status, 401, "not signed in before the second factor");
    const verified = await browser.post("/api/login/verify", { kind: "totp", value: clock.nextTotp(setup.secret) });
    assert.equal(verified.signed_in, true);
    assert.equal(verified.method, "totp");
    // The first events of this fresh host are alice's (under the host's user id for her).
    const alices = host.audit.filter((event) => event.user === host.audit[0]?.user);
    assert.deepEqual(alices.map(({ kind, method }) => [kind, method]), [
      ["method_added", "totp"],
      ["login_succeeded", "totp"],
    ]);
    assert.ok(!JSON.stringify(alices).includes(setup.secret), "no secret in an audit event");

    // Email: the code comes over SMTP.
    assert.deepEqual((await browser.post("/api/email/begin", { address })).sent_to, [address]);
    added = await browser.post("/api/email/confirm", { code: mailbox.lastCode(address, "confirm your email") });
    assert.equal(added.method.label, address);

    // Sign in with an emailed code.
    await browser.post("/api/logout");
    assert.deepEqual((await browser.login("alice")).methods, ["totp", "email"]);
    assert.deepEqual((await browser.post("/api/login/email-code")).sent_to, ["a***@example.com"]);
    const code = mailbox.lastCode(address, "sign-in code");
    assert.equal((await browser.post("/api/login/verify", { kind: "email", value: code })).signed_in, true);

    // WebAuthn: register a software passkey; the email address is told.
    const authenticator = new SoftAuthenticator(host.origin);
    assert.equal(host.origin, `http://localhost:${host.port}`);
    const { options } = await browser.post("/api/webauthn/begin", { name: "Laptop" });
    added = await browser.post("/api/webauthn/finish", { credential: await authenticator.register(options) });
    assert.equal(added.method.kind, "webauthn");
    assert.deepEqual(added.notices, { sent: 1, failed: [] });
    const notice = mailbox.received(address, "a sign-in method was added").at(-1);
    assert.ok(notice.text.includes("Laptop") && notice.html.includes("Laptop"));
    const renamed = await browser.post("/api/methods/rename", { method_id: added.method.id, label: "Work laptop" });
    assert.equal(renamed.label, "Work laptop");

    // Sign in with it.
    await browser.post("/api/logout");
    challenge = await browser.login("alice");
    assert.ok(challenge.methods.includes("webauthn"));
    const assertion = await authenticator.signIn(challenge.webauthn_options);
    assert.equal((await browser.post("/api/login/verify", { kind: "webauthn", value: assertion })).method, "webauthn");

    // Recovery codes: shown once, each signs in once.
    const { codes } = await browser.post("/api/recovery-codes");
    assert.equal(codes.length, 10);
    assert.equal((await browser.security()).recovery_codes_left, 10);
    await browser.post("/api/logout");
    assert.ok((await browser.login("alice")).methods.includes("recovery"));
    const used = await browser.post("/api/login/verify", { kind: "recovery", value: codes[0] });
    assert.deepEqual([used.method, used.recovery_codes_left], ["recovery", 9]);
    assert.ok(mailbox.received(address, "a recovery code was used").length > 0);

    // Notices to another address, proved with a code sent to it; the old and the new one are told.
    assert.deepEqual((await browser.post("/api/contact-email", { address: "alice@example.org" })).sent_to, ["alice@example.org"]);
    assert.equal((await browser.security()).contact_email, null, "not before the address is proved");
    let proof = mailbox.lastCode("alice@example.org", "confirm your email");
    assert.equal((await browser.post("/api/contact-email/confirm", { code: proof })).notices.sent, 0); // the first address is not mailed
    assert.equal((await browser.security()).contact_email, "alice@example.org");
    clock.t += 60; // the resend cooldown of the code just used
    await browser.post("/api/contact-email", { address: "alice@example.net" });
    proof = mailbox.lastCode("alice@example.net", "confirm your email");
    assert.equal((await browser.post("/api/contact-email/confirm", { code: proof })).notices.sent, 2);
    assert.ok(mailbox.received("alice@example.org", "the address for security notices changed").length > 0);
    assert.ok(mailbox.received("alice@example.net", "the address for security notices changed").length > 0);

    // A wrong code: a JSON error with its HTTP status; the session is not signed in.
    await browser.post("/api/logout");
    await browser.login("alice");
    const valid = new Set([-30, 0, 30].map((d) => generateSync({ secret: setup.secret, epoch: clock.t + d })));
    const wrong = ["000000", "111111", "222222", "333333"].find((c) => !valid.has(c));
    const refused = await browser.request("POST", "/api/login/verify", { kind: "totp", value: wrong });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, "invalid_code");
    assert.ok(refused.body.message);
    assert.equal((await browser.request("GET", "/api/security")).status, 401);
  });

  test("orders make 2FA required; the last method cannot be removed; a removal revokes step-up", async () => {
    const browser = host.browser();
    const address = "bob@example.com";
    await browser.post("/api/signup", { username: "bob", password: PASSWORD });
    const status = await browser.post("/api/orders");
    assert.equal(status.two_factor_required, true);
    assert.equal(status.compliant, false);
    assert.deepEqual(status.recommendations, ["enable_two_factor"]);

    // Signing in now says enrolment is required (the session is signed in to do it).
    await browser.post("/api/logout");
    const challenge = await browser.login("bob");
    assert.deepEqual([challenge.signed_in, challenge.enrollment_required, challenge.methods], [true, true, []]);

    const setup = await browser.post("/api/totp/begin");
    const totp = (await browser.post("/api/totp/confirm", { code: clock.nextTotp(setup.secret) })).method;
    assert.equal((await browser.security()).compliant, true);
    let refused = await browser.request("POST", "/api/methods/remove", { method_id: totp.id });
    assert.deepEqual([refused.status, refused.body.error], [403, "policy_violation"]);

    // With a second method the first may go; that revokes every step-up token.
    await browser.post("/api/email/begin", { address });
    refused = await browser.request("POST", "/api/email/confirm", { code: "12345" });
    assert.deepEqual([refused.status, refused.body.error], [400, "invalid_input"]);
    const emailed = (await browser.post("/api/email/confirm", { code: mailbox.lastCode(address, "confirm your email") })).method;
    await browser.post("/api/methods/remove", { method_id: totp.id });
    assert.deepEqual((await browser.security()).methods.map((m) => m.kind), ["email"]);
    refused = await browser.request("POST", "/api/methods/remove", { method_id: emailed.id });
    assert.deepEqual([refused.status, refused.body.error], [403, "step_up_required"]);

    // A fresh sign-in gives a new token, but the last method stays.
    await browser.post("/api/logout");
    await browser.login("bob");
    await browser.post("/api/login/email-code");
    await browser.post("/api/login/verify", { kind: "email", value: mailbox.lastCode(address, "sign-in code") });
    refused = await browser.request("POST", "/api/methods/remove", { method_id: emailed.id });
    assert.deepEqual([refused.status, refused.body.error], [403, "policy_violation"]);
    assert.ok(mailbox.received(address, "a sign-in method was removed").length > 0);
  });

  test("too many wrong codes: 429 locked_out with Retry-After", async () => {
    const browser = host.browser();
    await browser.post("/api/signup", { username: "dave", password: PASSWORD });
    const setup = await browser.post("/api/totp/begin");
    await browser.post("/api/totp/confirm", { code: clock.nextTotp(setup.secret) });
    await browser.post("/api/logout");
    await browser.login("dave");
    const valid = new Set([-60, -30, 0, 30, 60].map((d) => generateSync({ secret: setup.secret, epoch: clock.t + d })));
    const wrong = ["000000", "111111", "222222", "333333", "444444", "555555"].find((c) => !valid.has(c));
    let reply;
    for (let attempt = 0; attempt < 12; attempt++) {
      reply = await browser.request("POST", "/api/login/verify", { kind: "totp", value: wrong });
      if (reply.status !== 401) break;
    }
    assert.deepEqual([reply.status, reply.body.error], [429, "locked_out"]);
    assert.ok(reply.body.retry_after > 0);
    assert.equal(reply.headers.get("retry-after"), String(reply.body.retry_after));
  });

  test("the plain-text index, unknown endpoints, non-JSON bodies, bad credentials, cookies", async () => {
    const browser = host.browser();
    const index = await browser.request("GET", "/");
    assert.ok(index.headers.get("content-type").startsWith("text/plain"));
    assert.ok(index.body.includes("/api/login/verify"));
    assert.equal((await browser.request("GET", "/api/nothing")).status, 404);
    const bad = await browser.request("POST", "/api/login", { username: "nobody", password: PASSWORD });
    assert.deepEqual([bad.status, bad.body.error], [401, "invalid_credentials"]);
    const form = await browser.request("POST", "/api/login", "username=a&password=b", {
      contentType: "application/x-www-form-urlencoded",
    });
    assert.equal(form.status, 415);
    const notJson = await browser.request("POST", "/api/login", "{nope", {});
    assert.deepEqual([notJson.status, notJson.body.error], [400, "invalid_input"]);
    const big = await browser.request("POST", "/api/login", { padding: "x".repeat(70_000) });
    assert.equal(big.status, 413);

    const signup = await browser.request("POST", "/api/signup", { username: "erin", password: PASSWORD });
    assert.equal(signup.status, 201);
    const cookie = signup.headers.get("set-cookie");
    assert.match(cookie, /^session=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict$/);
    assert.equal(signup.headers.get("cache-control"), "no-store");
    const taken = await browser.request("POST", "/api/signup", { username: "erin", password: PASSWORD });
    assert.deepEqual([taken.status, taken.body.error], [409, "username_taken"]);
  });
});

test("SMTP down: sending a code fails with 503 `mail`, and no code is made usable", async () => {
  const host = await startHost(await freePort());
  try {
    const browser = host.browser();
    await browser.post("/api/signup", { username: "carol", password: PASSWORD });
    const refused = await browser.request("POST", "/api/email/begin", { address: "carol@example.com" });
    assert.deepEqual([refused.status, refused.body.error], [503, "mail"]);
    assert.equal(refused.body.message, "the server could not complete the request");
    assert.equal((await browser.security()).pending.email, null);
    assert.ok(host.logs.some((line) => line.includes("SMTP delivery")), host.logs.join("\n"));
  } finally {
    await host.close();
  }
});
