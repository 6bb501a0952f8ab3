// The demo's audit log: twofa hands every security event (a method added, a sign-in, a failed
// code, a remembered browser, an administrator's reset, ...) to the engine's `onEvent` handler
// once the change it reports is stored; this file keeps them, per user, for the Security tab's
// "Recent security events".
//
// Node 20 has no built-in SQLite, so the log lives in a SQLite file of its own (events.sqlite3,
// next to twofa's) through the twofa package's SqliteStore: one row per user, `events:<user id>`,
// holding that user's newest events as JSON, updated with compare-and-swap so that two events of
// the same user never overwrite each other.

import { SqliteStore, StoreConflict } from "twofa";

/** How many events are kept per user (the oldest go first). */
const KEEP = 50;
/** Compare-and-swap attempts before an event is given up (and logged). */
const ATTEMPTS = 10;

export class EventLog {
  #store;
  #log;

  /** The log in the SQLite file at `path`; failures to record go to `log.error`. */
  constructor(path, log = console) {
    this.#store = new SqliteStore(path);
    this.#log = log;
  }

  /** The engine's `onEvent`: stores the event (twofa awaits it, and ignores a failure). */
  record = async (event) => {
    const key = `events:${event.user}`;
    const entry = {
      kind: event.kind,
      at: event.at,
      method: event.method ?? null,
      methodId: event.methodId ?? null,
      reason: event.reason ?? null,
      actor: event.actor ?? null,
    };
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const current = await this.#store.get(key);
      const events = current ? JSON.parse(Buffer.from(current.value).toString("utf8")) : [];
      events.unshift(entry);
      events.length = Math.min(events.length, KEEP);
      try {
        await this.#store.put(key, Buffer.from(JSON.stringify(events)), current?.version ?? null);
        return;
      } catch (error) {
        if (!(error instanceof StoreConflict)) {
          this.#log.error(`event ${event.kind} of ${event.user} not recorded:`, error);
          return;
        }
      }
    }
    this.#log.error(`event ${event.kind} of ${event.user} not recorded: too many concurrent updates`);
  };

  /** The user's newest events first, at most `limit`. */
  async recent(user, limit = 20) {
    const current = await this.#store.get(`events:${user}`);
    return current ? JSON.parse(Buffer.from(current.value).toString("utf8")).slice(0, limit) : [];
  }

  close() {
    this.#store.close();
  }
}
