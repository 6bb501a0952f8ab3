// twofa's store on PostgreSQL, over node-postgres (`pg`): the same table, sequence and statements
// as examples/python-host/pgstore.py, so hosts in both languages can share one database.
//
// twofa keeps each user's second factors under one key and writes it by compare-and-swap (the
// `Store` contract in bindings/node/index.d.ts). Here every key is a row of one table, and
// versions come from one sequence, so a version is never handed out twice, not even to a key
// deleted and written again:
//
//   const store = new PostgresStore("postgresql://app@db.internal/app");
//   await store.createSchema(); // once, or run SCHEMA with your migrations
//   const engine = new Engine(config, { store, mailer });
//
// Several app servers may share the database: each statement is atomic on its own, so no
// transaction spans two calls and nothing is cached between them. A version mismatch throws
// `StoreConflict`; any other error (the server is down, ...) is a storage failure, which twofa
// reports as a `storage` TwofaError whose `cause` is pg's error. Versions are returned as bigints
// (a bigint column may pass 2^53).

import pg from "pg";
import { StoreConflict } from "twofa";

/**
 * The table and the sequence of versions, created if missing. The advisory lock makes concurrent
 * runs (several app servers starting at once) wait for each other: CREATE ... IF NOT EXISTS alone
 * can fail when two sessions create the same object at the same moment. Sent as one simple query
 * (no parameters), the statements run as one transaction, which holds the lock to the end.
 */
export const SCHEMA = `\
SELECT pg_advisory_xact_lock(hashtext('twofa schema'));
CREATE SEQUENCE IF NOT EXISTS twofa_versions;
CREATE TABLE IF NOT EXISTS twofa (
  key text PRIMARY KEY,
  value bytea NOT NULL,
  version bigint NOT NULL
)`;

// The four statements of the contract, each a single atomic statement.
export const GET = "SELECT value, version FROM twofa WHERE key = $1";
/** Insert-only: nothing is returned when the key exists. */
export const INSERT =
  "INSERT INTO twofa (key, value, version) VALUES ($1, $2, nextval('twofa_versions'))" +
  " ON CONFLICT (key) DO NOTHING RETURNING version";
/** Compare-and-swap: nothing is returned when the key is gone or its version differs. */
export const UPDATE =
  "UPDATE twofa SET value = $1, version = nextval('twofa_versions') WHERE key = $2 AND version = $3 RETURNING version";
export const DELETE = "DELETE FROM twofa WHERE key = $1 AND version = $2";

/** A Buffer over the bytes of a Uint8Array, without copying them (pg sends Buffers as bytea). */
function buffer(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A twofa `Store` on PostgreSQL through a `pg.Pool`; safe to share between engines. */
export class PostgresStore {
  /**
   * @param {string | import("pg").PoolConfig} connection a connection string
   *   ("postgresql://user@host:port/db") or a pg.Pool config (max connections, ...)
   */
  constructor(connection) {
    this.pool = new pg.Pool(typeof connection === "string" ? { connectionString: connection } : connection);
    // An idle connection that fails (the server restarted) is dropped by the pool, which emits
    // "error"; without a listener that would end the process. The next call opens a new one.
    this.pool.on("error", () => {});
  }

  /** Creates the table and the sequence if they do not exist (safe to run concurrently). */
  async createSchema() {
    await this.pool.query(SCHEMA);
  }

  /** The value under `key` and its version, or null. */
  async get(key) {
    const { rows } = await this.pool.query(GET, [key]);
    return rows.length === 0 ? null : { value: rows[0].value, version: BigInt(rows[0].version) };
  }

  /** Writes `value` if the key's version is `expectedVersion` (null: insert only); the new version. */
  async put(key, value, expectedVersion) {
    const { rows } =
      expectedVersion === null
        ? await this.pool.query(INSERT, [key, buffer(value)])
        : await this.pool.query(UPDATE, [buffer(value), key, String(expectedVersion)]);
    if (rows.length === 0) throw new StoreConflict(`version conflict on ${JSON.stringify(key)}`);
    return BigInt(rows[0].version);
  }

  /** Deletes `key` if its version is `expectedVersion`. */
  async delete(key, expectedVersion) {
    const { rowCount } = await this.pool.query(DELETE, [key, String(expectedVersion)]);
    if (rowCount === 0) throw new StoreConflict(`version conflict on ${JSON.stringify(key)}`);
  }

  /** Closes the pool's connections once the calls in progress have finished. */
  async end() {
    await this.pool.end();
  }
}
