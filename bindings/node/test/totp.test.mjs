// Authenticator apps: codes from otplib (an independent implementation), RFC 6238 vectors,
// skew, replay and lockout, on an async JS store, the memory store and the SQLite default.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateSync, verifySync } from "otplib";
import { Engine } from "twofa";
import { T0, engineStores, rejects } from "./support.mjs";

const STORES = engineStores("totp");

/** otplib's code for a base32 secret at Unix time `t`. */
const otp = (secret, t, { algorithm = "sha1", digits = 6 } = {}) =>
  generateSync({ secret, epoch: t, algorithm, digits, period: 30 });

/** Enrols an authenticator app for `user` at the clock's time; returns the secret. */
async function enroll(engine, clock, user = "alice") {
  const setup = await engine.totpEnrollBegin(user, `${user}@example.com`);
  const added = await engine.totpEnrollConfirm(user, otp(setup.secret, clock.t));
  assert.equal(added.method.kind, "totp");
  assert.ok(added.stepUp?.token);
  return setup.secret;
}

/** A fresh challenge, then `code` against it. */
async function signIn(engine, user, code) {
  const challenge = await engine.loginBegin(user);
  assert.equal(challenge.secondFactorRequired, true);
  assert.equal(typeof challenge.challengeId, "string");
  return engine.loginVerify(user, challenge.challengeId, "totp", code);
}

/** RFC 4648 base32 without padding. */
function base32(bytes) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const byte of bytes) bits += byte.toString(2).padStart(8, "0");
  let out = "";
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, "0"), 2)];
  return out;
}

// RFC 6238 appendix B: the seeds and the 8-digit codes at each time.
const RFC_SEEDS = {
  SHA1: "12345678901234567890",
  SHA256: "12345678901234567890123456789012",
  SHA512: "1234567890123456789012345678901234567890123456789012345678901234",
};
const RFC_CODES = [
  [59, { SHA1: "94287082", SHA256: "46119246", SHA512: "90693936" }],
  [1111111109, { SHA1: "07081804", SHA256: "68084774", SHA512: "25091201" }],
  [1111111111, { SHA1: "14050471", SHA256: "67062674", SHA512: "99943326" }],
  [1234567890, { SHA1: "89005924", SHA256: "91819424", SHA512: "93441116" }],
  [2000000000, { SHA1: "69279037", SHA256: "90698825", SHA512: "38618901" }],
  [20000000000, { SHA1: "65353130", SHA256: "77737706", SHA512: "47863826" }],
];

test("the base32 helper and otplib agree with the known secret", () => {
  assert.equal(base32(Buffer.from(RFC_SEEDS.SHA1)), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  assert.equal(otp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", T0), "406058");
});

for (const [kind, storage] of Object.entries(STORES)) {
  describe(`TOTP on the ${kind}`, () => {
    /** An engine on this kind of store, at `clock.t`. */
    function open(clock) {
      const { config, store } = storage();
      return new Engine(config, { store, clock: () => clock.t });
    }

    test("the otpauth URI carries the issuer, account, secret, digits and period", async () => {
      const clock = { t: T0 };
      const engine = open(clock);
      const setup = await engine.totpEnrollBegin("alice", "alice@example.com");
      assert.match(setup.secret, /^[A-Z2-7]{32,}$/);
      const uri = new URL(setup.uri);
      assert.equal(uri.protocol, "otpauth:");
      assert.equal(uri.host, "totp");
      assert.equal(decodeURIComponent(uri.pathname), "/Example Shop:alice@example.com");
      const params = Object.fromEntries(uri.searchParams);
      assert.deepEqual(params, {
        secret: setup.secret,
        issuer: "Example Shop",
        algorithm: "SHA1",
        digits: "6",
        period: "30",
      });
      assert.ok(setup.qrSvg.slice(0, 200).includes("<svg"), "qrSvg is an SVG document");
      assert.equal(setup.expiresAt, T0 + 900);
      const status = await engine.securityStatus("alice");
      assert.equal(status.pending.totp, true);
      assert.deepEqual(status.methods, []);
    });

    test("otplib codes sign in step after step", async () => {
      const clock = { t: T0 };
      const engine = open(clock);
      const secret = await enroll(engine, clock);
      for (let step = 1; step <= 5; step++) {
        clock.t = T0 + 30 * step + 7;
        const code = otp(secret, clock.t);
        assert.equal(verifySync({ secret, token: code, epoch: clock.t }).valid, true);
        const success = await signIn(engine, "alice", code);
        assert.equal(success.method, "totp");
        assert.equal(success.methodId, "totp-1");
        assert.equal(success.stepUp.expiresAt, clock.t + 600);
        assert.equal(success.recoveryCodesLeft, null);
      }
      const [method] = (await engine.securityStatus("alice")).methods;
      assert.equal(method.lastUsed, clock.t);
    });

    for (const skew of [-1, 1]) {
      test(`a skew of ${skew} step is accepted, ${2 * skew} steps are not`, async () => {
        const clock = { t: T0 };
        const engine = open(clock);
        const secret = await enroll(engine, clock);
        clock.t = T0 + 300;
        await rejects(signIn(engine, "alice", otp(secret, clock.t + 60 * skew)), "invalid_code");
        assert.equal((await signIn(engine, "alice", otp(secret, clock.t + 30 * skew))).method, "totp");
      });
    }

    for (const algorithm of ["SHA1", "SHA256", "SHA512"]) {
      test(`RFC 6238 appendix B vectors, ${algorithm}, 8 digits, through admin().totpImport`, async () => {
        const clock = { t: 1 };
        const engine = open(clock);
        const secret = base32(Buffer.from(RFC_SEEDS[algorithm]));
        const imported = await engine.admin().totpImport("rfc", secret, { algorithm, digits: 8, period: 30 });
        assert.equal(imported.method.kind, "totp");
        for (const [t, codes] of RFC_CODES) {
          assert.equal(otp(secret, t, { algorithm: algorithm.toLowerCase(), digits: 8 }), codes[algorithm]);
          clock.t = t;
          const success = await signIn(engine, "rfc", codes[algorithm]);
          assert.equal(success.method, "totp", `T=${t}`);
        }
      });
    }

    test("a code is accepted once, and an older step is refused after a newer one", async () => {
      const clock = { t: T0 };
      const engine = open(clock);
      const secret = await enroll(engine, clock);
      clock.t = T0 + 60;
      const code = otp(secret, clock.t);
      await signIn(engine, "alice", code);
      const replay = await rejects(signIn(engine, "alice", code), "replayed");
      assert.equal(replay.code, 4);
      await rejects(signIn(engine, "alice", otp(secret, clock.t - 30)), "replayed");
      clock.t += 30;
      assert.equal((await signIn(engine, "alice", otp(secret, clock.t))).method, "totp");
    });

    test("the enrolment code cannot be replayed at sign-in", async () => {
      const clock = { t: T0 };
      const engine = open(clock);
      const secret = await enroll(engine, clock);
      await rejects(signIn(engine, "alice", otp(secret, clock.t)), "replayed");
    });

    test("ten wrong codes lock the user out until retryAfter has passed", async () => {
      const clock = { t: T0 };
      const engine = open(clock);
      const secret = await enroll(engine, clock);
      clock.t = T0 + 90;
      const valid = new Set([-1, 0, 1].map((k) => otp(secret, clock.t + 30 * k)));
      const wrong = ["000000", "111111", "222222", "333333"].find((c) => !valid.has(c));
      for (let i = 0; i < 10; i++) await rejects(signIn(engine, "alice", wrong), "invalid_code");
      const locked = await rejects(signIn(engine, "alice", otp(secret, clock.t)), "locked_out");
      assert.equal(typeof locked.retryAfter, "number");
      assert.ok(locked.retryAfter > 0);
      assert.equal((await engine.securityStatus("alice")).lockedUntil, clock.t + locked.retryAfter);
      clock.t += locked.retryAfter;
      assert.equal((await signIn(engine, "alice", otp(secret, clock.t))).method, "totp");
      assert.equal((await engine.securityStatus("alice")).lockedUntil, null);
    });

    test("malformed codes are invalid_input and not counted", async () => {
      const clock = { t: T0 };
      const engine = open(clock);
      const secret = await enroll(engine, clock);
      clock.t = T0 + 90;
      const malformed = ["12345", "1234567", "12a456", "", "\t123456", "12-456", "１２３４５６"];
      for (let round = 0; round < 2; round++) {
        for (const bad of malformed) {
          const error = await rejects(signIn(engine, "alice", bad), "invalid_input");
          assert.equal(error.retryAfter, null);
        }
      }
      assert.equal((await engine.securityStatus("alice")).lockedUntil, null);
      // ASCII spaces are ignored (the C API's rule for codes).
      const code = otp(secret, clock.t);
      assert.equal((await signIn(engine, "alice", `${code.slice(0, 3)} ${code.slice(3)}`)).method, "totp");
    });
  });
}
