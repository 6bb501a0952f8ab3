// Issue 10 through the Node engine: audit events (`onEvent`), remembered devices, the admin
// capability (`forbidden` without it), the admin reset, export and import between two engines
// with different master keys, and the enforcement grace period. TOTP codes come from otplib and
// WebAuthn assertions from the tests' software authenticator, both independent of twofa.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateSync } from "otplib";
import { Engine, MemoryStore, codes } from "twofa";
import { SoftAuthenticator } from "./softauthn.mjs";
import { AsyncMapStore, CONFIG, ORIGIN, T0, rejects } from "./support.mjs";

/** otplib's code for a base32 secret at Unix time `t`. */
const otp = (secret, t) => generateSync({ secret, epoch: t, algorithm: "sha1", digits: 6, period: 30 });

/** An export key: 32 bytes, standard base64. */
const KEY = Buffer.alloc(32, 7).toString("base64");
/** One hour. */
const TTL = 3600;
/** The grace period of the tests: three days. */
const GRACE = 3 * 86_400;

/**
 * An engine on `store` with its clock (at T0), outbox and recorded events; `config` is merged
 * into the tests' config, which remembers devices for an hour.
 */
function open({ store = new AsyncMapStore(), config = {}, onEvent } = {}) {
  const clock = { t: T0 };
  const outbox = [];
  const events = [];
  const engine = new Engine(
    { ...CONFIG, remember_device: { enabled: true, ttl_secs: TTL }, ...config },
    {
      store,
      mailer: (message) => void outbox.push(message),
      clock: () => clock.t,
      onEvent: onEvent ?? ((event) => void events.push(event)),
    },
  );
  return { engine, clock, outbox, events, store };
}

/** Enrols an authenticator app for `user` at the clock's time; returns the secret and the
 * step-up token of the confirmation. */
async function enrolTotp({ engine, clock }, user) {
  const setup = await engine.totpEnrollBegin(user, `${user}@example.com`);
  const added = await engine.totpEnrollConfirm(user, otp(setup.secret, clock.t));
  return { secret: setup.secret, stepUp: added.stepUp };
}

/** Signs `user` in with the app's code, a step later than the last code; resolves to the
 * success. */
async function signIn({ engine, clock }, user, secret, options) {
  clock.t += 30;
  const challenge = await engine.loginBegin(user);
  assert.equal(challenge.secondFactorRequired, true);
  return engine.loginVerify(user, challenge.challengeId, "totp", otp(secret, clock.t), options);
}

/** The secret strings of `value`: anything under `secret`, `uri`, `token`, `codes`, `document`. */
function secretsOf(value, found = [], secret = false) {
  if (typeof value === "string" && secret) found.push(value);
  else if (Array.isArray(value)) for (const v of value) secretsOf(v, found, secret);
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) secretsOf(v, found, secret || ["secret", "uri", "token", "codes", "document"].includes(k));
  }
  return found;
}

/** Asserts that no event's JSON contains any of `secrets`. */
function assertNoSecret(events, secrets) {
  assert.ok(secrets.length > 0);
  for (const event of events) {
    const json = JSON.stringify(event);
    for (const secret of secrets) assert.ok(!json.includes(secret), `${json} contains ${secret}`);
  }
}

const STORES = { "async Map store": () => new AsyncMapStore(), MemoryStore: () => new MemoryStore() };

for (const [name, store] of Object.entries(STORES)) {
  describe(`audit events on the ${name}`, () => {
    test("arrive in order with the core's fields, camelCase, and no secret", async () => {
      const e = open({ store: store() });
      const { engine, clock, events } = e;
      const secrets = [];
      const setup = await engine.totpEnrollBegin("alice", "alice@example.com");
      assert.deepEqual(events, [], "a pending enrolment is no event");
      const code = otp(setup.secret, clock.t);
      const added = await engine.totpEnrollConfirm("alice", code);
      secrets.push(code, ...secretsOf(setup), ...secretsOf(added));
      assert.deepEqual(events, [
        { kind: "method_added", user: "alice", at: T0, method: "totp", methodId: "totp-1", reason: null, actor: null },
      ]);

      clock.t += 30;
      let challenge = await engine.loginBegin("alice");
      await rejects(engine.loginVerify("alice", challenge.challengeId, "totp", code === "000000" ? "111111" : "000000"), "invalid_code");
      const right = otp(setup.secret, clock.t);
      const success = await engine.loginVerify("alice", challenge.challengeId, "totp", right);
      await rejects(engine.loginVerify("alice", (await engine.loginBegin("alice")).challengeId, "totp", right), "replayed");
      const recovery = await engine.recoveryCodesGenerate("alice", success.stepUp);
      challenge = await engine.loginBegin("alice");
      const used = await engine.loginVerify("alice", challenge.challengeId, "recovery", recovery.codes[0]);
      secrets.push(right, ...secretsOf(success), ...secretsOf(recovery), ...secretsOf(used));

      assert.deepEqual(
        events.map((event) => [event.kind, event.method, event.reason]),
        [
          ["method_added", "totp", null],
          ["login_failed", "totp", "invalid_code"],
          ["login_succeeded", "totp", null],
          ["replay_refused", "totp", "replayed"],
          ["recovery_codes_generated", null, null],
          ["login_succeeded", "recovery", null],
          ["recovery_code_used", null, "9"],
        ],
      );
      for (const event of events) {
        assert.deepEqual(Object.keys(event), ["kind", "user", "at", "method", "methodId", "reason", "actor"]);
        assert.equal(event.user, "alice");
      }
      assertNoSecret(events, secrets);
    });

    test("a handler that throws or rejects never fails the operation", async () => {
      for (const onEvent of [
        () => {
          throw new Error("log down");
        },
        async () => {
          await new Promise(setImmediate);
          throw new Error("log down");
        },
        () => Promise.reject(undefined),
      ]) {
        const e = open({ store: store(), onEvent });
        const { secret } = await enrolTotp(e, "alice");
        assert.equal((await signIn(e, "alice", secret)).method, "totp");
        assert.equal((await e.engine.securityStatus("alice")).methods.length, 1);
      }
    });

    test("an onEvent that is not a function is a TypeError", () => {
      assert.throws(() => new Engine(CONFIG, { store: store(), onEvent: "log" }), TypeError);
    });

    test("an async handler is awaited before the operation resolves", async () => {
      const seen = [];
      const e = open({
        store: store(),
        onEvent: async (event) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          seen.push(event.kind);
        },
      });
      await enrolTotp(e, "alice");
      assert.deepEqual(seen, ["method_added"]);
    });
  });
}

describe("remembered devices", () => {
  /** An engine with alice on an app and an email address (so removing one method leaves one). */
  async function alice() {
    const e = open();
    const { secret, stepUp } = await enrolTotp(e, "alice");
    await e.engine.emailEnrollBegin("alice", "alice@example.com", stepUp);
    const code = e.outbox.at(-1).text.match(/\d{6,}/)[0];
    await e.engine.emailEnrollConfirm("alice", code, stepUp);
    return { ...e, secret, stepUp };
  }

  /** Whether `token` lets `user` skip the second factor now. */
  async function skips({ engine }, user, token) {
    const challenge = await engine.loginBegin(user, { deviceToken: token });
    assert.equal(challenge.secondFactorRequired, challenge.rememberedDevice === null);
    return challenge.rememberedDevice;
  }

  test("a device token skips the second factor, for its user only", async () => {
    const e = await alice();
    const plain = await signIn(e, "alice", e.secret);
    assert.equal(plain.deviceToken, null);
    const success = await signIn(e, "alice", e.secret, { rememberDevice: true });
    const { token, deviceId, expiresAt } = success.deviceToken;
    assert.equal(typeof token, "string");
    assert.equal(expiresAt, e.clock.t + TTL);
    assert.equal(e.events.at(-1).kind, "device_remembered");

    e.events.length = 0;
    assert.equal(await skips(e, "alice", token), deviceId);
    assert.deepEqual(
      e.events.map(({ kind, methodId, reason }) => ({ kind, methodId, reason })),
      [{ kind: "login_succeeded", methodId: deviceId, reason: "remembered_device" }],
    );
    const status = await e.engine.securityStatus("alice");
    assert.deepEqual(status.rememberedDevices.map(({ id, method, lastUsed }) => ({ id, method, lastUsed })), [
      { id: deviceId, method: "totp", lastUsed: e.clock.t },
    ]);

    await enrolTotp(e, "bob");
    assert.equal(await skips(e, "bob", token), null, "another user's token is ignored");
    assert.equal(await skips(e, "alice", `${token}x`), null, "a forged token is ignored");
    assert.equal(await skips(e, "alice", "not-a-token"), null);
    assertNoSecret(e.events, [token]);
  });

  test("revoking one device, then all, stops their tokens", async () => {
    const e = await alice();
    const first = (await signIn(e, "alice", e.secret, { rememberDevice: true })).deviceToken;
    const second = (await signIn(e, "alice", e.secret, { rememberDevice: true })).deviceToken;
    const third = (await signIn(e, "alice", e.secret, { rememberDevice: true })).deviceToken;

    assert.equal(await e.engine.revokeRememberedDevice("alice", first.deviceId), undefined);
    assert.equal(await skips(e, "alice", first.token), null);
    assert.equal(await skips(e, "alice", second.token), second.deviceId);
    await rejects(e.engine.revokeRememberedDevice("alice", first.deviceId), "not_found");

    assert.equal(await e.engine.revokeRememberedDevices("alice"), undefined);
    assert.equal(await skips(e, "alice", second.token), null);
    assert.equal(await skips(e, "alice", third.token), null);
    assert.deepEqual((await e.engine.securityStatus("alice")).rememberedDevices, []);
    assert.ok(e.events.some((event) => event.kind === "remembered_devices_revoked" && event.reason === "user"));
  });

  test("removing a method revokes every remembered device", async () => {
    const e = await alice();
    const { deviceToken } = await signIn(e, "alice", e.secret, { rememberDevice: true });
    assert.equal(await skips(e, "alice", deviceToken.token), deviceToken.deviceId);
    e.events.length = 0;
    await e.engine.removeMethod("alice", "email-2", e.stepUp);
    assert.deepEqual(
      e.events.map(({ kind, reason }) => [kind, reason]),
      [
        ["method_removed", null],
        ["remembered_devices_revoked", "method_removed"],
      ],
    );
    assert.equal(await skips(e, "alice", deviceToken.token), null);
  });

  test("a token expires after the configured time", async () => {
    const e = await alice();
    const { deviceToken } = await signIn(e, "alice", e.secret, { rememberDevice: true });
    e.clock.t = deviceToken.expiresAt - 1;
    assert.equal(await skips(e, "alice", deviceToken.token), deviceToken.deviceId);
    e.clock.t = deviceToken.expiresAt;
    assert.equal(await skips(e, "alice", deviceToken.token), null);
    assert.deepEqual((await e.engine.securityStatus("alice")).rememberedDevices, []);
  });
});

describe("the admin capability", () => {
  test("without `admin: true` every admin operation is forbidden and changes nothing", async () => {
    assert.equal(codes.forbidden, 18);
    const store = new AsyncMapStore();
    const e = open({ store });
    const { secret } = await enrolTotp(e, "alice");
    const before = store.snapshot();
    const events = e.events.length;
    const { engine } = open({ store, config: { admin: false } });
    const admin = engine.admin();
    const refusals = [
      admin.totpImport("alice", secret),
      admin.deleteUser("alice"),
      admin.resetUser("alice", "support-7", "lost phone"),
      admin.exportUser("alice", KEY),
      admin.importUser("alice", "{}", KEY),
    ];
    for (const refusal of refusals) {
      const error = await rejects(refusal, "forbidden");
      assert.equal(error.code, codes.forbidden);
    }
    assert.deepEqual(store.snapshot(), before);
    assert.equal(e.events.length, events);
    assert.equal((await engine.securityStatus("alice")).methods.length, 1, "the user-facing engine still works");
  });

  test("resetUser removes every factor, tells the user and records who and why", async () => {
    const e = open();
    const { secret, stepUp } = await enrolTotp(e, "alice");
    await e.engine.setContactEmail("alice", "alice@example.com", stepUp);
    await e.engine.recoveryCodesGenerate("alice", stepUp);
    const { deviceToken } = await signIn(e, "alice", secret, { rememberDevice: true });
    e.events.length = 0;
    const mails = e.outbox.length;

    const reset = await e.engine.admin().resetUser("alice", "support-7", "lost phone");
    assert.equal(reset.methodsRemoved, 1);
    assert.equal(reset.notices.sent, 1);
    assert.deepEqual(reset.notices.failed, []);
    assert.equal(e.outbox.length, mails + 1);
    assert.equal(e.outbox.at(-1).to, "alice@example.com");
    assert.deepEqual(
      e.events.map(({ kind, actor, reason }) => [kind, actor, reason]),
      [
        ["admin_reset", "support-7", "lost phone"],
        ["method_removed", null, "admin_reset"],
        ["remembered_devices_revoked", null, "admin_reset"],
      ],
    );
    const status = await e.engine.securityStatus("alice");
    assert.deepEqual(status.methods, []);
    assert.equal(status.recoveryCodesLeft, 0);
    assert.deepEqual(status.rememberedDevices, []);
    assert.deepEqual(status.lastReset, { actor: "support-7", reason: "lost phone", at: e.clock.t });
    const challenge = await e.engine.loginBegin("alice", { deviceToken: deviceToken.token });
    assert.equal(challenge.secondFactorRequired, false);
    assert.equal(challenge.rememberedDevice, null);
    await rejects(e.engine.admin().resetUser("alice", "", "lost phone"), "invalid_input");
  });
});

describe("export and import", () => {
  /** The source: carol with an authenticator app and a WebAuthn key. */
  async function source() {
    const e = open();
    const { secret, stepUp } = await enrolTotp(e, "carol");
    const key = new SoftAuthenticator(ORIGIN);
    const registration = await e.engine.webauthnRegisterBegin("carol", "Soft key", stepUp);
    await e.engine.webauthnRegisterFinish("carol", await key.register(registration.options), stepUp);
    return { ...e, secret, key };
  }

  /** A fresh engine with another master key. */
  const target = (store = new AsyncMapStore()) =>
    open({ store, config: { keys: [{ id: "k9", secret: Buffer.alloc(32, 9).toString("base64") }] } });

  test("a document from Node imports into a fresh engine: TOTP and WebAuthn still sign in", async () => {
    const src = await source();
    const used = await signIn(src, "carol", src.secret);
    const usedCode = otp(src.secret, src.clock.t);
    assert.equal(used.method, "totp");
    src.events.length = 0;
    const { document } = await src.engine.admin().exportUser("carol", KEY);
    assert.equal(typeof document, "string");
    assert.equal(JSON.parse(document).format, "twofa-user-export");
    assert.ok(!document.includes(src.secret));
    assert.deepEqual(src.events.map(({ kind, user }) => [kind, user]), [["user_exported", "carol"]]);

    const dst = target();
    dst.clock.t = src.clock.t;
    const imported = await dst.engine.admin().importUser("carol", document, KEY);
    assert.deepEqual(imported.methods.map(({ id, kind, label }) => [id, kind, label]), [
      ["totp-1", "totp", "Authenticator app"],
      ["webauthn-2", "webauthn", "Soft key"],
    ]);
    assert.deepEqual(imported.skipped, []);
    assert.deepEqual(dst.events.map(({ kind }) => kind), ["user_imported"]);
    assertNoSecret([...src.events, ...dst.events], [document, src.secret, usedCode]);

    let challenge = await dst.engine.loginBegin("carol");
    assert.deepEqual(challenge.methods, ["totp", "webauthn"]);
    await rejects(dst.engine.loginVerify("carol", challenge.challengeId, "totp", usedCode), "replayed");
    const viaTotp = await signIn(dst, "carol", src.secret);
    assert.equal(viaTotp.methodId, "totp-1");
    challenge = await dst.engine.loginBegin("carol");
    const viaKey = await dst.engine.loginVerify("carol", challenge.challengeId, "webauthn", await src.key.signIn(challenge.webauthnOptions));
    assert.equal(viaKey.methodId, "webauthn-2");

    await rejects(dst.engine.admin().importUser("carol", document, KEY), "invalid_input");
  });

  test("a tampered document, a wrong key or another user is invalid_input, with nothing stored", async () => {
    const src = await source();
    const { document } = await src.engine.admin().exportUser("carol", KEY);
    const envelope = JSON.parse(document);
    const flip = (text) => `${text.slice(0, 10)}${text[10] === "A" ? "B" : "A"}${text.slice(11)}`;
    const store = new AsyncMapStore();
    const dst = target(store);
    const attempts = [
      ["carol", JSON.stringify({ ...envelope, sealed: flip(envelope.sealed) }), KEY],
      ["carol", JSON.stringify({ ...envelope, nonce: flip(envelope.nonce) }), KEY],
      ["carol", JSON.stringify({ ...envelope, exported_at: envelope.exported_at + 1 }), KEY],
      ["carol", JSON.stringify({ ...envelope, extra: 1 }), KEY],
      ["carol", document.slice(0, -2), KEY],
      ["carol", document, Buffer.alloc(32, 8).toString("base64")],
      ["dave", document, KEY],
    ];
    for (const [user, doc, key] of attempts) {
      await rejects(dst.engine.admin().importUser(user, doc, key), "invalid_input");
    }
    assert.deepEqual(store.snapshot(), {});
    assert.deepEqual(dst.events, []);
    await rejects(src.engine.admin().exportUser("carol", "c2hvcnQ="), "invalid_input");
  });
});

describe("the enforcement grace period", () => {
  test("sign-in goes on without 2FA until the deadline, then enrolment is required", async () => {
    const e = open({ config: { policy: { grace_period_secs: GRACE } } });
    await e.engine.markOrderCreated("dan");
    assert.deepEqual(e.events.map(({ kind }) => kind), ["two_factor_required"]);
    const deadline = T0 + GRACE;
    assert.equal((await e.engine.securityStatus("dan")).enrollmentDeadline, deadline);

    for (const [t, required] of [
      [T0, false],
      [deadline - 1, false],
      [deadline, true],
      [deadline + 86_400, true],
    ]) {
      e.clock.t = t;
      const challenge = await e.engine.loginBegin("dan");
      assert.equal(challenge.enrollmentRequired, required, `at T0+${t - T0}`);
      assert.equal(challenge.enrollmentDeadline, deadline);
      assert.equal(challenge.secondFactorRequired, false);
    }

    await enrolTotp(e, "dan");
    assert.equal((await e.engine.securityStatus("dan")).enrollmentDeadline, null);
    const challenge = await e.engine.loginBegin("dan");
    assert.equal(challenge.enrollmentDeadline, null);
    assert.equal(challenge.secondFactorRequired, true);
  });

  test("without a grace period enrolment is required at once", async () => {
    const e = open();
    await e.engine.markOrderCreated("dan");
    const challenge = await e.engine.loginBegin("dan");
    assert.equal(challenge.enrollmentRequired, true);
    assert.equal(challenge.enrollmentDeadline, T0);
  });
});
