// The shared scenario (tests/scenarios/security_tab.json) through the Node engine on every kind
// of store: identical transcripts and audit events everywhere. And the runner cannot pass
// vacuously.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Engine, MemoryStore, SqliteStore } from "twofa";
import { Runner, ScenarioFailed, load } from "./scenario.mjs";
import { AsyncMapStore } from "./support.mjs";

const SCENARIO = load("security_tab");

const tmp = mkdtempSync(join(tmpdir(), "twofa-scenario-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `scenario` on an engine with `store` (undefined: the config's sqlite_path); resolves to
 * the transcript, or with `withEvents` to `{transcript, events}`. The mailer and the event
 * handler are async, as real ones would be. */
async function run(scenario, { store, config = scenario.config, withEvents = false } = {}) {
  const clock = { t: 0 };
  const outbox = [];
  const events = [];
  const mailer = async (message) => {
    await new Promise(setImmediate);
    outbox.push(message);
  };
  const onEvent = async (event) => {
    await new Promise(setImmediate);
    events.push(event);
  };
  const options = { store, mailer, clock: () => clock.t, onEvent };
  const engine = new Engine(config, options);
  /** The same store (or SQLite file), clock, mailer and handler with another config. */
  const open = (other) => new Engine({ ...config, ...other }, options);
  const transcript = await new Runner(engine, clock, outbox, scenario.origin, { events, open }).run(scenario);
  return withEvents ? { transcript, events } : transcript;
}

/** Events without their random parts (method ids such as "totp-1" are deterministic; the ids of
 * remembered devices are random): what must be identical on every store. */
const stable = (events) =>
  events.map(({ methodId, ...rest }) => ({
    ...rest,
    methodId: methodId === null || /^[a-z]+-\d+$/.test(methodId) ? methodId : "<device>",
  }));

let reference;
let referenceEvents;

before(async () => {
  ({ transcript: reference, events: referenceEvents } = await run(SCENARIO, { store: new AsyncMapStore(), withEvents: true }));
});

test("the scenario passes on an async Map store", () => {
  assert.ok(reference.length >= 40, `only ${reference.length} steps ran`);
  assert.ok(reference.some((line) => line.endsWith(": replayed")));
  assert.ok(reference.some((line) => line.startsWith("login_verify") && line.includes(": locked_out retry_after=")));
  assert.ok(reference.some((line) => line.startsWith("login_verify") && line.endsWith(": webauthn_rejected")));
  assert.ok(reference.some((line) => line.startsWith("admin.reset_user") && line.endsWith(": forbidden")));
  const kinds = new Set(referenceEvents.map((event) => event.kind));
  for (const kind of ["method_added", "login_succeeded", "login_failed", "device_remembered", "admin_reset", "user_exported", "user_imported"]) {
    assert.ok(kinds.has(kind), `no ${kind} event`);
  }
});

test("MemoryStore gives the same transcript and events", async () => {
  const { transcript, events } = await run(SCENARIO, { store: new MemoryStore(), withEvents: true });
  assert.deepEqual(transcript, reference);
  assert.deepEqual(stable(events), stable(referenceEvents));
});

test("SqliteStore gives the same transcript and events", async () => {
  const { transcript, events } = await run(SCENARIO, { store: new SqliteStore(join(tmp, "store.db")), withEvents: true });
  assert.deepEqual(transcript, reference);
  assert.deepEqual(stable(events), stable(referenceEvents));
});

test("the SQLite default (no store, config.sqlite_path) gives the same transcript and events", async () => {
  const config = { ...SCENARIO.config, sqlite_path: join(tmp, "default.db") };
  const { transcript, events } = await run(SCENARIO, { config, withEvents: true });
  assert.deepEqual(transcript, reference);
  assert.deepEqual(stable(events), stable(referenceEvents));
});

test("the runner fails when the scenario is wrong", async (t) => {
  const steps = SCENARIO.steps;
  const index = (predicate) => {
    const found = steps.findIndex(predicate);
    assert.ok(found >= 0);
    return found;
  };
  /** A copy of the scenario with step `i` changed by `edit`, and the index of that step. */
  const altered = (i, edit) => {
    const copy = structuredClone(SCENARIO);
    edit(copy.steps[i]);
    return [copy, i];
  };
  const cases = {
    "a synthetic wrong expect": [{ ...SCENARIO, steps: [{ time: 1_700_000_000 }, { op: "login_begin", user: "x", expect: "expired" }] }, 1],
    "a synthetic wrong check": [{ ...SCENARIO, steps: [{ op: "security_status", user: "x", check: { recovery_codes_left: 3 } }] }, 0],
    "a synthetic wrong mails": [{ ...SCENARIO, steps: [{ op: "security_status", user: "x", mails: 1 }] }, 0],
    "a replay expected to succeed": altered(
      index((s) => s.expect === "replayed"),
      (s) => delete s.expect,
    ),
    "a success expected to fail": altered(
      index((s) => s.op === "login_verify" && !s.expect),
      (s) => (s.expect = "invalid_code"),
    ),
    "a wrong check value": altered(
      index((s) => s.op === "security_status" && s.check),
      (s) => (s.check = { ...s.check, recovery_codes_left: 99 }),
    ),
    "a check of a missing path": altered(
      index((s) => s.op === "login_begin" && s.check),
      (s) => (s.check = { no_such_field: 1 }),
    ),
    "a wrong mail count": altered(
      index((s) => s.mails === 1),
      (s) => (s.mails = 2),
    ),
    "a missing event": altered(
      index((s) => s.events?.length === 1),
      (s) => (s.events = []),
    ),
    "a wrong event field": altered(
      index((s) => s.events?.length === 1),
      (s) => (s.events = [{ ...s.events[0], kind: "user_deleted" }]),
    ),
    "an admin step without the capability expected to succeed": altered(
      index((s) => s.without_admin === true),
      (s) => delete s.expect,
    ),
    // `same_credential` really registers the same credential: with carol's device kept, its
    // claim is live and paul's registration of it is refused.
    "a re-registered credential whose claim was never released": (() => {
      const copy = structuredClone(SCENARIO);
      const removal = index((s) => s.op === "remove_method" && s.user === "carol");
      copy.steps.splice(removal, 1);
      const finish = copy.steps.findIndex((s) => s.op === "webauthn_register_finish" && s.user === "paul");
      assert.ok(finish >= 0 && copy.steps[finish].args.credential_json.same_credential === true);
      return [copy, finish];
    })(),
  };
  for (const [name, [scenario, step]] of Object.entries(cases)) {
    await t.test(name, async () => {
      await assert.rejects(run(scenario, { store: new AsyncMapStore() }), (error) => {
        assert.ok(error instanceof ScenarioFailed, `not a ScenarioFailed: ${error}`);
        assert.ok(error.message.startsWith(`step ${step} `) || error.message.includes(`(path `), error.message);
        return true;
      });
    });
  }
});

test("the runner fails when an event contains a secret of the run", async () => {
  const events = [];
  /** An engine that leaks its step-up token into an event. */
  const leaky = {
    async securityStatus(user) {
      events.push({ kind: "login_succeeded", user, reason: "tok-123" });
      return { stepUp: { token: "tok-123" } };
    },
  };
  const scenario = { steps: [{ op: "security_status", user: "x", events: [{ kind: "login_succeeded" }] }] };
  const runner = new Runner(leaky, { t: 0 }, [], null, { events });
  await assert.rejects(runner.run(scenario), (error) => {
    assert.ok(error instanceof ScenarioFailed, `not a ScenarioFailed: ${error}`);
    assert.match(error.message, /contains a secret/);
    return true;
  });
});
