// The browser's side of WebAuthn: the server's options (JSON, base64url fields) are parsed with
// PublicKeyCredential.parse*OptionsFromJSON, the browser talks to the device, and the credential
// goes back to the server as credential.toJSON(). twofa checks everything else.

/** A WebAuthn failure in the browser, in plain words. */
export class BrowserKeyError extends Error {}

function supported(parse) {
  if (!window.PublicKeyCredential || typeof PublicKeyCredential[parse] !== "function" || !navigator.credentials) {
    throw new BrowserKeyError("This browser cannot use security keys here: use a recent Chrome, Edge, Firefox or Safari.");
  }
}

function plain(error) {
  switch (error?.name) {
    case "NotAllowedError":
      return "The browser did not use a security key: it was cancelled or timed out.";
    case "InvalidStateError":
      return "This device is already registered.";
    case "SecurityError":
      return `Security keys work only at http://localhost:${location.port || 80} (not an IP address).`;
    case "NotSupportedError":
      return "This device does not support what the site asked for.";
    case "AbortError":
      return "The security key request was cancelled.";
    default:
      return "The security key could not be used.";
  }
}

/** Runs one ceremony: the server's `{publicKey}` options parsed with `parse`, handed to
 * `navigator.credentials[call]`; resolves to the credential's toJSON(). */
async function ceremony(parse, call, options) {
  supported(parse);
  const publicKey = PublicKeyCredential[parse](options.publicKey);
  try {
    const credential = await navigator.credentials[call]({ publicKey });
    return credential.toJSON();
  } catch (error) {
    throw new BrowserKeyError(plain(error));
  }
}

/** Registers a new device: `options` is the server's `{publicKey}`; resolves to credential.toJSON(). */
export function createCredential(options) {
  return ceremony("parseCreationOptionsFromJSON", "create", options);
}

/** Signs a sign-in challenge: `options` is the server's `{publicKey}`; resolves to credential.toJSON(). */
export function getAssertion(options) {
  return ceremony("parseRequestOptionsFromJSON", "get", options);
}
