// Type declarations of the twofa package (index.js). Results are plain objects: the core's JSON
// outcomes with camelCase keys, the WebAuthn options parsed into objects.

/** The engine config: the JSON object documented in twofa's README ("Configuration"). */
export type Config = Record<string, unknown> | string;

/** A kind of second factor. */
export type MethodKind = "totp" | "email" | "webauthn" | "recovery";
/** Advice for the Security tab, most important first. */
export type Recommendation =
  | "enable_two_factor"
  | "add_second_method"
  | "add_non_webauthn_method"
  | "add_stronger_method"
  | "generate_recovery_codes";
/** Problems the user should fix. */
export type Warning = "no_notice_address" | "device_flagged";

/** A version of a stored value: a positive integer, never reused for a key. */
export type Version = number | bigint;

/** An email twofa asks the host to deliver. */
export interface Message {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** Delivers a message; throwing (or rejecting) means it was not delivered. */
export type Mailer = (message: Message) => unknown;
/** The current Unix time in seconds (0 to 253402300799, the end of year 9999; anything else
 * fails the operation with `internal`). */
export type Clock = () => number;

/** What an audit event reports. */
export type EventKind =
  | "method_added"
  | "method_renamed"
  | "method_removed"
  | "login_succeeded"
  | "login_failed"
  | "locked_out"
  | "replay_refused"
  | "counter_regressed"
  | "recovery_code_used"
  | "recovery_codes_generated"
  | "device_remembered"
  | "remembered_devices_revoked"
  | "contact_email_changed"
  | "two_factor_required"
  | "admin_reset"
  | "user_exported"
  | "user_imported"
  | "user_deleted";

/** A security-relevant outcome, delivered once the change it reports is stored. It never
 * carries a secret, code or token. */
export interface SecurityEvent {
  kind: EventKind;
  /** The host's user id. */
  user: string;
  /** Unix time. */
  at: number;
  /** The kind of method concerned, if one. */
  method: MethodKind | null;
  /** The method (or remembered device) concerned, if one. */
  methodId: string | null;
  /** Why, or a detail (an error name, a count, an administrator's reason). */
  reason: string | null;
  /** The administrator who acted, for admin operations that name one. */
  actor: string | null;
}

/** Receives each audit event (a returned Promise is awaited). Whatever it throws or rejects
 * with is ignored: it never fails the operation. */
export type EventHandler = (event: SecurityEvent) => unknown;

/** The options of an Engine. */
export interface EngineOptions {
  /** Omitted: the embedded SQLite store at the config's `sqlite_path`. */
  store?: Store;
  mailer?: Mailer;
  clock?: Clock;
  onEvent?: EventHandler;
}

/**
 * The versioned key-value contract a store implements (each method may return a Promise).
 * `put` writes only if the key's version is `expectedVersion` (null: only if it does not exist)
 * and returns the new version; `put` and `delete` throw `StoreConflict` on a mismatch.
 */
export interface Store {
  get(key: string): Promise<StoredValue | null> | StoredValue | null;
  put(key: string, value: Uint8Array, expectedVersion: Version | null): Promise<Version> | Version;
  delete(key: string, expectedVersion: Version): Promise<void> | void;
}

/** A stored value with its version. */
export interface StoredValue {
  value: Uint8Array;
  version: Version;
}

/** A store implemented inside libtwofa; several engines may share it. */
export class NativeStore implements Store {
  protected constructor();
  get(key: string): Promise<StoredValue | null>;
  put(key: string, value: Uint8Array, expectedVersion: Version | null): Promise<Version>;
  delete(key: string, expectedVersion: Version): Promise<void>;
  /** Releases the handle now, once calls in progress have finished; later calls fail. */
  close(): void;
}

/** The in-memory store. */
export class MemoryStore extends NativeStore {
  constructor();
}

/** The embedded SQLite store at `path`; its calls run on worker threads. */
export class SqliteStore extends NativeStore {
  constructor(path: string);
}

/** What a store throws from `put` or `delete` when the compare-and-swap fails. */
export class StoreConflict extends Error {
  constructor(message?: string);
}

/** The stable status codes by name (`invalid_code` → 2). */
export const codes: Readonly<Record<string, number>>;

/** A failure reported by twofa; `cause` holds what a store or mailer threw. */
export class TwofaError extends Error {
  constructor(
    code: number,
    message: string,
    details?: { retryAfter?: number | null; callback?: string | null; cause?: unknown },
  );
  /** The stable status code. */
  code: number;
  /** Its snake_case name, e.g. "invalid_code", "locked_out". */
  name: string;
  /** Seconds to wait, for "rate_limited" and "locked_out". */
  retryAfter: number | null;
  /** The host callback that failed, where one did. */
  callback: string | null;
}

/** The version of the loaded libtwofa. */
export const libraryVersion: string;

/** Runs the core's store conformance suite against `store`; resolves to the checks passed. */
export function checkStore(store: Store): Promise<string[]>;

/** Security notices an operation sent. */
export interface Notices {
  sent: number;
  /** "address: reason" for each notice that failed. */
  failed: string[];
}

/** A confirmed method. */
export interface MethodInfo {
  id: string;
  kind: MethodKind;
  label: string;
  created: number;
  lastUsed: number | null;
  flagged: boolean;
}

/** What the Security tab shows. */
export interface SecurityStatus {
  methods: MethodInfo[];
  recoveryCodesLeft: number;
  twoFactorRequired: boolean;
  compliant: boolean;
  recommendations: Recommendation[];
  warnings: Warning[];
  contactEmail: string | null;
  pending: { totp: boolean; email: string | null; webauthn: boolean };
  lockedUntil: number | null;
  /** 2FA is required but not set up: sign-in goes on without it until this Unix time. */
  enrollmentDeadline: number | null;
  /** Browsers that skip the second factor, oldest first. */
  rememberedDevices: RememberedDevice[];
  /** The last administrator reset, if any. */
  lastReset: ResetInfo | null;
}

/** A remembered browser (its token is never shown again). */
export interface RememberedDevice {
  /** For `revokeRememberedDevice`. */
  id: string;
  /** The second factor passed when it was remembered. */
  method: MethodKind;
  created: number;
  expiresAt: number;
  lastUsed: number | null;
}

/** Who reset the user's second factors, when and why. */
export interface ResetInfo {
  actor: string;
  reason: string;
  at: number;
}

/** A new authenticator-app enrolment, shown once until confirmed. */
export interface TotpSetup {
  secret: string;
  uri: string;
  qrSvg: string;
  expiresAt: number;
}

/** Proof of a recent second factor. */
export interface StepUpToken {
  token: string;
  expiresAt: number;
}

/** A step-up token, as returned or as its text. */
export type StepUp = StepUpToken | string | null | undefined;

/** A method was added. */
export interface MethodAdded {
  method: MethodInfo;
  stepUp: StepUpToken | null;
  notices: Notices;
}

/** A one-time code was delivered. */
export interface CodeSent {
  sentTo: string[];
  expiresAt: number;
  resendAfter: number;
}

/** PublicKeyCredentialCreationOptions as JSON (`{publicKey: {...}}`, base64url fields). */
export type CreationOptionsJSON = { publicKey: Record<string, unknown> };
/** PublicKeyCredentialRequestOptions as JSON (`{publicKey: {...}}`, base64url fields). */
export type RequestOptionsJSON = { publicKey: Record<string, unknown> };

/** Options for `navigator.credentials.create`. */
export interface WebauthnRegistration {
  options: CreationOptionsJSON;
  expiresAt: number;
}

/** A fresh set of recovery codes, shown once. */
export interface RecoveryCodes {
  codes: string[];
  notices: Notices;
}

/** A sign-in challenge. */
export interface LoginChallenge {
  challengeId: string | null;
  secondFactorRequired: boolean;
  enrollmentRequired: boolean;
  methods: MethodKind[];
  webauthnOptions: RequestOptionsJSON | null;
  expiresAt: number | null;
  /** 2FA is required but not set up: the grace period runs until this Unix time. */
  enrollmentDeadline: number | null;
  /** The remembered device whose token let this sign-in skip the second factor. */
  rememberedDevice: string | null;
}

/** A device token: keep it on this browser only (an HttpOnly, Secure cookie). */
export interface DeviceToken {
  token: string;
  deviceId: string;
  expiresAt: number;
}

/** A second factor was verified. */
export interface LoginSuccess {
  method: MethodKind;
  methodId: string | null;
  stepUp: StepUpToken;
  recoveryCodesLeft: number | null;
  /** Present when `rememberDevice` was asked. */
  deviceToken: DeviceToken | null;
  notices: Notices;
}

/** An administrator reset the user's second factors. */
export interface ResetDone {
  methodsRemoved: number;
  notices: Notices;
}

/** A user's exported second factors. */
export interface UserExport {
  /** The sealed export document (JSON text). */
  document: string;
}

/** What an import restored. */
export interface UserImported {
  /** The methods the user now has. */
  methods: MethodInfo[];
  /** Methods of the document that were not imported, with the reason. */
  skipped: string[];
}

/** A browser's `PublicKeyCredential.toJSON()`, as an object or as JSON text. */
export type CredentialJSON = Record<string, unknown> | string;

/** Administrative operations, kept off the user-facing engine. Each fails with `forbidden`
 * unless the config has `"admin": true`. */
export interface Admin {
  totpImport(
    user: string,
    secret: string,
    options?: { algorithm?: "SHA1" | "SHA256" | "SHA512"; digits?: number; period?: number },
  ): Promise<MethodAdded>;
  deleteUser(user: string): Promise<void>;
  resetUser(user: string, actor: string, reason: string): Promise<ResetDone>;
  /** `key`: standard base64 of 32 or more bytes. */
  exportUser(user: string, key: string): Promise<UserExport>;
  importUser(user: string, document: string, key: string): Promise<UserImported>;
}

/** A twofa engine: a validated config, a store, a mailer and a clock. */
export class Engine {
  constructor(config: Config, options?: EngineOptions);
  securityStatus(user: string): Promise<SecurityStatus>;
  /** Sets the notice address at once (unproved); the old and the new address are told. Needs a
   * step-up token once the user has a usable method or recovery codes. */
  setContactEmail(user: string, address: string, stepUp?: StepUp): Promise<Notices>;
  /** Emails a confirmation code to a new notice address (step-up as for `setContactEmail`). */
  contactEmailBegin(user: string, address: string, stepUp?: StepUp): Promise<CodeSent>;
  /** Makes the address proved by the code of `contactEmailBegin` the contact email. */
  contactEmailConfirm(user: string, code: string, stepUp?: StepUp): Promise<Notices>;
  markOrderCreated(user: string): Promise<void>;
  totpEnrollBegin(user: string, accountName: string, stepUp?: StepUp): Promise<TotpSetup>;
  totpEnrollConfirm(user: string, code: string, stepUp?: StepUp): Promise<MethodAdded>;
  emailEnrollBegin(user: string, address: string, stepUp?: StepUp): Promise<CodeSent>;
  emailEnrollConfirm(user: string, code: string, stepUp?: StepUp): Promise<MethodAdded>;
  webauthnRegisterBegin(user: string, friendlyName: string, stepUp?: StepUp): Promise<WebauthnRegistration>;
  webauthnRegisterFinish(user: string, credential: CredentialJSON, stepUp?: StepUp): Promise<MethodAdded>;
  renameMethod(user: string, methodId: string, label: string, stepUp?: StepUp): Promise<MethodInfo>;
  removeMethod(user: string, methodId: string, stepUp?: StepUp): Promise<Notices>;
  recoveryCodesGenerate(user: string, stepUp?: StepUp): Promise<RecoveryCodes>;
  loginBegin(user: string, options?: { deviceToken?: string | null }): Promise<LoginChallenge>;
  loginSendEmailCode(user: string, challenge: string): Promise<CodeSent>;
  loginVerify(
    user: string,
    challenge: string,
    kind: string,
    value: CredentialJSON,
    options?: { rememberDevice?: boolean },
  ): Promise<LoginSuccess>;
  revokeRememberedDevice(user: string, deviceId: string): Promise<void>;
  revokeRememberedDevices(user: string): Promise<void>;
  admin(): Admin;
  /** Releases the engine now (and the SQLite store it opened itself, if no store was given). */
  close(): void;
}
