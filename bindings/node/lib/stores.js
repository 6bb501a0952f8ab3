// Stores: the versioned key-value contract, the built-in stores, and the conformance suite.
//
// A store keeps bytes under string keys with versions:
//   get(key)                        → {value, version} or null
//   put(key, value, expectedVersion) → the new version; writes only if the key's version is
//                                      expectedVersion (null: only if the key does not exist)
//   delete(key, expectedVersion)    → deletes only if the version matches
// put and delete throw StoreConflict (or any error named "StoreConflict") on a mismatch. Versions are positive integers (number or
// bigint), never reused for a key, even after a delete. Each method may return a Promise.

import { StoreConflict, TwofaError, cString, call, codes, takeError } from "./errors.js";
import { constants, koffi, lib, takeString } from "./native.js";

const { TWOFA_CALLBACK_OK: OK, TWOFA_CALLBACK_CONFLICT: CONFLICT } = constants;
/** What a failed store call or delivery is fed back as (any value but OK and CONFLICT). */
export const FAILED = 2;
const MAX_VERSION = 2n ** 64n - 1n;

const released = new FinalizationRegistry(({ free, pointer }) => free(pointer));

/** A copy of `length` bytes at `pointer` (memory libtwofa owns). */
function copyBytes(pointer, length) {
  return Buffer.from(new Uint8Array(koffi.view(pointer, Number(length))));
}

/** Throws unless `version` is a positive integer that fits in 64 bits. */
export function checkVersion(what, version) {
  const ok =
    (typeof version === "number" && Number.isSafeInteger(version) && version > 0) ||
    (typeof version === "bigint" && version > 0n && version <= MAX_VERSION);
  if (!ok) throw new TypeError(`${what} returned version ${String(version)}: versions are positive integers`);
}

/** A store implemented inside libtwofa; several engines may share it. */
export class NativeStore {
  /** Calls running on worker threads, which the handle must outlive. */
  #running = 0;
  #closed = false;

  /** @internal */
  constructor(pointer, blocking) {
    this.pointer = pointer;
    this.blocking = blocking;
    released.register(this, { free: lib.twofa_store_free, pointer }, this);
  }

  /** Releases the handle now rather than at garbage collection, once the calls in progress have
   * finished; later calls fail with "invalid_input". */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    released.unregister(this);
    if (this.#running === 0) lib.twofa_store_free(this.pointer);
  }

  /** Runs a libtwofa store function, on a worker thread for a store that does file I/O. */
  #invoke(fn, ...args) {
    return this.#call(this.blocking, fn, ...args);
  }

  /** Runs a libtwofa store function on this handle, on a worker thread if `background`. */
  async #call(background, fn, ...args) {
    if (this.#closed) throw new TwofaError(codes.invalid_input, "invalid input: the store was closed");
    const err = [null];
    let status;
    if (background) {
      this.#running++;
      try {
        status = await new Promise((resolve, reject) =>
          fn.async(this.pointer, ...args, err, (e, value) => (e ? reject(e) : resolve(value))),
        );
      } finally {
        if (--this.#running === 0 && this.#closed) lib.twofa_store_free(this.pointer);
      }
    } else {
      status = fn(this.pointer, ...args, err);
    }
    if (status === codes.conflict) {
      lib.twofa_error_free(err[0]);
      throw new StoreConflict();
    }
    if (status !== 0) throw takeError(status, err[0]);
  }

  /** @internal Performs the store actions of the sans-IO operation `op` on this store (on a
   * worker thread for a store that does file I/O) and describes its next action, SEND or DONE,
   * in `action`: one call where driving each action from JS would take several. */
  runOperation(op, action) {
    return this.#invoke(lib.twofa_store_run_operation, op, action);
  }

  /** Runs the conformance suite on this store (on a worker thread); see `checkStore`. */
  async check() {
    const out = [null];
    await this.#call(true, lib.twofa_store_check, out);
    return JSON.parse(takeString(out[0])).passed;
  }

  async get(key) {
    const bytes = [null];
    const length = [0];
    const version = [0];
    await this.#invoke(lib.twofa_store_get, cString(key, "key"), bytes, length, version);
    if (!version[0]) return null;
    try {
      return { value: copyBytes(bytes[0], length[0]), version: version[0] };
    } finally {
      lib.twofa_bytes_free(bytes[0], length[0]);
    }
  }

  async put(key, value, expectedVersion) {
    const version = [0];
    await this.#invoke(lib.twofa_store_put, cString(key, "key"), value, value.length, expectedVersion ?? 0, version);
    return version[0];
  }

  async delete(key, expectedVersion) {
    await this.#invoke(lib.twofa_store_delete, cString(key, "key"), expectedVersion);
  }
}

/** The in-memory store (gone when the last engine using it is). */
export class MemoryStore extends NativeStore {
  constructor() {
    const out = [null];
    call(lib.twofa_store_new_memory, out);
    super(out[0], false);
  }
}

/** The embedded SQLite store at `path` (created if missing; WAL mode). Its calls run on
 * worker threads, so they never block the event loop. */
export class SqliteStore extends NativeStore {
  constructor(path) {
    const out = [null];
    call(lib.twofa_store_new_sqlite, cString(path, "path"), out);
    super(out[0], true);
  }
}

/** The message a failed action is reported with: the error's name and text, NUL-free. A thrown
 * value that cannot be turned into text (`Object.create(null)`, a throwing `toString`) is
 * described, never rethrown: the failure must still reach the engine. */
export function reason(error) {
  let text;
  try {
    text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    text = `a thrown ${typeof error} that cannot be shown as text`;
  }
  return text.replaceAll("\0", " ").slice(0, 1000);
}

const CALLBACKS = {
  [constants.TWOFA_ACTION_LOAD]: "store.get",
  [constants.TWOFA_ACTION_WRITE]: "store.put",
  [constants.TWOFA_ACTION_DELETE]: "store.delete",
};

/**
 * Performs one store action (`{kind, key, bytes, expectedVersion}`) on `store` and returns the
 * feed arguments `[rc, message, ...values]` for libtwofa. A thrown error is pushed on `failures`
 * as `{error, callback}` (the store method that failed).
 */
export async function perform(store, action, failures) {
  const { kind, key, bytes, expectedVersion } = action;
  try {
    if (kind === constants.TWOFA_ACTION_LOAD) {
      const found = await store.get(key);
      if (found == null) return [OK, null, null, 0, 0];
      if (!(found.value instanceof Uint8Array)) throw new TypeError("store.get returned a value that is not a Uint8Array");
      checkVersion("store.get", found.version);
      return [OK, null, found.value, found.value.length, found.version];
    }
    if (kind === constants.TWOFA_ACTION_WRITE) {
      const version = await store.put(key, bytes, expectedVersion || null);
      checkVersion("store.put", version);
      return [OK, null, version];
    }
    await store.delete(key, expectedVersion);
    return [OK, null];
  } catch (error) {
    // Only a write or a delete can conflict; a get that throws StoreConflict has failed.
    const conflict = error instanceof StoreConflict || isNamed(error, "StoreConflict");
    if (conflict && kind === constants.TWOFA_ACTION_WRITE) return [CONFLICT, null, 0];
    if (conflict && kind === constants.TWOFA_ACTION_DELETE) return [CONFLICT, null];
    failures.push({ error, callback: CALLBACKS[kind] });
    const message = reason(error);
    if (kind === constants.TWOFA_ACTION_LOAD) return [FAILED, message, null, 0, 0];
    return kind === constants.TWOFA_ACTION_WRITE ? [FAILED, message, 0] : [FAILED, message];
  }
}

/** Whether a thrown value is named `name`, for values whose `name` getter itself throws too. */
function isNamed(error, name) {
  try {
    return error?.name === name;
  } catch {
    return false;
  }
}

/** `error` with the host failure that caused it: its `cause` and the failing `callback`. */
export function withFailure(error, failure) {
  if (failure) {
    error.cause = failure.error;
    error.callback = failure.callback;
  }
  return error;
}

/** A store action copied out of a `twofa_action` (whose pointers die at the next call). */
export function copyAction(a) {
  const bytes = a.kind === constants.TWOFA_ACTION_WRITE ? copyBytes(a.bytes, a.len) : null;
  return { kind: a.kind, key: a.key, bytes, expectedVersion: a.expected_version };
}

const FEED = {
  [constants.TWOFA_ACTION_LOAD]: "twofa_conformance_feed_load",
  [constants.TWOFA_ACTION_WRITE]: "twofa_conformance_feed_write",
  [constants.TWOFA_ACTION_DELETE]: "twofa_conformance_feed_delete",
};

/**
 * Runs the core's store conformance suite (insert-only, compare-and-swap, versions never
 * reused, concurrent writers) against `store`, writing and then deleting keys under a random
 * `twofa-conformance/` prefix. Store calls run concurrently, as an async store would see them
 * from several app servers. Resolves to the names of the checks passed; rejects with a
 * TwofaError (`storage`) naming the first failed check.
 */
export async function checkStore(store) {
  if (store instanceof NativeStore) return store.check();
  const session = [null];
  call(lib.twofa_conformance_new, session);
  const failures = [];
  const inflight = new Map();
  try {
    const action = {};
    const id = [0];
    for (;;) {
      call(lib.twofa_conformance_next, session[0], action, id);
      if (action.kind === constants.TWOFA_ACTION_DONE) break;
      if (action.kind === constants.TWOFA_ACTION_WAIT) {
        await Promise.race(inflight.values());
        continue;
      }
      const actionId = id[0];
      const copy = copyAction(action);
      const done = perform(store, copy, failures).then((answer) => {
        inflight.delete(actionId);
        const status = lib[FEED[copy.kind]](session[0], actionId, ...answer);
        if (status !== 0) throw new TwofaError(status, lib.twofa_last_error_message());
      });
      inflight.set(actionId, done);
    }
    const out = [null];
    const err = [null];
    const status = lib.twofa_conformance_finish(session[0], out, err);
    if (status !== 0) throw withFailure(takeError(status, err[0]), failures.at(-1));
    return JSON.parse(takeString(out[0])).passed;
  } finally {
    lib.twofa_conformance_free(session[0]);
  }
}
