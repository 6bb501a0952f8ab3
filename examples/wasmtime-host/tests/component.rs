//! The component under wasmtime: the shared scenario on both surfaces, store faults, traps, the
//! binary's shape, and expected failures as WIT errors.
//!
//! Needs the component: `make component` (or `make test`, which builds it first).

use std::sync::{Arc, OnceLock};
use twofa_core::store::{MemoryStore, SqliteStore, Store};
use twofa_wasmtime_host::host::{self, COMPONENT_HEADER, ENGINE_EXPORT, SharedStore, wit};
use twofa_wasmtime_host::scenario::{self, T0, run_scenario, totp_code};
use twofa_wasmtime_host::{Component, ComponentSurface, Instance, Native, VirtualClock};

/// The component, compiled once for every test of this file.
fn component() -> &'static Component {
    static COMPONENT: OnceLock<Component> = OnceLock::new();
    COMPONENT.get_or_init(|| Component::load_default().unwrap_or_else(|e| panic!("{e}")))
}

fn config_json() -> String {
    serde_json::to_string(&scenario::config()).unwrap()
}

/// A fresh, opened instance over `store`.
fn instance(store: SharedStore, clock: &VirtualClock) -> Instance {
    let mut instance = component().instantiate(store, clock).unwrap();
    instance.open(&config_json()).unwrap().unwrap();
    instance
}

fn sqlite(dir: &tempfile::TempDir) -> SharedStore {
    Arc::new(SqliteStore::open(dir.path().join("twofa.sqlite")).unwrap())
}

fn record(store: &SharedStore, user: &str) -> Option<Vec<u8>> {
    store.get(&format!("user/{user}")).unwrap().map(|v| v.bytes)
}

fn native_transcript() -> scenario::Transcript {
    run_scenario(&mut Native::new(scenario::config(), VirtualClock::at(T0)).unwrap())
}

fn component_transcript(store: SharedStore) -> scenario::Transcript {
    let mut surface = ComponentSurface::new(component(), store, &scenario::config(), VirtualClock::at(T0)).unwrap();
    run_scenario(&mut surface)
}

#[test]
fn scenario_on_the_native_core() {
    let transcript = native_transcript();
    assert!(transcript.steps.len() > 50, "{transcript}");
}

#[test]
fn scenario_on_the_component_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let transcript = component_transcript(store.clone());
    assert!(transcript.steps.len() > 50, "{transcript}");
    assert!(record(&store, "bob").is_some(), "the records are in SQLite");
    assert!(record(&store, "alice").is_some(), "alice enrolled again after delete_user");
}

#[test]
fn native_and_component_transcripts_are_identical() {
    let native = native_transcript();
    let component = component_transcript(Arc::new(MemoryStore::new()));
    assert_eq!(native, component, "native:\n{native}\ncomponent:\n{component}");
}

/// Calls `op` with the 1st, 2nd, ... store call failing until it succeeds. Every failing call
/// must answer `storage` and leave the record as it was. (A code may already have been mailed
/// when a later store call fails: the core then discards it, restoring the record.) Returns how
/// many store calls were failed.
fn fail_each_store_call<T: std::fmt::Debug>(
    instance: &mut Instance,
    user: &str,
    mut op: impl FnMut(&mut Instance) -> wasmtime::Result<Result<T, wit::Error>>,
) -> u64 {
    for n in 1.. {
        let before = record(&instance.state().store, user);
        instance.state().faults.fail_nth_store_call(n);
        let result = op(instance).expect("a failing store is not a trap");
        if instance.state().faults.pending() {
            instance.state().faults.clear();
            assert!(result.is_ok(), "with no fault the operation succeeds: {result:?}");
            return n - 1;
        }
        assert!(matches!(result, Err(wit::Error::Storage(_))), "store call {n}: {result:?}");
        assert_eq!(record(&instance.state().store, user), before, "store call {n} failed: the record is unchanged");
    }
    unreachable!()
}

#[test]
fn a_failing_store_call_is_a_storage_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = VirtualClock::at(T0);
    // Each attempt spends the address's budget before a later store call fails: a budget
    // larger than the scenario's (2) lets every call be failed in turn.
    let mut config = scenario::config();
    config.email_code.address_limit = 100;
    let mut i = component().instantiate(sqlite(&dir), &clock).unwrap();
    i.open(&serde_json::to_string(&config).unwrap()).unwrap().unwrap();

    // email-enroll-begin on an existing record.
    i.set_contact_email("u", "u@example.com", None).unwrap().unwrap();
    let failed = fail_each_store_call(&mut i, "u", |i| i.email_enroll_begin("u", "u2@example.com", None));
    eprintln!("email-enroll-begin: store calls 1..={failed} each failed in turn");
    assert!(failed >= 2, "both the read and the write were failed ({failed})");
    assert_eq!(i.state().outbox.last().unwrap().to, "u2@example.com");

    // A TOTP sign-in: the code is not used up by the failed attempts.
    let setup = i.totp_enroll_begin("t", "t@example.com", None).unwrap().unwrap();
    let code = |t| totp_code(&setup.secret, t, totp_rs::Algorithm::SHA1, 6, 30);
    i.totp_enroll_confirm("t", &code(T0), None).unwrap().unwrap();
    clock.advance(30);
    let ch = i.login_begin("t", None).unwrap().unwrap().challenge_id.unwrap();
    let proof = wit::Proof::Totp(code(T0 + 30));
    let failed = fail_each_store_call(&mut i, "t", |i| i.login_verify("t", &ch, &proof, false));
    eprintln!("login-verify: store calls 1..={failed} each failed in turn");
    assert!(failed >= 2, "both the read and the write were failed ({failed})");
}

#[test]
fn a_trap_reaches_the_host_and_a_fresh_instance_continues_on_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let clock = VirtualClock::at(T0);
    let mut first = instance(store.clone(), &clock);
    first.set_contact_email("u", "u@example.com", None).unwrap().unwrap();
    let before = record(&store, "u");

    first.state().faults.trap_nth_store_call(2); // the write of set-contact-email
    let trap = first.set_contact_email("u", "new@example.com", None);
    let message = format!("{:?}", trap.expect_err("a trap is an Err for the host"));
    assert!(message.contains("injected trap"), "{message}");
    assert_eq!(record(&store, "u"), before, "nothing was written");

    let mut second = instance(store.clone(), &clock);
    let status = second.security_status("u").unwrap().unwrap();
    assert_eq!(status.contact_email.as_deref(), Some("u@example.com"));
    second.set_contact_email("u", "new@example.com", None).unwrap().unwrap();
    assert_eq!(second.security_status("u").unwrap().unwrap().contact_email.as_deref(), Some("new@example.com"));
}

#[test]
fn the_file_is_a_component_exporting_the_engine() {
    let path = host::default_component_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}: run `make component`", path.display()));
    assert_eq!(bytes[..8], COMPONENT_HEADER, "a component, not a core module");

    let c = component();
    let ty = c.component().component_type();
    let exports: Vec<String> = ty.exports(c.engine()).map(|(name, _)| name.to_string()).collect();
    assert!(exports.iter().any(|e| e == ENGINE_EXPORT), "{exports:?}");
    let imports: Vec<String> = ty.imports(c.engine()).map(|(name, _)| name.to_string()).collect();
    for wanted in ["twofa:auth/store@0.1.0", "twofa:auth/mailer@0.1.0", "twofa:auth/events@0.1.0"] {
        assert!(imports.iter().any(|i| i == wanted), "{wanted} in {imports:?}");
    }
}

#[test]
fn expected_failures_are_wit_errors_not_traps() {
    let clock = VirtualClock::at(T0);
    let mut i = component().instantiate(Arc::new(MemoryStore::new()), &clock).unwrap();
    assert!(matches!(i.open("{").unwrap(), Err(wit::Error::InvalidInput(_))));
    assert!(matches!(i.open(r#"{"issuer": "x", "keys": []}"#).unwrap(), Err(wit::Error::InvalidInput(_))));
    i.open(&config_json()).unwrap().unwrap();

    assert!(matches!(i.security_status("").unwrap(), Err(wit::Error::InvalidInput(_))));
    let setup = i.totp_enroll_begin("u", "u@example.com", None).unwrap().unwrap();
    let good = totp_code(&setup.secret, T0, totp_rs::Algorithm::SHA1, 6, 30);
    let bad = if good == "123456" { "654321" } else { "123456" };
    assert!(matches!(i.totp_enroll_confirm("u", "12", None).unwrap(), Err(wit::Error::InvalidInput(_))));
    assert!(matches!(i.totp_enroll_confirm("u", bad, None).unwrap(), Err(wit::Error::InvalidCode)));
    i.totp_enroll_confirm("u", &good, None).unwrap().unwrap();
    let ch = i.login_begin("u", None).unwrap().unwrap().challenge_id.unwrap();
    assert!(matches!(
        i.login_verify("u", &ch, &wit::Proof::Totp(bad.into()), false).unwrap(),
        Err(wit::Error::InvalidCode)
    ));
    assert!(matches!(
        i.login_verify("u", "no-such-challenge", &wit::Proof::Totp(good.clone()), false).unwrap(),
        Err(wit::Error::InvalidInput(_) | wit::Error::NotFound(_) | wit::Error::Expired)
    ));
    assert!(matches!(
        i.totp_import("v", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", wit::TotpAlgorithm::Sha1, 9, 30).unwrap(),
        Err(wit::Error::InvalidInput(_))
    ));
    assert!(matches!(i.remove_method("u", "totp-1", None).unwrap(), Err(wit::Error::StepUpRequired)));
}

#[test]
fn audit_events_reach_the_events_import() {
    let clock = VirtualClock::at(T0);
    let mut i = instance(Arc::new(MemoryStore::new()), &clock);
    let setup = i.totp_enroll_begin("u", "u@example.com", None).unwrap().unwrap();
    assert!(i.state().events.is_empty(), "a pending enrolment emits nothing");
    let code = totp_code(&setup.secret, T0, totp_rs::Algorithm::SHA1, 6, 30);
    i.totp_enroll_confirm("u", &code, None).unwrap().unwrap();
    let event = i.state().events.pop().expect("method_added");
    assert_eq!(event.kind, wit::EventKind::MethodAdded);
    assert_eq!((event.user.as_str(), event.at), ("u", T0));
    assert_eq!((event.method, event.method_id.as_deref()), (Some(wit::MethodKind::Totp), Some("totp-1")));

    // A remembered browser: the token skips the second factor, and no event holds it.
    clock.advance(30);
    let ch = i.login_begin("u", None).unwrap().unwrap().challenge_id.unwrap();
    let proof = wit::Proof::Totp(totp_code(&setup.secret, T0 + 30, totp_rs::Algorithm::SHA1, 6, 30));
    let success = i.login_verify("u", &ch, &proof, true).unwrap().unwrap();
    let token = success.device_token.expect("remember-device gives a device token");
    let kinds: Vec<_> = i.state().events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [wit::EventKind::LoginSucceeded, wit::EventKind::DeviceRemembered]);
    let remembered = i.login_begin("u", Some(&token.token)).unwrap().unwrap();
    assert!(!remembered.second_factor_required);
    assert_eq!(remembered.remembered_device.as_deref(), Some(token.device_id.as_str()));
    let status = i.security_status("u").unwrap().unwrap();
    assert_eq!(status.remembered_devices.len(), 1);
    i.revoke_remembered_devices("u").unwrap().unwrap();
    assert!(i.security_status("u").unwrap().unwrap().remembered_devices.is_empty());
    let log = format!("{:?}", i.state().events);
    assert!(!log.contains(&token.token) && !log.contains(&setup.secret), "{log}");
}

#[test]
fn the_admin_resource_needs_the_capability() {
    let clock = VirtualClock::at(T0);
    let mut config = scenario::config();
    config.admin = false;
    let json = serde_json::to_string(&config).unwrap();
    let mut i = component().instantiate(Arc::new(MemoryStore::new()), &clock).unwrap();
    i.open(&json).unwrap().expect("the engine opens without the admin capability");
    i.set_contact_email("u", "u@example.com", None).unwrap().unwrap();
    assert!(matches!(i.reset_user("u", "support", "lost phone").unwrap(), Err(wit::Error::Forbidden(_))));
    assert!(matches!(i.delete_user("u").unwrap(), Err(wit::Error::Forbidden(_))));
    assert!(matches!(i.open_admin(&json).unwrap(), Err(wit::Error::Forbidden(_))));

    // With the capability: reset, export and import (under the same user id).
    i.open_admin(&config_json()).unwrap().unwrap();
    let setup = i.totp_enroll_begin("u", "u@example.com", None).unwrap().unwrap();
    i.totp_enroll_confirm("u", &totp_code(&setup.secret, T0, totp_rs::Algorithm::SHA1, 6, 30), None).unwrap().unwrap();
    let key = "ZXhwb3J0LWtleS1leHBvcnQta2V5LWV4cG9ydC1rZXkh";
    let document = i.export_user("u", key).unwrap().unwrap();
    assert!(!document.contains(&setup.secret), "the document is sealed");
    let reset = i.reset_user("u", "support-7", "lost phone").unwrap().unwrap();
    assert_eq!(reset.methods_removed, 1);
    let last = i.security_status("u").unwrap().unwrap().last_reset.expect("the reset is recorded");
    assert_eq!((last.actor.as_str(), last.reason.as_str(), last.at), ("support-7", "lost phone", T0));
    let imported = i.import_user("u", &document, key).unwrap().unwrap();
    assert_eq!(imported.methods.len(), 1);
    assert!(matches!(i.import_user("v", &document, key).unwrap(), Err(wit::Error::InvalidInput(_))));
    let kinds: Vec<_> = i.state().events.iter().map(|e| e.kind).collect();
    assert!(
        kinds.ends_with(&[wit::EventKind::AdminReset, wit::EventKind::MethodRemoved, wit::EventKind::UserImported]),
        "{kinds:?}"
    );
}

#[test]
fn a_new_contact_address_is_proved_with_a_code_under_a_step_up() {
    let clock = VirtualClock::at(T0);
    let mut i = instance(Arc::new(MemoryStore::new()), &clock);
    // Without a method, no step-up is needed; a first address is not told.
    let notices = i.set_contact_email("u", "old@example.com", None).unwrap().unwrap();
    assert_eq!(notices.sent, 0);

    let setup = i.totp_enroll_begin("u", "u@example.com", None).unwrap().unwrap();
    let code = totp_code(&setup.secret, T0, totp_rs::Algorithm::SHA1, 6, 30);
    let step_up = i.totp_enroll_confirm("u", &code, None).unwrap().unwrap().step_up.expect("the first method").token;
    let step_up = Some(step_up.as_str());
    assert!(matches!(i.set_contact_email("u", "x@example.com", None).unwrap(), Err(wit::Error::StepUpRequired)));
    assert!(matches!(i.contact_email_begin("u", "new@example.com", None).unwrap(), Err(wit::Error::StepUpRequired)));
    assert!(matches!(i.contact_email_confirm("u", "123456", None).unwrap(), Err(wit::Error::StepUpRequired)));
    assert!(matches!(
        i.contact_email_begin("u", "new\u{200b}@example.com", step_up).unwrap(),
        Err(wit::Error::InvalidInput(_))
    ));

    let sent = i.contact_email_begin("u", "new@example.com", step_up).unwrap().unwrap();
    assert_eq!(sent.sent_to, ["new@example.com"]);
    assert!(sent.resend_after > T0 && sent.expires_at > T0, "{sent:?}");
    assert!(matches!(
        i.contact_email_begin("u", "new@example.com", step_up).unwrap(),
        Err(wit::Error::RateLimited(secs)) if secs > 0
    ));
    let mail = i.state().outbox.last().unwrap().clone();
    assert_eq!(mail.to, "new@example.com");
    let code = mail.text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() >= 6).unwrap().to_string();
    let wrong: String = code.bytes().map(|d| char::from(b'0' + (d - b'0' + 1) % 10)).collect();
    assert!(matches!(i.contact_email_confirm("u", &wrong, step_up).unwrap(), Err(wit::Error::InvalidCode)));
    assert_eq!(i.security_status("u").unwrap().unwrap().contact_email.as_deref(), Some("old@example.com"));

    let before = i.state().outbox.len();
    let notices = i.contact_email_confirm("u", &code, step_up).unwrap().unwrap();
    assert_eq!((notices.sent, notices.failed.len()), (2, 0), "the old and the new address are told");
    let told: Vec<_> = i.state().outbox[before..].iter().map(|m| m.to.clone()).collect();
    assert!(told.contains(&"old@example.com".to_string()) && told.contains(&"new@example.com".to_string()), "{told:?}");
    assert_eq!(i.security_status("u").unwrap().unwrap().contact_email.as_deref(), Some("new@example.com"));
    assert_eq!(i.state().events.last().unwrap().kind, wit::EventKind::ContactEmailChanged);
    assert!(
        matches!(i.contact_email_confirm("u", &code, step_up).unwrap(), Err(wit::Error::NotFound(_))),
        "the code is used up"
    );
}

#[test]
fn an_address_receives_at_most_address_limit_codes_across_users() {
    let clock = VirtualClock::at(T0);
    let mut config = scenario::config();
    config.email_code.address_limit = 2;
    let mut i = component().instantiate(Arc::new(MemoryStore::new()), &clock).unwrap();
    i.open(&serde_json::to_string(&config).unwrap()).unwrap().unwrap();
    i.email_enroll_begin("u1", "shared@example.com", None).unwrap().unwrap();
    i.contact_email_begin("u2", "Shared@Example.com", None).unwrap().unwrap();
    assert!(
        matches!(i.email_enroll_begin("u3", "shared@example.com", None).unwrap(), Err(wit::Error::RateLimited(3600))),
        "a third code to the same address within the hour, from another user"
    );
    assert_eq!(i.state().outbox.len(), 2, "no third code reached the inbox");
    assert_eq!(i.security_status("u3").unwrap().unwrap().pending.email, None, "the refused code was discarded");
}
