// The host side of the twofa component: the JS implementations of the interfaces it imports.
//
// build.mjs maps these imports onto this module when it transpiles the component:
//   twofa:auth/store@0.1.0       → `store`           (versioned key-value store, store.wit)
//   twofa:auth/mailer@0.1.0      → `mailer`          (mail delivery, mailer.wit)
//   twofa:auth/events@0.1.0      → `events`          (the audit events, events.wit)
//   wasi:clocks/wall-clock       → `wallClock`       (the time the engine decides with)
//   wasi:clocks/monotonic-clock  → `monotonicClock`
// The rest of WASI (random, cli, io) comes from @bytecodealliance/preview2-shim.
//
// jco binds imports once, when the generated module loads, so every ComponentEngine shares this
// module. Each engine call therefore runs inside `withHost(host, ...)`, which points these
// imports at that engine's own store, mailer, event handler and clock for the duration of the
// (synchronous) call. jco imports are synchronous: a store or mailer returning a Promise is
// refused, and an event handler's Promise is not awaited.
//
// jco's convention for `result` imports: returning is `ok`; throwing the error value (here
// `{tag: "cas-failed"}`, `{tag: "failed", val}` or a string) is `err`. A thrown `Error` would
// not be converted: it unwinds through the wasm call and can leave the instance unusable, so
// every failure is caught and reported as an `err` value.

const MAX_U64 = 2n ** 64n - 1n;
const NANOS = 1_000_000_000;

/** What a store throws from `put` or `delete` when the compare-and-swap fails (the native
 * package's StoreConflict, recognised by its name, works as well). */
export class StoreConflict extends Error {
  constructor(message = "version conflict") {
    super(message);
    this.name = "StoreConflict";
  }
}

/**
 * The in-memory store: a Map of key → {value, version}, synchronous as the component needs.
 * Versions count up per store and are never reused, even after a delete.
 */
export class MapStore {
  #entries = new Map();
  #lastVersion = 0;

  get(key) {
    const entry = this.#entries.get(key);
    return entry ? { value: entry.value.slice(), version: entry.version } : null;
  }

  put(key, value, expectedVersion) {
    const current = this.#entries.get(key)?.version ?? null;
    if (current !== (expectedVersion == null ? null : Number(expectedVersion))) throw new StoreConflict();
    const version = ++this.#lastVersion;
    this.#entries.set(key, { value: Uint8Array.from(value), version });
    return version;
  }

  delete(key, expectedVersion) {
    if (this.#entries.get(key)?.version !== Number(expectedVersion)) throw new StoreConflict();
    this.#entries.delete(key);
  }

  /** The number of keys stored. */
  get size() {
    return this.#entries.size;
  }
}

/** The host of the engine call in progress: {store, mailer, emit, clock}. */
let active = null;

/** Runs `call` with the component's imports pointing at `host`; returns its result. */
export function withHost(host, call) {
  const previous = active;
  active = host;
  try {
    return call();
  } finally {
    active = previous;
  }
}

/** The short reason reported for a failed import. */
function reason(error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 1000);
}

const isThenable = (value) => value !== null && typeof value?.then === "function";

/** Calls a host store method synchronously, turning every failure into a store-error value. */
function storeCall(method, ...args) {
  if (!active) throw { tag: "failed", val: "no twofa engine call in progress" };
  let result;
  try {
    result = active.store[method](...args);
  } catch (error) {
    if (error?.name === "StoreConflict") throw { tag: "cas-failed" };
    throw { tag: "failed", val: reason(error) };
  }
  if (isThenable(result)) {
    result.catch(() => {}); // the answer comes too late to be used
    throw { tag: "failed", val: `store.${method} returned a Promise: the component's store must be synchronous` };
  }
  return result;
}

/** A version from the host store as a u64 BigInt (a store-error if it is not a positive integer). */
function version(method, value) {
  let v;
  try {
    v = BigInt(value);
  } catch {
    v = 0n;
  }
  if (v <= 0n || v > MAX_U64) {
    throw { tag: "failed", val: `store.${method} returned version ${String(value)}: versions are positive integers` };
  }
  return v;
}

/** twofa:auth/store@0.1.0 */
export const store = {
  /** → versioned | undefined (option), or throws a store-error. */
  get(key) {
    const found = storeCall("get", key);
    if (found == null) return undefined;
    return { value: found.value, version: version("get", found.version) };
  },
  /** → the new version (u64), or throws a store-error. */
  put(key, value, expectedVersion) {
    return version("put", storeCall("put", key, value, expectedVersion ?? null));
  },
  /** → nothing, or throws a store-error. */
  delete(key, expectedVersion) {
    storeCall("delete", key, expectedVersion);
  },
};

/** twofa:auth/mailer@0.1.0: `send(message)` returns, or throws a short reason (a string). */
export const mailer = {
  send(message) {
    if (!active?.mailer) throw "no mailer";
    const { to, subject, text, html } = message;
    let result;
    try {
      result = active.mailer({ to, subject, text, html });
    } catch (error) {
      throw reason(error);
    }
    if (isThenable(result)) {
      result.catch(() => {});
      throw "the mailer returned a Promise: the component's mailer must be synchronous";
    }
  },
};

/** twofa:auth/events@0.1.0: `emit(event)` hands the WIT security-event to the engine's `emit`.
 * It cannot fail the operation (the change is committed): whatever the handler throws, or a
 * Promise it returns rejects with, is ignored, and nothing unwinds through the component. */
export const events = {
  emit(event) {
    if (!active?.emit) return;
    try {
      const result = active.emit(event);
      if (isThenable(result)) result.catch(() => {});
    } catch {
      // Deliberately ignored: an audit handler never fails an operation.
    }
  },
};

/** The engine's time in Unix seconds (the system clock outside an engine call). */
const seconds = () => Math.max(0, active?.clock ? Number(active.clock()) : Date.now() / 1000);

/** wasi:clocks/wall-clock: the host clock, so that a test sets the time exactly. */
export const wallClock = {
  now() {
    const t = seconds();
    const whole = Math.floor(t);
    return { seconds: BigInt(whole), nanoseconds: Math.floor((t - whole) * NANOS) };
  },
  resolution() {
    return { seconds: 1n, nanoseconds: 0 };
  },
};

/** wasi:clocks/monotonic-clock: nanoseconds moving with the same clock (as the wasmtime host
 * does; it goes back if a test sets the clock back). */
export const monotonicClock = {
  now() {
    return BigInt(Math.floor(seconds())) * BigInt(NANOS);
  },
  resolution() {
    return BigInt(NANOS);
  },
};
