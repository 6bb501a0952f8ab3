// The twofa WASI component through jco (component/engine.mjs) against the native Engine: the
// shared scenario (tests/scenarios/security_tab.json) runs unchanged on both, and both must give
// the same transcript, the same result shapes and values (apart from random ones), the same
// errors, the same mail and the same audit events (the component's through its `events`
// import). The component is transpiled first (component/build.mjs), so a fresh
// checkout only needs `npm ci`.

import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { Engine, MemoryStore, StoreConflict as NativeStoreConflict, checkStore, codes as nativeCodes } from "twofa";
import { Runner, load } from "../../../bindings/node/test/scenario.mjs";
import { build } from "../component/build.mjs";

/** @type {typeof import("../component/engine.mjs")} */
let component;

before(async () => {
  const { built, ms } = await build({ quiet: true });
  console.log(`component: ${built ? "transpiled" : "up to date"} in ${ms.toFixed(0)} ms`);
  component = await import("../component/engine.mjs");
});

const scenario = load("security_tab");

/** The operations security_tab does not reach (contact email, renaming, a successful removal),
 * in the same format. */
const extra = {
  config: scenario.config,
  origin: scenario.origin,
  steps: [
    { time: 1_700_000_000 },
    { op: "set_contact_email", user: "zoe", args: { address: "zoe@example.com" }, mails: 0 },
    { op: "totp_enroll_begin", user: "zoe", args: { account_name: "zoe@example.com" }, save: { secret: "secret" } },
    { op: "totp_enroll_confirm", user: "zoe", args: { code: { totp: "$secret" } }, save: { step: "step_up.token" }, mails: 1 },
    { op: "rename_method", user: "zoe", args: { method_id: "totp-1", label: "Phone" }, expect: "step_up_required" },
    { op: "rename_method", user: "zoe", args: { method_id: "totp-1", label: "Phone", step_up: "$step" }, check: { label: "Phone" } },
    { op: "email_enroll_begin", user: "zoe", args: { address: "zoe@example.org", step_up: "$step" }, mails: 1 },
    { op: "email_enroll_confirm", user: "zoe", args: { code: { mailed_code: "zoe@example.org" }, step_up: "$step" } },
    { op: "set_contact_email", user: "zoe", args: { address: "zoe@example.net" }, expect: "step_up_required", mails: 0 },
    { op: "set_contact_email", user: "zoe", args: { address: "zoe@example.net", step_up: "$step" }, check: { sent: 2 }, mails: 2 },
    { op: "contact_email_begin", user: "zoe", args: { address: "zoe@example.info" }, expect: "step_up_required", mails: 0 },
    { op: "contact_email_begin", user: "zoe", args: { address: "zoe@example.info", step_up: "$step" }, check: { "sent_to.0": "zoe@example.info" }, mails: 1 },
    { op: "contact_email_confirm", user: "zoe", args: { code: { wrong_mailed_code: "zoe@example.info" }, step_up: "$step" }, expect: "invalid_code" },
    { op: "contact_email_confirm", user: "zoe", args: { code: { mailed_code: "zoe@example.info" }, step_up: "$step" }, check: { sent: 2 }, mails: 2 },
    { op: "remove_method", user: "zoe", args: { method_id: "totp-1", step_up: "$step" }, check: { sent: { gt: 0 } } },
    { op: "rename_method", user: "zoe", args: { method_id: "nope-1", label: "x", step_up: "$step" }, expect: "step_up_required" },
    { op: "security_status", user: "zoe", check: { "methods.length": 1, contact_email: "zoe@example.info" } },
    { op: "admin.delete_user", user: "zoe" },
    { op: "security_status", user: "zoe", check: { "methods.length": 0, contact_email: null } },
  ],
};

/** Fields whose string values are deterministic (everything else: secrets, tokens, ids of
 * challenges, codes, QR codes, WebAuthn challenges and keys, are compared by type only). */
const STABLE = new Set(["kind", "method", "methods", "id", "methodId", "label", "recommendations", "warnings", "sentTo", "contactEmail", "email", "failed", "name"]);

/** An outcome with its random parts replaced by their type; WebAuthn options keep their
 * structure and numbers only. */
function digest(value, key = "", masked = false) {
  if (Array.isArray(value)) return value.map((v) => digest(v, key, masked));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, digest(v, k, masked || k === "options" || k === "webauthnOptions")]),
    );
  }
  if (typeof value === "string") return !masked && STABLE.has(key) ? value : "<string>";
  return value === undefined ? "<undefined>" : value;
}

/** `value` with each remembered device's random id (every one is announced by a
 * `device_remembered` event) replaced by its rank: `<device 1>`, `<device 2>`, ... */
function numberDevices(value, events) {
  const ids = events.filter((e) => e.kind === "device_remembered").map((e) => e.methodId);
  const json = ids.reduce((text, id, i) => text.replaceAll(id, `<device ${i + 1}>`), JSON.stringify(value));
  return JSON.parse(json);
}

/** Records every call's outcome (or error) of an engine, passing everything through. */
function recording(engine, log) {
  const record = (op, promise) =>
    promise.then(
      (result) => {
        log.push({ op, result: digest(result) });
        return result;
      },
      (error) => {
        log.push({ op, error: { name: error.name, code: error.code, retryAfter: error.retryAfter, message: error.message } });
        throw error;
      },
    );
  const wrap = (target) =>
    new Proxy(target, {
      get(t, name) {
        const member = t[name];
        if (typeof member !== "function") return member;
        if (name === "admin") return () => wrap(member.call(t));
        return (...args) => record(name, member.apply(t, args));
      },
    });
  return wrap(engine);
}

/** Runs a scenario on a fresh engine made by `open(config, options)` over `store`; engines of
 * other configs (`without_admin` steps) share its store, clock, mailer and event log. */
async function run(open, scenario, store) {
  const clock = { t: 0 };
  const outbox = [];
  const log = [];
  const events = [];
  const options = {
    store,
    mailer: (message) => void outbox.push(message),
    clock: () => clock.t,
    onEvent: (event) => void events.push(event),
  };
  const engine = open(scenario.config, options);
  const started = performance.now();
  const runner = new Runner(recording(engine, log), clock, outbox, scenario.origin, {
    events,
    open: (config) => open(config, options),
  });
  const transcript = await runner.run(scenario);
  const ms = performance.now() - started;
  // Remembered devices have random ids: compared by the order they were remembered in.
  return {
    transcript,
    log: numberDevices(log, events),
    events: numberDevices(events, events),
    mail: outbox.map(({ to, subject }) => ({ to, subject })),
    outbox,
    ms,
  };
}

const native = (config, options) => new Engine(config, { store: new MemoryStore(), ...options });
const wasm = (config, options) => new component.ComponentEngine(config, options);

describe("the shared scenario", () => {
  let results;

  before(async () => {
    results = {
      native: await run(native, scenario, new MemoryStore()),
      component: await run(wasm, scenario, new component.MapStore()),
    };
    for (const [name, { transcript, ms }] of Object.entries(results)) {
      console.log(`${name}: ${transcript.length} steps in ${ms.toFixed(0)} ms`);
    }
  });

  test("passes on the native engine and on the component", () => {
    assert.ok(results.native.transcript.length > 50);
    assert.ok(results.native.transcript.some((line) => line.endsWith("locked_out retry_after=60")));
  });

  test("gives identical transcripts", () => {
    assert.deepEqual(results.component.transcript, results.native.transcript);
  });

  test("gives the same results and errors (random values compared by type)", () => {
    assert.deepEqual(results.component.log, results.native.log);
  });

  test("emits the same audit events", () => {
    assert.ok(results.native.events.length > 0);
    assert.deepEqual(results.component.events, results.native.events);
  });

  test("sends the same mail, with a code in text and HTML", () => {
    assert.deepEqual(results.component.mail, results.native.mail);
    for (const message of results.component.outbox) {
      assert.ok(message.text.length > 0 && message.html.includes("<"), message.subject);
    }
  });
});

test("the operations the shared scenario does not reach give the same results", async () => {
  const [a, b] = [await run(native, extra, new MemoryStore()), await run(wasm, extra, new component.MapStore())];
  assert.deepEqual(b.transcript, a.transcript);
  assert.deepEqual(b.log, a.log);
  assert.deepEqual(b.events, a.events);
  assert.deepEqual(b.mail, a.mail);
});

describe("the component's host side", () => {
  test("error codes are the native package's", () => {
    assert.deepEqual({ ...component.codes }, { ...nativeCodes });
  });

  test("MapStore passes the core's store conformance suite", async () => {
    // checkStore recognises conflicts by `instanceof` its own StoreConflict class.
    const map = new component.MapStore();
    const native = (call) => {
      try {
        return call();
      } catch (error) {
        throw error instanceof component.StoreConflict ? new NativeStoreConflict() : error;
      }
    };
    const store = {
      get: (key) => map.get(key),
      put: (key, value, expected) => native(() => map.put(key, value, expected)),
      delete: (key, expected) => native(() => map.delete(key, expected)),
    };
    const passed = await checkStore(store);
    assert.ok(passed.length >= 3, `checks passed: ${passed}`);
    assert.equal(map.size, 0, "the suite deletes what it wrote");
  });

  /** The error name both engines give for the same call. */
  async function bothFail(options, call) {
    const names = [];
    for (const open of [native, wasm]) {
      const engine = open(scenario.config, { clock: () => 1_700_000_000, ...options() });
      const error = await call(engine).then(
        () => assert.fail("expected a failure"),
        (e) => e,
      );
      assert.equal(typeof error.code, "number");
      assert.ok(error instanceof Error && error.message);
      names.push(error.name);
    }
    assert.equal(names[0], names[1], `native ${names[0]}, component ${names[1]}`);
    return names[0];
  }

  test("a failing mailer is `mail` on both engines", async () => {
    const name = await bothFail(
      () => ({ mailer: () => { throw new Error("smtp down"); } }),
      (e) => e.emailEnrollBegin("u1", "u1@example.com"),
    );
    assert.equal(name, "mail");
  });

  test("a failing store is `storage` on both engines", async () => {
    const store = { get() { throw new Error("disk on fire"); }, put() {}, delete() {} };
    assert.equal(await bothFail(() => ({ store }), (e) => e.securityStatus("u1")), "storage");
  });

  test("a store that always conflicts is `conflict` on both engines", async () => {
    const store = (Conflict) => ({ get: () => null, put() { throw new Conflict(); }, delete() { throw new Conflict(); } });
    const names = [];
    for (const [open, Conflict] of [[native, NativeStoreConflict], [wasm, component.StoreConflict]]) {
      const engine = open(scenario.config, { store: store(Conflict), clock: () => 1_700_000_000 });
      names.push(await engine.setContactEmail("u1", "u1@example.com").then(() => "ok", (e) => e.name));
    }
    assert.deepEqual(names, ["conflict", "conflict"]);
  });

  test("admin calls are `forbidden` without the admin capability on both engines", async () => {
    const names = [];
    for (const open of [native, wasm]) {
      const engine = open({ ...scenario.config, admin: false }, { clock: () => 1_700_000_000 });
      await engine.setContactEmail("u1", "u1@example.com");
      names.push(await engine.admin().resetUser("u1", "support", "lost phone").then(() => "ok", (e) => e.name));
      names.push(await engine.admin().deleteUser("u1").then(() => "ok", (e) => e.name));
      assert.equal((await engine.securityStatus("u1")).contactEmail, "u1@example.com");
    }
    assert.deepEqual(names, ["forbidden", "forbidden", "forbidden", "forbidden"]);
  });

  test("a throwing event handler never fails an operation on both engines", async () => {
    for (const open of [native, wasm]) {
      let calls = 0;
      const onEvent = () => {
        calls += 1;
        throw new Error("security log down");
      };
      const engine = open(scenario.config, { clock: () => 1_700_000_000, onEvent });
      await engine.setContactEmail("u1", "u1@example.com");
      await engine.markOrderCreated("u1");
      assert.equal(calls, 2, "contact_email_changed and two_factor_required");
      assert.equal((await engine.securityStatus("u1")).twoFactorRequired, true);
    }
  });

  test("bad arguments are `invalid_input` on both engines", async () => {
    assert.equal(await bothFail(() => ({}), (e) => e.loginVerify("u1", "c", "sms", "123456")), "invalid_input");
    assert.equal(await bothFail(() => ({}), (e) => e.totpEnrollBegin("u1", 42)), "invalid_input");
  });

  test("an asynchronous store or mailer is refused by the component (jco imports are synchronous)", async () => {
    const asyncStore = { get: async () => null, put: async () => 1, delete: async () => {} };
    const engine = wasm(scenario.config, { store: asyncStore });
    await assert.rejects(engine.securityStatus("u1"), (e) => e.name === "storage" && /synchronous/.test(e.message));
    const mailing = wasm(scenario.config, { mailer: async () => {} });
    await assert.rejects(mailing.emailEnrollBegin("u1", "u1@example.com"), (e) => e.name === "mail" && /synchronous/.test(e.message));
  });

  test("engines are independent (each call runs on its own store and clock)", async () => {
    const a = wasm(scenario.config, { clock: () => 1_700_000_000 });
    const b = wasm(scenario.config, { clock: () => 1_800_000_000 });
    const setup = await a.totpEnrollBegin("u1", "u1@example.com");
    assert.equal(setup.expiresAt > 1_700_000_000 && setup.expiresAt < 1_800_000_000, true);
    assert.equal((await a.securityStatus("u1")).pending.totp, true);
    assert.equal((await b.securityStatus("u1")).pending.totp, false);
    a.close();
    await assert.rejects(a.securityStatus("u1"), (e) => e.name === "invalid_input");
  });
});
