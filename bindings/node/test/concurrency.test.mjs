// Concurrency: many operations in flight at once on one event loop. A code is accepted exactly
// once however many sign-ins race with it, failed attempts are counted exactly, and a slow store
// never blocks other work.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Engine, MemoryStore, SqliteStore, TwofaError } from "twofa";
import { AsyncMapStore, CONFIG, SECRET, T0, engineStores } from "./support.mjs";

const tmp = mkdtempSync(join(tmpdir(), "twofa-concurrency-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const STORES = engineStores("race");

/** "ok", or the name of the TwofaError `promise` rejected with. */
const outcome = (promise) =>
  promise.then(
    () => "ok",
    (e) => {
      if (!(e instanceof TwofaError)) throw e;
      return e.name;
    },
  );

const count = (names) => names.reduce((counts, n) => ({ ...counts, [n]: (counts[n] ?? 0) + 1 }), {});

for (const [kind, storage] of Object.entries(STORES)) {
  describe(`on the ${kind}`, () => {
    /** An engine at T0 where alice has an authenticator app, her store and 16 of her sign-in
     * challenges. */
    async function sixteenChallenges() {
      const { config, store } = storage();
      const engine = new Engine(config, { store, clock: () => T0 });
      await engine.admin().totpImport("alice", SECRET);
      const challenges = [];
      for (let i = 0; i < 16; i++) challenges.push((await engine.loginBegin("alice")).challengeId);
      return { engine, store, challenges };
    }

    test("16 concurrent sign-ins with one code: one success, 15 replayed", async () => {
      const { engine, store, challenges } = await sixteenChallenges();
      assert.equal(new Set(challenges).size, 16);
      const names = await Promise.all(challenges.map((c) => outcome(engine.loginVerify("alice", c, "totp", "406058"))));
      assert.deepEqual(count(names), { ok: 1, replayed: 15 });
      if (store instanceof AsyncMapStore) assert.ok(store.conflicts > 0, "the writes really raced");
    });

    test("2 wrong codes on each of 16 challenges at once: exactly 10 invalid_code, 22 locked_out", async () => {
      const { engine, challenges } = await sixteenChallenges();
      const attempts = [...challenges, ...challenges];
      const names = await Promise.all(attempts.map((c) => outcome(engine.loginVerify("alice", c, "totp", "000000"))));
      assert.deepEqual(count(names), { invalid_code: 10, locked_out: 22 });
      const status = await engine.securityStatus("alice");
      assert.ok(status.lockedUntil > T0);
    });

    test("engines sharing the store serve different users in parallel", async () => {
      const { config, store } = storage();
      const users = Array.from({ length: 8 }, (_, i) => `user-${i}`);
      const engines = users.map(() => new Engine(config, { store, clock: () => T0 }));
      await Promise.all(users.map((user, i) => engines[i].admin().totpImport(user, SECRET)));
      const methods = await Promise.all(
        users.map(async (user, i) => {
          const { challengeId } = await engines[i].loginBegin(user);
          return (await engines[i].loginVerify(user, challengeId, "totp", "406058")).method;
        }),
      );
      assert.deepEqual(methods, users.map(() => "totp"));
      const statuses = await Promise.all(users.map((user) => engines[0].securityStatus(user)));
      for (const status of statuses) assert.equal(status.methods[0].lastUsed, T0);
    });
  });
}

test("a slow store does not block other operations", async () => {
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  let entered;
  const inside = new Promise((resolve) => (entered = resolve));
  class SlowStore extends AsyncMapStore {
    async get(key) {
      entered();
      await gate;
      return super.get(key);
    }
  }
  const slow = new Engine(CONFIG, { store: new SlowStore(), clock: () => T0 });
  const pending = slow.securityStatus("alice");
  await inside;
  const other = new Engine(CONFIG, { store: new MemoryStore(), clock: () => T0 });
  assert.deepEqual((await other.securityStatus("bob")).methods, []);
  // The first operation is still waiting on its store.
  let settled = false;
  pending.then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(settled, false);
  release();
  assert.deepEqual((await pending).methods, []);
});

/** Whether `promise` settles without the event loop turning (within microtasks alone). Work
 * done on a worker thread can only report back through the event loop. */
async function settlesInline(promise) {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 200; i++) await null;
  const inline = settled;
  await promise;
  return inline;
}

test("SqliteStore calls run on worker threads, off the event loop", async () => {
  const store = new SqliteStore(join(tmp, "threads.db"));
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  assert.equal(await settlesInline(Promise.all(keys.map((k) => store.put(k, Buffer.from(k), null)))), false);
  assert.equal(await settlesInline(store.get("k0")), false);
  const engine = new Engine({ ...CONFIG, sqlite_path: join(tmp, "threads-engine.db") }, { clock: () => T0 });
  assert.equal(await settlesInline(engine.admin().totpImport("alice", SECRET)), false);
  // The in-memory store does no I/O and answers inline: the measure tells the two apart.
  const memory = new MemoryStore();
  assert.equal(await settlesInline(Promise.all(keys.map((k) => memory.put(k, Buffer.from(k), null)))), true);
});
