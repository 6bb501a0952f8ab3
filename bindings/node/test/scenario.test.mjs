// The shared scenario (tests/scenarios/security_tab.json) through the Node engine on every kind
// of store: identical transcripts everywhere. And the runner cannot pass vacuously.

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
 * the transcript. The mailer is async, as a real one would be. */
function run(scenario, { store, config = scenario.config } = {}) {
  const clock = { t: 0 };
  const outbox = [];
  const mailer = async (message) => {
    await new Promise(setImmediate);
    outbox.push(message);
  };
  const engine = new Engine(config, { store, mailer, clock: () => clock.t });
  return new Runner(engine, clock, outbox, scenario.origin).run(scenario);
}

let reference;

before(async () => {
  reference = await run(SCENARIO, { store: new AsyncMapStore() });
});

test("the scenario passes on an async Map store", () => {
  assert.ok(reference.length >= 40, `only ${reference.length} steps ran`);
  assert.ok(reference.some((line) => line.endsWith(": replayed")));
  assert.ok(reference.some((line) => line.startsWith("login_verify") && line.includes(": locked_out retry_after=")));
  assert.ok(reference.some((line) => line.startsWith("login_verify") && line.endsWith(": webauthn_rejected")));
});

test("MemoryStore gives the same transcript", async () => {
  assert.deepEqual(await run(SCENARIO, { store: new MemoryStore() }), reference);
});

test("SqliteStore gives the same transcript", async () => {
  assert.deepEqual(await run(SCENARIO, { store: new SqliteStore(join(tmp, "store.db")) }), reference);
});

test("the SQLite default (no store, config.sqlite_path) gives the same transcript", async () => {
  const config = { ...SCENARIO.config, sqlite_path: join(tmp, "default.db") };
  assert.deepEqual(await run(SCENARIO, { config }), reference);
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
