// A Node worker of the multi-process race test (tests/race/race.py drives it): the same JSON-lines
// protocol as tests/race/worker.py, over the Node package's Engine and the Node host's
// PostgresStore (examples/node-host/pgstore.mjs, over `pg`) on the database at $TWOFA_PG_URL.
//
//   {"op":"init","name":"node-1","config":{...}}
//                                      → {"worker":"node-1","pid":N}
//   {"op":"prepare","submissions":[{user,kind,code,challenge}...]}
//                                      → loginBegin for each submission whose challenge is null
//                                        (a challenge of its own); {"ready":true,"challenges":[...],
//                                        "store_conflicts":N}
//   {"op":"go","at":unixTime}          → at that moment starts every loginVerify at once
//                                        (Promise.all); {"answers":[{answer,t0,t1}...],
//                                        "store_conflicts":N}: "ok" or the error's name, the
//                                        wall-clock span of each call, and the compare-and-swap
//                                        writes of this process's store that lost a race
//   {"op":"exit"}                      → ends the pool and exits
//
// The package is imported from bindings/node itself: examples/node-host links it there
// (node_modules/twofa → ../../../bindings/node), so pgstore.mjs, which imports "twofa" from
// examples/node-host/node_modules, gets this very module and its StoreConflict class. `pg` is
// found by pgstore.mjs in examples/node-host/node_modules (npm ci there first).

import { createInterface } from "node:readline";
import { PostgresStore } from "../../examples/node-host/pgstore.mjs";
import { Engine, StoreConflict, TwofaError } from "../../bindings/node/index.js";

/** The example's PostgresStore, counting the compare-and-swap writes that lost a race. */
class CountingStore {
  constructor(inner) {
    this.inner = inner;
    this.conflicts = 0;
  }

  takeConflicts() {
    const n = this.conflicts;
    this.conflicts = 0;
    return n;
  }

  async #counted(call) {
    try {
      return await call();
    } catch (error) {
      if (error instanceof StoreConflict) this.conflicts += 1;
      throw error;
    }
  }

  get(key) {
    return this.inner.get(key);
  }

  put(key, value, expectedVersion) {
    return this.#counted(() => this.inner.put(key, value, expectedVersion));
  }

  delete(key, expectedVersion) {
    return this.#counted(() => this.inner.delete(key, expectedVersion));
  }
}

const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const wallClock = () => (performance.timeOrigin + performance.now()) / 1000;

/** Waits until wall-clock time `at` (Unix seconds), spinning the last millisecond. */
async function waitUntil(at) {
  const ms = (at - wallClock()) * 1000 - 1;
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  while (wallClock() < at) {
    // spin
  }
}

/** One loginVerify: "ok" or the error's name, with its wall-clock span. */
async function submit(engine, { user, kind, code }, challenge) {
  const t0 = wallClock();
  let answer;
  try {
    await engine.loginVerify(user, challenge, kind, code);
    answer = "ok";
  } catch (error) {
    answer = error instanceof TwofaError ? error.name : `exception: ${error?.stack ?? error}`;
  }
  return { answer, t0, t1: wallClock() };
}

let engine = null;
let store = null;
let prepared = [];

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  const request = JSON.parse(line);
  if (request.op === "init") {
    store = new CountingStore(new PostgresStore(process.env.TWOFA_PG_URL));
    // Mail (the notice "a recovery code was used") is accepted and dropped.
    engine = new Engine(request.config, { store, mailer: async () => {} });
    reply({ worker: request.name, pid: process.pid });
  } else if (request.op === "prepare") {
    prepared = [];
    for (const s of request.submissions) {
      const challenge = s.challenge ?? (await engine.loginBegin(s.user)).challengeId;
      if (!challenge) throw new Error(`user ${s.user} has no second factor`);
      prepared.push({ submission: s, challenge });
    }
    reply({ ready: true, challenges: prepared.map((p) => p.challenge), store_conflicts: store.takeConflicts() });
  } else if (request.op === "go") {
    await waitUntil(Number(request.at));
    const answers = await Promise.all(prepared.map((p) => submit(engine, p.submission, p.challenge)));
    reply({ answers, store_conflicts: store.takeConflicts() });
  } else if (request.op === "exit") {
    break;
  } else {
    throw new Error(`unknown op ${request.op}`);
  }
}
engine?.close();
await store?.inner.end();
process.stdin.destroy(); // stdin left open would keep the process alive
