"""A software WebAuthn authenticator and client ("browser") for tests.

It speaks ES256 (ECDSA P-256 with SHA-256) with "none" attestation, takes the options JSON a
relying party produces and returns what a browser's ``PublicKeyCredential.toJSON()`` gives.
It is written from the WebAuthn spec alone (stdlib + ``cryptography``), independently of the
relying party under test, and has knobs to forge bad responses: another origin in the client
data, a tampered signature, a frozen, cloned or chosen signature counter, a credential
registered again.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import secrets
import struct
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "Credential",
    "SoftAuthenticator",
    "b64url_decode",
    "b64url_encode",
    "cbor_encode",
    "tamper_signature",
]

JsonDict = dict[str, Any]
CborValue = int | str | bytes | dict["CborValue", "CborValue"]

ES256 = -7
FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40
AAGUID = bytes(16)
CREDENTIAL_ID_LEN = 32


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decodes base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cbor_head(major: int, arg: int) -> bytes:
    """The initial byte(s) of a CBOR item: major type and argument."""
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if arg < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, arg)
    raise ValueError(f"CBOR argument too large: {arg}")


def cbor_encode(value: CborValue) -> bytes:
    """Encodes ints, byte strings, text strings and maps (keys in the given order) as CBOR."""
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return _cbor_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _cbor_head(3, len(raw)) + raw
    items = b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
    return _cbor_head(5, len(value)) + items


def tamper_signature(response: JsonDict) -> JsonDict:
    """A copy of an assertion whose DER signature has the low bit of its last byte flipped."""
    forged = copy.deepcopy(response)
    signature = bytearray(b64url_decode(forged["response"]["signature"]))
    signature[-1] ^= 0x01
    forged["response"]["signature"] = b64url_encode(bytes(signature))
    return forged


def _public_key(options: str | JsonDict) -> JsonDict:
    """The inner options object, from JSON text or a dict, with or without ``publicKey``."""
    parsed: JsonDict = json.loads(options) if isinstance(options, str) else options
    inner: JsonDict = parsed.get("publicKey", parsed)
    return inner


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    """The clientDataJSON bytes, compact and in the order browsers write them."""
    data = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def _credential_json(credential_id: bytes, response: JsonDict) -> JsonDict:
    """A platform authenticator's ``PublicKeyCredential.toJSON()`` with this `response`."""
    return {
        "id": b64url_encode(credential_id),
        "rawId": b64url_encode(credential_id),
        "type": "public-key",
        "response": response,
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    }


@dataclasses.dataclass
class Credential:
    """A credential held by the authenticator."""

    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    """A platform authenticator plus the browser around it, bound to one origin.

    ``counter_step`` is added to a credential's signature counter at each assertion: 0 makes
    an authenticator that always reports 0 (from a fresh registration).
    """

    def __init__(self, origin: str = "http://localhost:8080") -> None:
        self.origin = origin
        self.counter_step = 1
        self.credentials: dict[bytes, Credential] = {}

    def clone(self) -> SoftAuthenticator:
        """A copy sharing the private keys, with counters that move independently from now on."""
        twin = SoftAuthenticator(self.origin)
        twin.counter_step = self.counter_step
        twin.credentials = {cid: dataclasses.replace(c) for cid, c in self.credentials.items()}
        return twin

    def _rp_id(self, given: str | None) -> str:
        """The RP id of a ceremony (the origin's host when the options name none), checked
        like a browser: it must be the origin's host or a parent domain of it."""
        host = urlsplit(self.origin).hostname or ""
        rp_id = given or host
        if host != rp_id and not host.endswith("." + rp_id):
            raise ValueError(f"rp id {rp_id!r} is not valid for origin {self.origin!r}")
        return rp_id

    def register(
        self, options: str | JsonDict, *, origin: str | None = None, same_credential: bool = False
    ) -> JsonDict:
        """``navigator.credentials.create``: a new ES256 credential, as its ``toJSON()``.

        ``origin`` overrides the origin written into the client data (not the one checked).
        ``same_credential`` registers the authenticator's first credential again (same id and
        key, now for the options' user) instead of making a new one, as an authenticator whose
        credential an account gave up would be presented to another account.
        """
        pk = _public_key(options)
        rp_id = self._rp_id(pk["rp"].get("id"))
        for excluded in pk.get("excludeCredentials", []):
            held = self.credentials.get(b64url_decode(excluded["id"]))
            if held is not None and held.rp_id == rp_id:
                raise ValueError("an excluded credential is already on this authenticator")
        if not any(p.get("type") == "public-key" and p.get("alg") == ES256 for p in pk["pubKeyCredParams"]):
            raise ValueError("the relying party does not accept ES256 (-7)")

        user_handle = b64url_decode(pk["user"]["id"])
        if same_credential:
            if not self.credentials:
                raise ValueError("same_credential: this authenticator holds no credential yet")
            credential_id, credential = next(iter(self.credentials.items()))
            if credential.rp_id != rp_id:
                raise ValueError(f"same_credential: the first credential is for rp id {credential.rp_id!r}")
            credential.user_handle = user_handle
            key = credential.key
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            credential_id = secrets.token_bytes(CREDENTIAL_ID_LEN)
            credential = Credential(key, rp_id, user_handle)
        numbers = key.public_key().public_numbers()
        cose_key: CborValue = {
            1: 2,  # kty: EC2
            3: ES256,  # alg
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        auth_data = (
            hashlib.sha256(rp_id.encode("utf-8")).digest()
            + bytes([FLAG_UP | FLAG_UV | FLAG_AT])
            + struct.pack(">I", credential.sign_count)
            + AAGUID
            + struct.pack(">H", len(credential_id))
            + credential_id
            + cbor_encode(cose_key)
        )
        attestation = cbor_encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = _client_data("webauthn.create", pk["challenge"], origin or self.origin)
        self.credentials[credential_id] = credential
        response = {
            "clientDataJSON": b64url_encode(client_data),
            "attestationObject": b64url_encode(attestation),
            "transports": ["internal"],
        }
        return _credential_json(credential_id, response)

    def sign_in(self, options: str | JsonDict, *, origin: str | None = None, sign_count: int | None = None) -> JsonDict:
        """``navigator.credentials.get``: an assertion by a held, allowed credential, as ``toJSON()``.

        ``origin`` overrides the origin written into the client data (not the one checked).
        ``sign_count`` makes the assertion report exactly that signature counter (later
        assertions continue from it), e.g. one that did not increase.
        """
        pk = _public_key(options)
        rp_id = self._rp_id(pk.get("rpId"))
        allowed = [b64url_decode(c["id"]) for c in pk.get("allowCredentials", []) if c.get("type") == "public-key"]
        held = [cid for cid in allowed if cid in self.credentials and self.credentials[cid].rp_id == rp_id]
        if not held:
            raise ValueError(f"no allowed credential for rp id {rp_id!r} on this authenticator")
        credential_id = held[0]
        credential = self.credentials[credential_id]

        if sign_count is None:
            credential.sign_count += self.counter_step
        elif isinstance(sign_count, int) and not isinstance(sign_count, bool) and 0 <= sign_count < 1 << 32:
            credential.sign_count = sign_count
        else:
            raise ValueError(f"sign_count must be an int from 0 to 2^32 - 1, not {sign_count!r}")
        auth_data = (
            hashlib.sha256(rp_id.encode("utf-8")).digest()
            + bytes([FLAG_UP | FLAG_UV])
            + struct.pack(">I", credential.sign_count)
        )
        client_data = _client_data("webauthn.get", pk["challenge"], origin or self.origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = credential.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64url_encode(client_data),
            "authenticatorData": b64url_encode(auth_data),
            "signature": b64url_encode(signature),
            "userHandle": b64url_encode(credential.user_handle),
        }
        return _credential_json(credential_id, response)
