/**
 * A software WebAuthn authenticator and client ("browser") for tests.
 *
 * It speaks ES256 (ECDSA P-256 with SHA-256) with "none" attestation, takes the options JSON a
 * relying party produces and returns what a browser's `PublicKeyCredential.toJSON()` gives.
 * It is written from the WebAuthn spec alone (Node's built-in WebCrypto), independently of the
 * relying party under test, and has knobs to forge bad responses: another origin in the client
 * data, a tampered signature, a frozen, cloned or chosen signature counter, a credential
 * registered again (for another account) instead of a new one.
 *
 * The JavaScript twin of bindings/python/tests/softauthn.py.
 *
 * @module softauthn
 */

import { webcrypto } from "node:crypto";

const { subtle } = webcrypto;

const ES256 = -7;
const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;
const AAGUID = new Uint8Array(16);
const CREDENTIAL_ID_LEN = 32;

/**
 * A value `cborEncode` can write: an integer, a text string, a byte string, or a JS `Map` (so that
 * integer keys and their order survive) of such values.
 * @typedef {number | string | Uint8Array | Map<any, any>} CborValue
 */

/**
 * A credential held by the authenticator.
 * @typedef {object} Credential
 * @property {CryptoKey} privateKey The ECDSA P-256 signing key.
 * @property {Uint8Array} publicKeyRaw The public key, uncompressed: 0x04 || x || y (65 bytes).
 * @property {string} rpId The relying party id it was created for.
 * @property {Uint8Array} userHandle The `user.id` of the registration.
 * @property {number} signCount The signature counter last reported.
 */

/**
 * The fields of `PublicKeyCredentialCreationOptionsJSON` read here.
 * @typedef {object} CreationOptions
 * @property {{id?: string}} rp
 * @property {{id: string}} user
 * @property {string} challenge
 * @property {{type: string, alg: number}[]} pubKeyCredParams
 * @property {{type: string, id: string}[]} [excludeCredentials]
 */

/**
 * The fields of `PublicKeyCredentialRequestOptionsJSON` read here.
 * @typedef {object} RequestOptions
 * @property {string} [rpId]
 * @property {string} challenge
 * @property {{type: string, id: string}[]} [allowCredentials]
 */

/**
 * `PublicKeyCredential.toJSON()` of `navigator.credentials.create`.
 * @typedef {object} RegistrationResponseJSON
 * @property {string} id
 * @property {string} rawId
 * @property {"public-key"} type
 * @property {{clientDataJSON: string, attestationObject: string, transports: string[]}} response
 * @property {{}} clientExtensionResults
 * @property {"platform"} authenticatorAttachment
 */

/**
 * `PublicKeyCredential.toJSON()` of `navigator.credentials.get`.
 * @typedef {object} AuthenticationResponseJSON
 * @property {string} id
 * @property {string} rawId
 * @property {"public-key"} type
 * @property {{clientDataJSON: string, authenticatorData: string, signature: string, userHandle: string}} response
 * @property {{}} clientExtensionResults
 * @property {"platform"} authenticatorAttachment
 */

/**
 * Base64url without padding.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function b64urlEncode(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/**
 * Decodes base64url with or without padding.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function b64urlDecode(text) {
  return new Uint8Array(Buffer.from(text, "base64url"));
}

/**
 * Concatenates byte strings.
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * An unsigned integer as `size` big-endian bytes.
 * @param {number} value
 * @param {number} size
 * @returns {Uint8Array}
 */
function bigEndian(value, size) {
  const out = new Uint8Array(size);
  for (let i = size - 1, v = BigInt(value); i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/**
 * The initial byte(s) of a CBOR item: major type and argument.
 * @param {number} major
 * @param {number} arg
 * @returns {Uint8Array}
 */
function cborHead(major, arg) {
  if (arg < 24) return Uint8Array.of((major << 5) | arg);
  const [info, size] = arg < 2 ** 8 ? [24, 1] : arg < 2 ** 16 ? [25, 2] : arg < 2 ** 32 ? [26, 4] : [27, 8];
  return concat(Uint8Array.of((major << 5) | info), bigEndian(arg, size));
}

/**
 * Encodes integers, byte strings, text strings and maps (keys in the given order) as CBOR.
 * @param {CborValue} value
 * @returns {Uint8Array}
 */
export function cborEncode(value) {
  if (typeof value === "number" && Number.isSafeInteger(value)) {
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value);
  }
  if (value instanceof Uint8Array) return concat(cborHead(2, value.length), value);
  if (typeof value === "string") {
    const raw = new TextEncoder().encode(value);
    return concat(cborHead(3, raw.length), raw);
  }
  if (value instanceof Map) {
    const items = [...value].flatMap(([k, v]) => [cborEncode(k), cborEncode(v)]);
    return concat(cborHead(5, value.size), ...items);
  }
  throw new TypeError(`cannot CBOR-encode ${typeof value}: ${String(value)}`);
}

/**
 * A copy of an assertion whose DER signature has the low bit of its last byte flipped.
 * @param {AuthenticationResponseJSON} response
 * @returns {AuthenticationResponseJSON}
 */
export function tamperSignature(response) {
  const forged = structuredClone(response);
  const signature = b64urlDecode(forged.response.signature);
  signature[signature.length - 1] ^= 0x01;
  forged.response.signature = b64urlEncode(signature);
  return forged;
}

/**
 * One unsigned big-endian integer as an ASN.1 DER INTEGER: leading zero bytes stripped (one is
 * kept for zero), then a 0x00 prepended when the high bit is set so it does not read negative.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
function derInteger(bytes) {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let body = bytes.subarray(start);
  if (body[0] & 0x80) body = concat(Uint8Array.of(0), body);
  return concat(Uint8Array.of(0x02, body.length), body);
}

/**
 * WebCrypto's raw ECDSA signature r || s (32 + 32 bytes for P-256) as DER
 * `SEQUENCE { INTEGER r, INTEGER s }`, the form WebAuthn requires for ES256 (at most 72 bytes,
 * so short-form lengths suffice).
 * @param {Uint8Array} raw
 * @returns {Uint8Array}
 */
function rawToDer(raw) {
  const half = raw.length / 2;
  const body = concat(derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half)));
  return concat(Uint8Array.of(0x30, body.length), body);
}

/**
 * SHA-256 of some bytes.
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>}
 */
async function sha256(bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

/**
 * The inner options object, from JSON text or an object, with or without `publicKey`.
 * @param {string | object} options
 * @returns {any}
 */
function publicKeyOptions(options) {
  const parsed = typeof options === "string" ? JSON.parse(options) : options;
  return parsed.publicKey ?? parsed;
}

/**
 * The clientDataJSON bytes, compact and in the order browsers write them.
 * @param {"webauthn.create" | "webauthn.get"} type
 * @param {string} challenge
 * @param {string} origin
 * @returns {Uint8Array}
 */
function clientData(type, challenge, origin) {
  return new TextEncoder().encode(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
}

/**
 * A `PublicKeyCredential.toJSON()` of this platform authenticator: the credential `id`, the
 * client data and the rest of the `response`.
 * @template {object} R
 * @param {string} id
 * @param {Uint8Array} data
 * @param {R} response
 * @returns {{id: string, rawId: string, type: "public-key", response: {clientDataJSON: string} & R, clientExtensionResults: {}, authenticatorAttachment: "platform"}}
 */
function publicKeyCredential(id, data, response) {
  return {
    id,
    rawId: id,
    type: "public-key",
    response: { clientDataJSON: b64urlEncode(data), ...response },
    clientExtensionResults: {},
    authenticatorAttachment: "platform",
  };
}

/** A platform authenticator plus the browser around it, bound to one origin. */
export class SoftAuthenticator {
  /** @param {string} [origin] The origin the browser is on (and checks rp ids against). */
  constructor(origin = "http://localhost:8080") {
    /**
     * The origin written into the client data, and that rp ids are checked against.
     * @type {string}
     */
    this.origin = origin;
    /**
     * Added to a credential's signature counter at each assertion: 0 makes an authenticator that
     * always reports 0 (from a fresh registration).
     * @type {number}
     */
    this.counterStep = 1;
    /**
     * The credentials held, by base64url credential id.
     * @type {Map<string, Credential>}
     */
    this.credentials = new Map();
  }

  /**
   * A copy sharing the private keys, with counters that move independently from now on.
   * @returns {SoftAuthenticator}
   */
  clone() {
    const twin = new SoftAuthenticator(this.origin);
    twin.counterStep = this.counterStep;
    twin.credentials = new Map([...this.credentials].map(([id, c]) => [id, { ...c }]));
    return twin;
  }

  /**
   * The RP id of a ceremony (the origin's host when the options name none), checked like a
   * browser: it must be the origin's host or a parent domain of it.
   * @param {string | undefined} given
   * @returns {string}
   */
  #rpId(given) {
    const host = new URL(this.origin).hostname;
    const rpId = given || host;
    if (host !== rpId && !host.endsWith(`.${rpId}`)) {
      throw new Error(`rp id ${JSON.stringify(rpId)} is not valid for origin ${JSON.stringify(this.origin)}`);
    }
    return rpId;
  }

  /**
   * `navigator.credentials.create`: a new ES256 credential, as its `toJSON()`.
   * @param {string | object} options The creation options, as the relying party sends them.
   * @param {{origin?: string, sameCredential?: boolean}} [overrides] `origin` replaces the origin
   *   written into the client data (not the one checked); `sameCredential` registers the first
   *   credential held again (same id and key, now for the user of `options`, its counter going
   *   on) instead of creating one.
   * @returns {Promise<RegistrationResponseJSON>}
   */
  async register(options, { origin, sameCredential = false } = {}) {
    /** @type {CreationOptions} */
    const pk = publicKeyOptions(options);
    const rpId = this.#rpId(pk.rp.id);
    for (const excluded of pk.excludeCredentials ?? []) {
      if (this.credentials.get(b64urlEncode(b64urlDecode(excluded.id)))?.rpId === rpId) {
        throw new Error("an excluded credential is already on this authenticator");
      }
    }
    if (!pk.pubKeyCredParams.some((p) => p.type === "public-key" && p.alg === ES256)) {
      throw new Error("the relying party does not accept ES256 (-7)");
    }

    /** @type {Credential} */
    let credential;
    /** @type {Uint8Array} */
    let credentialId;
    if (sameCredential) {
      const first = this.credentials.entries().next();
      if (first.done) throw new Error("sameCredential: this authenticator holds no credential");
      const [heldId, held] = first.value;
      if (held.rpId !== rpId) throw new Error(`sameCredential: the first credential is for rp id ${held.rpId}`);
      credentialId = b64urlDecode(heldId);
      credential = held;
      credential.userHandle = b64urlDecode(pk.user.id);
    } else {
      const algorithm = { name: "ECDSA", namedCurve: "P-256" };
      const { privateKey, publicKey } = await subtle.generateKey(algorithm, false, ["sign"]);
      const publicKeyRaw = new Uint8Array(await subtle.exportKey("raw", publicKey));
      credentialId = webcrypto.getRandomValues(new Uint8Array(CREDENTIAL_ID_LEN));
      credential = { privateKey, publicKeyRaw, rpId, userHandle: b64urlDecode(pk.user.id), signCount: 0 };
    }
    const { publicKeyRaw } = credential;
    const coseKey = new Map(/** @type {[number, CborValue][]} */ ([
      [1, 2], // kty: EC2
      [3, ES256], // alg
      [-1, 1], // crv: P-256
      [-2, publicKeyRaw.subarray(1, 33)], // x
      [-3, publicKeyRaw.subarray(33, 65)], // y
    ]));
    const authData = concat(
      await sha256(new TextEncoder().encode(rpId)),
      Uint8Array.of(FLAG_UP | FLAG_UV | FLAG_AT),
      bigEndian(credential.signCount, 4),
      AAGUID,
      bigEndian(credentialId.length, 2),
      credentialId,
      cborEncode(coseKey),
    );
    const attestationObject = new Map(
      /** @type {[string, CborValue][]} */ ([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]),
    );
    const data = clientData("webauthn.create", pk.challenge, origin ?? this.origin);
    const id = b64urlEncode(credentialId);
    this.credentials.set(id, credential);
    return publicKeyCredential(id, data, {
      attestationObject: b64urlEncode(cborEncode(attestationObject)),
      transports: ["internal"],
    });
  }

  /**
   * `navigator.credentials.get`: an assertion by a held, allowed credential, as its `toJSON()`.
   * @param {string | object} options The request options, as the relying party sends them.
   * @param {{origin?: string, signCount?: number}} [overrides] `origin` replaces the origin
   *   written into the client data (not the one checked); `signCount` is the signature counter
   *   this assertion reports (later ones go on from it).
   * @returns {Promise<AuthenticationResponseJSON>}
   */
  async signIn(options, { origin, signCount } = {}) {
    /** @type {RequestOptions} */
    const pk = publicKeyOptions(options);
    const rpId = this.#rpId(pk.rpId);
    const id = (pk.allowCredentials ?? [])
      .filter((c) => c.type === "public-key")
      .map((c) => b64urlEncode(b64urlDecode(c.id)))
      .find((cid) => this.credentials.get(cid)?.rpId === rpId);
    if (id === undefined) {
      throw new Error(`no allowed credential for rp id ${JSON.stringify(rpId)} on this authenticator`);
    }
    const credential = /** @type {Credential} */ (this.credentials.get(id));

    credential.signCount = signCount ?? credential.signCount + this.counterStep;
    const authData = concat(
      await sha256(new TextEncoder().encode(rpId)),
      Uint8Array.of(FLAG_UP | FLAG_UV),
      bigEndian(credential.signCount, 4),
    );
    const data = clientData("webauthn.get", pk.challenge, origin ?? this.origin);
    const signed = concat(authData, await sha256(data));
    const raw = new Uint8Array(await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, credential.privateKey, signed));
    return publicKeyCredential(id, data, {
      authenticatorData: b64urlEncode(authData),
      signature: b64urlEncode(rawToDer(raw)),
      userHandle: b64urlEncode(credential.userHandle),
    });
  }
}
