// The fault-injection adapter of the Node package (tests/faults/README.md): one `Engine` of
// bindings/node with a store, a mailer and a clock written in JavaScript, driven by the harness's
// line protocol on stdin/stdout. It only translates: the op → method mapping is the scenario
// runner's (bindings/node/test/scenario.mjs), the verdicts are the harness's. The audit events an
// operation emits (the Engine's `onEvent`) are listed in its answer with the core's field names.
//
// Run: node tests/faults/adapters/node_adapter.mjs (needs target/release/libtwofa.so and
// `npm ci` in bindings/node).

import { createInterface } from "node:readline";
import { Engine, StoreConflict } from "../../../bindings/node/index.js";
import { Runner, ScenarioFailed } from "../../../bindings/node/test/scenario.mjs";

const KINDS = ["fail", "crash", "conflict", "corrupt", "stale", "mail-fail", "mail-crash"];
/** The calls each kind counts (and fires at). */
const DOMAINS = {
  fail: ["get", "put", "delete"],
  crash: ["get", "put", "delete"],
  conflict: ["put", "delete"],
  corrupt: ["get"],
  stale: ["get"],
  "mail-fail": ["send"],
  "mail-crash": ["send"],
};
/** What a `corrupt` get returns: not JSON, not even UTF-8. */
const CORRUPT = Buffer.concat([Buffer.from('{"corrupt'), Buffer.from([0xff])]);

/**
 * How a store or mailer fails "the way a bug does": a promise rejected without a reason, as a
 * callback-to-promise wrapper that calls `reject()` on its error path does. The value reaching
 * the engine is `undefined`, a non-Error (an Error subclass such as a TypeError would take the
 * very path of `fail`), and the most bare one: no name, no message, no properties.
 */
const crash = () => new Promise((_resolve, reject) => reject());

/** The adapter's state: the records, the slots, the version counter, the armed fault. */
const records = new Map(); // key → {value: Buffer, version: number}
const slots = new Map();
let nextVersion = 100;
const clock = { t: 0 };
let fault = null; // {kind, n, seen}
let fired = false;
let calls = [];
let mails = [];
let events = []; // the audit events of the current operation, as the core's JSON
let engine = null;

/** Counts a call of `domain` ("get", "put", "delete", "send"); true when the fault fires now. */
function firesAt(domain) {
  if (fault === null || !DOMAINS[fault.kind].includes(domain)) return false;
  fault.seen += 1;
  if (fault.seen !== fault.n) return false;
  fired = true;
  return true;
}

/** A store of the versioned contract over `records`, async like a real database client. */
const store = {
  async get(key) {
    calls.push(`get ${key}`);
    await null;
    const found = records.get(key);
    if (firesAt("get")) {
      const kind = fault.kind;
      if (kind === "fail") throw new Error(`injected store failure: get ${key}`);
      if (kind === "crash") return crash();
      if (kind === "corrupt") return { value: Buffer.from(CORRUPT), version: found?.version ?? 100 };
      if (kind === "stale") return found ? { value: Buffer.from(found.value), version: found.version - 1 } : null;
    }
    return found ? { value: Buffer.from(found.value), version: found.version } : null;
  },

  async put(key, value, expectedVersion) {
    calls.push(`put ${key}`);
    await null;
    if (firesAt("put")) {
      if (fault.kind === "fail") throw new Error(`injected store failure: put ${key}`);
      if (fault.kind === "crash") return crash();
      if (fault.kind === "conflict") throw new StoreConflict(key);
    }
    const current = records.get(key)?.version ?? null;
    if (current !== (expectedVersion === null ? null : Number(expectedVersion))) throw new StoreConflict(key);
    const version = nextVersion++;
    records.set(key, { value: Buffer.from(value), version });
    return version;
  },

  async delete(key, expectedVersion) {
    calls.push(`delete ${key}`);
    await null;
    if (firesAt("delete")) {
      if (fault.kind === "fail") throw new Error(`injected store failure: delete ${key}`);
      if (fault.kind === "crash") return crash();
      if (fault.kind === "conflict") throw new StoreConflict(key);
    }
    if (records.get(key)?.version !== Number(expectedVersion)) throw new StoreConflict(key);
    records.delete(key);
  },
};

/** The mailer: every message handed over is listed, delivered or not. */
async function mailer({ to, subject, text }) {
  calls.push(`send ${to}`);
  const mail = { to, subject, text, delivered: false };
  mails.push(mail);
  await null;
  if (firesAt("send")) {
    if (fault.kind === "mail-fail") throw new Error(`injected delivery failure: ${to}`);
    return crash();
  }
  mail.delivered = true;
}

/** camelCase → snake_case (the core's field names contain no digits, so this inverts the
 * package's conversion). */
const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A result of the package as the core's outcome JSON: snake_case keys, the WebAuthn options as
 * JSON text again, `{}` for an operation that returns nothing. */
function coreOutcome(value) {
  if (value === undefined) return {};
  const convert = (v) => {
    if (Array.isArray(v)) return v.map(convert);
    if (v === null || typeof v !== "object") return v;
    const result = {};
    for (const [key, x] of Object.entries(v)) {
      if (key === "options") result.options_json = JSON.stringify(x);
      else if (key === "webauthnOptions") result.webauthn_options = x === null ? null : JSON.stringify(x);
      else result[snake(key)] = convert(x);
    }
    return result;
  };
  return convert(value);
}

/** The `onEvent` handler: records an event of the package (camelCase keys, `methodId`) as the
 * core's SecurityEvent JSON (snake_case keys, `method_id`). */
function onEvent(event) {
  events.push(Object.fromEntries(Object.entries(event).map(([key, value]) => [snake(key), value])));
}

/** The error of a failed operation as the protocol's object. */
function errorObject(error) {
  if (typeof error?.code === "number") {
    return { name: error.name, code: error.code, message: error.message, callback: error.callback ?? null };
  }
  // Not a TwofaError: the package let something else escape. Reported as it is, so that the
  // harness fails the step and shows it.
  console.error("node adapter: a non-TwofaError escaped:", error);
  return { name: String(error?.name ?? typeof error), code: null, message: String(error?.message ?? error), callback: null };
}

/** `run`/`admin`: the request through the Engine method of its op. */
async function operation(admin, user, json) {
  const { op, ...args } = JSON.parse(json);
  calls = [];
  mails = [];
  events = [];
  fired = false;
  let answer;
  try {
    const runner = new Runner(engine, clock, [], null);
    const result = await runner.call(admin ? `admin.${op}` : op, user, args);
    answer = { outcome: coreOutcome(result), error: null };
  } catch (error) {
    if (error instanceof ScenarioFailed) throw error; // an op the runner does not know
    answer = { outcome: null, error: errorObject(error) };
  } finally {
    fault = null;
  }
  return { ...answer, fired, calls, mails, events };
}

const copyRecords = (from) =>
  new Map([...from].map(([key, { value, version }]) => [key, { value: Buffer.from(value), version }]));

/** Answers one command line. */
async function command(line) {
  const space = line.indexOf(" ");
  const name = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? "" : line.slice(space + 1).trim();
  switch (name) {
    case "hello":
      return { surface: "node", kinds: KINDS, crash_error: "storage" };
    case "config":
      engine?.close();
      engine = null;
      records.clear();
      try {
        engine = new Engine(JSON.parse(rest), { store, mailer, clock: () => clock.t, onEvent });
      } catch (error) {
        if (typeof error?.code !== "number") throw error;
        return { error: errorObject(error) };
      }
      return { ok: true };
    case "time":
      clock.t = Number(rest);
      return { ok: true };
    case "save":
      slots.set(rest, copyRecords(records));
      return { ok: true };
    case "load": {
      const slot = slots.get(rest);
      if (!slot) throw new Error(`no slot ${rest}`);
      records.clear();
      for (const [key, record] of copyRecords(slot)) records.set(key, record);
      return { ok: true };
    }
    case "dump":
      return {
        records: Object.fromEntries(
          [...records]
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([key, { value, version }]) => [key, { value: value.toString("base64"), version }]),
        ),
      };
    case "fault": {
      const [kind, n] = rest.split(/\s+/);
      if (kind === "none") fault = null;
      else if (KINDS.includes(kind) && Number.isInteger(Number(n)) && Number(n) >= 1) fault = { kind, n: Number(n), seen: 0 };
      else throw new Error(`unknown fault ${rest}`);
      return { ok: true };
    }
    case "run":
    case "admin": {
      if (engine === null) throw new Error("no config yet");
      const at = rest.indexOf(" ");
      if (at < 0) throw new Error(`${name} needs a user and a request`);
      return operation(name === "admin", rest.slice(0, at), rest.slice(at + 1));
    }
    default:
      throw new Error(`unknown command ${name}`);
  }
}

// One command at a time: each is answered before the next line is read.
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let answer;
  try {
    answer = await command(line.trim());
  } catch (error) {
    console.error(`node adapter: ${line.slice(0, 200)}:`, error);
    answer = { error: { name: "adapter", code: null, message: String(error?.message ?? error), callback: null } };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
engine?.close();
