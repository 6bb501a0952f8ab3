// Security round 2 (issue 17) through the Node engine: what the shared scenario cannot show in
// single calls. Bursts of 64 concurrent code sends with a slow mailer mail one code (item 1),
// a pending code whose host died, sign-in codes of two challenges side by side (item 2), a user
// whose only device is flagged (item 3), the contact address (item 4), a step-up token from a
// deleted record and the `write_schema` setting (item 5), credential claims released by deletion
// and reset (item 6), invisible characters (item 8) and clocks beyond the year 9999.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateSync } from "otplib";
import { Engine, MemoryStore, TwofaError } from "twofa";
import { SoftAuthenticator } from "./softauthn.mjs";
import { AsyncMapStore, CONFIG, ORIGIN, T0, engineStores, rejects } from "./support.mjs";

const ADDR = "alice@example.com";
/** The resend cooldown of the default config. */
const COOLDOWN = 60;

/** otplib's code for a base32 secret at Unix time `t`. */
const otp = (secret, t) => generateSync({ secret, epoch: t, algorithm: "sha1", digits: 6, period: 30 });

/** The 6-digit code of the last message to `to`. */
function codeTo(outbox, to) {
  const message = outbox.findLast((m) => m.to === to);
  assert.ok(message, `no mail to ${to}`);
  return message.text.match(/\b\d{6}\b/)[0];
}

/** A well-formed code other than `code`. */
const wrong = (code) => (code === "000000" ? "111111" : "000000");

/** How many operations `outcome` has seen settle, so far. */
let settled = 0;

/** "ok", or the name of the TwofaError `promise` rejected with (with its retryAfter), and the
 * order in which it settled. */
const outcome = (promise) =>
  promise.then(
    () => ({ name: "ok", order: settled++ }),
    (e) => {
      if (!(e instanceof TwofaError)) throw e;
      return { name: e.name, retryAfter: e.retryAfter, order: settled++ };
    },
  );

/** Engine options and config for each kind of store (engines opened on one store share it). */
const STORES = engineStores("burst");

/**
 * An engine with its clock (at T0) and outbox; `config` is merged into the tests' config, `delay`
 * is how long each message takes to go (ms), `store` is shared with other engines opened on it
 * (by default a new async Map store, or none with `config.sqlite_path`).
 */
function open({ store, config = {}, delay = 0, outbox = [], clock = { t: T0 } } = {}) {
  if (store === undefined && config.sqlite_path === undefined) store = new AsyncMapStore();
  const mailer = async (message) => {
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    outbox.push(message);
  };
  const engine = new Engine({ ...CONFIG, ...config }, { store, mailer, clock: () => clock.t });
  return { engine, clock, outbox, store };
}

/** Enrols an email method for `user` at `address`. */
async function enrolEmail({ engine, outbox }, user, address = ADDR) {
  await engine.emailEnrollBegin(user, address);
  await engine.emailEnrollConfirm(user, codeTo(outbox, address));
}

/** Enrols an authenticator app for `user`; resolves to its secret and the step-up token. */
async function enrolTotp({ engine, clock }, user, stepUp) {
  const setup = await engine.totpEnrollBegin(user, user, stepUp);
  const added = await engine.totpEnrollConfirm(user, otp(setup.secret, clock.t), stepUp);
  return { secret: setup.secret, stepUp: added.stepUp?.token ?? stepUp, methodId: added.method.id };
}

/** Every result of a burst is one success and `rate_limited` (with a positive retryAfter) or
 * `conflict` for the rest, answered while the one code was still on its way. */
function exactlyOneSent(what, results) {
  const winner = results.find((r) => r.name === "ok");
  assert.ok(winner && results.every((r) => r.order <= winner.order), `${what}: refused before the slow mail went`);
  const names = results.map((r) => r.name);
  assert.equal(names.filter((n) => n === "ok").length, 1, `${what}: ${names}`);
  for (const r of results.filter((r) => r.name !== "ok")) {
    assert.ok(["rate_limited", "conflict"].includes(r.name), `${what}: ${r.name}`);
    if (r.name === "rate_limited") assert.ok(r.retryAfter > 0, `${what}: retryAfter ${r.retryAfter}`);
  }
  assert.ok(names.includes("rate_limited"), `${what}: the cooldown answered: ${names}`);
}

// 1. Concurrent sends beat the resend cooldown.
for (const [kind, make] of Object.entries(STORES)) {
  describe(`a burst of 64 sends with a 0.3 s mailer on the ${kind}`, () => {
    test("loginSendEmailCode for one challenge mails one code, which signs in", async () => {
      const { config, store } = make();
      const outbox = [];
      const clock = { t: T0 };
      const fast = open({ store, config, outbox, clock });
      await enrolEmail(fast, "alice");
      const { challengeId } = await fast.engine.loginBegin("alice");
      const before = outbox.length;
      const engines = [0, 1].map(() => open({ store, config, outbox, clock, delay: 300 }).engine);
      const results = await Promise.all(
        Array.from({ length: 64 }, (_, i) => outcome(engines[i % 2].loginSendEmailCode("alice", challengeId))),
      );
      exactlyOneSent("64 concurrent loginSendEmailCode", results);
      assert.equal(outbox.length - before, 1, "one code mailed");
      const success = await fast.engine.loginVerify("alice", challengeId, "email", codeTo(outbox, ADDR));
      assert.equal(success.method, "email", "the one code that went out signs in");
      for (const e of [fast.engine, ...engines]) e.close();
    });

    test("emailEnrollBegin of a user without methods mails one code to the address", async () => {
      const { config, store } = make();
      const outbox = [];
      const clock = { t: T0 };
      const engines = [0, 1].map(() => open({ store, config, outbox, clock, delay: 300 }).engine);
      const results = await Promise.all(
        Array.from({ length: 64 }, (_, i) => outcome(engines[i % 2].emailEnrollBegin("alice", "victim@example.com"))),
      );
      exactlyOneSent("64 concurrent emailEnrollBegin", results);
      assert.equal(outbox.length, 1, "one code mailed to the address");
      const added = await engines[0].emailEnrollConfirm("alice", codeTo(outbox, "victim@example.com"));
      assert.equal(added.method.kind, "email");
      for (const e of engines) e.close();
    });
  });
}

describe("the resend cooldown", () => {
  test("runs from a code's issue: a pending code whose host never sent it holds it, then is replaced", async () => {
    const store = new AsyncMapStore();
    const clock = { t: T0 };
    const outbox = [];
    let entered;
    const inside = new Promise((resolve) => (entered = resolve));
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    // A host that wrote its pending code and then hangs in the mailer (as if it had died).
    const stuck = new Engine(CONFIG, {
      store,
      mailer: async () => {
        entered();
        await gate;
        throw new Error("the host died");
      },
      clock: () => clock.t,
    });
    const hanging = outcome(stuck.emailEnrollBegin("alice", ADDR));
    await inside;
    const other = open({ store, clock, outbox });
    const refused = await rejects(other.engine.emailEnrollBegin("alice", ADDR), "rate_limited");
    assert.equal(refused.retryAfter, COOLDOWN, "the pending code holds the cooldown");
    clock.t += COOLDOWN;
    await other.engine.emailEnrollBegin("alice", ADDR);
    assert.equal(outbox.length, 1, "a pending code older than the cooldown is replaced");
    release();
    assert.equal((await hanging).name, "mail");
    const added = await other.engine.emailEnrollConfirm("alice", codeTo(outbox, ADDR));
    assert.equal(added.method.kind, "email", "the late failure of the dead host discarded nothing of the new code");
  });

  test("an address's budget is kept under a keyed hash, never the address", async () => {
    const e = open({ config: { email_code: { address_limit: 2 } } });
    await e.engine.emailEnrollBegin("u1", "Target@Example.com");
    await e.engine.emailEnrollBegin("u2", "target@example.com");
    const refused = await rejects(e.engine.emailEnrollBegin("u3", "TARGET@example.com"), "rate_limited");
    assert.equal(refused.retryAfter, 3600);
    await rejects(e.engine.contactEmailBegin("u4", "target@example.com"), "rate_limited");
    assert.equal(e.outbox.length, 2);
    const budgets = [...e.store.data.keys()].filter((k) => k.startsWith("email-address/"));
    assert.equal(budgets.length, 1, "one budget for the address, however it is written");
    for (const [key, { value }] of e.store.data) {
      assert.ok(!key.toLowerCase().includes("target"), key);
      if (key.startsWith("email-address/")) assert.ok(!value.toString().toLowerCase().includes("target"));
    }
    e.clock.t += 3600;
    await e.engine.emailEnrollBegin("u3", "target@example.com");
  });
});

// 2. Email sign-in codes are bound to their challenge.
describe("sign-in codes", () => {
  test("a stranger with the password cannot cancel the user's code; each completes its own challenge", async () => {
    const e = open();
    await enrolEmail(e, "alice");
    const users = (await e.engine.loginBegin("alice")).challengeId;
    await e.engine.loginSendEmailCode("alice", users);
    const usersCode = codeTo(e.outbox, ADDR);
    e.clock.t += COOLDOWN;
    const strangers = (await e.engine.loginBegin("alice")).challengeId;
    await e.engine.loginSendEmailCode("alice", strangers);
    const strangersCode = codeTo(e.outbox, ADDR);
    assert.equal((await e.engine.loginVerify("alice", users, "email", usersCode)).method, "email");
    assert.equal((await e.engine.loginVerify("alice", strangers, "email", strangersCode)).method, "email");
  });

  test("a used code on another challenge is replayed", async () => {
    const e = open();
    await enrolEmail(e, "alice");
    const first = (await e.engine.loginBegin("alice")).challengeId;
    const second = (await e.engine.loginBegin("alice")).challengeId;
    await e.engine.loginSendEmailCode("alice", first);
    const code = codeTo(e.outbox, ADDR);
    await e.engine.loginVerify("alice", first, "email", code);
    await rejects(e.engine.loginVerify("alice", second, "email", code), "replayed");
  });
});

// 3. A flagged WebAuthn device counts nowhere.
describe("a flagged device", () => {
  /** Registers a soft key as `user`'s first method, flags it with a counter that did not
   * increase; resolves to the key. */
  async function flaggedOnly(e, user) {
    const key = new SoftAuthenticator(ORIGIN);
    const registration = await e.engine.webauthnRegisterBegin(user, "Key");
    await e.engine.webauthnRegisterFinish(user, await key.register(registration.options));
    for (const [count, expected] of [
      [5, "ok"],
      [5, "webauthn_rejected"],
    ]) {
      const challenge = await e.engine.loginBegin(user);
      const assertion = await key.signIn(challenge.webauthnOptions, { signCount: count });
      const got = await outcome(e.engine.loginVerify(user, challenge.challengeId, "webauthn", assertion));
      assert.equal(got.name, expected);
    }
    return key;
  }

  test("a user whose only device is flagged meets the rules of a user without methods, never a dead end", async () => {
    const e = open();
    await flaggedOnly(e, "alice");
    await e.engine.markOrderCreated("alice");
    const status = await e.engine.securityStatus("alice");
    assert.equal(status.methods[0].flagged, true);
    assert.equal(status.compliant, false);
    assert.deepEqual(status.recommendations, ["enable_two_factor"]);
    assert.notEqual(status.enrollmentDeadline, null);
    const challenge = await e.engine.loginBegin("alice");
    assert.equal(challenge.enrollmentRequired, true);
    assert.equal(challenge.challengeId, null);
    // The user enrols a new method without a step-up, as a new user does.
    await enrolTotp(e, "alice");
    assert.equal((await e.engine.securityStatus("alice")).compliant, true);
  });

  test("does not let the contact address change without a step-up", async () => {
    const e = open();
    await flaggedOnly(e, "alice");
    // Nothing usable guards the account: the rules of a user without methods.
    await e.engine.setContactEmail("alice", "alice.contact@example.com");
    assert.equal((await e.engine.securityStatus("alice")).contactEmail, "alice.contact@example.com");
  });
});

// 4. The contact address: a step-up once there is a method, both addresses told, proved by a code.
describe("the contact address", () => {
  test("setContactEmail needs a step-up once there is a method and tells the old and the new address", async () => {
    const e = open();
    const unguarded = await e.engine.setContactEmail("alice", "old@example.com");
    assert.equal(unguarded.sent, 0, "the first address is not mailed");
    const { stepUp } = await enrolTotp(e, "alice");
    await rejects(e.engine.setContactEmail("alice", "new@example.com"), "step_up_required");
    await rejects(e.engine.setContactEmail("alice", "new@example.com", "not-a-token"), "step_up_required");
    assert.equal((await e.engine.securityStatus("alice")).contactEmail, "old@example.com");
    const before = e.outbox.length;
    const notices = await e.engine.setContactEmail("alice", "new@example.com", { token: stepUp, expiresAt: 0 });
    assert.equal(notices.sent, 2);
    assert.deepEqual(e.outbox.slice(before).map((m) => m.to).sort(), ["new@example.com", "old@example.com"]);
  });

  test("contactEmailBegin/Confirm prove the new address with a code to it", async () => {
    const e = open();
    const { stepUp } = await enrolTotp(e, "alice");
    await rejects(e.engine.contactEmailBegin("alice", "c@example.com"), "step_up_required");
    const sent = await e.engine.contactEmailBegin("alice", "c@example.com", stepUp);
    assert.deepEqual(sent.sentTo, ["c@example.com"]);
    assert.ok(sent.resendAfter > T0 && sent.expiresAt > T0);
    const code = codeTo(e.outbox, "c@example.com");
    await rejects(e.engine.contactEmailConfirm("alice", wrong(code), stepUp), "invalid_code");
    await rejects(e.engine.contactEmailConfirm("alice", code), "step_up_required");
    assert.equal((await e.engine.securityStatus("alice")).contactEmail, null, "nothing changes before the proof");
    await assert.rejects(e.engine.emailEnrollConfirm("alice", code, stepUp), TwofaError, "a contact code is no enrolment code");
    const before = e.outbox.length;
    const notices = await e.engine.contactEmailConfirm("alice", code, stepUp);
    assert.deepEqual(notices, { sent: 0, failed: [] }, "the first address is not mailed");
    assert.equal(e.outbox.length, before);
    const status = await e.engine.securityStatus("alice");
    assert.equal(status.contactEmail, "c@example.com");
    assert.equal(status.methods.length, 1, "not an email method");
    await rejects(e.engine.contactEmailConfirm("alice", code, stepUp), "not_found");
  });

  test("contactEmailBegin keeps the resend cooldown", async () => {
    const e = open();
    await e.engine.contactEmailBegin("alice", "c@example.com");
    const refused = await rejects(e.engine.contactEmailBegin("alice", "d@example.com"), "rate_limited");
    assert.equal(refused.retryAfter, COOLDOWN);
    assert.equal(e.outbox.length, 1);
  });
});

// 5. Step-up tokens do not outlive the record; the write_schema setting of rolling upgrades.
describe("the record's generation", () => {
  test("a step-up token from before admin.deleteUser fails after the user enrols again", async () => {
    const e = open({ config: { admin: true } });
    const { stepUp } = await enrolTotp(e, "alice");
    await e.engine.admin().deleteUser("alice");
    e.clock.t += 30;
    await enrolTotp(e, "alice");
    await rejects(e.engine.recoveryCodesGenerate("alice", stepUp), "step_up_required");
  });

  test("write_schema is 1 or 2; contact confirmation waits for 2", async () => {
    const old = open({ config: { write_schema: 1 } });
    const error = await rejects(old.engine.contactEmailBegin("alice", "c@example.com"), "invalid_input");
    assert.match(error.message, /write_schema 2/);
    for (const bad of [0, 3, "2"]) {
      assert.throws(
        () => new Engine({ ...CONFIG, write_schema: bad }, { store: new MemoryStore() }),
        (e) => e instanceof TwofaError && e.name === "invalid_input" && (bad === "2" || /write_schema/.test(e.message)),
      );
    }
    const config = { ...CONFIG, write_schema: 2, email_code: { address_limit: 5, address_window_secs: 600 } };
    new Engine(config, { store: new MemoryStore() }).close();
  });
});

// 6. Credential claims are released after the commit.
describe("credential claims", () => {
  /** The stored claims of WebAuthn credentials: credential key → claiming user. */
  const claims = (store) =>
    Object.fromEntries(
      [...store.data]
        .filter(([k]) => k.startsWith("webauthn-credential/"))
        .map(([k, { value }]) => [k, value.toString()]),
    );

  /** Registers `key` (its first credential again, after the first time) for `user`. */
  async function register(e, key, user) {
    const registration = await e.engine.webauthnRegisterBegin(user, "Key");
    const response = await key.register(registration.options, { sameCredential: key.credentials.size > 0 });
    await e.engine.webauthnRegisterFinish(user, response);
    return response.id;
  }

  test("admin deleteUser and resetUser release them: the authenticator registers for another account", async () => {
    const e = open();
    const key = new SoftAuthenticator(ORIGIN);
    const id = await register(e, key, "u1");
    assert.deepEqual(Object.keys(claims(e.store)), [`webauthn-credential/${id}`]);
    await e.engine.admin().deleteUser("u1");
    assert.deepEqual(claims(e.store), {}, "released after the deletion");
    assert.equal(await register(e, key, "u2"), id);
    assert.equal(Object.keys(claims(e.store)).length, 1);
    await e.engine.admin().resetUser("u2", "support-7", "lost key");
    assert.deepEqual(claims(e.store), {}, "released after the reset");
    assert.equal(await register(e, key, "u3"), id);
    assert.equal(Object.keys(claims(e.store)).length, 1);
  });

  test("a live claim still refuses the credential for another account", async () => {
    const e = open();
    const key = new SoftAuthenticator(ORIGIN);
    await register(e, key, "u1");
    const registration = await e.engine.webauthnRegisterBegin("u2", "Key");
    const response = await key.register(registration.options, { sameCredential: true });
    await rejects(e.engine.webauthnRegisterFinish("u2", response), "webauthn_rejected");
  });
});

// 8. Invisible and bidirectional characters.
describe("format characters and line separators", () => {
  const INVISIBLE = ["\u202e", "\u200b", "\ufeff", "\u2028", "\u2029"];
  const hex = (c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;

  for (const c of INVISIBLE) {
    test(`${hex(c)} is refused in every address and label, and no mail goes out`, async () => {
      const e = open();
      const address = `mal${c}lory@example.com`;
      await rejects(e.engine.emailEnrollBegin("alice", address), "invalid_input");
      await rejects(e.engine.setContactEmail("alice", address), "invalid_input");
      await rejects(e.engine.contactEmailBegin("alice", address), "invalid_input");
      await rejects(e.engine.webauthnRegisterBegin("alice", `Key${c}Subject: x`), "invalid_input");
      const { stepUp, methodId } = await enrolTotp(e, "alice");
      await rejects(e.engine.renameMethod("alice", methodId, `Pho${c}ne`, stepUp), "invalid_input");
      // At the end of a label, a separator may be trimmed away (it is whitespace) but never kept.
      const trailing = await outcome(e.engine.renameMethod("alice", methodId, `Phone${c}`, stepUp));
      assert.ok(["ok", "invalid_input"].includes(trailing.name), trailing.name);
      await rejects(e.engine.setContactEmail("alice", address, stepUp), "invalid_input");
      assert.deepEqual(e.outbox, []);
      const status = await e.engine.securityStatus("alice");
      assert.equal(status.contactEmail, null);
      assert.ok(!status.methods[0].label.includes(c));
    });
  }
});

// 9. Clocks beyond the documented range.
test("a clock beyond 253402300799 (the end of year 9999) is refused as internal", async () => {
  const at = (t) => new Engine(CONFIG, { store: new MemoryStore(), clock: () => t });
  assert.deepEqual((await at(253_402_300_799).securityStatus("alice")).methods, []);
  await rejects(at(253_402_300_800).securityStatus("alice"), "internal");
});
