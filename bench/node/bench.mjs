// The Node benchmark suite of twofa (protocol, case ids and fixture: bench/README.md).
//
// It measures twofa's Node package (`Engine` over koffi, on the memory and the SQLite store) and
// the twofa WASI component transpiled by jco (`ComponentEngine`) against otplib and
// SimpleWebAuthn, and the peak RSS of a process doing 100,000 TOTP sign-ins. Results go to
// stdout as JSON lines, logs to stderr:
//
//   node bench/node/bench.mjs [--quick] [--fixture bench/fixture.json]
//
// `--rss SUBJECT` is the internal mode the suite re-runs itself in to measure one RSS subject.
// So that such a process loads only its subject, twofa, the component and SimpleWebAuthn are
// imported dynamically where they are needed (otplib computes the codes of every subject).
//
// Needs: `npm ci` here, `make node-setup` (libtwofa and bindings/node's koffi), `make component`
// and `npm ci` in examples/node-host (the component is transpiled here if gen/ is stale).

import { spawnSync } from "node:child_process";
import { createHash, createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateSync, verify as otplibVerify } from "otplib";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const DEFAULT_FIXTURE = join(REPO, "bench", "fixture.json");
/** The twofa package and the component's modules, imported by relative path when needed. */
const TWOFA = "../../bindings/node/index.js";
const COMPONENT_ENGINE = "../../examples/node-host/component/engine.mjs";
const COMPONENT_BUILD = "../../examples/node-host/component/build.mjs";

/** Chunks per case, interleaved across the cases; the median chunk is reported. */
const CHUNKS = 7;
/** Wall-clock milliseconds per chunk (with --quick); each case is first warmed up for about two chunks. */
const CHUNK_MS = 150;
const QUICK_CHUNK_MS = 30;
/** TOTP sign-ins (or peer verifies) done by an `--rss` process. */
const RSS_SIGN_INS = 100_000;
const RSS_SUBJECTS = ["node-twofa", "node-otplib"];
/** The engine's key (base64 of 32 bytes): any fixed value will do for a benchmark. */
const ENGINE_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString("base64");
const TOTP_STEP = 30;
/** Seconds the clock moves before each emailed code: the resend cooldown (60 s by default). */
const EMAIL_STEP = 61;

/** Nanoseconds from an arbitrary origin, as a BigInt. */
const now = () => process.hrtime.bigint();

/** @param {string} message a progress line for stderr */
function log(message) {
  console.error(`bench/node: ${message}`);
}

/** @param {object} record one result line for stdout */
function emit(record) {
  console.log(JSON.stringify(record));
}

/** @param {Uint8Array} bytes @returns {string} base64url without padding */
const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
/** @param {string} text base64url @returns {Buffer} */
const unb64url = (text) => Buffer.from(text, "base64url");

/**
 * clientDataJSON exactly as bench/README.md fixes it.
 * @param {string} type "webauthn.create" or "webauthn.get"
 * @param {string} challenge base64url
 * @param {string} origin
 * @returns {Buffer}
 */
function clientData(type, challenge, origin) {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
}

/**
 * A 6-digit code that no step within ±1 of `epoch` accepts.
 * @param {string} secret base32
 * @param {number} epoch Unix seconds
 * @returns {string}
 */
function wrongCode(secret, epoch) {
  const valid = new Set([-1, 0, 1].map((k) => generateSync({ secret, epoch: epoch + k * TOTP_STEP })));
  let guess = (Number(generateSync({ secret, epoch })) + 500_000) % 1_000_000;
  while (valid.has(String(guess).padStart(6, "0"))) guess = (guess + 1) % 1_000_000;
  return String(guess).padStart(6, "0");
}

/**
 * twofa's config for the fixture's relying party (and a SQLite file, if given).
 * @param {object} fixture
 * @param {string} [sqlitePath]
 */
function engineConfig(fixture, sqlitePath) {
  return {
    issuer: "twofa bench",
    keys: [{ id: "k1", secret: ENGINE_KEY }],
    admin: true, // the setup imports TOTP secrets with the admin handle
    webauthn: { rp_id: fixture.rp_id, rp_name: "twofa bench", origins: [fixture.origin] },
    ...(sqlitePath ? { sqlite_path: sqlitePath } : {}),
  };
}

/** An engine's settable clock and in-process mailer (which keeps the last message). */
class Host {
  /** @param {number} t the start time, Unix seconds */
  constructor(t) {
    this.t = t;
    this.last = null;
    this.clock = () => this.t;
    this.mailer = (message) => {
      this.last = message;
    };
    /** @type {any} the engine, set by `open` */
    this.engine = null;
  }

  /** @returns {string} the one-time code in the last message */
  code() {
    const found = /\b\d{6}\b/.exec(this.last?.text ?? "");
    if (!found) throw new Error("no code in the last message");
    return found[0];
  }

  /**
   * A host with an engine on `kind`: "koffi-memory", "koffi-sqlite" (a fresh file in `workdir`)
   * or "jco-memory" (the component with its in-memory MapStore).
   * @param {object} fixture
   * @param {string} kind
   * @param {string} workdir
   * @returns {Promise<Host>}
   */
  static async open(fixture, kind, workdir) {
    const host = new Host(fixture.t0);
    const hooks = { mailer: host.mailer, clock: host.clock };
    if (kind === "jco-memory") {
      const { ComponentEngine } = await import(COMPONENT_ENGINE);
      host.engine = new ComponentEngine(engineConfig(fixture), hooks);
    } else {
      const { Engine, MemoryStore } = await import(TWOFA);
      host.engine =
        kind === "koffi-memory"
          ? new Engine(engineConfig(fixture), { ...hooks, store: new MemoryStore() })
          : new Engine(engineConfig(fixture, join(mkdtempSync(join(workdir, "sqlite-")), "twofa.db")), hooks);
    }
    return host;
  }
}

/**
 * Awaits a twofa call that must fail with `invalid_code` (when `valid` is false) or succeed.
 * @param {Promise<unknown>} call
 * @param {boolean} valid
 */
async function expect(call, valid) {
  try {
    await call;
  } catch (error) {
    if (valid || error?.name !== "invalid_code") throw error;
    return;
  }
  if (!valid) throw new Error("twofa accepted a wrong code");
}

/** twofa TOTP sign-ins: loginBegin + loginVerify, a fresh step before each wrong/right pair. */
class TwofaTotp {
  /** @param {Host} host @param {object} fixture @param {string} subject */
  constructor(host, fixture, subject) {
    this.ids = [`totp/${subject}`, `totp-begin/${subject}`, `totp-verify/${subject}`];
    this.host = host;
    this.user = fixture.user;
    this.secret = fixture.totp_secret;
  }

  /** Imports the fixture's secret for the user. */
  async setup() {
    await this.host.engine.admin().totpImport(this.user, this.secret);
    return this;
  }

  /** @param {number} n sign-in checks (even) @returns {Promise<Record<string, number>>} ns */
  async run(n) {
    const { host, user, secret } = this;
    let begin = 0n;
    let verify = 0n;
    for (let i = 0; i < n / 2; i++) {
      host.t += TOTP_STEP;
      for (const [code, valid] of [
        [wrongCode(secret, host.t), false],
        [generateSync({ secret, epoch: host.t }), true],
      ]) {
        const start = now();
        const challenge = await host.engine.loginBegin(user);
        const begun = now();
        await expect(host.engine.loginVerify(user, challenge.challengeId, "totp", code), valid);
        const done = now();
        begin += begun - start;
        verify += done - begun;
      }
    }
    return Object.fromEntries([begin + verify, begin, verify].map((ns, i) => [this.ids[i], Number(ns)]));
  }
}

/** twofa email sign-ins: loginSendEmailCode + loginVerify (wrong/right alternating); loginBegin
 * is untimed. */
class TwofaEmail {
  /** @param {Host} host @param {object} fixture @param {string} subject */
  constructor(host, fixture, subject) {
    this.ids = [`email/${subject}`, `email-verify/${subject}`];
    this.host = host;
    this.user = `${fixture.user}-email`;
  }

  /** Enrols the user's email address. */
  async setup() {
    await this.host.engine.emailEnrollBegin(this.user, "bench@example.com");
    await this.host.engine.emailEnrollConfirm(this.user, this.host.code());
    return this;
  }

  /** @param {number} n sign-in checks (even) @returns {Promise<Record<string, number>>} ns */
  async run(n) {
    const { host, user } = this;
    let send = 0n;
    let verify = 0n;
    for (let i = 0; i < n; i++) {
      host.t += EMAIL_STEP;
      const { challengeId } = await host.engine.loginBegin(user);
      const start = now();
      await host.engine.loginSendEmailCode(user, challengeId);
      const sent = now();
      const right = host.code();
      const code = i % 2 ? right : String((Number(right) + 1) % 1_000_000).padStart(6, "0");
      const verifying = now();
      await expect(host.engine.loginVerify(user, challengeId, "email", code), i % 2 === 1);
      const done = now();
      send += sent - start;
      verify += done - verifying;
    }
    return { [this.ids[0]]: Number(send + verify), [this.ids[1]]: Number(verify) };
  }
}

/** twofa WebAuthn sign-ins: loginBegin + loginVerify with a fresh assertion over the issued
 * challenge, signed by the fixture's key between the two (untimed). */
/** The fixture's authenticator: signs assertions with its P-256 key. */
class Signer {
  /** @param {object} fixture */
  constructor(fixture) {
    this.fixture = fixture;
    this.key = createPrivateKey({ key: fixture.private_key_jwk, format: "jwk" });
    this.authData = unb64url(fixture.authenticator_data);
  }

  /**
   * The browser's `toJSON()` of an assertion over `challenge` (base64url).
   * @param {string} challenge @param {string | null} userHandle
   */
  assertion(challenge, userHandle) {
    const data = clientData("webauthn.get", challenge, this.fixture.origin);
    const signed = Buffer.concat([this.authData, createHash("sha256").update(data).digest()]);
    const signature = sign("sha256", signed, { key: this.key, dsaEncoding: "der" });
    return {
      id: this.fixture.credential_id,
      rawId: this.fixture.credential_id,
      type: "public-key",
      response: {
        clientDataJSON: b64url(data),
        authenticatorData: b64url(this.authData),
        signature: b64url(signature),
        userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }
}

class TwofaWebauthn {
  /** @param {Host} host @param {object} fixture @param {string} subject */
  constructor(host, fixture, subject) {
    this.ids = [`webauthn/${subject}`];
    this.host = host;
    this.fixture = fixture;
    this.user = `${fixture.user}-webauthn`;
    this.signer = new Signer(fixture);
    this.userHandle = null;
  }

  /** Registers the fixture's credential on the user. */
  async setup() {
    const { engine } = this.host;
    const { fixture } = this;
    const { options } = await engine.webauthnRegisterBegin(this.user, "bench key");
    this.userHandle = options.publicKey.user.id;
    await engine.webauthnRegisterFinish(this.user, {
      id: fixture.credential_id,
      rawId: fixture.credential_id,
      type: "public-key",
      response: {
        clientDataJSON: b64url(clientData("webauthn.create", options.publicKey.challenge, fixture.origin)),
        attestationObject: fixture.attestation_object,
        transports: ["internal"],
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    });
    return this;
  }

  /**
   * The browser's `toJSON()` of an assertion over the options' challenge.
   * @param {{publicKey: {challenge: string}}} options loginBegin's webauthnOptions
   */
  assertion(options) {
    return this.signer.assertion(options.publicKey.challenge, this.userHandle);
  }

  /** @param {number} n sign-ins @returns {Promise<Record<string, number>>} ns */
  async run(n) {
    const { engine } = this.host;
    let total = 0n;
    for (let i = 0; i < n; i++) {
      const start = now();
      const challenge = await engine.loginBegin(this.user);
      const begun = now();
      const value = this.assertion(challenge.webauthnOptions);
      const verifying = now();
      await engine.loginVerify(this.user, challenge.challengeId, "webauthn", value);
      total += begun - start + now() - verifying;
    }
    return { [this.ids[0]]: Number(total) };
  }
}

/** otplib: `verify` with ±1 step (epochTolerance 30 s) at a fixed epoch, wrong/right alternating. */
class OtplibVerify {
  /** @param {object} fixture */
  constructor(fixture) {
    this.ids = ["totp/otplib"];
    this.secret = fixture.totp_secret;
    this.epoch = fixture.t0;
    this.codes = [
      [wrongCode(this.secret, this.epoch), false],
      [generateSync({ secret: this.secret, epoch: this.epoch }), true],
    ];
  }

  /** @param {number} n verifies (even) @returns {Promise<Record<string, number>>} ns */
  async run(n) {
    const { secret, epoch } = this;
    let total = 0n;
    for (let i = 0; i < n / 2; i++) {
      for (const [token, valid] of this.codes) {
        const start = now();
        const result = await otplibVerify({ secret, token, epoch, epochTolerance: TOTP_STEP });
        total += now() - start;
        if (result.valid !== valid) throw new Error("otplib misjudged a code");
      }
    }
    return { [this.ids[0]]: Number(total) };
  }
}

/** SimpleWebAuthn: `verifyAuthenticationResponse` on the fixture's assertion (counter 0). Each
 * verification follows the same untimed work as twofa's: an assertion signed with the fixture's
 * key, so that both run with the same cache state. */
class SimpleWebauthnVerify {
  /** @param {object} fixture */
  constructor(fixture) {
    this.ids = ["webauthn/simplewebauthn"];
    this.fixture = fixture;
    this.signer = new Signer(fixture);
    this.verify = null;
  }

  /** Loads SimpleWebAuthn. */
  async setup() {
    ({ verifyAuthenticationResponse: this.verify } = await import("@simplewebauthn/server"));
    return this;
  }

  /** @param {number} n verifies @returns {Promise<Record<string, number>>} ns */
  async run(n) {
    const { fixture } = this;
    const options = {
      response: fixture.assertion.response,
      expectedChallenge: fixture.assertion.challenge,
      expectedOrigin: fixture.origin,
      expectedRPID: fixture.rp_id,
      credential: { id: fixture.credential_id, publicKey: unb64url(fixture.public_key_cose), counter: 0 },
      requireUserVerification: true,
    };
    let total = 0n;
    for (let i = 0; i < n; i++) {
      this.signer.assertion(fixture.assertion.challenge, null);
      const start = now();
      const result = await this.verify(options);
      total += now() - start;
      if (!result.verified) throw new Error("SimpleWebAuthn refused the fixture's assertion");
    }
    return { [this.ids[0]]: Number(total) };
  }
}

/**
 * Warms `bench` up for about one chunk (after a first run that pays one-time costs); returns an
 * even op count lasting about `ms`.
 * @param {{run: (n: number) => Promise<object>}} bench
 * @param {number} ms
 * @returns {Promise<number>}
 */
async function calibrate(bench, ms) {
  await bench.run(2);
  let n = 2;
  let warmed = 0;
  for (;;) {
    const start = performance.now();
    await bench.run(n);
    const spent = performance.now() - start;
    warmed += spent;
    if (spent >= ms / 4 && warmed >= ms) return Math.max(2, 2 * Math.round((ms * n) / spent / 2));
    if (spent < ms / 4) n *= 2;
  }
}

/** @param {number[]} values @returns {number} */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Measures every bench in CHUNKS interleaved chunks and emits each case's median chunk.
 * @param {{ids: string[], run: (n: number) => Promise<Record<string, number>>}[]} benches
 * @param {number} ms
 */
async function measure(benches, ms) {
  // A warm-up pass over all of them first (so that no case is sized while another's lazy work,
  // such as V8 compiling the component's wasm in the background, is still going on), then sizing.
  for (const bench of benches) await calibrate(bench, ms);
  const sizes = [];
  for (const bench of benches) {
    sizes.push(await calibrate(bench, ms));
    log(`${bench.ids.join(", ")}: ${sizes.at(-1)} ops per chunk`);
  }
  const chunks = new Map(benches.flatMap((bench) => bench.ids.map((id) => [id, []])));
  for (let c = 0; c < CHUNKS; c++) {
    for (const [i, bench] of benches.entries()) {
      for (const [id, ns] of Object.entries(await bench.run(sizes[i]))) chunks.get(id).push(ns / sizes[i]);
    }
  }
  for (const [i, bench] of benches.entries()) {
    for (const id of bench.ids) {
      emit({ case: id, ns: Math.round(median(chunks.get(id)) * 10) / 10, ops: sizes[i] * CHUNKS });
    }
  }
}

/**
 * The `--rss` mode: peak RSS before and after `signIns` TOTP sign-ins (or peer verifies).
 * @param {string} subject
 * @param {object} fixture
 * @param {number} signIns
 */
async function rssRun(subject, fixture, signIns) {
  const workdir = mkdtempSync(join(tmpdir(), "twofa-bench-"));
  try {
    const bench =
      subject === "node-twofa"
        ? await new TwofaTotp(await Host.open(fixture, "koffi-memory", workdir), fixture, subject).setup()
        : new OtplibVerify(fixture);
    await bench.run(2);
    const baseline = process.resourceUsage().maxRSS;
    await bench.run(signIns);
    emit({ baseline, peak: process.resourceUsage().maxRSS });
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

/**
 * Runs each RSS subject in a fresh process (this script in `--rss` mode).
 *
 * Linux keeps a process's peak RSS across execve (getrusage(2)), so a child forked from this
 * process would start from this process's peak. /bin/sh starts it instead (a fork of the small
 * shell, not an exec of it: hence the `exit` after it).
 * @param {string} fixturePath
 * @param {boolean} quick
 */
function measureRss(fixturePath, quick) {
  for (const subject of RSS_SUBJECTS) {
    const suite = [process.execPath, fileURLToPath(import.meta.url), "--rss", subject, "--fixture", fixturePath];
    const child = spawnSync("/bin/sh", ["-c", '"$@"; exit $?', "sh", ...suite, ...(quick ? ["--quick"] : [])], {
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    });
    if (child.status !== 0) throw new Error(`the --rss ${subject} process failed (status ${child.status})`);
    const result = JSON.parse(child.stdout);
    log(`rss ${subject}: ${JSON.stringify(result)}`);
    emit({ case: `rss/${subject}`, value: result.peak, unit: "KiB" });
    emit({ case: `rss-baseline/${subject}`, value: result.baseline, unit: "KiB" });
  }
}

/** Parses the arguments and runs the suite (or one `--rss` subject). */
async function main() {
  const { values: args } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      fixture: { type: "string", default: DEFAULT_FIXTURE },
      rss: { type: "string" },
    },
  });
  const fixturePath = resolve(args.fixture);
  const fixture = JSON.parse(readFileSync(fixturePath, "utf8"));
  const signIns = args.quick ? RSS_SIGN_INS / 10 : RSS_SIGN_INS;
  if (args.rss !== undefined) {
    if (!RSS_SUBJECTS.includes(args.rss)) {
      throw new Error(`unknown RSS subject ${args.rss}: one of ${RSS_SUBJECTS.join(", ")}`);
    }
    await rssRun(args.rss, fixture, signIns);
    return;
  }

  const { build } = await import(COMPONENT_BUILD);
  const { built } = await build({ quiet: true });
  const { libraryVersion } = await import(TWOFA);
  log(`libtwofa ${libraryVersion}, component ${built ? "transpiled now" : "up to date"}, Node ${process.version}`);

  const workdir = mkdtempSync(join(tmpdir(), "twofa-bench-"));
  const hosts = [];
  try {
    const open = async (kind) => {
      hosts.push(await Host.open(fixture, kind, workdir));
      return hosts.at(-1);
    };
    const [memory, sqlite, jco] = [await open("koffi-memory"), await open("koffi-sqlite"), await open("jco-memory")];
    const benches = [
      await new TwofaTotp(memory, fixture, "node-koffi/memory").setup(),
      await new TwofaTotp(sqlite, fixture, "node-koffi/sqlite").setup(),
      await new TwofaTotp(jco, fixture, "node-jco/memory").setup(),
      new OtplibVerify(fixture),
      await new TwofaWebauthn(memory, fixture, "node-koffi/memory").setup(),
      await new TwofaWebauthn(sqlite, fixture, "node-koffi/sqlite").setup(),
      await new TwofaWebauthn(jco, fixture, "node-jco/memory").setup(),
      await new SimpleWebauthnVerify(fixture).setup(),
      await new TwofaEmail(memory, fixture, "node-koffi/memory").setup(),
    ];
    await measure(benches, args.quick ? QUICK_CHUNK_MS : CHUNK_MS);
  } finally {
    for (const host of hosts) host.engine.close();
    rmSync(workdir, { recursive: true, force: true });
  }
  if (args.quick) log(`--quick: the RSS processes do ${signIns} sign-ins instead of ${RSS_SIGN_INS}`);
  measureRss(fixturePath, args.quick);
}

await main();
