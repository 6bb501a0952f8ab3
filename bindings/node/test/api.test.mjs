// The package's surface: the status codes from the header, TwofaError, config and argument
// checks, results as plain camelCase objects, step-up tokens, shared stores, the version.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as twofa from "twofa";
import { Engine, MemoryStore, NativeStore, SqliteStore, StoreConflict, TwofaError, codes, libraryVersion } from "twofa";
import { CONFIG, rejects, SECRET, T0 } from "./support.mjs";

const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), "..");
const HEADER = join(PACKAGE, "..", "..", "include", "twofa.h");

/** Asserts that `f()` throws a TwofaError named `name`; returns the error. */
function throws(f, name) {
  let error;
  assert.throws(f, (e) => {
    error = e;
    return true;
  });
  assert.ok(error instanceof TwofaError, `expected a TwofaError, got ${error?.stack ?? error}`);
  assert.equal(error.name, name, `expected ${name}, got ${error.name}: ${error.message}`);
  return error;
}

/** The status codes `#define`d in include/twofa.h, by snake_case name (TWOFA_OK excluded). */
function headerStatusCodes() {
  const found = {};
  for (const [, name, value] of readFileSync(HEADER, "utf8").matchAll(/^#define TWOFA_([A-Z_]+) (\d+)$/gm)) {
    if (!/^(OK|MAX_|CALLBACK_|ACTION_)/.test(name)) found[name.toLowerCase()] = Number(value);
  }
  return found;
}

test("the package exports what index.d.ts declares", () => {
  assert.deepEqual(Object.keys(twofa).sort(), [
    "Engine",
    "MemoryStore",
    "NativeStore",
    "SqliteStore",
    "StoreConflict",
    "TwofaError",
    "checkStore",
    "codes",
    "libraryVersion",
  ]);
});

test("codes has every status code of the header, with the same numbers", () => {
  const header = headerStatusCodes();
  assert.ok(Object.keys(header).length >= 17);
  assert.equal(header.invalid_code, 2);
  assert.deepEqual({ ...codes }, header);
  assert.ok(Object.isFrozen(codes));
  for (const [name, code] of Object.entries(header)) {
    const error = new TwofaError(code, `${name} happened`);
    assert.equal(error.name, name);
    assert.equal(error.code, code);
  }
});

test("TwofaError carries code, name, message, retryAfter, callback and cause", async () => {
  const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => T0 });
  const error = await rejects(engine.loginVerify("alice", "no-such-challenge", "totp", "123456"), "not_found");
  assert.ok(error instanceof Error);
  assert.equal(error.code, 10);
  assert.equal(error.retryAfter, null);
  assert.equal(error.callback, null);
  assert.equal(error.cause, undefined);
  assert.match(error.message, /challenge/);
  assert.ok(String(error).startsWith("not_found: "));

  const cause = new Error("disk on fire");
  const built = new TwofaError(codes.locked_out, "locked", { retryAfter: 5, callback: "store.get", cause });
  assert.equal(built.name, "locked_out");
  assert.equal(built.message, "locked");
  assert.equal(built.retryAfter, 5);
  assert.equal(built.callback, "store.get");
  assert.equal(built.cause, cause);
  assert.equal(new TwofaError(9999, "?").name, "unknown");
  assert.equal("cause" in new TwofaError(1, "no cause"), false);
});

test("StoreConflict is an Error named StoreConflict", () => {
  const conflict = new StoreConflict();
  assert.ok(conflict instanceof Error);
  assert.equal(conflict.name, "StoreConflict");
  assert.equal(conflict.message, "version conflict");
  assert.equal(new StoreConflict("user/alice").message, "user/alice");
});

test("config errors name the field", () => {
  const digits = throws(() => new Engine({ ...CONFIG, totp: { digits: 7 } }, { store: new MemoryStore() }), "invalid_input");
  assert.match(digits.message, /config\.totp\.digits/);
  assert.match(throws(() => new Engine({ ...CONFIG, nope: 1 }, { store: new MemoryStore() }), "invalid_input").message, /unknown field `nope`/);
  assert.match(throws(() => new Engine({ ...CONFIG, keys: [] }, { store: new MemoryStore() }), "invalid_input").message, /config\.keys/);
  throws(() => new Engine("not json", { store: new MemoryStore() }), "invalid_input");
  // The config may be JSON text.
  assert.ok(new Engine(JSON.stringify(CONFIG), { store: new MemoryStore() }) instanceof Engine);
});

test("an engine needs a store or config.sqlite_path", () => {
  const error = throws(() => new Engine(CONFIG), "invalid_input");
  assert.match(error.message, /sqlite_path/);
  throws(() => new Engine(CONFIG, { mailer: () => {} }), "invalid_input");
});

test("requests are checked by the core", async () => {
  const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => T0 });
  await rejects(engine.securityStatus(""), "invalid_input");
  await rejects(engine.securityStatus("x".repeat(257)), "invalid_input");
  await assert.rejects(engine.securityStatus(undefined), TypeError);
  await rejects(engine.loginVerify("alice", "x", "password", "hunter2"), "invalid_input");
  await rejects(engine.totpEnrollConfirm("alice", 123456), "invalid_input");
  await rejects(engine.admin().totpImport("alice", SECRET, { digits: 9 }), "invalid_input");
  await rejects(engine.admin().totpImport("alice", "JBSWY3DP"), "invalid_input");
  await rejects(engine.admin().deleteUser("nobody"), "not_found");
});

test("a user id with a NUL is refused, not cut short", async () => {
  const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => T0 });
  await engine.setContactEmail("alice", "alice@example.com");
  const status = await engine.securityStatus("alice\0bob").catch((e) => e);
  assert.ok(status instanceof TwofaError, `"alice\\0bob" was served ${JSON.stringify(status)}`);
  assert.equal(status.name, "invalid_input");
});

test("a store key with a NUL is refused, not cut short", async () => {
  const store = new MemoryStore();
  await store.put("a", Buffer.from("a's value"), null);
  await assert.rejects(store.get("a\0b"));
});

/** Runs `code` (an ES module importing "twofa") in a child process; its status and output. */
function child(code) {
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: PACKAGE, encoding: "utf8", timeout: 20_000 });
  return { status: result.status, signal: result.signal, out: result.stdout + result.stderr };
}

test("the child-process helper reports a normal exit", () => {
  const { status, out } = child(`import { libraryVersion } from "twofa"; console.log(libraryVersion);`);
  assert.equal(status, 0, out);
  assert.equal(out.trim(), "0.1.0");
});

for (const [what, call] of [
  ["a number as the user id (engine.securityStatus(42))", `new Engine(CONFIG, { store: new MemoryStore() }).securityStatus(42)`],
  ["a number as a SqliteStore path", `Promise.resolve().then(() => new SqliteStore(5))`],
  ["a number as a store key (MemoryStore.get(5))", `new MemoryStore().get(5)`],
]) {
  test(`${what} is refused (TypeError or invalid_input), not a crash`, () => {
    const { status, signal, out } = child(`
      import { Engine, MemoryStore, SqliteStore } from "twofa";
      const CONFIG = ${JSON.stringify(CONFIG)};
      try { await ${call}; console.log("accepted"); } catch (e) { console.log(e.constructor.name, e.name); }
    `);
    assert.equal(signal, null, `the process died with ${signal}`);
    assert.equal(status, 0, out);
    assert.match(out.trim(), /^(TypeError TypeError|TwofaError invalid_input)$/);
  });
}

test("results are plain objects with camelCase keys, as index.d.ts declares", async () => {
  const clock = { t: T0 };
  const outbox = [];
  const engine = new Engine(CONFIG, { store: new MemoryStore(), mailer: (m) => void outbox.push(m), clock: () => clock.t });
  const keys = (value) => Object.keys(value).sort();
  const method = ["created", "flagged", "id", "kind", "label", "lastUsed"];
  const notices = ["failed", "sent"];

  const imported = await engine.admin().totpImport("alice", SECRET);
  assert.deepEqual(keys(imported), ["method", "notices", "stepUp"]);
  assert.deepEqual(keys(imported.method), method);
  assert.deepEqual(keys(imported.notices), notices);

  const challenge = await engine.loginBegin("alice");
  assert.deepEqual(keys(challenge), [
    "challengeId",
    "enrollmentDeadline",
    "enrollmentRequired",
    "expiresAt",
    "methods",
    "rememberedDevice",
    "secondFactorRequired",
    "webauthnOptions",
  ]);
  const success = await engine.loginVerify("alice", challenge.challengeId, "totp", "406058");
  assert.deepEqual(keys(success), ["deviceToken", "method", "methodId", "notices", "recoveryCodesLeft", "stepUp"]);
  assert.deepEqual(keys(success.stepUp), ["expiresAt", "token"]);
  const token = success.stepUp;

  const status = await engine.securityStatus("alice");
  assert.deepEqual(keys(status), [
    "compliant",
    "contactEmail",
    "enrollmentDeadline",
    "lastReset",
    "lockedUntil",
    "methods",
    "pending",
    "recommendations",
    "recoveryCodesLeft",
    "rememberedDevices",
    "twoFactorRequired",
    "warnings",
  ]);
  assert.deepEqual(keys(status.pending), ["email", "totp", "webauthn"]);
  assert.deepEqual(keys(await engine.setContactEmail("alice", "alice@example.com", token)), notices);
  assert.deepEqual(keys(await engine.contactEmailBegin("alice", "alice.new@example.com", token)), [
    "expiresAt",
    "resendAfter",
    "sentTo",
  ]);
  const proved = await engine.contactEmailConfirm("alice", outbox.at(-1).text.match(/\d{6}/)[0], token);
  assert.deepEqual(keys(proved), notices);
  assert.equal(await engine.markOrderCreated("alice"), undefined);
  assert.deepEqual(keys(await engine.totpEnrollBegin("alice", "alice", token)), ["expiresAt", "qrSvg", "secret", "uri"]);
  assert.deepEqual(keys(await engine.emailEnrollBegin("alice", "alice@example.com", token)), ["expiresAt", "resendAfter", "sentTo"]);
  const added = await engine.emailEnrollConfirm("alice", outbox.at(-1).text.match(/\d{6}/)[0], token);
  assert.deepEqual(keys(added), ["method", "notices", "stepUp"]);
  const registration = await engine.webauthnRegisterBegin("alice", "Key", token);
  assert.deepEqual(keys(registration), ["expiresAt", "options"]);
  assert.equal(typeof registration.options.publicKey, "object");
  assert.deepEqual(keys(await engine.renameMethod("alice", "totp-1", "Phone", token)), method);
  assert.deepEqual(keys(await engine.recoveryCodesGenerate("alice", token)), ["codes", "notices"]);
  assert.deepEqual(keys(await engine.loginSendEmailCode("alice", (await engine.loginBegin("alice")).challengeId)), ["expiresAt", "resendAfter", "sentTo"]);
  assert.deepEqual(keys(await engine.removeMethod("alice", "email-2", token)), notices);
  assert.equal(await engine.revokeRememberedDevices("alice"), undefined);
  const key = Buffer.alloc(32, 1).toString("base64");
  const exported = await engine.admin().exportUser("alice", key);
  assert.deepEqual(keys(exported), ["document"]);
  const reset = await engine.admin().resetUser("alice", "support-7", "lost phone");
  assert.deepEqual(keys(reset), ["methodsRemoved", "notices"]);
  assert.deepEqual(keys((await engine.securityStatus("alice")).lastReset), ["actor", "at", "reason"]);
  const restored = await engine.admin().importUser("alice", exported.document, key);
  assert.deepEqual(keys(restored), ["methods", "skipped"]);
  assert.deepEqual(keys(restored.methods[0]), method);
  assert.equal(await engine.admin().deleteUser("alice"), undefined);
  assert.deepEqual((await engine.securityStatus("alice")).methods, []);
});

test("engines sharing a MemoryStore see each other's writes", async () => {
  const store = new MemoryStore();
  const a = new Engine(CONFIG, { store, clock: () => T0 });
  const b = new Engine(CONFIG, { store, clock: () => T0 });
  await a.setContactEmail("alice", "alice@example.com");
  assert.equal((await b.securityStatus("alice")).contactEmail, "alice@example.com");
  const found = await store.get("user/alice");
  assert.ok(found.value instanceof Uint8Array);
  assert.ok(Buffer.from(found.value).includes("alice@example.com"));
  assert.ok(found.version > 0);
  await b.admin().deleteUser("alice");
  assert.equal((await a.securityStatus("alice")).contactEmail, null);
});

test("NativeStore: MemoryStore and SqliteStore implement get/put/delete with StoreConflict", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "twofa-api-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const store of [new MemoryStore(), new SqliteStore(join(dir, "s.db"))]) {
    assert.ok(store instanceof NativeStore);
    assert.equal(await store.get("k"), null);
    const v1 = await store.put("k", Buffer.from("one"), null);
    assert.ok(v1 > 0);
    await assert.rejects(store.put("k", Buffer.from("two"), null), StoreConflict);
    await assert.rejects(store.put("k", Buffer.from("two"), v1 + 1), StoreConflict);
    const v2 = await store.put("k", Buffer.from("two"), v1);
    assert.notEqual(v2, v1);
    const found = await store.get("k");
    assert.equal(Buffer.from(found.value).toString(), "two");
    assert.equal(found.version, v2);
    await assert.rejects(store.delete("k", v1), StoreConflict);
    await assert.rejects(store.delete("gone", v1), StoreConflict);
    await store.delete("k", v2);
    assert.equal(await store.get("k"), null);
    const v3 = await store.put("k", new Uint8Array(), null);
    assert.ok(v3 !== v1 && v3 !== v2);
  }
});

test("a step-up token is accepted as the object or as its text", async () => {
  const engine = new Engine(CONFIG, { store: new MemoryStore(), clock: () => T0 });
  await engine.admin().totpImport("alice", SECRET);
  await rejects(engine.recoveryCodesGenerate("alice"), "step_up_required");
  await rejects(engine.recoveryCodesGenerate("alice", null), "step_up_required");
  const { challengeId } = await engine.loginBegin("alice");
  const { stepUp } = await engine.loginVerify("alice", challengeId, "totp", "406058");
  assert.equal(typeof stepUp.token, "string");
  assert.equal(stepUp.expiresAt, T0 + 600);
  assert.equal((await engine.recoveryCodesGenerate("alice", stepUp)).codes.length, 10);
  assert.equal((await engine.recoveryCodesGenerate("alice", stepUp.token)).codes.length, 10);
  await rejects(engine.recoveryCodesGenerate("alice", "forged-token"), "step_up_required");
  await rejects(engine.recoveryCodesGenerate("alice", { token: "forged-token", expiresAt: T0 + 600 }), "step_up_required");
});

test("libraryVersion is libtwofa's version, the package's", () => {
  assert.equal(libraryVersion, "0.1.0");
  assert.equal(JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8")).version, libraryVersion);
});
