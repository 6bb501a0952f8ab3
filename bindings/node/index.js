// twofa: two-factor authentication (authenticator apps, email codes, WebAuthn, recovery codes)
// for Node backends, over libtwofa, the one Rust core every twofa surface shares.

import { lib } from "./lib/native.js";

export { Engine } from "./lib/engine.js";
export { StoreConflict, TwofaError, codes } from "./lib/errors.js";
export { MemoryStore, NativeStore, SqliteStore, checkStore } from "./lib/stores.js";

/** The version of the loaded libtwofa. */
export const libraryVersion = lib.twofa_version();
