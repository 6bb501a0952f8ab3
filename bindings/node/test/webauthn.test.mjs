// WebAuthn with a software authenticator written for these tests (softauthn.mjs: ES256, "none"
// attestation, from the spec alone with WebCrypto, independent of the relying party), on an async
// JS store, the memory store and the SQLite default.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine, TwofaError } from "twofa";
import { SoftAuthenticator, b64urlEncode, tamperSignature } from "./softauthn.mjs";
import { ORIGIN, T0, engineStores, rejects } from "./support.mjs";

const STORES = engineStores("webauthn");

for (const [kind, storage] of Object.entries(STORES)) {
  describe(`WebAuthn on the ${kind}`, () => {
    /** An engine, its clock and its outbox. */
    function open() {
      const clock = { t: T0 };
      const outbox = [];
      const { config, store } = storage();
      const engine = new Engine(config, { store, mailer: (m) => void outbox.push(m), clock: () => clock.t });
      return { engine, clock, outbox };
    }

    /** Registers `key` for `user` through the creation options of webauthnRegisterBegin. */
    async function register(engine, key, user = "carol", name = "Soft key") {
      const registration = await engine.webauthnRegisterBegin(user, name);
      const options = registration.options.publicKey;
      assert.equal(options.rp.id, "localhost");
      assert.equal(options.rp.name, "Example Shop");
      assert.equal(options.attestation, "none");
      assert.equal(typeof options.challenge, "string");
      assert.ok(options.pubKeyCredParams.some((p) => p.alg === -7));
      assert.equal(registration.expiresAt > T0, true);
      return engine.webauthnRegisterFinish(user, await key.register(registration.options));
    }

    /** A sign-in challenge for a WebAuthn-only user: its id and request options. */
    async function challenge(engine, user = "carol") {
      const ch = await engine.loginBegin(user);
      assert.deepEqual(ch.methods, ["webauthn"]);
      assert.equal(typeof ch.challengeId, "string");
      assert.equal(ch.webauthnOptions.publicKey.rpId, "localhost");
      assert.ok(ch.webauthnOptions.publicKey.allowCredentials.length >= 1);
      return [ch.challengeId, ch.webauthnOptions];
    }

    /** An engine where carol has registered a new soft authenticator: `{engine, key}`. */
    async function withKey() {
      const { engine } = open();
      const key = new SoftAuthenticator(ORIGIN);
      await register(engine, key);
      return { engine, key };
    }

    /** Signs carol in with `key` (its assertion made with `overrides`): the success. */
    async function signIn(engine, key, overrides) {
      const [id, options] = await challenge(engine);
      return engine.loginVerify("carol", id, "webauthn", await key.signIn(options, overrides));
    }

    test("register, get the confirmation notice, and sign in (object or JSON text)", async () => {
      const { engine, clock, outbox } = open();
      const key = new SoftAuthenticator(ORIGIN);
      await engine.setContactEmail("carol", "carol@example.com");
      const mailsBefore = outbox.length;
      const added = await register(engine, key);
      assert.equal(added.method.kind, "webauthn");
      assert.equal(added.method.label, "Soft key");
      assert.equal(added.method.id, "webauthn-1");
      assert.equal(typeof added.stepUp.token, "string");
      assert.deepEqual(added.notices, { sent: 1, failed: [] });
      assert.equal(outbox.length, mailsBefore + 1);
      const notice = outbox.at(-1);
      assert.equal(notice.to, "carol@example.com");
      assert.ok(notice.text.includes("Soft key"), notice.text);
      assert.ok(notice.html.includes("Soft key"));

      for (const form of ["object", "JSON text", "object"]) {
        clock.t += 30;
        const [id, options] = await challenge(engine);
        const assertion = await key.signIn(options);
        const success = await engine.loginVerify("carol", id, "webauthn", form === "object" ? assertion : JSON.stringify(assertion));
        assert.equal(success.method, "webauthn");
        assert.equal(success.methodId, "webauthn-1");
      }
      const status = await engine.securityStatus("carol");
      assert.equal(status.methods[0].lastUsed, clock.t);
      assert.equal(status.methods[0].flagged, false);
      assert.ok(status.recommendations.includes("add_non_webauthn_method"));
      assert.deepEqual(status.warnings, []);
    });

    test("a tampered signature is rejected", async () => {
      const { engine, key } = await withKey();
      const [id, options] = await challenge(engine);
      await rejects(engine.loginVerify("carol", id, "webauthn", tamperSignature(await key.signIn(options))), "webauthn_rejected", /signature/);
      assert.equal((await signIn(engine, key)).method, "webauthn");
    });

    test("a wrong origin is rejected, at registration and at sign-in", async () => {
      const { engine } = open();
      const key = new SoftAuthenticator(ORIGIN);
      const registration = await engine.webauthnRegisterBegin("carol", "Soft key");
      const forged = await key.register(registration.options, { origin: "http://evil.localhost" });
      await rejects(engine.webauthnRegisterFinish("carol", forged), "webauthn_rejected", /origin/);
      assert.deepEqual((await engine.securityStatus("carol")).methods, []);

      await register(engine, key);
      for (const origin of ["http://localhost:9999", "https://localhost:8080", "http://evil.example"]) {
        await rejects(signIn(engine, key, { origin }), "webauthn_rejected", /origin/);
      }
    });

    test("an assertion is single use", async () => {
      const { engine, key } = await withKey();
      const [id, options] = await challenge(engine);
      const assertion = await key.signIn(options);
      await engine.loginVerify("carol", id, "webauthn", assertion);
      await rejects(engine.loginVerify("carol", id, "webauthn", assertion), "not_found");
      const [other] = await challenge(engine);
      await rejects(engine.loginVerify("carol", other, "webauthn", assertion), "webauthn_rejected", /challenge/);
    });

    test("a cloned device is caught by its counter and the method is flagged", async () => {
      const { engine, key } = await withKey();
      const clone = key.clone();
      for (let i = 0; i < 2; i++) await signIn(engine, key);
      await rejects(signIn(engine, clone), "webauthn_rejected", /counter/);
      const status = await engine.securityStatus("carol");
      assert.equal(status.methods[0].flagged, true);
      assert.ok(status.warnings.includes("device_flagged"));
    });

    test("an authenticator whose counter stays at 0 keeps working", async () => {
      const { engine, key } = await withKey();
      key.counterStep = 0;
      for (let i = 0; i < 3; i++) {
        const [id, options] = await challenge(engine);
        const assertion = await key.signIn(options);
        assert.equal(Buffer.from(assertion.response.authenticatorData, "base64url").readUInt32BE(33), 0);
        assert.equal((await engine.loginVerify("carol", id, "webauthn", assertion)).method, "webauthn");
      }
      assert.equal((await engine.securityStatus("carol")).methods[0].flagged, false);
    });

    test("the user handle, when present, must be the owner's", async () => {
      const { engine, key } = await withKey();
      let [id, options] = await challenge(engine);
      let assertion = await key.signIn(options);
      assert.ok(assertion.response.userHandle, "the authenticator sends the owner's handle");
      const forged = { ...assertion, response: { ...assertion.response, userHandle: b64urlEncode(new TextEncoder().encode("someone else")) } };
      await rejects(engine.loginVerify("carol", id, "webauthn", forged), "webauthn_rejected", /user handle/);
      [id, options] = await challenge(engine);
      assertion = await key.signIn(options);
      const { userHandle, ...withoutHandle } = assertion.response;
      assert.ok(userHandle);
      const success = await engine.loginVerify("carol", id, "webauthn", { ...assertion, response: withoutHandle });
      assert.equal(success.method, "webauthn");
    });

    test("a credential registered for one user cannot be registered by another", async () => {
      const { engine } = open();
      const key = new SoftAuthenticator(ORIGIN);
      const registration = await engine.webauthnRegisterBegin("carol", "Soft key");
      const response = await key.register(registration.options);
      await engine.webauthnRegisterFinish("carol", response);
      // Mallory replays carol's registration response into her own pending registration.
      await engine.webauthnRegisterBegin("mallory", "Stolen key");
      await rejects(engine.webauthnRegisterFinish("mallory", response), "webauthn_rejected");
      assert.deepEqual((await engine.securityStatus("mallory")).methods, []);
      // Carol's device still signs her in.
      assert.equal((await signIn(engine, key)).method, "webauthn");
    });

    test("the soft authenticator's knobs: a chosen counter, the same credential registered again", async () => {
      const { engine, key } = await withKey();
      const [held] = key.credentials.keys();
      const counter = (assertion) => Buffer.from(assertion.response.authenticatorData, "base64url").readUInt32BE(33);
      let [id, options] = await challenge(engine);
      const chosen = await key.signIn(options, { signCount: 40 });
      assert.equal(counter(chosen), 40);
      await engine.loginVerify("carol", id, "webauthn", chosen);
      [id, options] = await challenge(engine);
      const next = await key.signIn(options);
      assert.equal(counter(next), 41, "later assertions go on from the chosen counter");
      await engine.loginVerify("carol", id, "webauthn", next);
      // Registered again for dave: the same credential id, refused while carol's claim is live.
      const registration = await engine.webauthnRegisterBegin("dave", "Soft key");
      const again = await key.register(registration.options, { sameCredential: true });
      assert.equal(again.id, held);
      assert.equal(key.credentials.size, 1);
      await rejects(engine.webauthnRegisterFinish("dave", again), "webauthn_rejected", /already registered/);
    });

    test("garbage responses are invalid_input or webauthn_rejected", async () => {
      const { engine, key } = await withKey();
      for (const garbage of ["", "{", "[]", '{"id": 1}', { type: "public-key" }]) {
        const [id] = await challenge(engine);
        const error = await engine.loginVerify("carol", id, "webauthn", garbage).then(
          () => assert.fail(`${JSON.stringify(garbage)} was accepted`),
          (e) => e,
        );
        assert.ok(error instanceof TwofaError);
        assert.ok(["invalid_input", "webauthn_rejected"].includes(error.name), `${error.name}: ${error.message}`);
      }
    });
  });
}
