// Type-checks index.d.ts by using the package as a TypeScript host would (`npx tsc --noEmit -p .`
// from bindings/node). Only erasable syntax, so that it also runs under Node's type stripping:
// it then performs what it declares against an in-memory async store.

import { Engine, MemoryStore, SqliteStore, StoreConflict, TwofaError, checkStore, codes, libraryVersion } from "twofa";
import type {
  Admin,
  Clock,
  CodeSent,
  Config,
  DeviceToken,
  EventHandler,
  EventKind,
  LoginChallenge,
  LoginSuccess,
  Mailer,
  Message,
  MethodAdded,
  MethodInfo,
  MethodKind,
  Notices,
  RecoveryCodes,
  RememberedDevice,
  ResetDone,
  ResetInfo,
  SecurityEvent,
  SecurityStatus,
  StepUpToken,
  Store,
  StoredValue,
  TotpSetup,
  UserExport,
  UserImported,
  Version,
  WebauthnRegistration,
} from "twofa";

/** A host's own store: the versioned contract over a Map, async like a database driver. */
class AsyncMapStore implements Store {
  readonly data = new Map<string, StoredValue>();
  #version = 0;

  async get(key: string): Promise<StoredValue | null> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return this.data.get(key) ?? null;
  }

  async put(key: string, value: Uint8Array, expectedVersion: Version | null): Promise<Version> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if ((this.data.get(key)?.version ?? null) !== expectedVersion) throw new StoreConflict(key);
    this.#version += 1;
    this.data.set(key, { value: Uint8Array.from(value), version: this.#version });
    return this.#version;
  }

  async delete(key: string, expectedVersion: Version): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.data.get(key)?.version !== expectedVersion) throw new StoreConflict(key);
    this.data.delete(key);
  }
}

/** A synchronous store is a Store too. */
const syncStore: Store = {
  get: (_key: string): StoredValue | null => null,
  put: (_key: string, _value: Uint8Array, _expected: Version | null): Version => 1n,
  delete: (_key: string, _expected: Version): void => undefined,
};

const config: Config = {
  issuer: "Example Shop",
  admin: true,
  remember_device: { enabled: true },
  keys: [{ id: "k1", secret: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }],
  webauthn: { rp_id: "localhost", rp_name: "Example Shop", origins: ["http://localhost:8080"] },
};

const outbox: Message[] = [];
const mailer: Mailer = async (message: Message): Promise<void> => {
  outbox.push(message);
};
const clock = { t: 1_700_000_000 };
const now: Clock = () => clock.t;

const events: SecurityEvent[] = [];
const onEvent: EventHandler = async (event: SecurityEvent): Promise<void> => {
  const kind: EventKind = event.kind;
  const methodId: string | null = event.methodId;
  void [kind, methodId];
  events.push(event);
};

async function main(): Promise<void> {
  const engine = new Engine(config, { store: new AsyncMapStore(), mailer, clock: now, onEvent });
  const onMemory = new Engine(JSON.stringify(config), { store: new MemoryStore() });
  const onFile: Engine | null = process.env.TWOFA_TYPES_SQLITE ? new Engine(config, { store: new SqliteStore(process.env.TWOFA_TYPES_SQLITE) }) : null;
  void onMemory;
  void onFile;
  void syncStore;

  const admin: Admin = engine.admin();
  const imported: MethodAdded = await admin.totpImport("alice", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", { algorithm: "SHA1", digits: 6, period: 30 });
  const kind: MethodKind = imported.method.kind;

  const challenge: LoginChallenge = await engine.loginBegin("alice");
  if (challenge.challengeId === null) throw new Error("a challenge was expected");
  const methods: MethodKind[] = challenge.methods;
  const success: LoginSuccess = await engine.loginVerify("alice", challenge.challengeId, "totp", "406058", { rememberDevice: true });
  const token: StepUpToken = success.stepUp;
  const left: number | null = success.recoveryCodesLeft;

  const device: DeviceToken | null = success.deviceToken;
  const skipped: LoginChallenge = await engine.loginBegin("alice", { deviceToken: device?.token ?? null });
  const rememberedDevice: string | null = skipped.rememberedDevice;
  const deadline: number | null = skipped.enrollmentDeadline;
  const devices: RememberedDevice[] = (await engine.securityStatus("alice")).rememberedDevices;
  const lastReset: ResetInfo | null = (await engine.securityStatus("alice")).lastReset;
  if (device) await engine.revokeRememberedDevice("alice", device.deviceId);
  const none: void = await engine.revokeRememberedDevices("alice");
  void [rememberedDevice, deadline, devices, lastReset, none];

  const notices: Notices = await engine.setContactEmail("alice", "alice@example.com", token);
  const failed: string[] = notices.failed;
  const contactSent: CodeSent = await engine.contactEmailBegin("alice", "alice.new@example.com", token.token);
  const contactSet: Notices = await engine.contactEmailConfirm("alice", "123456", token);
  const unguarded: Notices = await engine.setContactEmail("bob", "bob@example.com");
  void [contactSent, contactSet, unguarded];
  const setup: TotpSetup = await engine.totpEnrollBegin("alice", "alice@example.com", token);
  const uri: URL = new URL(setup.uri);
  const sent: CodeSent = await engine.emailEnrollBegin("alice", "alice@example.com", token.token);
  const masked: string[] = sent.sentTo;
  const registration: WebauthnRegistration = await engine.webauthnRegisterBegin("alice", "Key", token);
  const publicKey: Record<string, unknown> = registration.options.publicKey;
  const renamed: MethodInfo = await engine.renameMethod("alice", "totp-1", "Phone", token);
  const lastUsed: number | null = renamed.lastUsed;
  const recovery: RecoveryCodes = await engine.recoveryCodesGenerate("alice", token);
  const first: string | undefined = recovery.codes[0];
  const done: void = await engine.markOrderCreated("alice");
  const status: SecurityStatus = await engine.securityStatus("alice");
  const lockedUntil: number | null = status.lockedUntil;
  const pendingEmail: string | null = status.pending.email;

  try {
    await engine.loginVerify("alice", "no-such-challenge", "totp", "123456");
  } catch (error) {
    if (!(error instanceof TwofaError)) throw error;
    const code: number = error.code;
    const name: string = error.name;
    const retryAfter: number | null = error.retryAfter;
    const callback: string | null = error.callback;
    if (code !== codes.not_found || name !== "not_found") throw error;
    void retryAfter;
    void callback;
  }

  const passed: string[] = await checkStore(new AsyncMapStore());
  const version: string = libraryVersion;
  const exported: UserExport = await admin.exportUser("alice", "ZXhwb3J0LWtleS1leHBvcnQta2V5LWV4cG9ydC1rZXkh");
  const reset: ResetDone = await admin.resetUser("alice", "support-7", "lost phone");
  const restored: UserImported = await admin.importUser("alice", exported.document, "ZXhwb3J0LWtleS1leHBvcnQta2V5LWV4cG9ydC1rZXkh");
  const removed: number = reset.methodsRemoved;
  const skippedMethods: string[] = restored.skipped;
  void [removed, skippedMethods, events];
  await admin.deleteUser("alice");

  // Wrong uses the declarations must refuse.
  // @ts-expect-error a user id is a string (a number crashes koffi)
  void (() => engine.securityStatus(42));
  // @ts-expect-error "sms" is not a method kind
  const sms: MethodKind = "sms";
  // @ts-expect-error the admin operations are not on the engine
  void (() => engine.totpImport("alice", "JBSWY3DP"));
  // @ts-expect-error an algorithm is SHA1, SHA256 or SHA512
  void (() => admin.totpImport("alice", "JBSWY3DP", { algorithm: "MD5" }));
  // @ts-expect-error put's value is bytes
  void (() => new MemoryStore().put("k", "text", null));
  // @ts-expect-error an event handler takes a SecurityEvent
  void (() => new Engine(config, { onEvent: (event: number) => event }));
  // @ts-expect-error "remember" is not an option of loginVerify
  void (() => engine.loginVerify("alice", "c", "totp", "123456", { remember: true }));
  // @ts-expect-error a TwofaError's code is a number
  void ((e: TwofaError) => e.code.toUpperCase());

  void [kind, methods, left, failed, uri, masked, publicKey, lastUsed, first, done, lockedUntil, pendingEmail, passed, version, sms, outbox];
}

await main();
