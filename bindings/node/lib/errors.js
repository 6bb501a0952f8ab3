// Errors: every failure is a TwofaError carrying the stable code and name of libtwofa's status
// codes (read from the header), so they match every other twofa surface.

import { constants, koffi, lib } from "./native.js";

/** The status codes by name (`invalid_code` → 2), from the header's `TWOFA_*` constants. */
export const codes = Object.freeze(
  Object.fromEntries(
    Object.entries(constants)
      .filter(([name]) => !/^TWOFA_(OK|MAX_|CALLBACK_|ACTION_)/.test(name))
      .map(([name, value]) => [name.slice("TWOFA_".length).toLowerCase(), value]),
  ),
);

/** A failure reported by twofa. `name` is the snake_case name of `code` ("invalid_code"). */
export class TwofaError extends Error {
  /**
   * @param {number} code a status code
   * @param {string} message
   * @param {{retryAfter?: number | null, callback?: string | null, cause?: unknown}} [details]
   */
  constructor(code, message, { retryAfter = null, callback = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.name = lib.twofa_status_name(code);
    this.retryAfter = retryAfter;
    this.callback = callback;
  }
}

/** What a store throws from `put` or `delete` when the compare-and-swap fails. */
export class StoreConflict extends Error {
  constructor(message = "version conflict") {
    super(message);
    this.name = "StoreConflict";
  }
}

/** Turns a failed status and its `twofa_error *` (freed here) into a TwofaError. */
export function takeError(status, pointer, cause) {
  if (!pointer) {
    return new TwofaError(status, lib.twofa_last_error_message(), { cause });
  }
  try {
    const e = koffi.decode(pointer, "twofa_error");
    // The core sets retry_after (0: none) for the errors that have one.
    const retryAfter = e.retry_after > 0 ? Number(e.retry_after) : null;
    return new TwofaError(status, e.message, { retryAfter, callback: e.callback, cause });
  } finally {
    lib.twofa_error_free(pointer);
  }
}

/**
 * Calls a libtwofa function whose last argument is `twofa_error **`; throws on failure.
 * @returns {void}
 */
export function call(fn, ...args) {
  const err = [null];
  const status = fn(...args, err);
  if (status !== 0) throw takeError(status, err[0]);
}

/** A string argument for libtwofa: a string without NUL (C would cut it there). */
export function cString(value, name) {
  if (typeof value !== "string") throw new TypeError(`${name} must be a string, not ${typeof value}`);
  if (value.includes("\0")) throw new TwofaError(codes.invalid_input, `invalid input: ${name} contains NUL`);
  return value;
}
