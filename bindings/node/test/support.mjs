// Shared fixtures of the package's tests: the config, the RFC test secret, an async store
// written in JS, the stores the engine tests run on, and the assertion that an operation fails
// with a given TwofaError.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { MemoryStore, StoreConflict, TwofaError } from "twofa";

/** The time the tests start at. */
export const T0 = 1_700_000_000;
/** A base32 TOTP secret: its code at T0 is 406058. */
export const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/** The browser origin of the WebAuthn ceremonies. */
export const ORIGIN = "http://localhost:8080";
/** The engine config of the tests (with the admin capability, which `admin()` needs). */
export const CONFIG = {
  issuer: "Example Shop",
  admin: true,
  keys: [{ id: "k1", secret: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }],
  webauthn: { rp_id: "localhost", rp_name: "Example Shop", origins: ["http://localhost:8080"] },
};

/** The versioned store contract over a Map, yielding to the event loop inside every call. */
export class AsyncMapStore {
  data = new Map();
  version = 0;
  /** How many compare-and-swaps failed (proof that writes raced). */
  conflicts = 0;

  async get(key) {
    await new Promise(setImmediate);
    const found = this.data.get(key);
    return found ? { value: Buffer.from(found.value), version: found.version } : null;
  }

  async put(key, value, expectedVersion) {
    await new Promise(setImmediate);
    if ((this.data.get(key)?.version ?? null) !== expectedVersion) {
      this.conflicts += 1;
      throw new StoreConflict(key);
    }
    this.data.set(key, { value: Buffer.from(value), version: ++this.version });
    return this.version;
  }

  async delete(key, expectedVersion) {
    await new Promise(setImmediate);
    if (this.data.get(key)?.version !== expectedVersion) throw new StoreConflict(key);
    this.data.delete(key);
  }

  /** An independent copy (values, versions and the version counter). */
  copy() {
    const twin = new AsyncMapStore();
    twin.data = new Map([...this.data].map(([k, { value, version }]) => [k, { value: Buffer.from(value), version }]));
    twin.version = this.version;
    return twin;
  }

  /** The stored bytes by key (hex), without versions. */
  snapshot() {
    return Object.fromEntries([...this.data].map(([k, { value }]) => [k, value.toString("hex")]).sort());
  }
}

/**
 * The stores a test file runs the engine on, by name: each call makes the `config` and `store`
 * of a fresh engine (no store and the config's `sqlite_path` for the SQLite default, whose files
 * go into a temporary directory named after `name`, deleted after the file's tests).
 * @returns {Record<string, () => {config: object, store: object | undefined}>}
 */
export function engineStores(name) {
  const dir = mkdtempSync(join(tmpdir(), `twofa-${name}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let databases = 0;
  return {
    "async Map store": () => ({ config: CONFIG, store: new AsyncMapStore() }),
    MemoryStore: () => ({ config: CONFIG, store: new MemoryStore() }),
    "SQLite default": () => {
      const config = { ...CONFIG, sqlite_path: join(dir, `${name}-${++databases}.db`) };
      return { config, store: undefined };
    },
  };
}

/** Asserts that `promise` rejects with a TwofaError named `name` (and a message matching
 * `pattern`, if given); returns the error. */
export async function rejects(promise, name, pattern) {
  let error;
  await assert.rejects(promise, (e) => {
    error = e;
    return true;
  });
  assert.ok(error instanceof TwofaError, `expected a TwofaError, got ${error?.stack ?? error}`);
  assert.equal(error.name, name, `expected ${name}, got ${error.name}: ${error.message}`);
  if (pattern) assert.match(error.message, pattern);
  return error;
}
