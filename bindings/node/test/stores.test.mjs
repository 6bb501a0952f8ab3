// Stores: the conformance suite (checkStore) on a JS store and the built-in ones, and faults in
// the host's store and mailer: a store that throws at its Nth call, stores that answer nonsense,
// mailers that throw. Every failure reaches the caller as a TwofaError whose `cause` is what was
// thrown, and leaves the stored state as it was.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { generateSync } from "otplib";
import { Engine, MemoryStore, SqliteStore, StoreConflict, TwofaError, checkStore } from "twofa";
import { AsyncMapStore, CONFIG, rejects, T0 } from "./support.mjs";

/** What FaultyStore throws. */
class StoreDown extends Error {
  name = "StoreDown";
}

/** Wraps a store; its `failAt`-th call (counting from 1) fails with a StoreDown, thrown
 * synchronously or as a rejected promise. */
class FaultyStore {
  calls = 0;
  thrown = null;

  constructor(inner, failAt, { sync = false } = {}) {
    Object.assign(this, { inner, failAt, sync });
  }

  #tick(what) {
    this.calls += 1;
    if (this.calls !== this.failAt) return null;
    this.thrown = new StoreDown(`${what} failed on call ${this.calls}`);
    if (this.sync) throw this.thrown;
    return Promise.reject(this.thrown);
  }

  get(key) {
    return this.#tick("get") ?? this.inner.get(key);
  }

  put(key, value, expectedVersion) {
    return this.#tick("put") ?? this.inner.put(key, value, expectedVersion);
  }

  delete(key, expectedVersion) {
    return this.#tick("delete") ?? this.inner.delete(key, expectedVersion);
  }
}

const emailedCode = (message) => message.text.match(/\b\d{6}\b/)[0];
const totp = (secret, t) => generateSync({ secret, epoch: t });

const tmp = mkdtempSync(join(tmpdir(), "twofa-stores-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("checkStore", () => {
  test("passes an async Map store, MemoryStore and SqliteStore", async () => {
    for (const store of [new AsyncMapStore(), new MemoryStore(), new SqliteStore(join(tmp, "check.db"))]) {
      const passed = await checkStore(store);
      assert.ok(Array.isArray(passed));
      for (const check of ["insert_existing_conflicts", "update_stale_conflicts", "reinsert_fresh_version", "concurrent_increments", "cleanup"]) {
        assert.ok(passed.includes(check), `${store.constructor.name}: ${check} missing from ${passed}`);
      }
    }
  });

  test("cleans up after itself", async () => {
    const store = new AsyncMapStore();
    await checkStore(store);
    assert.deepEqual([...store.data.keys()], []);
  });

  test("names the broken check of a store that never conflicts", async () => {
    class NeverConflicts extends AsyncMapStore {
      async put(key, value) {
        await new Promise(setImmediate);
        this.data.set(key, { value: Buffer.from(value), version: ++this.version });
        return this.version;
      }
    }
    const error = await rejects(checkStore(new NeverConflicts()), "storage");
    assert.match(error.message, /insert_existing_conflicts/);
  });

  test("names the broken check of a store that reuses versions after a delete", async () => {
    class Reuses extends AsyncMapStore {
      counters = new Map();
      async put(key, value, expectedVersion) {
        await new Promise(setImmediate);
        if ((this.data.get(key)?.version ?? null) !== expectedVersion) throw new StoreConflict(key);
        const version = (this.data.get(key)?.version ?? 0) + 1; // restarts at 1 after a delete
        this.data.set(key, { value: Buffer.from(value), version });
        return version;
      }
    }
    const error = await rejects(checkStore(new Reuses()), "storage");
    assert.match(error.message, /reinsert_fresh_version/);
  });

  test("rejects with the store's error as the cause when get throws", async () => {
    const down = new Error("database is gone");
    class Broken extends AsyncMapStore {
      async get() {
        throw down;
      }
    }
    const error = await rejects(checkStore(new Broken()), "storage");
    assert.equal(error.cause, down);
    assert.match(error.message, /database is gone/);
  });
});

/** A user with an authenticator app, a confirmed email, recovery codes and a code sent to a new
 * contact address, and a challenge, a cooldown later. */
async function prepare(engine, outbox, clock) {
  const setup = await engine.totpEnrollBegin("alice", "alice@example.com");
  const token = (await engine.totpEnrollConfirm("alice", totp(setup.secret, clock.t))).stepUp;
  await engine.emailEnrollBegin("alice", "alice@example.com", token);
  await engine.emailEnrollConfirm("alice", emailedCode(outbox.at(-1)), token);
  const { codes } = await engine.recoveryCodesGenerate("alice", token);
  await engine.contactEmailBegin("alice", "contact@example.com", token);
  const contactCode = emailedCode(outbox.at(-1));
  clock.t += 60;
  const { challengeId } = await engine.loginBegin("alice");
  return { secret: setup.secret, token, codes, contactCode, challenge: challengeId };
}

const OPS = {
  securityStatus: (e) => e.securityStatus("alice"),
  setContactEmail: (e, s) => e.setContactEmail("alice", "new@example.com", s.token),
  contactEmailBegin: (e, s) => e.contactEmailBegin("alice", "other@example.com", s.token),
  contactEmailConfirm: (e, s) => e.contactEmailConfirm("alice", s.contactCode, s.token),
  markOrderCreated: (e) => e.markOrderCreated("alice"),
  totpEnrollBegin: (e, s) => e.totpEnrollBegin("alice", "a", s.token),
  emailEnrollBegin: (e, s) => e.emailEnrollBegin("alice", "second@example.com", s.token),
  webauthnRegisterBegin: (e, s) => e.webauthnRegisterBegin("alice", "Key", s.token),
  renameMethod: (e, s) => e.renameMethod("alice", "totp-1", "Phone", s.token),
  removeMethod: (e, s) => e.removeMethod("alice", "email-2", s.token),
  recoveryCodesGenerate: (e, s) => e.recoveryCodesGenerate("alice", s.token),
  loginBegin: (e) => e.loginBegin("alice"),
  loginSendEmailCode: (e, s) => e.loginSendEmailCode("alice", s.challenge),
  "loginVerify totp": (e, s) => e.loginVerify("alice", s.challenge, "totp", totp(s.secret, T0 + 60)),
  "loginVerify wrong totp": (e, s) => e.loginVerify("alice", s.challenge, "totp", "000000"),
  "loginVerify recovery": (e, s) => e.loginVerify("alice", s.challenge, "recovery", s.codes[0]),
  "admin deleteUser": (e) => e.admin().deleteUser("alice"),
};

/** The operations that charge the budget of the address they mail a code to. */
const CHARGES_ADDRESS = new Set(["emailEnrollBegin", "contactEmailBegin"]);

/** A snapshot without the addresses' budgets (`email-address/{hash}`). */
const withoutBudgets = (snapshot) =>
  Object.fromEntries(Object.entries(snapshot).filter(([key]) => !key.startsWith("email-address/")));

describe("a store failing at its Nth call leaves the stored state unchanged", async () => {
  const clock = { t: T0 };
  const outbox = [];
  const base = new AsyncMapStore();
  const state = await prepare(new Engine(CONFIG, { store: base, mailer: (m) => void outbox.push(m), clock: () => clock.t }), outbox, clock);
  assert.equal(totp(state.secret, T0 + 60) === "000000", false);

  for (const [name, op] of Object.entries(OPS)) {
    for (const sync of [false, true]) {
      test(`${name} (${sync ? "throwing" : "rejecting"})`, async () => {
        let failures = 0;
        for (let n = 1; n < 60; n++) {
          const store = base.copy();
          const before = store.snapshot();
          const faulty = new FaultyStore(store, n, { sync });
          const engine = new Engine(CONFIG, { store: faulty, mailer: () => {}, clock: () => clock.t });
          let error = null;
          try {
            await op(engine, state);
          } catch (e) {
            error = e;
          }
          if (error?.name === "storage") {
            failures += 1;
            assert.ok(error instanceof TwofaError);
            assert.equal(error.code, 12);
            assert.equal(error.cause, faulty.thrown, `call ${n}: cause ${error.cause}`);
            assert.match(error.message, /StoreDown/);
            // An address's budget is charged once the pending code has committed (and stays
            // charged, like a sent code): only it may have changed.
            const charged = CHARGES_ADDRESS.has(name) ? withoutBudgets : (snapshot) => snapshot;
            assert.deepEqual(charged(store.snapshot()), charged(before), `a failure at call ${n} changed the stored state`);
            // The same engine then works: the operation runs to its normal end.
            const again = await op(engine, state).then(
              () => "ok",
              (e) => e.name,
            );
            assert.equal(again, name === "loginVerify wrong totp" ? "invalid_code" : "ok", `after the failure at call ${n}`);
            continue;
          }
          if (name === "loginVerify wrong totp") {
            assert.equal(error?.name, "invalid_code", `call ${n}: ${error}`);
          } else {
            assert.equal(error, null, `call ${n}: ${error?.stack}`);
          }
          assert.equal(faulty.thrown, null, `call ${n} failed but the operation succeeded`);
          assert.ok(faulty.calls < n);
          assert.equal(failures, n - 1, "every call before the last one was failed once");
          assert.ok(failures >= 1, "the operation made at least one store call");
          return;
        }
        assert.fail(`${name} never finished`);
      });
    }
  }
});

describe("faults", () => {
  for (const version of [0, -1, "7", null, 1.5, Number.NaN]) {
    test(`a store whose put returns version ${typeof version === "string" ? JSON.stringify(version) : String(version)} is a storage error`, async () => {
      class Liar extends AsyncMapStore {
        async put(key, value, expectedVersion) {
          await super.put(key, value, expectedVersion);
          return version;
        }
      }
      const engine = new Engine(CONFIG, { store: new Liar(), clock: () => T0 });
      const error = await rejects(engine.setContactEmail("alice", "alice@example.com"), "storage");
      assert.ok(error.cause instanceof TypeError, `cause: ${error.cause}`);
    });
  }

  for (const version of [0, -1, "7", undefined]) {
    test(`a store whose get returns version ${typeof version === "string" ? JSON.stringify(version) : String(version)} is a storage error`, async () => {
      class Liar extends AsyncMapStore {
        async get(key) {
          const found = await super.get(key);
          return found && { value: found.value, version };
        }
      }
      const store = new Liar();
      const engine = new Engine(CONFIG, { store, clock: () => T0 });
      await engine.setContactEmail("alice", "alice@example.com");
      const before = store.snapshot();
      const error = await rejects(engine.setContactEmail("alice", "other@example.com"), "storage");
      assert.ok(error.cause instanceof TypeError);
      assert.deepEqual(store.snapshot(), before);
    });
  }

  for (const [what, value] of [
    ["a string", "not bytes"],
    ["an ArrayBuffer", new ArrayBuffer(4)],
  ]) {
    test(`a store whose get returns ${what} as the value is a storage error`, async () => {
      class Liar extends AsyncMapStore {
        async get(key) {
          const found = await super.get(key);
          return found && { value, version: found.version };
        }
      }
      const engine = new Engine(CONFIG, { store: new Liar(), clock: () => T0 });
      await engine.setContactEmail("alice", "alice@example.com");
      const error = await rejects(engine.securityStatus("alice"), "storage");
      assert.ok(error.cause instanceof TypeError);
    });
  }

  test("corrupt bytes are a storage error and never rewritten", async () => {
    const store = new AsyncMapStore();
    const engine = new Engine(CONFIG, { store, clock: () => T0 });
    await engine.setContactEmail("alice", "alice@example.com");
    const [key] = store.data.keys();
    store.data.get(key).value = Buffer.from("\xff not json", "latin1");
    await rejects(engine.loginBegin("alice"), "storage");
    await rejects(engine.setContactEmail("alice", "new@example.com"), "storage");
    assert.equal(store.data.get(key).value.toString("latin1"), "\xff not json");
  });

  test("a mailer that throws leaves no usable code, and no cooldown", async () => {
    const attempted = [];
    const down = new Error("SMTP is down");
    let fail = true;
    const store = new AsyncMapStore();
    const engine = new Engine(CONFIG, {
      store,
      mailer: (message) => {
        attempted.push(message);
        if (fail) throw down;
      },
      clock: () => T0,
    });
    const error = await rejects(engine.emailEnrollBegin("bob", "bob@example.com"), "mail");
    assert.equal(error.cause, down);
    assert.match(error.message, /SMTP is down/);
    assert.deepEqual(withoutBudgets(store.snapshot()), {}, "only the address's budget was charged");
    assert.equal(Object.keys(store.snapshot()).length, 1);
    assert.equal(attempted.length, 1);
    await rejects(engine.emailEnrollConfirm("bob", emailedCode(attempted[0])), "not_found");
    // The undelivered code was discarded and lifted the cooldown: a new one goes at once.
    fail = false;
    await engine.emailEnrollBegin("bob", "bob@example.com");
    assert.equal(attempted.length, 2);
    assert.equal((await engine.emailEnrollConfirm("bob", emailedCode(attempted[1]))).method.kind, "email");
  });

  test("a mailer whose promise rejects leaves the previous pending state untouched", async () => {
    const clock = { t: T0 };
    const outbox = [];
    let fail = false;
    const store = new AsyncMapStore();
    const engine = new Engine(CONFIG, {
      store,
      mailer: async (message) => {
        await new Promise(setImmediate);
        if (fail) throw new Error("SMTP is down");
        outbox.push(message);
      },
      clock: () => clock.t,
    });
    await engine.emailEnrollBegin("bob", "bob@example.com");
    const first = emailedCode(outbox.at(-1));
    const before = store.snapshot();
    fail = true;
    clock.t += 120;
    const error = await rejects(engine.emailEnrollBegin("bob", "bob2@example.com"), "mail");
    assert.equal(error.cause.message, "SMTP is down");
    assert.deepEqual(withoutBudgets(store.snapshot()), withoutBudgets(before));
    assert.equal((await engine.securityStatus("bob")).pending.email, "bob@example.com");
    assert.equal((await engine.emailEnrollConfirm("bob", first)).method.label, "bob@example.com");
  });

  test("a failing notice does not undo the change", async () => {
    const clock = { t: T0 };
    const engine = new Engine(CONFIG, {
      store: new AsyncMapStore(),
      mailer: () => {
        throw new Error("SMTP is down");
      },
      clock: () => clock.t,
    });
    await engine.setContactEmail("carol", "carol@example.com");
    const setup = await engine.totpEnrollBegin("carol", "carol");
    const added = await engine.totpEnrollConfirm("carol", totp(setup.secret, clock.t));
    assert.equal(added.notices.sent, 0);
    assert.equal(added.notices.failed.length, 1);
    assert.ok(added.notices.failed[0].startsWith("carol@example.com: "), added.notices.failed[0]);
    assert.deepEqual((await engine.securityStatus("carol")).methods.map((m) => m.kind), ["totp"]);
  });

  test("without a mailer, one-time codes are a mail error and notices are listed as failed", async () => {
    const clock = { t: T0 };
    const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => clock.t });
    await rejects(engine.emailEnrollBegin("dan", "dan@example.com"), "mail");
    await engine.setContactEmail("dan", "dan@example.com");
    const setup = await engine.totpEnrollBegin("dan", "dan");
    const added = await engine.totpEnrollConfirm("dan", totp(setup.secret, clock.t));
    assert.equal(added.notices.failed.length, 1);
  });

  test("a store error is reported with the failing callback's name", async () => {
    const engine = new Engine(CONFIG, { store: new FaultyStore(new AsyncMapStore(), 1), clock: () => T0 });
    const error = await rejects(engine.securityStatus("alice"), "storage");
    assert.equal(error.callback, "store.get");
    const mail = await rejects(
      new Engine(CONFIG, { store: new MemoryStore(), mailer: () => { throw new Error("down"); }, clock: () => T0 }).emailEnrollBegin("bob", "bob@example.com"),
      "mail",
    );
    assert.equal(mail.callback, "send_mail");
  });

  test("a get that throws StoreConflict is a storage error (only writes conflict)", async () => {
    const store = new AsyncMapStore();
    store.get = async () => {
      throw new StoreConflict("not a write");
    };
    const error = await rejects(new Engine(CONFIG, { store, clock: () => T0 }).securityStatus("alice"), "storage");
    assert.equal(error.callback, "store.get");
    assert.ok(error.cause instanceof StoreConflict);
  });

  test("thrown values that cannot be shown as text are still storage and mail errors", async () => {
    const unprintable = [Object.create(null), { toString() { throw new Error("no text"); } }];
    for (const thrown of unprintable) {
      const store = new AsyncMapStore();
      const put = store.put.bind(store);
      let fail = true;
      store.put = async (...args) => {
        if (fail) throw thrown;
        return put(...args);
      };
      const clock = { t: T0 };
      const engine = new Engine(CONFIG, { store, mailer: () => { throw thrown; }, clock: () => clock.t });
      const error = await rejects(engine.setContactEmail("erin", "erin@example.com"), "storage");
      assert.equal(error.callback, "store.put");
      assert.equal(error.cause, thrown);
      fail = false;
      await rejects(engine.emailEnrollBegin("erin", "erin@example.com"), "mail");
      // A notice that fails this way is listed as failed; the change stays.
      await engine.setContactEmail("erin", "erin@example.com");
      const setup = await engine.totpEnrollBegin("erin", "erin");
      const added = await engine.totpEnrollConfirm("erin", totp(setup.secret, clock.t));
      assert.equal(added.notices.failed.length, 1);
      assert.deepEqual((await engine.securityStatus("erin")).methods.map((m) => m.kind), ["totp"]);
    }
  });

  test("a clock that throws is an internal error with its cause", async () => {
    const broken = new Error("no time");
    const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => { throw broken; } });
    const error = await rejects(engine.loginBegin("alice"), "internal");
    assert.equal(error.cause, broken);
  });

  for (const [what, value] of [
    ["NaN", Number.NaN],
    ["a negative time", -5],
    ["a Promise", Promise.resolve(T0)],
  ]) {
    test(`a clock returning ${what} is refused`, async () => {
      const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => value });
      await rejects(engine.totpEnrollBegin("alice", "alice"), "internal");
    });
  }
});

describe("the native stores follow the contract", () => {
  for (const [kind, open] of [
    ["MemoryStore", () => new MemoryStore()],
    ["SqliteStore", () => new SqliteStore(join(tmp, "contract.db"))],
  ]) {
    test(kind, async () => {
      const store = open();
      assert.equal(await store.get("k"), null);
      const v1 = await store.put("k", Buffer.from("one"), null);
      assert.ok(Number.isSafeInteger(Number(v1)) && v1 > 0);
      await assert.rejects(store.put("k", Buffer.from("two"), null), StoreConflict);
      await assert.rejects(store.put("k", Buffer.from("two"), v1 + 1), StoreConflict);
      await assert.rejects(store.put("missing", Buffer.from("x"), v1), StoreConflict);
      const v2 = await store.put("k", new Uint8Array([0, 255, 0]), v1);
      assert.notEqual(v2, v1);
      const found = await store.get("k");
      assert.deepEqual([...found.value], [0, 255, 0]);
      assert.equal(found.version, v2);
      await assert.rejects(store.delete("k", v1), StoreConflict);
      await assert.rejects(store.delete("missing", v1), StoreConflict);
      await store.delete("k", v2);
      assert.equal(await store.get("k"), null);
      const v3 = await store.put("k", Buffer.alloc(0), null);
      assert.ok(![v1, v2].includes(v3), "versions are never reused for a key");
      assert.equal((await store.get("k")).value.length, 0);
    });
  }

  test("a SqliteStore in a missing directory is a storage error", () => {
    assert.throws(() => new SqliteStore(join(tmp, "missing", "dir", "s.db")), (e) => e instanceof TwofaError && e.name === "storage");
  });

  test("a SqliteStore keeps its data across instances", async () => {
    const path = join(tmp, "reopen.db");
    const version = await new SqliteStore(path).put("k", Buffer.from("kept"), null);
    const found = await new SqliteStore(path).get("k");
    assert.equal(found.value.toString(), "kept");
    assert.equal(found.version, version);
  });
});
