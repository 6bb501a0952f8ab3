//! Engines, the admin capability, and one export per canonical operation.
//!
//! Every operation takes the engine, the host's user id (1 to 256 bytes of UTF-8) and its
//! arguments; on success it writes a JSON result to `*out_json` (free it with
//! `twofa_string_free`). Results are the core's outcome objects, tagged by `"type"`:
//! `status`, `done`, `totp_setup`, `method_added`, `code_sent`, `webauthn_registration`,
//! `method`, `recovery_codes`, `challenge`, `login_success`, and for the admin handle `reset`,
//! `exported`, `imported` (docs/c-api.md shows each shape).
//! `step_up_token` arguments are optional (NULL when the user has no method yet).

use crate::error::{Failure, invalid, twofa_error};
use crate::guard::guard;
use crate::host::{Host, opt_str_arg, str_arg, twofa_host};
use crate::store::twofa_store;
use crate::{TWOFA_MAX_ADMIN_REQUEST, TWOFA_MAX_CONFIG, TWOFA_MAX_INPUT, twofa_status};
use std::ffi::{CString, c_char};
use twofa_core::store::MemoryStore;
use twofa_core::{Admin, AdminRequest, Config, Engine, Outcome, Proof, Request, TotpAlgorithm};

/// An engine: a validated config, a store, mail delivery and a clock. Thread-safe.
pub struct twofa_engine {
    engine: Engine,
    host: Host,
}

/// The admin capability of an engine (TOTP import, user deletion, reset, export and import).
/// Thread-safe. Give it only to administrative code; it needs `"admin": true` in the config.
pub struct twofa_admin {
    admin: Admin,
    host: Host,
}

const MAX_USER: usize = 256;

/// Reads the config JSON argument.
unsafe fn config_arg(config_json: *const c_char) -> Result<Config, Failure> {
    // SAFETY: forwarded contract.
    let json = unsafe { str_arg(config_json, "config_json", TWOFA_MAX_CONFIG) }?;
    Ok(Config::from_json(json)?)
}

fn host_arg(host: *const twofa_host) -> Host {
    // SAFETY: NULL or a valid struct per the contract.
    unsafe { host.as_ref() }.map_or_else(Host::none, |h| Host(*h))
}

fn write_out<T>(out: *mut *mut T, value: *mut T) {
    // SAFETY: checked non-NULL before the operation ran.
    unsafe { *out = value };
}

fn open(
    out: *mut *mut twofa_engine,
    err: *mut *mut twofa_error,
    make: impl FnOnce() -> Result<(Engine, Host), Failure>,
) -> twofa_status {
    guard(err, || {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let (engine, host) = make()?;
        write_out(out, Box::into_raw(Box::new(twofa_engine { engine, host })));
        Ok(())
    })
}

/// Opens an engine whose store is the host's callbacks (`store_get`, `store_put` and
/// `store_delete` are required), with its mail and clock callbacks.
///
/// # Safety
/// `config_json` a NUL-terminated string; `host` a valid struct; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_engine_new(
    config_json: *const c_char,
    host: *const twofa_host,
    out: *mut *mut twofa_engine,
    err: *mut *mut twofa_error,
) -> twofa_status {
    open(out, err, || {
        // SAFETY: forwarded contract.
        let config = unsafe { config_arg(config_json) }?;
        if host.is_null() {
            return Err(invalid("host is NULL"));
        }
        let host = host_arg(host);
        if host.0.store_get.is_none() || host.0.store_put.is_none() || host.0.store_delete.is_none() {
            return Err(invalid("host: store_get, store_put and store_delete are required"));
        }
        Ok((host.events_of(Engine::new(config, host, host)?), host))
    })
}

/// Opens an engine on the embedded SQLite store at `path` (NULL: the config's `sqlite_path`).
/// `host` (optional) supplies mail and clock; its store callbacks are ignored.
///
/// # Safety
/// String arguments NUL-terminated or NULL where allowed; `host` NULL or valid; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_engine_new_sqlite(
    config_json: *const c_char,
    path: *const c_char,
    host: *const twofa_host,
    out: *mut *mut twofa_engine,
    err: *mut *mut twofa_error,
) -> twofa_status {
    open(out, err, || {
        // SAFETY: forwarded contract.
        let config = unsafe { config_arg(config_json) }?;
        // SAFETY: forwarded contract.
        let path = match unsafe { opt_str_arg(path, "path", 4096) }? {
            Some(p) => p.to_string(),
            None => {
                config.sqlite_path.clone().ok_or_else(|| invalid("path is NULL and config.sqlite_path is unset"))?
            }
        };
        let store = twofa_core::store::SqliteStore::open(&path).map_err(crate::store::storage)?;
        let host = host_arg(host);
        Ok((host.events_of(Engine::new(config, store, host)?), host))
    })
}

/// Opens an engine on a new in-memory store (lost when the engine is freed). `host` (optional)
/// supplies mail and clock.
///
/// # Safety
/// As `twofa_engine_new_sqlite`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_engine_new_memory(
    config_json: *const c_char,
    host: *const twofa_host,
    out: *mut *mut twofa_engine,
    err: *mut *mut twofa_error,
) -> twofa_status {
    open(out, err, || {
        // SAFETY: forwarded contract.
        let config = unsafe { config_arg(config_json) }?;
        let host = host_arg(host);
        Ok((host.events_of(Engine::new(config, MemoryStore::new(), host)?), host))
    })
}

/// Opens an engine on a built-in store handle (`twofa_store_new_memory` or
/// `twofa_store_new_sqlite`), which several engines may share. `host` (optional) supplies mail
/// and clock; its store callbacks are ignored. The engine keeps the store alive.
///
/// # Safety
/// `config_json` NUL-terminated; `store` valid; `host` NULL or valid; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_engine_new_with_store(
    config_json: *const c_char,
    store: *const twofa_store,
    host: *const twofa_host,
    out: *mut *mut twofa_engine,
    err: *mut *mut twofa_error,
) -> twofa_status {
    open(out, err, || {
        // SAFETY: forwarded contract.
        let config = unsafe { config_arg(config_json) }?;
        // SAFETY: NULL or valid per the contract.
        let store = unsafe { store.as_ref() }.ok_or_else(|| invalid("store is NULL"))?;
        let host = host_arg(host);
        Ok((host.events_of(Engine::new(config, store.store.clone(), host)?), host))
    })
}

/// Frees an engine. NULL is a no-op. No call on it may be running or follow.
///
/// # Safety
/// `engine` NULL or from `twofa_engine_new*`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_engine_free(engine: *mut twofa_engine) {
    crate::guard::guard_value((), || {
        if !engine.is_null() {
            // SAFETY: per the contract it came from Box::into_raw.
            drop(unsafe { Box::from_raw(engine) });
        }
    })
}

/// Creates the admin capability of `engine` (same store, mail, clock and audit events). The
/// engine may be freed independently. Fails with `TWOFA_FORBIDDEN` unless the engine's config
/// has `"admin": true`.
///
/// # Safety
/// `engine` valid; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_new(
    engine: *const twofa_engine,
    out: *mut *mut twofa_admin,
    err: *mut *mut twofa_error,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let engine = unsafe { engine.as_ref() }.ok_or_else(|| invalid("engine is NULL"))?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        let admin = twofa_admin { admin: Admin::new(engine.engine.clone())?, host: engine.host };
        write_out(out, Box::into_raw(Box::new(admin)));
        Ok(())
    })
}

/// Frees an admin capability. NULL is a no-op.
///
/// # Safety
/// `admin` NULL or from `twofa_admin_new`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_free(admin: *mut twofa_admin) {
    crate::guard::guard_value((), || {
        if !admin.is_null() {
            // SAFETY: per the contract it came from Box::into_raw.
            drop(unsafe { Box::from_raw(admin) });
        }
    })
}

/// Serialises an outcome into a new C string.
pub(crate) fn outcome_json(outcome: &Outcome) -> Result<*mut c_char, Failure> {
    let json = serde_json::to_string(outcome).map_err(|e| Failure::from(twofa_core::Error::Internal(e.to_string())))?;
    Ok(CString::new(json).map_err(|_| invalid("result contains NUL"))?.into_raw())
}

/// Checks the common arguments, builds the request, runs it, writes the JSON result.
fn run(
    engine: *const twofa_engine,
    user: *const c_char,
    out_json: Option<*mut *mut c_char>,
    err: *mut *mut twofa_error,
    request: impl FnOnce() -> Result<Request, Failure>,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per every operation's contract.
        let engine = unsafe { engine.as_ref() }.ok_or_else(|| invalid("engine is NULL"))?;
        // SAFETY: NULL or NUL-terminated per the contract.
        let user = unsafe { str_arg(user, "user", MAX_USER) }?;
        if out_json.is_some_and(|o| o.is_null()) {
            return Err(invalid("out_json is NULL"));
        }
        let request = request()?;
        let now = engine.host.now()?;
        let outcome = engine.engine.run_at(user, request, now)?;
        if let Some(out) = out_json {
            write_out(out, outcome_json(&outcome)?);
        }
        Ok(())
    })
}

/// Reads a required string argument (capped at `TWOFA_MAX_INPUT` bytes).
fn s(p: *const c_char, name: &str) -> Result<String, Failure> {
    // SAFETY: every operation's contract: NUL-terminated or NULL.
    Ok(unsafe { str_arg(p, name, TWOFA_MAX_INPUT) }?.to_string())
}

/// Reads the optional step-up token.
fn step_up(p: *const c_char) -> Result<Option<String>, Failure> {
    // SAFETY: as above.
    Ok(unsafe { opt_str_arg(p, "step_up", 1024) }?.map(str::to_string))
}

/// `security-status`: the user's methods, policy state and advice → `{"type":"status",...}`.
///
/// # Safety
/// Pointers valid (NULL is refused); strings NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_security_status(
    engine: *const twofa_engine,
    user: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || Ok(Request::SecurityStatus))
}

/// `set-contact-email`: where security notices go, for an address the host has already proved.
/// Once the user has a usable method or recovery codes, `step_up_token` must be a valid step-up
/// token (else `TWOFA_STEP_UP_REQUIRED`); while they have neither, NULL is enough. The notice
/// goes to the previous address and to the new one → `{"type":"done","sent":N,"failed":[...]}`.
/// `twofa_contact_email_begin` / `twofa_contact_email_confirm` prove the address with a code
/// instead.
///
/// # Safety
/// As `twofa_security_status`; `step_up_token` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_set_contact_email(
    engine: *const twofa_engine,
    user: *const c_char,
    address: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::SetContactEmail { address: s(address, "address")?, step_up: step_up(step_up_token)? })
    })
}

/// `contact-email-begin`: emails a code to a new notice address, to prove it →
/// `{"type":"code_sent","sent_to","expires_at","resend_after"}`. `step_up_token` as for
/// `twofa_set_contact_email`. Another code within `email_code.resend_cooldown_secs`, or over the
/// address's budget (`email_code.address_limit` codes per `address_window_secs`, across users),
/// is `TWOFA_RATE_LIMITED`; a code that reached no one is `TWOFA_MAIL`.
///
/// # Safety
/// As `twofa_security_status`; `step_up_token` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_contact_email_begin(
    engine: *const twofa_engine,
    user: *const c_char,
    address: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::ContactEmailBegin { address: s(address, "address")?, step_up: step_up(step_up_token)? })
    })
}

/// `contact-email-confirm`: makes the address of `twofa_contact_email_begin` the notice address
/// with the code sent to it; the previous and the new address are told →
/// `{"type":"done","sent":N,"failed":[...]}`. A wrong code is `TWOFA_INVALID_CODE` (counted).
///
/// # Safety
/// As `twofa_security_status`; `step_up_token` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_contact_email_confirm(
    engine: *const twofa_engine,
    user: *const c_char,
    code: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::ContactEmailConfirm { code: s(code, "code")?, step_up: step_up(step_up_token)? })
    })
}

/// `mark-order-created`: from now on 2FA is required for the user.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_mark_order_created(
    engine: *const twofa_engine,
    user: *const c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, None, err, || Ok(Request::MarkOrderCreated))
}

/// `totp-enroll-begin` → `{"type":"totp_setup","secret","uri","qr_svg","expires_at"}`.
/// `step_up` optional.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_totp_enroll_begin(
    engine: *const twofa_engine,
    user: *const c_char,
    account_name: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::TotpEnrollBegin {
            account_name: s(account_name, "account_name")?,
            step_up: step_up(step_up_token)?,
        })
    })
}

/// `totp-enroll-confirm` → `{"type":"method_added","method":{...},"step_up":{...}|null,...}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_totp_enroll_confirm(
    engine: *const twofa_engine,
    user: *const c_char,
    code: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::TotpEnrollConfirm { code: s(code, "code")?, step_up: step_up(step_up_token)? })
    })
}

/// `email-enroll-begin`: emails a code → `{"type":"code_sent","sent_to","expires_at","resend_after"}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_email_enroll_begin(
    engine: *const twofa_engine,
    user: *const c_char,
    address: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::EmailEnrollBegin { address: s(address, "address")?, step_up: step_up(step_up_token)? })
    })
}

/// `email-enroll-confirm` → `{"type":"method_added",...}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_email_enroll_confirm(
    engine: *const twofa_engine,
    user: *const c_char,
    code: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::EmailEnrollConfirm { code: s(code, "code")?, step_up: step_up(step_up_token)? })
    })
}

/// `webauthn-register-begin` → `{"type":"webauthn_registration","options_json","expires_at"}`;
/// `options_json` is PublicKeyCredentialCreationOptions JSON for the browser.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_webauthn_register_begin(
    engine: *const twofa_engine,
    user: *const c_char,
    friendly_name: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::WebauthnRegisterBegin {
            friendly_name: s(friendly_name, "friendly_name")?,
            step_up: step_up(step_up_token)?,
        })
    })
}

/// `webauthn-register-finish` with the browser's `PublicKeyCredential.toJSON()` →
/// `{"type":"method_added",...}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_webauthn_register_finish(
    engine: *const twofa_engine,
    user: *const c_char,
    credential_json: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::WebauthnRegisterFinish {
            credential_json: s(credential_json, "credential_json")?,
            step_up: step_up(step_up_token)?,
        })
    })
}

/// `rename-method` → `{"type":"method","id","kind","label","created","last_used","flagged"}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_rename_method(
    engine: *const twofa_engine,
    user: *const c_char,
    method_id: *const c_char,
    label: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::RenameMethod {
            method_id: s(method_id, "method_id")?,
            label: s(label, "label")?,
            step_up: step_up(step_up_token)?,
        })
    })
}

/// `remove-method` → `{"type":"done","sent","failed"}`; refused (`TWOFA_POLICY_VIOLATION`)
/// when it would leave a user who must have 2FA with none.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_remove_method(
    engine: *const twofa_engine,
    user: *const c_char,
    method_id: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::RemoveMethod { method_id: s(method_id, "method_id")?, step_up: step_up(step_up_token)? })
    })
}

/// `recovery-codes-generate` → `{"type":"recovery_codes","codes":[...],"notices":{...}}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_recovery_codes_generate(
    engine: *const twofa_engine,
    user: *const c_char,
    step_up_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || Ok(Request::RecoveryCodesGenerate { step_up: step_up(step_up_token)? }))
}

/// `login-begin` → `{"type":"challenge","challenge_id","second_factor_required",
/// "enrollment_required","methods","webauthn_options","expires_at"}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_login_begin(
    engine: *const twofa_engine,
    user: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || Ok(Request::LoginBegin { device_token: None }))
}

/// `login-send-email-code` → `{"type":"code_sent",...}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_login_send_email_code(
    engine: *const twofa_engine,
    user: *const c_char,
    challenge: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || Ok(Request::LoginSendEmailCode { challenge: s(challenge, "challenge")? }))
}

/// `login-verify` with a proof of `proof_kind` "totp", "email", "webauthn" (the assertion's
/// `PublicKeyCredential.toJSON()`) or "recovery" → `{"type":"login_success","method",
/// "method_id","step_up":{"token","expires_at"},"recovery_codes_left","notices"}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_login_verify(
    engine: *const twofa_engine,
    user: *const c_char,
    challenge: *const c_char,
    proof_kind: *const c_char,
    proof: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::LoginVerify {
            challenge: s(challenge, "challenge")?,
            proof: proof_arg(proof_kind, proof)?,
            remember_device: false,
        })
    })
}

/// Reads a proof of `proof_kind` "totp", "email", "webauthn" or "recovery".
fn proof_arg(proof_kind: *const c_char, proof: *const c_char) -> Result<Proof, Failure> {
    let value = s(proof, "proof")?;
    Ok(match s(proof_kind, "proof_kind")?.as_str() {
        "totp" => Proof::Totp(value),
        "email" => Proof::Email(value),
        "webauthn" => Proof::Webauthn(value),
        "recovery" => Proof::Recovery(value),
        _ => return Err(invalid("proof_kind: totp, email, webauthn or recovery")),
    })
}

/// `login-begin` with the device token of a remembered browser (`device_token` optional: NULL
/// is `twofa_login_begin`). A valid token (this user's, neither expired nor revoked) gives
/// `"second_factor_required":false` with `"remembered_device"` set; any other token is ignored
/// and the second factor is asked as usual → `{"type":"challenge",...}`.
///
/// # Safety
/// As `twofa_security_status`; `device_token` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_login_begin_remembered(
    engine: *const twofa_engine,
    user: *const c_char,
    device_token: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        // SAFETY: NULL or NUL-terminated per the contract.
        let device_token = unsafe { opt_str_arg(device_token, "device_token", TWOFA_MAX_INPUT) }?.map(str::to_string);
        Ok(Request::LoginBegin { device_token })
    })
}

/// `login-verify` as `twofa_login_verify`; with `remember_device` the success carries
/// `"device_token":{"token","device_id","expires_at"}` for this browser (else `null`). Keep
/// the token like a session secret and pass it to `twofa_login_begin_remembered`.
/// `remember_device` needs `"remember_device":{"enabled":true}` in the config, else the call
/// is `TWOFA_INVALID_INPUT`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_login_verify_remembering(
    engine: *const twofa_engine,
    user: *const c_char,
    challenge: *const c_char,
    proof_kind: *const c_char,
    proof: *const c_char,
    remember_device: bool,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || {
        Ok(Request::LoginVerify {
            challenge: s(challenge, "challenge")?,
            proof: proof_arg(proof_kind, proof)?,
            remember_device,
        })
    })
}

/// `revoke-remembered-device`: forgets one remembered browser (`device_id` as
/// `security_status` lists it under `"remembered_devices"`); its token no longer skips the
/// second factor.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_revoke_remembered_device(
    engine: *const twofa_engine,
    user: *const c_char,
    device_id: *const c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, None, err, || Ok(Request::RevokeRememberedDevice { device_id: s(device_id, "device_id")? }))
}

/// `revoke-remembered-devices`: forgets every remembered browser of the user.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_revoke_remembered_devices(
    engine: *const twofa_engine,
    user: *const c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, None, err, || Ok(Request::RevokeRememberedDevices))
}

/// Runs any canonical operation, given as the core's request JSON (the JSON
/// `twofa_operation_new` takes, tagged by `"op"`: `{"op":"login_verify","challenge":"...",
/// "proof":{"kind":"totp","value":"123456"}}`), on the engine's store, mail and clock. On success
/// `*out_json` is the outcome JSON exactly as `twofa_operation_finish` returns it (tagged by
/// `"type"`; `mark_order_created` gives `{"type":"done","sent":0,"failed":[]}`). A malformed
/// request (unknown `"op"` or field, duplicate key, wrong type) is `TWOFA_INVALID_INPUT` before
/// anything is read or written.
///
/// # Safety
/// As `twofa_security_status`; `request_json` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_engine_run(
    engine: *const twofa_engine,
    user: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run(engine, user, Some(out_json), err, || Ok(Request::from_json(&s(request_json, "request_json")?)?))
}

fn run_admin(
    admin: *const twofa_admin,
    user: *const c_char,
    out_json: Option<*mut *mut c_char>,
    err: *mut *mut twofa_error,
    request: impl FnOnce() -> Result<AdminRequest, Failure>,
) -> twofa_status {
    guard(err, || {
        // SAFETY: NULL or valid per the contract.
        let admin = unsafe { admin.as_ref() }.ok_or_else(|| invalid("admin is NULL"))?;
        // SAFETY: as above.
        let user = unsafe { str_arg(user, "user", MAX_USER) }?;
        if out_json.is_some_and(|o| o.is_null()) {
            return Err(invalid("out_json is NULL"));
        }
        let request = request()?;
        let now = admin.host.now()?;
        let outcome = admin.admin.run_at(user, request, now)?;
        if let Some(out) = out_json {
            write_out(out, outcome_json(&outcome)?);
        }
        Ok(())
    })
}

/// Admin: imports a confirmed TOTP secret (base32) with `algorithm` "SHA1", "SHA256" or
/// "SHA512", 6 to 8 `digits` and a `period` in seconds → `{"type":"method_added",...}`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_totp_import(
    admin: *const twofa_admin,
    user: *const c_char,
    secret: *const c_char,
    algorithm: *const c_char,
    digits: u8,
    period: u64,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run_admin(admin, user, Some(out_json), err, || {
        let algorithm = match s(algorithm, "algorithm")?.as_str() {
            "SHA1" => TotpAlgorithm::Sha1,
            "SHA256" => TotpAlgorithm::Sha256,
            "SHA512" => TotpAlgorithm::Sha512,
            _ => return Err(invalid("algorithm: SHA1, SHA256 or SHA512")),
        };
        Ok(AdminRequest::TotpImport { secret: s(secret, "secret")?, algorithm, digits, period })
    })
}

/// Admin: deletes everything twofa stores about the user (`TWOFA_NOT_FOUND` if nothing).
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_delete_user(
    admin: *const twofa_admin,
    user: *const c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run_admin(admin, user, None, err, || Ok(AdminRequest::DeleteUser))
}

/// Admin: removes every method, recovery code and remembered device of a user who lost
/// access, records `actor` and `reason` (both non-empty) and mails the user at every known
/// address → `{"type":"reset","methods_removed":N,"notices":{...}}`. `TWOFA_NOT_FOUND` when
/// twofa knows nothing of the user. If policy requires 2FA, the next sign-in answers
/// `"enrollment_required":true`.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_reset_user(
    admin: *const twofa_admin,
    user: *const c_char,
    actor: *const c_char,
    reason: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run_admin(admin, user, Some(out_json), err, || {
        Ok(AdminRequest::ResetUser { actor: s(actor, "actor")?, reason: s(reason, "reason")? })
    })
}

/// Admin: exports the user's second factors as a document sealed under `key` (standard base64
/// of at least 32 bytes) and bound to the user id → `{"type":"exported","document":"..."}`
/// (docs/export.md). The document is secret material: store and move it like the key.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_export_user(
    admin: *const twofa_admin,
    user: *const c_char,
    key: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run_admin(admin, user, Some(out_json), err, || Ok(AdminRequest::ExportUser { key: s(key, "key")? }))
}

/// Admin: imports a document from `twofa_admin_export_user` for the same user id, who must
/// have no second factor yet → `{"type":"imported","methods":[...],"skipped":[...]}`. A malformed
/// document, another user's, a wrong key or any change to it is `TWOFA_INVALID_INPUT` and
/// stores nothing. WebAuthn devices come along only when the relying party id is the same.
/// `document` may be up to `TWOFA_MAX_CONFIG` bytes.
///
/// # Safety
/// As `twofa_security_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_import_user(
    admin: *const twofa_admin,
    user: *const c_char,
    document: *const c_char,
    key: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run_admin(admin, user, Some(out_json), err, || {
        // SAFETY: NUL-terminated or NULL per the contract.
        let document = unsafe { str_arg(document, "document", TWOFA_MAX_CONFIG) }?.to_string();
        Ok(AdminRequest::ImportUser { document, key: s(key, "key")? })
    })
}

/// Runs any admin operation, given as the core's admin request JSON (the JSON
/// `twofa_admin_operation_new` takes: `{"op":"totp_import","secret":"...","algorithm":"SHA1",
/// "digits":6,"period":30}`, `{"op":"delete_user"}`, `{"op":"reset_user","actor":"...",
/// "reason":"..."}`, `{"op":"export_user","key":"..."}` or `{"op":"import_user",
/// "document":"...","key":"..."}`; at most `TWOFA_MAX_ADMIN_REQUEST` bytes), on the engine's
/// store, mail, clock and audit events. On success `*out_json` is the outcome JSON as
/// `twofa_operation_finish` returns it (`delete_user` gives
/// `{"type":"done","sent":0,"failed":[]}`). A malformed request is `TWOFA_INVALID_INPUT`
/// before anything is read or written.
///
/// # Safety
/// As `twofa_security_status`; `request_json` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn twofa_admin_run(
    admin: *const twofa_admin,
    user: *const c_char,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut twofa_error,
) -> twofa_status {
    run_admin(admin, user, Some(out_json), err, || {
        // SAFETY: NUL-terminated or NULL per the contract.
        let json = unsafe { str_arg(request_json, "request_json", TWOFA_MAX_ADMIN_REQUEST) }?;
        Ok(AdminRequest::from_json(json)?)
    })
}
