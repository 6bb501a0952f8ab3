"""Exports a user's second factors on one surface and imports them on another.

For every ordered pair of surfaces (C ABI, WASI component, Python, Node, including a surface with
itself), a user enrols an authenticator app and a WebAuthn device on the source, signs in once,
and is exported with `admin.export_user`; a fresh engine of the target surface, under another
master key (another deployment, same relying party id), imports the document. Then on the
target: the code last used on the source is refused as a replay, the next TOTP code and a WebAuthn
assertion of the same software authenticator sign in, the same document cannot be imported twice,
and a tampered copy is refused without changing anything.

The surfaces take part through the fault-injection adapters (tests/faults/README.md, "Protocol"),
so this driver reuses the harness's adapter client and the scenario runner's value expressions
(pyotp for TOTP codes, the software authenticator for WebAuthn).

    python tests/export/cross_surface.py --surface c=target/faults/c_adapter_asan \\
        --surface python="python tests/faults/adapters/python_adapter.py" ...
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))

from harness import Adapter, State, Violation

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "security_tab.json"
EXPORT_KEY = "ZXhwb3J0LWtleS1leHBvcnQta2V5LWV4cG9ydC1rZXkh"
OTHER_MASTER_KEY = "b3RoZXItbWFzdGVyLWtleS1vdGhlci1tYXN0ZXIta2V5IQ=="
USER = "mover"
T0 = 1_700_000_000


def run(adapter: Adapter, state: State, admin: bool, request: dict[str, Any]) -> dict[str, Any]:
    """Runs one request with its values evaluated; the outcome, or the error as `{"error": name}`."""
    answer = adapter.run(admin, USER, state.value(request))
    state.outbox.extend(answer.delivered())
    if answer.error is not None:
        return {"error": answer.error["name"], "message": answer.error.get("message")}
    return dict(answer.outcome)


def ok(adapter: Adapter, state: State, admin: bool, request: dict[str, Any], what: str) -> dict[str, Any]:
    outcome = run(adapter, state, admin, request)
    if "error" in outcome:
        raise Violation(f"{what}: {outcome}")
    return outcome


def at(adapter: Adapter, state: State, t: int) -> None:
    state.clock.t = t
    adapter.ok(f"time {t}")


def sign_in(adapter: Adapter, state: State, proof: dict[str, Any], what: str) -> dict[str, Any]:
    challenge = ok(adapter, state, False, {"op": "login_begin"}, f"{what}: login_begin")
    state.vars["options"] = challenge.get("webauthn_options")
    return run(adapter, state, False, {"op": "login_verify", "challenge": challenge["challenge_id"], "proof": proof})


def export_from(adapter: Adapter, config: dict[str, Any], state: State) -> tuple[str, int]:
    """Enrols TOTP and WebAuthn, signs in with TOTP; the export document and the time of that
    sign-in."""
    adapter.ok(f"config {json.dumps(config)}")
    at(adapter, state, T0)
    setup = ok(adapter, state, False, {"op": "totp_enroll_begin", "account_name": "mover@example.com"}, "totp begin")
    state.vars["secret"] = setup["secret"]
    added = ok(adapter, state, False, {"op": "totp_enroll_confirm", "code": {"totp": "$secret"}}, "totp confirm")
    step_up = added["step_up"]["token"]
    reg = ok(
        adapter,
        state,
        False,
        {"op": "webauthn_register_begin", "friendly_name": "Travel key", "step_up": step_up},
        "webauthn begin",
    )
    state.vars["create"] = reg["options_json"]
    ok(
        adapter,
        state,
        False,
        {
            "op": "webauthn_register_finish",
            "credential_json": {"webauthn_create": "$create", "authenticator": "travel-key"},
            "step_up": step_up,
        },
        "webauthn finish",
    )
    at(adapter, state, T0 + 30)
    used = sign_in(adapter, state, {"kind": "totp", "value": {"totp": "$secret"}}, "source sign-in")
    if used.get("method") != "totp":
        raise Violation(f"source TOTP sign-in: {used}")
    exported = ok(adapter, state, True, {"op": "export_user", "key": EXPORT_KEY}, "export_user")
    return str(exported["document"]), T0 + 30


def tampered(document: str) -> str:
    envelope = json.loads(document)
    sealed = envelope["sealed"]
    envelope["sealed"] = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    return json.dumps(envelope)


def import_into(adapter: Adapter, config: dict[str, Any], state: State, document: str, used_at: int) -> None:
    """Imports on a fresh engine of another deployment and signs in there."""
    adapter.ok(f"config {json.dumps(config)}")
    at(adapter, state, used_at)
    bad = run(adapter, state, True, {"op": "import_user", "document": tampered(document), "key": EXPORT_KEY})
    if bad.get("error") != "invalid_input":
        raise Violation(f"a tampered document: {bad}")
    if adapter.dump():
        raise Violation(f"a refused import stored something: {sorted(adapter.dump())}")
    imported = ok(adapter, state, True, {"op": "import_user", "document": document, "key": EXPORT_KEY}, "import_user")
    kinds = [m["kind"] for m in imported["methods"]]
    if kinds != ["totp", "webauthn"] or imported["skipped"]:
        raise Violation(f"import_user: {imported}")
    replay = sign_in(adapter, state, {"kind": "totp", "value": {"totp": "$secret"}}, "replayed code")
    if replay.get("error") != "replayed":
        raise Violation(f"the code last used before the export: {replay}")
    at(adapter, state, used_at + 30)
    totp = sign_in(adapter, state, {"kind": "totp", "value": {"totp": "$secret"}}, "target TOTP")
    if totp.get("method") != "totp":
        raise Violation(f"TOTP sign-in after the import: {totp}")
    webauthn = sign_in(
        adapter, state, {"kind": "webauthn", "value": {"webauthn_get": "$options", "authenticator": "travel-key"}}, "x"
    )
    if webauthn.get("method") != "webauthn":
        raise Violation(f"WebAuthn sign-in after the import: {webauthn}")
    again = run(adapter, state, True, {"op": "import_user", "document": document, "key": EXPORT_KEY})
    if again.get("error") != "invalid_input":
        raise Violation(f"a second import: {again}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surface", action="append", required=True, help="name=adapter command")
    args = parser.parse_args()
    surfaces = dict(s.split("=", 1) for s in args.surface)
    scenario = json.loads(SCENARIO.read_text())
    source_config = scenario["config"]
    target_config = copy.deepcopy(source_config)
    target_config["keys"] = [{"id": "k2", "secret": OTHER_MASTER_KEY}]
    adapters = {name: Adapter(shlex.split(command)) for name, command in surfaces.items()}
    failures = 0
    passed = 0
    try:
        for source, exporter in adapters.items():
            for target, importer in adapters.items():
                state = State(scenario["origin"])
                try:
                    document, used_at = export_from(exporter, source_config, state)
                    import_into(importer, target_config, state, document, used_at)
                    passed += 1
                    print(f"export {source} -> import {target}: TOTP and WebAuthn sign in")
                except Violation as e:
                    failures += 1
                    print(f"export {source} -> import {target}: FAILED: {e}", file=sys.stderr)
    finally:
        for adapter in adapters.values():
            status = adapter.close()
            if status != 0:
                failures += 1
                print(f"an adapter exited with status {status}", file=sys.stderr)
    print(f"{passed} of {len(adapters) ** 2} surface pairs passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
