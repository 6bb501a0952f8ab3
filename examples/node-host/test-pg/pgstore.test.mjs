// Tests of the PostgreSQL store (pgstore.mjs) against a real server at TWOFA_PG_URL: twofa's
// store conformance suite, sign-in with an authenticator app through engines on two stores
// sharing the database (two app servers), and the store's own behaviour.
//
// They need a server, so they live outside test/ (which `node --test test/` runs); without
// TWOFA_PG_URL the file fails. From the repository root:
//
//   tests/pg/with-postgres.sh node --test examples/node-host/test-pg/

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { generateSync } from "otplib";
import { Engine, StoreConflict, checkStore } from "twofa";
import { CONFIG, T0, rejects } from "../../../bindings/node/test/support.mjs";
import { PostgresStore } from "../pgstore.mjs";

const URL = process.env.TWOFA_PG_URL;

let store;
before(async () => {
  assert.ok(URL, "TWOFA_PG_URL is not set: run through tests/pg/with-postgres.sh (see tests/pg/pg.mk)");
  store = new PostgresStore(URL);
  await store.createSchema();
});
after(() => store?.end());

test("the store passes the conformance suite", async () => {
  const passed = await checkStore(store);
  for (const check of ["reinsert_fresh_version", "concurrent_increments", "cleanup"]) {
    assert.ok(passed.includes(check), `${check} not in ${passed}`);
  }
});

test("versions are not reused after a delete, even by another store", async () => {
  const key = `test/${randomBytes(8).toString("hex")}`;
  const first = await store.put(key, new Uint8Array([1]), null);
  await assert.rejects(store.put(key, new Uint8Array([2]), null), StoreConflict);
  await store.delete(key, first);
  const other = new PostgresStore(URL);
  try {
    assert.equal(await other.get(key), null);
    const second = await other.put(key, new Uint8Array([3]), null);
    assert.ok(second > first, `${second} after ${first}`);
    const found = await store.get(key);
    assert.deepEqual([...found.value], [3]);
    assert.equal(found.version, second);
    await assert.rejects(store.put(key, new Uint8Array([4]), Number(first)), StoreConflict);
    await assert.rejects(store.delete(key, first), StoreConflict);
    await store.delete(key, Number(second));
  } finally {
    await other.end();
  }
});

test("TOTP sign-in across two app servers; a replayed code is refused", async () => {
  const clock = { t: T0 };
  const user = randomBytes(12).toString("base64url");
  const second = new PostgresStore({ connectionString: URL, max: 2 });
  const serverA = new Engine(CONFIG, { store, clock: () => clock.t });
  const serverB = new Engine(CONFIG, { store: second, clock: () => clock.t });
  try {
    const setup = await serverA.totpEnrollBegin(user, "alice@example.com");
    const otp = (t) => generateSync({ secret: setup.secret, epoch: t });
    await serverB.totpEnrollConfirm(user, otp(clock.t));
    clock.t += 30;
    const code = otp(clock.t);
    const challenge = await serverA.loginBegin(user);
    assert.equal((await serverA.loginVerify(user, challenge.challengeId, "totp", code)).method, "totp");
    const again = await serverB.loginBegin(user);
    await rejects(serverB.loginVerify(user, again.challengeId, "totp", code), "replayed");
    const status = await serverB.securityStatus(user);
    assert.deepEqual(
      status.methods.map((m) => m.kind),
      ["totp"],
    );
  } finally {
    serverA.close();
    serverB.close();
    await second.end();
  }
});

test("createSchema is idempotent and safe when run concurrently", async () => {
  // A fresh PostgreSQL schema first in the search path, so the table and sequence are new.
  const schema = `test_${randomBytes(6).toString("hex")}`;
  await store.pool.query(`CREATE SCHEMA ${schema}`);
  const stores = Array.from(
    { length: 4 },
    () => new PostgresStore({ connectionString: URL, options: `-c search_path=${schema}` }),
  );
  try {
    await Promise.all(stores.map(async (s) => (await s.createSchema(), await s.createSchema())));
    assert.ok((await stores[0].put("k", new Uint8Array([1]), null)) > 0n);
    const { rows } = await store.pool.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1", [schema]);
    assert.equal(rows[0].n, 1);
  } finally {
    await Promise.all(stores.map((s) => s.end()));
    await store.pool.query(`DROP SCHEMA ${schema} CASCADE`);
  }
});

test("an unreachable server is a storage error whose cause is pg's", async () => {
  // Port 1 on the loopback refuses connections.
  const down = new PostgresStore({ connectionString: "postgresql://twofa@127.0.0.1:1/twofa", connectionTimeoutMillis: 5000 });
  const engine = new Engine(CONFIG, { store: down, clock: () => T0 });
  try {
    const error = await rejects(engine.securityStatus("alice"), "storage");
    assert.match(String(error.cause?.message ?? error.cause), /ECONNREFUSED/);
  } finally {
    engine.close();
    await down.end();
  }
});
