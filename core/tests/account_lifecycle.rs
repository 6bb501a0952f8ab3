//! Issue 10's features through the engine: the enforcement grace period, remembered devices,
//! the admin reset, audit events and portable export/import (with a soft WebAuthn authenticator
//! as the other side).

mod common;
#[path = "support/webauthn.rs"]
mod webauthn_support;

use common::*;
use std::sync::{Arc, Mutex};
use twofa_core::store::{MemoryStore, Store};
use twofa_core::webauthn::{UserVerification, WebauthnConfig};
use twofa_core::{Admin, Config, Engine, Error, EventKind, MethodKind, Proof, SecurityEvent};
use webauthn_support::SoftAuthenticator;

const ORIGIN: &str = "http://localhost:8080";
const EXPORT_KEY: &str = "ZXhwb3J0LWtleS1leHBvcnQta2V5LWV4cG9ydC1rZXkh";
const DAY: u64 = 86_400;

/// Every event an engine emitted, in order.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<SecurityEvent>>>);

impl Events {
    fn take(&self) -> Vec<SecurityEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn kinds(&self) -> Vec<EventKind> {
        self.take().into_iter().map(|e| e.kind).collect()
    }
}

fn full_config(rp_id: &str) -> Config {
    let mut c = config();
    c.remember_device.enabled = true;
    c.webauthn = Some(WebauthnConfig {
        rp_id: rp_id.into(),
        rp_name: "Example Shop".into(),
        origins: vec![format!("http://{rp_id}:8080")],
        user_verification: UserVerification::Preferred,
        timeout_secs: 300,
    });
    c
}

struct World {
    engine: Engine,
    admin: Admin,
    clock: TestClock,
    outbox: Outbox,
    events: Events,
    store: Arc<MemoryStore>,
}

fn world_with(config: Config) -> World {
    let store = Arc::new(MemoryStore::new());
    let (engine, clock, outbox) = engine_with(config, store.clone());
    let events = Events::default();
    let sink = events.clone();
    let engine = engine.with_events(move |e: &SecurityEvent| sink.0.lock().unwrap().push(e.clone()));
    let admin = Admin::new(engine.clone()).unwrap();
    World { engine, admin, clock, outbox, events, store }
}

fn world() -> World {
    world_with(full_config("localhost"))
}

fn record(w: &World, user: &str) -> Option<Vec<u8>> {
    w.store.get(&format!("user/{user}")).unwrap().map(|v| v.bytes)
}

/// Signs in with TOTP (one step later), asking to remember the browser; returns the token.
fn remembered_sign_in(w: &World, user: &str, secret: &str) -> String {
    w.clock.advance(30);
    let ch = w.engine.login_begin(user).unwrap().challenge_id.unwrap();
    let code = totp_code(secret, w.clock.get());
    let ok = w.engine.login_verify_remembering(user, &ch, Proof::Totp(code), true).unwrap();
    ok.device_token.expect("a device token").token
}

fn skips_second_factor(w: &World, user: &str, token: &str) -> bool {
    let ch = w.engine.login_begin_remembered(user, Some(token)).unwrap();
    assert_eq!(ch.challenge_id.is_none(), !ch.second_factor_required);
    ch.remembered_device.is_some()
}

#[test]
fn grace_period_reports_the_deadline_then_blocks() {
    let mut c = config();
    c.policy.grace_period_secs = 45 * DAY;
    let w = world_with(c);
    w.engine.mark_order_created("u").unwrap();
    let deadline = T0 + 45 * DAY;
    let status = w.engine.security_status("u").unwrap();
    assert!(status.two_factor_required && !status.compliant);
    assert_eq!(status.enrollment_deadline, Some(deadline));
    let ch = w.engine.login_begin("u").unwrap();
    assert!(!ch.enrollment_required && !ch.second_factor_required);
    assert_eq!(ch.enrollment_deadline, Some(deadline));
    w.clock.set(deadline - 1);
    assert!(!w.engine.login_begin("u").unwrap().enrollment_required);
    w.clock.set(deadline);
    let ch = w.engine.login_begin("u").unwrap();
    assert!(ch.enrollment_required && ch.challenge_id.is_none());
    // Enrolling ends the grace: no deadline any more, a second factor is asked.
    let (_secret, _) = enroll_totp(&w.engine, &w.clock, "u", None);
    assert_eq!(w.engine.security_status("u").unwrap().enrollment_deadline, None);
    let ch = w.engine.login_begin("u").unwrap();
    assert!(ch.second_factor_required && !ch.enrollment_required && ch.enrollment_deadline.is_none());
    // Without a grace period the requirement blocks at once.
    let w = world();
    w.engine.mark_order_created("v").unwrap();
    assert!(w.engine.login_begin("v").unwrap().enrollment_required);
}

#[test]
fn remembered_devices_skip_the_second_factor_until_expired_or_revoked() {
    let w = world();
    let (secret, _) = enroll_totp(&w.engine, &w.clock, "u", None);
    let token = remembered_sign_in(&w, "u", &secret);
    assert!(skips_second_factor(&w, "u", &token));
    let status = w.engine.security_status("u").unwrap();
    assert_eq!(status.remembered_devices.len(), 1);
    let device = &status.remembered_devices[0];
    assert_eq!((device.method, device.expires_at), (MethodKind::Totp, w.clock.get() + 30 * DAY));
    assert_eq!(device.last_used, Some(w.clock.get()));
    // Stored only as a keyed hash.
    let stored = String::from_utf8(record(&w, "u").unwrap()).unwrap();
    assert!(!stored.contains(token.split_once('.').unwrap().1));

    // Another user's token, a forged one and garbage are ignored: the usual challenge.
    let (secret_v, _) = enroll_totp(&w.engine, &w.clock, "v", None);
    let token_v = remembered_sign_in(&w, "v", &secret_v);
    assert!(!skips_second_factor(&w, "u", &token_v));
    let (id, _) = token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "A".repeat(43));
    for bad in [forged.as_str(), "", ".", "x.y", &"a".repeat(500)] {
        assert!(!skips_second_factor(&w, "u", bad), "{bad:?}");
    }

    // Expiry.
    w.clock.advance(30 * DAY);
    assert!(!skips_second_factor(&w, "u", &token));
    assert!(w.engine.security_status("u").unwrap().remembered_devices.is_empty());

    // Revoking one, then all.
    let t1 = remembered_sign_in(&w, "u", &secret);
    let t2 = remembered_sign_in(&w, "u", &secret);
    let id1 = t1.split_once('.').unwrap().0;
    w.engine.revoke_remembered_device("u", id1).unwrap();
    assert!(!skips_second_factor(&w, "u", &t1) && skips_second_factor(&w, "u", &t2));
    assert!(matches!(w.engine.revoke_remembered_device("u", id1), Err(Error::NotFound(_))));
    w.engine.revoke_remembered_devices("u").unwrap();
    assert!(!skips_second_factor(&w, "u", &t2));
}

#[test]
fn removing_a_method_or_using_a_recovery_code_revokes_every_remembered_device() {
    let w = world();
    let (secret, step_up) = enroll_totp(&w.engine, &w.clock, "u", None);
    let step_up = step_up.unwrap();
    let codes = w.engine.recovery_codes_generate("u", Some(&step_up)).unwrap().codes;
    w.engine.email_enroll_begin("u", "u@example.com", Some(&step_up)).unwrap();
    let code = w.outbox.last_code("u@example.com");
    w.engine.email_enroll_confirm("u", &code, Some(&step_up)).unwrap();

    let token = remembered_sign_in(&w, "u", &secret);
    let ch = w.engine.login_begin("u").unwrap().challenge_id.unwrap();
    w.engine.login_verify("u", &ch, Proof::Recovery(codes[0].clone())).unwrap();
    assert!(!skips_second_factor(&w, "u", &token), "a used recovery code revokes remembered devices");

    let token = remembered_sign_in(&w, "u", &secret);
    let step_up = sign_in_totp(&w.engine, &w.clock, "u", &secret);
    let email = w.engine.security_status("u").unwrap().methods[1].id.clone();
    w.engine.remove_method("u", &email, Some(&step_up)).unwrap();
    assert!(!skips_second_factor(&w, "u", &token), "removing a method revokes remembered devices");
}

#[test]
fn a_remembered_device_never_skips_enrolment_or_yields_a_step_up_token() {
    let w = world();
    let (secret, _) = enroll_totp(&w.engine, &w.clock, "u", None);
    let token = remembered_sign_in(&w, "u", &secret);
    let ch = w.engine.login_begin_remembered("u", Some(&token)).unwrap();
    assert!(ch.challenge_id.is_none(), "no challenge, so nothing can yield a step-up token");
    w.engine.mark_order_created("u").unwrap();
    w.admin.reset_user("u", "support-7", "lost phone").unwrap();
    let ch = w.engine.login_begin_remembered("u", Some(&token)).unwrap();
    assert!(ch.enrollment_required && ch.remembered_device.is_none());
}

#[test]
fn remembering_needs_the_config() {
    let (engine, clock, _) = engine();
    let (secret, _) = enroll_totp(&engine, &clock, "u", None);
    clock.advance(30);
    let ch = engine.login_begin("u").unwrap().challenge_id.unwrap();
    let code = totp_code(&secret, clock.get());
    let err = engine.login_verify_remembering("u", &ch, Proof::Totp(code.clone()), true).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(ref m) if m.contains("remember_device")), "{err:?}");
    // Nothing was spent: the same code still signs in.
    engine.login_verify("u", &ch, Proof::Totp(code)).unwrap();
}

#[test]
fn admin_reset_removes_everything_tells_every_address_and_requires_enrolment() {
    let w = world();
    w.engine.set_contact_email("u", "contact@example.com", None).unwrap();
    w.engine.mark_order_created("u").unwrap();
    let (secret, step_up) = enroll_totp(&w.engine, &w.clock, "u", None);
    let step_up = step_up.unwrap();
    w.engine.email_enroll_begin("u", "second@example.com", Some(&step_up)).unwrap();
    let code = w.outbox.last_code("second@example.com");
    w.engine.email_enroll_confirm("u", &code, Some(&step_up)).unwrap();
    w.engine.recovery_codes_generate("u", Some(&step_up)).unwrap();
    let token = remembered_sign_in(&w, "u", &secret);
    w.events.take();
    let before = w.outbox.count();

    let done = w.admin.reset_user("u", "support-7", "lost phone, identity checked by video call").unwrap();
    assert_eq!(done.methods_removed, 2);
    assert_eq!(done.notices.sent, 2);
    let mails: Vec<_> = w.outbox.all().split_off(before);
    let mut to: Vec<_> = mails.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["contact@example.com", "second@example.com"]);
    assert!(mails[0].text.contains("identity checked by video call"));

    let status = w.engine.security_status("u").unwrap();
    assert!(status.methods.is_empty() && status.recovery_codes_left == 0 && status.remembered_devices.is_empty());
    let reset = status.last_reset.unwrap();
    assert_eq!((reset.actor.as_str(), reset.at), ("support-7", w.clock.get()));
    assert!(w.engine.login_begin_remembered("u", Some(&token)).unwrap().enrollment_required);
    assert!(matches!(w.engine.rename_method("u", "totp-1", "x", Some(&step_up)), Err(Error::NotFound(_))));
    // The old step-up token no longer works once the user enrols again.
    let events = w.events.take();
    assert_eq!(events[0].kind, EventKind::AdminReset);
    assert_eq!(events[0].actor.as_deref(), Some("support-7"));
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [
            EventKind::AdminReset,
            EventKind::MethodRemoved,
            EventKind::MethodRemoved,
            EventKind::RememberedDevicesRevoked
        ]
    );
    // Validation and unknown users.
    assert!(matches!(w.admin.reset_user("u", "", "x"), Err(Error::InvalidInput(_))));
    assert!(matches!(w.admin.reset_user("u", "a", "line\nbreak"), Err(Error::InvalidInput(_))));
    assert!(matches!(w.admin.reset_user("nobody", "a", "b"), Err(Error::NotFound(_))));
}

#[test]
fn the_admin_capability_must_be_granted_by_the_config() {
    let (engine, _, _) = engine_with(Config::new("Example Shop", "k1", KEY), MemoryStore::new());
    let err = Admin::new(engine.clone()).unwrap_err();
    assert_eq!((err.code(), err.name()), (18, "forbidden"));
    // The sans-IO form refuses too, before touching the store.
    let request = twofa_core::AdminRequest::ResetUser { actor: "a".into(), reason: "b".into() };
    let op = twofa_core::Operation::admin(engine.core().clone(), "u", request, T0);
    assert_eq!(op.action(), &twofa_core::Action::Done);
    assert!(matches!(op.finish(), Err(Error::Forbidden(_))));
}

#[test]
fn events_follow_every_security_outcome_and_carry_no_secret() {
    let mut c = full_config("localhost");
    c.lockout.threshold = 3;
    let w = world_with(c);
    let mut secrets: Vec<String> = Vec::new();
    w.engine.set_contact_email("u", "u@example.com", None).unwrap();
    w.engine.mark_order_created("u").unwrap();
    assert_eq!(w.events.kinds(), [EventKind::ContactEmailChanged, EventKind::TwoFactorRequired]);

    let setup = w.engine.totp_enroll_begin("u", "u@example.com", None).unwrap();
    secrets.extend([setup.secret.clone(), setup.uri.clone()]);
    let code = totp_code(&setup.secret, w.clock.get());
    let added = w.engine.totp_enroll_confirm("u", &code, None).unwrap();
    secrets.push(code);
    let step_up = added.step_up.unwrap().token;
    secrets.push(step_up.clone());
    let events = w.events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].method, events[0].method_id.as_deref(), events[0].at),
        (EventKind::MethodAdded, Some(MethodKind::Totp), Some("totp-1"), T0)
    );
    w.engine.rename_method("u", "totp-1", "Phone", Some(&step_up)).unwrap();
    let codes = w.engine.recovery_codes_generate("u", Some(&step_up)).unwrap().codes;
    secrets.extend(codes.iter().cloned());
    assert_eq!(w.events.kinds(), [EventKind::MethodRenamed, EventKind::RecoveryCodesGenerated]);

    // Sign-in: success, replay, failures up to a lockout, refusal during it.
    w.clock.advance(30);
    let ch = w.engine.login_begin("u").unwrap().challenge_id.unwrap();
    let code = totp_code(&setup.secret, w.clock.get());
    secrets.push(code.clone());
    let ok = w.engine.login_verify_remembering("u", &ch, Proof::Totp(code.clone()), true).unwrap();
    secrets.extend([ok.step_up.token.clone(), ok.device_token.clone().unwrap().token]);
    let events = w.events.take();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::LoginSucceeded, EventKind::DeviceRemembered]
    );
    assert_eq!(events[0].method_id.as_deref(), Some("totp-1"));
    let ch = w.engine.login_begin("u").unwrap().challenge_id.unwrap();
    assert_eq!(w.engine.login_verify("u", &ch, Proof::Totp(code)).unwrap_err(), Error::Replayed);
    let events = w.events.take();
    assert_eq!((events[0].kind, events[0].method), (EventKind::ReplayRefused, Some(MethodKind::Totp)));
    for _ in 0..3 {
        let _ = w.engine.login_verify("u", &ch, Proof::Recovery("aaaaa-bbbbb".into()));
    }
    let events = w.events.take();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::LoginFailed, EventKind::LoginFailed, EventKind::LoginFailed, EventKind::LockedOut]
    );
    assert_eq!(events[0].reason.as_deref(), Some("invalid_code"));
    assert_eq!(events[3].reason.as_deref(), Some("60"), "the lockout's seconds");
    let _ = w.engine.login_verify("u", &ch, Proof::Totp("123456".into()));
    let events = w.events.take();
    assert_eq!((events[0].kind, events[0].reason.as_deref()), (EventKind::LoginFailed, Some("locked_out")));

    // A recovery code, export, deletion.
    w.clock.advance(3_600);
    let ch = w.engine.login_begin("u").unwrap().challenge_id.unwrap();
    w.engine.login_verify("u", &ch, Proof::Recovery(codes[1].clone())).unwrap();
    assert_eq!(
        w.events.kinds(),
        [EventKind::LoginSucceeded, EventKind::RecoveryCodeUsed, EventKind::RememberedDevicesRevoked]
    );
    let document = w.admin.export_user("u", EXPORT_KEY).unwrap().document;
    secrets.push(document);
    w.admin.delete_user("u").unwrap();
    assert_eq!(w.events.kinds(), [EventKind::UserExported, EventKind::UserDeleted]);

    // Nothing secret in any event: replay the session and grep each event's JSON.
    let w2 = world();
    let setup = w2.engine.totp_enroll_begin("u", "u@example.com", None).unwrap();
    let code = totp_code(&setup.secret, w2.clock.get());
    w2.engine.totp_enroll_confirm("u", &code, None).unwrap();
    let token = remembered_sign_in(&w2, "u", &setup.secret);
    w2.engine.login_begin_remembered("u", Some(&token)).unwrap();
    secrets.extend([setup.secret, setup.uri, code, token]);
    let events: Vec<serde_json::Value> = w2.events.take().iter().map(|e| serde_json::to_value(e).unwrap()).collect();
    assert!(events.iter().any(|e| e["reason"] == "remembered_device"));
    // Every string of every event (numbers are not searched: a code may occur in a timestamp).
    for event in &events {
        for text in event.as_object().unwrap().values().filter_map(|v| v.as_str()) {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "event {event} contains a secret");
            }
        }
    }
}

fn enroll_webauthn(w: &World, auth: &mut SoftAuthenticator, user: &str, step_up: Option<&str>) {
    let reg = w.engine.webauthn_register_begin(user, "YubiKey", step_up).unwrap();
    let response = auth.register(&reg.options_json, ORIGIN);
    w.engine.webauthn_register_finish(user, &response, step_up).unwrap();
}

fn webauthn_sign_in(w: &World, auth: &mut SoftAuthenticator, user: &str) -> Result<twofa_core::LoginSuccess, Error> {
    let ch = w.engine.login_begin(user).unwrap();
    let response = auth.authenticate(&ch.webauthn_options.expect("webauthn options"), ORIGIN);
    w.engine.login_verify(user, &ch.challenge_id.unwrap(), Proof::Webauthn(response))
}

#[test]
fn an_export_imported_elsewhere_keeps_totp_and_webauthn_working() {
    let src = world();
    src.engine.set_contact_email("u", "u@example.com", None).unwrap();
    src.engine.mark_order_created("u").unwrap();
    let (secret, step_up) = enroll_totp(&src.engine, &src.clock, "u", None);
    let mut key = SoftAuthenticator::new();
    enroll_webauthn(&src, &mut key, "u", step_up.as_deref());
    webauthn_sign_in(&src, &mut key, "u").unwrap();
    let step_up = sign_in_totp(&src.engine, &src.clock, "u", &secret);
    let used_step = src.clock.get();
    let document = src.admin.export_user("u", EXPORT_KEY).unwrap().document;
    assert!(!document.contains(&secret) && !document.contains("u@example.com"), "sealed");
    let envelope: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!((envelope["format"].as_str(), envelope["version"].as_u64()), (Some("twofa-user-export"), Some(1)));

    // Another deployment: other master key, same relying party id.
    let mut c = full_config("localhost");
    c.keys[0].secret = "b3RoZXItbWFzdGVyLWtleS1vdGhlci1tYXN0ZXIta2V5IQ==".into();
    let dst = world_with(c);
    dst.clock.set(src.clock.get());
    let imported = dst.admin.import_user("u", &document, EXPORT_KEY).unwrap();
    assert_eq!(imported.methods.iter().map(|m| m.kind).collect::<Vec<_>>(), [MethodKind::Totp, MethodKind::Webauthn]);
    assert!(imported.skipped.is_empty());
    let status = dst.engine.security_status("u").unwrap();
    assert!(status.two_factor_required && status.compliant);
    assert_eq!(status.contact_email.as_deref(), Some("u@example.com"));
    // Replay protection came along: the code just used is refused, the next one works.
    let ch = dst.engine.login_begin("u").unwrap().challenge_id.unwrap();
    let err = dst.engine.login_verify("u", &ch, Proof::Totp(totp_code(&secret, used_step))).unwrap_err();
    assert_eq!(err, Error::Replayed);
    sign_in_totp(&dst.engine, &dst.clock, "u", &secret);
    webauthn_sign_in(&dst, &mut key, "u").unwrap();
    // The source's tokens mean nothing here.
    assert!(matches!(dst.engine.recovery_codes_generate("u", Some(&step_up)), Err(Error::StepUpRequired)));
    // A second import into a user with methods is refused.
    assert!(matches!(dst.admin.import_user("u", &document, EXPORT_KEY), Err(Error::InvalidInput(_))));
}

#[test]
fn webauthn_devices_stay_behind_when_the_relying_party_differs() {
    let src = world();
    let (_secret, step_up) = enroll_totp(&src.engine, &src.clock, "u", None);
    let mut key = SoftAuthenticator::new();
    enroll_webauthn(&src, &mut key, "u", step_up.as_deref());
    let document = src.admin.export_user("u", EXPORT_KEY).unwrap().document;
    let dst = world_with(full_config("example.localhost"));
    let imported = dst.admin.import_user("u", &document, EXPORT_KEY).unwrap();
    assert_eq!(imported.methods.len(), 1);
    assert_eq!(imported.skipped.len(), 1);
    assert!(imported.skipped[0].contains("localhost"), "{:?}", imported.skipped);
}

#[test]
fn malformed_or_tampered_documents_fail_cleanly_and_change_nothing() {
    let src = world();
    enroll_totp(&src.engine, &src.clock, "u", None);
    let document = src.admin.export_user("u", EXPORT_KEY).unwrap().document;
    let dst = world();
    dst.engine.set_contact_email("u", "keep@example.com", None).unwrap();
    let before = record(&dst, "u");
    let mut envelope: serde_json::Value = serde_json::from_str(&document).unwrap();
    let sealed = envelope["sealed"].as_str().unwrap().to_string();
    let mut flipped = sealed.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    envelope["sealed"] = serde_json::Value::String(String::from_utf8(flipped).unwrap());
    let tampered = envelope.to_string();
    let mut later = serde_json::from_str::<serde_json::Value>(&document).unwrap();
    later["exported_at"] = serde_json::json!(later["exported_at"].as_u64().unwrap() + 1);
    let mut renamed = serde_json::from_str::<serde_json::Value>(&document).unwrap();
    renamed["user"] = serde_json::json!("v");
    let cases = [
        ("tampered payload", tampered.as_str(), "u", EXPORT_KEY),
        ("changed export time", &later.to_string(), "u", EXPORT_KEY),
        ("another user's document", &renamed.to_string(), "u", EXPORT_KEY),
        ("imported as another user", &document, "v", EXPORT_KEY),
        ("wrong key", &document, "u", "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktIQ=="),
        ("short key", &document, "u", "c2hvcnQ="),
        ("not JSON", "{", "u", EXPORT_KEY),
        ("not a document", r#"{"format":"other"}"#, "u", EXPORT_KEY),
        ("huge", &"x".repeat(2 << 20), "u", EXPORT_KEY),
    ];
    for (what, doc, user, key) in cases {
        let err = dst.admin.import_user(user, doc, key).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{what}: {err:?}");
        assert!(!format!("{err}").contains(&sealed[..20]), "{what}: the error quotes the document");
    }
    assert_eq!(record(&dst, "u"), before, "nothing changed");
    assert_eq!(record(&dst, "v"), None);
    assert!(matches!(src.admin.export_user("nobody", EXPORT_KEY), Err(Error::NotFound(_))));
    assert!(matches!(src.admin.export_user("u", "bm90IGJhc2U2NA"), Err(Error::InvalidInput(_))));
}
