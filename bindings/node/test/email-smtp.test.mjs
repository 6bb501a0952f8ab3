// Email codes delivered through a real SMTP server (smtp-server on a loopback port) by a mailer
// that sends with nodemailer, and read back from the received MIME message (mailparser).

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { simpleParser } from "mailparser";
import nodemailer from "nodemailer";
import { SMTPServer } from "smtp-server";
import { Engine, MemoryStore } from "twofa";
import { AsyncMapStore, CONFIG, T0, rejects } from "./support.mjs";

/** Every message the SMTP server received, parsed. */
const inbox = [];
let server;
let port;

before(async () => {
  server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (parsed) => {
          inbox.push({ envelope: session.envelope.rcptTo.map((r) => r.address), parsed });
          callback();
        },
        (error) => callback(error),
      );
    },
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  port = server.server.address().port;
});

after(() => new Promise((resolve) => server.close(resolve)));

/** twofa's mailer over SMTP with nodemailer: each message as text + HTML alternatives. */
function smtpMailer(toPort) {
  const transport = nodemailer.createTransport({ host: "127.0.0.1", port: toPort, secure: false, ignoreTLS: true });
  return async ({ to, subject, text, html }) => {
    await transport.sendMail({ from: "security@example.com", to, subject, text, html });
  };
}

/** The last message received for `address`. */
function lastTo(address) {
  const found = inbox.findLast((m) => m.envelope.includes(address));
  assert.ok(found, `no mail to ${address}`);
  return found.parsed;
}

/** The 6-digit code in the plain-text part of the last message to `address`. */
function codeFor(address) {
  const found = lastTo(address).text.match(/\b\d{6}\b/);
  assert.ok(found, "no code in the mail");
  return found[0];
}

/** A port on which nothing listens (bound, then closed). */
async function closedPort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port: free } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return free;
}

test("the SMTP test server receives what nodemailer sends", async () => {
  await smtpMailer(port)({ to: "probe@example.com", subject: "Probe", text: "text 424242", html: "<b>html</b>" });
  const probe = lastTo("probe@example.com");
  assert.equal(probe.subject, "Probe");
  assert.equal(probe.text.trim(), "text 424242");
  assert.equal(probe.html, "<b>html</b>");
});

test("enrolment and sign-in codes over SMTP", async () => {
  const clock = { t: T0 };
  const engine = new Engine(CONFIG, { store: new AsyncMapStore(), mailer: smtpMailer(port), clock: () => clock.t });

  const sent = await engine.emailEnrollBegin("bob", "bob@example.com");
  assert.deepEqual(sent.sentTo, ["bob@example.com"]);
  assert.equal(sent.expiresAt, T0 + 600);
  assert.ok(sent.resendAfter > T0);
  const received = lastTo("bob@example.com");
  assert.equal(received.to.text, "bob@example.com");
  assert.ok(received.subject.includes("Example Shop"), received.subject);
  const enrolCode = codeFor("bob@example.com");
  assert.ok(received.html.includes(enrolCode), "the HTML part carries the code too");
  assert.equal((await engine.securityStatus("bob")).pending.email, "bob@example.com");

  await rejects(engine.emailEnrollConfirm("bob", enrolCode === "000000" ? "111111" : "000000"), "invalid_code");
  const added = await engine.emailEnrollConfirm("bob", enrolCode);
  assert.equal(added.method.kind, "email");
  assert.equal(added.method.label, "bob@example.com");
  assert.equal((await engine.securityStatus("bob")).pending.email, null);

  clock.t += 120;
  const challenge = await engine.loginBegin("bob");
  assert.deepEqual(challenge.methods, ["email"]);
  assert.equal(typeof challenge.challengeId, "string");
  const before = inbox.length;
  const signInSent = await engine.loginSendEmailCode("bob", challenge.challengeId);
  assert.deepEqual(signInSent.sentTo, ["b***@example.com"]);
  assert.equal(inbox.length, before + 1);

  const limited = await rejects(engine.loginSendEmailCode("bob", challenge.challengeId), "rate_limited");
  assert.equal(limited.retryAfter, 60);
  assert.equal(inbox.length, before + 1, "no mail is sent while rate limited");

  const code = codeFor("bob@example.com");
  assert.notEqual(code, enrolCode);
  const wrong = code === "000000" ? "111111" : "000000";
  const invalid = await rejects(engine.loginVerify("bob", challenge.challengeId, "email", wrong), "invalid_code");
  assert.equal(invalid.retryAfter, null);
  const success = await engine.loginVerify("bob", challenge.challengeId, "email", code);
  assert.equal(success.method, "email");
  assert.equal(success.stepUp.expiresAt, clock.t + 600);
  // The challenge is spent.
  await rejects(engine.loginVerify("bob", challenge.challengeId, "email", code), "not_found");
});

test("after the cooldown a new sign-in code is sent and works", async () => {
  const clock = { t: T0 };
  const engine = new Engine(CONFIG, { store: new MemoryStore(), mailer: smtpMailer(port), clock: () => clock.t });
  await engine.emailEnrollBegin("dora", "dora@example.com");
  await engine.emailEnrollConfirm("dora", codeFor("dora@example.com"));
  const { challengeId } = await engine.loginBegin("dora");
  await engine.loginSendEmailCode("dora", challengeId);
  clock.t += 59;
  assert.equal((await rejects(engine.loginSendEmailCode("dora", challengeId), "rate_limited")).retryAfter, 1);
  clock.t += 1;
  await engine.loginSendEmailCode("dora", challengeId);
  assert.equal((await engine.loginVerify("dora", challengeId, "email", codeFor("dora@example.com"))).method, "email");
});

test("an unreachable SMTP server is a mail error caused by nodemailer's error, and leaves no usable code", async () => {
  const attempted = [];
  const thrown = [];
  const down = smtpMailer(await closedPort());
  const mailer = async (message) => {
    attempted.push(message);
    try {
      await down(message);
    } catch (error) {
      thrown.push(error);
      throw error;
    }
  };
  const store = new AsyncMapStore();
  const engine = new Engine(CONFIG, { store, mailer, clock: () => T0 });
  const failed = await rejects(engine.emailEnrollBegin("bob", "bob@example.com"), "mail");
  assert.equal(failed.code, 14);
  assert.equal(thrown.length, 1);
  assert.equal(failed.cause, thrown[0]);
  assert.equal(failed.cause.code, "ESOCKET");
  assert.match(failed.cause.message, /ECONNREFUSED/);
  assert.match(failed.message, /bob@example\.com/);
  const kept = [...store.data.keys()];
  assert.equal(kept.length, 1, `nothing but the address's budget stays stored for a user who had no record: ${kept}`);
  assert.match(kept[0], /^email-address\//);

  const code = attempted[0].text.match(/\b\d{6}\b/)?.[0];
  assert.ok(code, "the attempted message had a code");
  await rejects(engine.emailEnrollConfirm("bob", code), "not_found");
  assert.equal((await engine.securityStatus("bob")).pending.email, null);
});

test("a sign-in code that could not be delivered does not work", async () => {
  const clock = { t: T0 };
  let mailer = smtpMailer(port);
  const engine = new Engine(CONFIG, { store: new MemoryStore(), mailer: (m) => mailer(m), clock: () => clock.t });
  await engine.emailEnrollBegin("erin", "erin@example.com");
  await engine.emailEnrollConfirm("erin", codeFor("erin@example.com"));
  const { challengeId } = await engine.loginBegin("erin");

  const attempted = [];
  const down = smtpMailer(await closedPort());
  mailer = (message) => {
    attempted.push(message);
    return down(message);
  };
  const failed = await rejects(engine.loginSendEmailCode("erin", challengeId), "mail");
  assert.equal(failed.cause?.code, "ESOCKET");
  const undelivered = attempted[0].text.match(/\b\d{6}\b/)[0];
  const unusable = await rejects(engine.loginVerify("erin", challengeId, "email", undelivered), "not_found");
  assert.match(unusable.message, /no code was sent/);

  mailer = smtpMailer(port);
  const fresh = await engine.loginBegin("erin");
  await engine.loginSendEmailCode("erin", fresh.challengeId);
  assert.equal((await engine.loginVerify("erin", fresh.challengeId, "email", codeFor("erin@example.com"))).method, "email");
});
