//! Security round 2 (issue 17): a regression test for each defect an outside audit found, each
//! failing on the engine before its fix. Items 7 to 9 (cross-origin assertions, invisible
//! characters, TOTP arithmetic near the end of time) are tested in `audit_round2_input.rs` and the
//! modules they live in.

mod common;
#[path = "support/webauthn.rs"]
mod webauthn_support;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use twofa_core::store::{MemoryStore, Store};
use twofa_core::{Action, Admin, Config, Engine, Error, Mailer, Message, MethodKind, Operation, Proof, Request};
use webauthn_support::SoftAuthenticator;

const USER: &str = "alice";
const ADDR: &str = "alice@example.com";

/// A mailer that takes `delay` per message (an SMTP round trip) before it records it.
#[derive(Clone)]
struct SlowMailer {
    outbox: Outbox,
    delay: Duration,
}

impl Mailer for SlowMailer {
    fn send(&self, message: &Message) -> Result<(), String> {
        std::thread::sleep(self.delay);
        self.outbox.send(message)
    }
}

/// An engine over `store` whose mail takes `delay`.
fn slow_engine(store: Arc<dyn Store>, clock: &TestClock, outbox: &Outbox, delay: Duration) -> Engine {
    let mailer = SlowMailer { outbox: outbox.clone(), delay };
    Engine::new(config(), store, mailer).unwrap().with_clock(clock.clone())
}

/// Exactly one send succeeded; every other one is `rate_limited` with a positive retry-after.
fn exactly_one_sent<T: std::fmt::Debug>(what: &str, results: &[Result<T, Error>]) {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{what}: {results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, Error::RateLimited { retry_after } if *retry_after > 0), "{what}: {r:?}");
    }
}

fn codes_to(outbox: &Outbox, to: &str, subject: &str) -> usize {
    outbox.all().iter().filter(|m| m.to == to && m.subject.contains(subject)).count()
}

// ---------------------------------------------------------------------------------------------
// 1. Concurrent sends beat the resend cooldown.

#[test]
fn a_burst_of_64_sign_in_code_sends_mails_one_code() {
    let (clock, outbox) = (TestClock::at(T0), Outbox::default());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fast = slow_engine(store.clone(), &clock, &outbox, Duration::ZERO);
    fast.email_enroll_begin(USER, ADDR, None).unwrap();
    fast.email_enroll_confirm(USER, &outbox.last_code(ADDR), None).unwrap();
    let ch = fast.login_begin(USER).unwrap().challenge_id.unwrap();
    let engines = [0, 1].map(|_| slow_engine(store.clone(), &clock, &outbox, Duration::from_millis(300)));
    let results = race(64, |i| engines[i % 2].login_send_email_code(USER, &ch));
    exactly_one_sent("64 concurrent login_send_email_code", &results);
    assert_eq!(codes_to(&outbox, ADDR, "sign-in code"), 1, "one code mailed");
    let ok = fast.login_verify(USER, &ch, Proof::Email(outbox.last_code(ADDR))).unwrap();
    assert_eq!(ok.method, MethodKind::Email, "the one code that went out signs in");
}

#[test]
fn a_burst_of_64_enrolment_sends_mails_one_code() {
    let (clock, outbox) = (TestClock::at(T0), Outbox::default());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engines = [0, 1].map(|_| slow_engine(store.clone(), &clock, &outbox, Duration::from_millis(300)));
    let results = race(64, |i| engines[i % 2].email_enroll_begin(USER, "victim@example.com", None));
    exactly_one_sent("64 concurrent email_enroll_begin", &results);
    assert_eq!(outbox.count(), 1, "one code mailed to the address");
    let added = engines[0].email_enroll_confirm(USER, &outbox.last_code("victim@example.com"), None).unwrap();
    assert_eq!(added.method.kind, MethodKind::Email);
}

#[test]
fn a_failed_delivery_lifts_the_cooldown() {
    let (engine, _clock, outbox) = engine();
    outbox.fail(true);
    assert!(matches!(engine.email_enroll_begin(USER, ADDR, None).unwrap_err(), Error::Mail(_)));
    outbox.fail(false);
    engine.email_enroll_begin(USER, ADDR, None).expect("no cooldown after a code that never went out");
}

#[test]
fn a_pending_code_blocks_until_the_cooldown_then_may_be_replaced() {
    let store = Arc::new(MemoryStore::new());
    let (engine, clock, outbox) = engine_with(config(), store.clone());
    // A host that wrote the pending code, then died before sending it.
    let request = Request::EmailEnrollBegin { address: ADDR.into(), step_up: None };
    let mut op = Operation::new(engine.core().clone(), USER, request, clock.get());
    op.run_store(store.as_ref());
    assert!(matches!(op.action(), Action::Send { .. }), "{:?}", op.action());
    drop(op);
    match engine.email_enroll_begin(USER, ADDR, None).unwrap_err() {
        Error::RateLimited { retry_after } => assert_eq!(retry_after, 60),
        e => panic!("a pending code holds the cooldown: {e:?}"),
    }
    clock.advance(60);
    engine.email_enroll_begin(USER, ADDR, None).expect("a pending code older than the cooldown is replaced");
    engine.email_enroll_confirm(USER, &outbox.last_code(ADDR), None).unwrap();
}

#[test]
fn a_code_that_died_of_max_tries_keeps_the_cooldown() {
    let (engine, clock, outbox) = engine();
    engine.email_enroll_begin(USER, ADDR, None).unwrap();
    let code = outbox.last_code(ADDR);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(engine.email_enroll_confirm(USER, wrong, None).unwrap_err(), Error::InvalidCode);
    }
    assert!(matches!(engine.email_enroll_confirm(USER, &code, None).unwrap_err(), Error::NotFound(_)), "dead");
    clock.advance(10);
    match engine.email_enroll_begin(USER, ADDR, None).unwrap_err() {
        Error::RateLimited { retry_after } => assert_eq!(retry_after, 50),
        e => panic!("{e:?}"),
    }
    clock.advance(50);
    engine.email_enroll_begin(USER, ADDR, None).unwrap();
    assert_eq!(outbox.count(), 2);
}

/// A memory store that remembers every key written.
#[derive(Clone, Default)]
struct KeyLog {
    inner: Arc<MemoryStore>,
    keys: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Store for KeyLog {
    fn get(&self, key: &str) -> Result<Option<twofa_core::store::Versioned>, twofa_core::store::StoreError> {
        self.inner.get(key)
    }
    fn put(
        &self,
        key: &str,
        bytes: &[u8],
        expected: Option<twofa_core::store::Version>,
    ) -> Result<twofa_core::store::Version, twofa_core::store::StoreError> {
        self.keys.lock().unwrap().push(key.to_string());
        self.inner.put(key, bytes, expected)
    }
    fn delete(&self, key: &str, expected: twofa_core::store::Version) -> Result<(), twofa_core::store::StoreError> {
        self.inner.delete(key, expected)
    }
}

#[test]
fn one_address_has_a_code_budget_across_users() {
    let mut c = config();
    c.email_code.address_limit = 3;
    let store = KeyLog::default();
    let (engine, clock, outbox) = engine_with(c, store.clone());
    for user in ["u1", "u2", "u3"] {
        engine.email_enroll_begin(user, "target@example.com", None).unwrap();
    }
    // Another case and a `+tag` reach the same inbox: the same budget.
    match engine.email_enroll_begin("u4", "TARGET+u4@example.com", None).unwrap_err() {
        Error::RateLimited { retry_after } => assert_eq!(retry_after, 3600),
        e => panic!("{e:?}"),
    }
    assert_eq!(outbox.count(), 3, "no fourth code reached the inbox");
    assert!(engine.security_status("u4").unwrap().pending.email.is_none(), "the refused code was discarded");
    // The budget is kept under a keyed hash of the address, never the address.
    let keys = store.keys.lock().unwrap().clone();
    assert!(keys.iter().any(|k| k.starts_with("email-address/")), "{keys:?}");
    for key in keys {
        assert!(!key.to_ascii_lowercase().contains("target"), "{key}");
        if key.starts_with("email-address/") {
            let bytes = store.get(&key).unwrap().unwrap().bytes;
            assert!(!String::from_utf8_lossy(&bytes).contains("target"));
        }
    }
    // A contact confirmation to the address spends the same budget.
    assert!(matches!(engine.contact_email_begin("u5", "target@example.com", None), Err(Error::RateLimited { .. })));
    clock.advance(3600);
    engine.email_enroll_begin("u4", "target@example.com", None).expect("a new window");
    engine.email_enroll_confirm("u4", &outbox.last_code("target@example.com"), None).unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Email sign-in codes are bound to their challenge.

fn with_email_method() -> (Engine, TestClock, Outbox) {
    let (engine, clock, outbox) = engine();
    engine.email_enroll_begin(USER, ADDR, None).unwrap();
    engine.email_enroll_confirm(USER, &outbox.last_code(ADDR), None).unwrap();
    (engine, clock, outbox)
}

#[test]
fn a_sign_in_code_completes_only_its_own_challenge() {
    let (engine, _clock, outbox) = with_email_method();
    let mine = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    let other = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    engine.login_send_email_code(USER, &mine).unwrap();
    let code = outbox.last_code(ADDR);
    assert!(matches!(engine.login_verify(USER, &other, Proof::Email(code.clone())).unwrap_err(), Error::NotFound(_)));
    assert_eq!(engine.security_status(USER).unwrap().locked_until, None);
    engine.login_verify(USER, &mine, Proof::Email(code.clone())).unwrap();
    assert_eq!(engine.login_verify(USER, &other, Proof::Email(code)).unwrap_err(), Error::Replayed);
}

#[test]
fn a_stranger_with_the_password_cannot_cancel_the_users_code() {
    let (engine, clock, outbox) = with_email_method();
    let users = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    engine.login_send_email_code(USER, &users).unwrap();
    let users_code = outbox.last_code(ADDR);
    // The stranger asks for a code of their own sign-in, once the cooldown allows it.
    clock.advance(60);
    let strangers = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    engine.login_send_email_code(USER, &strangers).unwrap();
    let strangers_code = outbox.last_code(ADDR);
    engine.login_verify(USER, &users, Proof::Email(users_code)).expect("the user's code still works");
    engine.login_verify(USER, &strangers, Proof::Email(strangers_code)).unwrap();
}

#[test]
fn at_most_three_sign_in_codes_live_side_by_side() {
    let (engine, clock, outbox) = with_email_method();
    let mut sent = Vec::new();
    for _ in 0..4 {
        let ch = engine.login_begin(USER).unwrap().challenge_id.unwrap();
        engine.login_send_email_code(USER, &ch).unwrap();
        sent.push((ch, outbox.last_code(ADDR)));
        clock.advance(60);
    }
    let (first, code) = &sent[0];
    assert!(matches!(engine.login_verify(USER, first, Proof::Email(code.clone())).unwrap_err(), Error::NotFound(_)));
    for (ch, code) in &sent[1..] {
        engine.login_verify(USER, ch, Proof::Email(code.clone())).unwrap();
    }
}

#[test]
fn a_resend_for_the_same_challenge_replaces_its_code() {
    let (engine, clock, outbox) = with_email_method();
    let ch = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    engine.login_send_email_code(USER, &ch).unwrap();
    let old = outbox.last_code(ADDR);
    clock.advance(60);
    engine.login_send_email_code(USER, &ch).unwrap();
    let new = outbox.last_code(ADDR);
    if old != new {
        assert_eq!(engine.login_verify(USER, &ch, Proof::Email(old)).unwrap_err(), Error::InvalidCode);
    }
    engine.login_verify(USER, &ch, Proof::Email(new)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. A flagged WebAuthn device counts nowhere.

fn register(engine: &Engine, key: &mut SoftAuthenticator, user: &str, step_up: Option<&str>) -> String {
    let reg = engine.webauthn_register_begin(user, "Key", step_up).unwrap();
    let response = key.register(&reg.options_json, ORIGIN);
    engine.webauthn_register_finish(user, &response, step_up).unwrap();
    serde_json::from_str::<serde_json::Value>(&response).unwrap()["id"].as_str().unwrap().to_string()
}

fn webauthn_sign_in(engine: &Engine, key: &mut SoftAuthenticator, user: &str) -> Result<String, Error> {
    let ch = engine.login_begin(user).unwrap();
    let response = key.authenticate(&ch.webauthn_options.expect("webauthn options"), ORIGIN);
    engine.login_verify(user, &ch.challenge_id.unwrap(), Proof::Webauthn(response)).map(|ok| ok.step_up.token)
}

/// Flags `user`'s device: a clone of it signs with a counter that did not increase.
fn flag(engine: &Engine, key: &mut SoftAuthenticator, user: &str) -> String {
    let mut clone = key.clone_device();
    let step_up = webauthn_sign_in(engine, key, user).unwrap();
    let err = webauthn_sign_in(engine, &mut clone, user).unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
    step_up
}

#[test]
fn a_flagged_device_does_not_keep_the_last_usable_method() {
    let (engine, clock, _outbox) = engine_with(webauthn_config(), MemoryStore::new());
    let (secret, step_up) = enroll_totp(&engine, &clock, USER, None);
    let mut key = SoftAuthenticator::new();
    register(&engine, &mut key, USER, step_up.as_deref());
    engine.mark_order_created(USER).unwrap();
    let step_up = flag(&engine, &mut key, USER);
    let status = engine.security_status(USER).unwrap();
    assert!(status.methods.iter().any(|m| m.flagged));
    let totp = status.methods.iter().find(|m| m.kind == MethodKind::Totp).unwrap().id.clone();
    // The flag revoked the step-up tokens of every earlier sign-in (a clone's among them).
    assert_eq!(engine.remove_method(USER, &totp, Some(&step_up)).unwrap_err(), Error::StepUpRequired);
    let step_up = sign_in_totp(&engine, &clock, USER, &secret);
    assert!(matches!(engine.remove_method(USER, &totp, Some(&step_up)).unwrap_err(), Error::PolicyViolation(_)));
    assert!(engine.security_status(USER).unwrap().compliant);
}

#[test]
fn a_clone_keeps_nothing_it_got_once_the_device_is_flagged() {
    let mut c = webauthn_config();
    c.remember_device.enabled = true;
    let (engine, clock, _outbox) = engine_with(c, MemoryStore::new());
    let (_, step_up) = enroll_totp(&engine, &clock, USER, None);
    let mut key = SoftAuthenticator::new();
    register(&engine, &mut key, USER, step_up.as_deref());
    // The clone signs in first and has its browser remembered.
    let mut clone = key.clone_device();
    let ch = engine.login_begin(USER).unwrap();
    let response = clone.authenticate(&ch.webauthn_options.unwrap(), ORIGIN);
    let stolen =
        engine.login_verify_remembering(USER, &ch.challenge_id.unwrap(), Proof::Webauthn(response), true).unwrap();
    let device = stolen.device_token.unwrap().token;
    // The genuine key's next assertion does not count up: the device is flagged.
    assert!(matches!(webauthn_sign_in(&engine, &mut key, USER).unwrap_err(), Error::WebauthnRejected(_)));
    assert_eq!(
        engine.set_contact_email(USER, "attacker@example.com", Some(&stolen.step_up.token)).unwrap_err(),
        Error::StepUpRequired
    );
    let again = engine.login_begin_remembered(USER, Some(&device)).unwrap();
    assert!(again.second_factor_required && again.remembered_device.is_none(), "{again:?}");
}

#[test]
fn a_user_whose_only_device_is_flagged_meets_the_rules_of_a_user_without_methods() {
    let (engine, _clock, _outbox) = engine_with(webauthn_config(), MemoryStore::new());
    let mut key = SoftAuthenticator::new();
    register(&engine, &mut key, USER, None);
    engine.mark_order_created(USER).unwrap();
    flag(&engine, &mut key, USER);
    let status = engine.security_status(USER).unwrap();
    assert!(!status.compliant, "a flagged device is not compliance");
    assert_eq!(status.recommendations, vec![twofa_core::Recommendation::EnableTwoFactor]);
    assert!(status.enrollment_deadline.is_some());
    let ch = engine.login_begin(USER).unwrap();
    assert!(ch.enrollment_required && ch.challenge_id.is_none(), "enrol first (grace 0): {ch:?}");
    // Never a dead end: the user enrols a new method without a step-up, like a new user.
    let setup = engine.totp_enroll_begin(USER, "alice", None).unwrap();
    let code = totp_code(&setup.secret, T0);
    engine.totp_enroll_confirm(USER, &code, None).unwrap();
    assert!(engine.security_status(USER).unwrap().compliant);
}

#[test]
fn recovery_codes_still_sign_in_a_user_whose_only_device_is_flagged() {
    let (engine, _clock, _outbox) = engine_with(webauthn_config(), MemoryStore::new());
    let mut key = SoftAuthenticator::new();
    let step_up = register_first(&engine, &mut key);
    let codes = engine.recovery_codes_generate(USER, Some(&step_up)).unwrap().codes;
    flag(&engine, &mut key, USER);
    let ch = engine.login_begin(USER).unwrap();
    assert_eq!(ch.methods, vec![MethodKind::Recovery], "{ch:?}");
    assert!(ch.webauthn_options.is_none());
    assert_eq!(engine.totp_enroll_begin(USER, "alice", None).unwrap_err(), Error::StepUpRequired);
    let ok = engine.login_verify(USER, &ch.challenge_id.unwrap(), Proof::Recovery(codes[0].clone())).unwrap();
    engine.totp_enroll_begin(USER, "alice", Some(&ok.step_up.token)).unwrap();
}

fn register_first(engine: &Engine, key: &mut SoftAuthenticator) -> String {
    let reg = engine.webauthn_register_begin(USER, "Key", None).unwrap();
    let response = key.register(&reg.options_json, ORIGIN);
    engine.webauthn_register_finish(USER, &response, None).unwrap().step_up.unwrap().token
}

// ---------------------------------------------------------------------------------------------
// 4. The contact address: step-up, both addresses told, proved by a code.

#[test]
fn set_contact_email_needs_a_step_up_and_tells_both_addresses() {
    let (engine, clock, outbox) = engine();
    engine.set_contact_email(USER, "old@example.com", None).unwrap();
    let (secret, _) = enroll_totp(&engine, &clock, USER, None);
    assert_eq!(engine.set_contact_email(USER, "new@example.com", None).unwrap_err(), Error::StepUpRequired);
    assert_eq!(engine.security_status(USER).unwrap().contact_email.as_deref(), Some("old@example.com"));
    let step_up = sign_in_totp(&engine, &clock, USER, &secret);
    let before = outbox.count();
    let notices = engine.set_contact_email(USER, "new@example.com", Some(&step_up)).unwrap();
    assert_eq!(notices.sent, 2);
    let mail = &outbox.all()[before..];
    assert!(mail.iter().any(|m| m.to == "old@example.com") && mail.iter().any(|m| m.to == "new@example.com"));
}

#[test]
fn contact_email_is_proved_by_a_code_to_the_new_address() {
    let (engine, clock, outbox) = engine();
    let (secret, _) = enroll_totp(&engine, &clock, USER, None);
    let step_up = sign_in_totp(&engine, &clock, USER, &secret);
    let tok = Some(step_up.as_str());
    assert_eq!(engine.contact_email_begin(USER, "c@example.com", None).unwrap_err(), Error::StepUpRequired);
    let sent = engine.contact_email_begin(USER, "c@example.com", tok).unwrap();
    assert_eq!(sent.sent_to, ["c@example.com"]);
    let code = outbox.last_code("c@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(engine.contact_email_confirm(USER, wrong, tok).unwrap_err(), Error::InvalidCode);
    assert_eq!(engine.security_status(USER).unwrap().contact_email, None, "not before the proof");
    // An enrolment code never confirms a contact address, nor the reverse.
    assert!(engine.email_enroll_confirm(USER, &code, tok).is_err());
    engine.contact_email_confirm(USER, &code, tok).unwrap();
    assert_eq!(engine.security_status(USER).unwrap().contact_email.as_deref(), Some("c@example.com"));
    assert_eq!(engine.security_status(USER).unwrap().methods.len(), 1, "not an email method");
    assert!(matches!(engine.contact_email_confirm(USER, &code, tok).unwrap_err(), Error::NotFound(_)));
}

#[test]
fn contact_confirmation_waits_for_schema_2() {
    let c = Config { write_schema: 1, ..config() };
    let (engine, _clock, _outbox) = engine_with(c, MemoryStore::new());
    let err = engine.contact_email_begin(USER, "c@example.com", None).unwrap_err();
    assert!(err.to_string().contains("write_schema 2"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 5. Step-up tokens do not outlive the record.

#[test]
fn a_step_up_token_dies_with_the_deleted_record() {
    let (engine, clock, _outbox) = engine();
    let (_, step_up) = enroll_totp(&engine, &clock, USER, None);
    let step_up = step_up.unwrap();
    Admin::new(engine.clone()).unwrap().delete_user(USER).unwrap();
    enroll_totp(&engine, &clock, USER, None);
    assert_eq!(engine.recovery_codes_generate(USER, Some(&step_up)).unwrap_err(), Error::StepUpRequired);
}

#[test]
fn a_schema_1_record_gets_a_generation_at_its_first_schema_2_write() {
    let store = Arc::new(MemoryStore::new());
    let (old, clock, _outbox) = engine_with(Config { write_schema: 1, ..config() }, store.clone());
    let (secret, _) = enroll_totp(&old, &clock, USER, None);
    let step_up = sign_in_totp(&old, &clock, USER, &secret);
    old.recovery_codes_generate(USER, Some(&step_up)).expect("schema 1: tokens work as before");
    let raw: serde_json::Value = serde_json::from_slice(&store.get("user/alice").unwrap().unwrap().bytes).unwrap();
    assert_eq!(raw["schema"], 1);
    assert!(raw.get("generation").is_none());
    let new = Engine::new(config(), store.clone(), Outbox::default()).unwrap().with_clock(clock.clone());
    assert_eq!(new.recovery_codes_generate(USER, Some(&step_up)).unwrap_err(), Error::StepUpRequired);
    let step_up = sign_in_totp(&new, &clock, USER, &secret);
    new.recovery_codes_generate(USER, Some(&step_up)).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&store.get("user/alice").unwrap().unwrap().bytes).unwrap();
    assert_eq!(raw["schema"], 2);
    let generation = raw["generation"].as_str().unwrap().to_string();
    // A schema 1 engine setting never writes a schema 2 record back as schema 1.
    let step_up = sign_in_totp(&old, &clock, USER, &secret);
    old.recovery_codes_generate(USER, Some(&step_up)).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&store.get("user/alice").unwrap().unwrap().bytes).unwrap();
    assert_eq!((raw["schema"].as_u64(), raw["generation"].as_str()), (Some(2), Some(generation.as_str())));
}

#[test]
fn write_schema_1_writes_only_what_a_schema_1_engine_keeps() {
    let store = Arc::new(MemoryStore::new());
    let (engine, _clock, outbox) = engine_with(Config { write_schema: 1, ..config() }, store.clone());
    engine.email_enroll_begin(USER, ADDR, None).unwrap();
    engine.email_enroll_confirm(USER, &outbox.last_code(ADDR), None).unwrap();
    let ch = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    engine.login_send_email_code(USER, &ch).unwrap();
    let raw = String::from_utf8(store.get("user/alice").unwrap().unwrap().bytes).unwrap();
    for field in ["generation", "contact_code", "earlier", "resend_at", "\"challenge\""] {
        assert!(!raw.contains(field), "{field} in a schema 1 record: {raw}");
    }
    assert_eq!(serde_json::from_str::<serde_json::Value>(&raw).unwrap()["schema"], 1, "{raw}");
    // Unbound, as a schema 1 engine writes it: the code completes any of the user's challenges.
    let other = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    engine.login_verify(USER, &other, Proof::Email(outbox.last_code(ADDR))).unwrap();
}

#[test]
fn newer_schemas_are_refused_and_the_setting_is_checked() {
    let store = Arc::new(MemoryStore::new());
    store.put("user/alice", br#"{"schema":3,"methods":[]}"#, None).unwrap();
    let (engine, _clock, _outbox) = engine_with(config(), store);
    assert_eq!(engine.security_status(USER).unwrap_err(), Error::UnsupportedSchema);
    for bad in [0, 3] {
        let err = Engine::new(Config { write_schema: bad, ..config() }, MemoryStore::new(), Outbox::default());
        assert!(err.unwrap_err().to_string().contains("write_schema"));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Credential claims are released after the commit.

fn claim(store: &MemoryStore, id: &str) -> Option<String> {
    store.get(&format!("webauthn-credential/{id}")).unwrap().map(|v| String::from_utf8(v.bytes).unwrap())
}

/// A counter-0 authenticator that registers its first credential again for each new account.
fn reusing_key() -> SoftAuthenticator {
    let mut key = SoftAuthenticator::counter_zero();
    key.set_reuse_credential(true);
    key
}

#[test]
fn removing_a_device_frees_its_credential_for_another_account() {
    let store = Arc::new(MemoryStore::new());
    let (engine, _clock, _outbox) = engine_with(webauthn_config(), store.clone());
    let mut key = reusing_key();
    let id = register(&engine, &mut key, USER, None);
    let step_up = webauthn_sign_in(&engine, &mut key, USER).unwrap();
    assert_eq!(claim(&store, &id).as_deref(), Some(USER));
    let method = engine.security_status(USER).unwrap().methods[0].id.clone();
    engine.remove_method(USER, &method, Some(&step_up)).unwrap();
    assert_eq!(claim(&store, &id), None, "released after the removal");
    assert_eq!(register(&engine, &mut key, "bob", None), id);
    assert_eq!(claim(&store, &id).as_deref(), Some("bob"));
}

#[test]
fn deletion_and_reset_release_claims() {
    let store = Arc::new(MemoryStore::new());
    let (engine, _clock, _outbox) = engine_with(webauthn_config(), store.clone());
    let admin = Admin::new(engine.clone()).unwrap();
    let mut key = reusing_key();
    let id = register(&engine, &mut key, "u1", None);
    admin.delete_user("u1").unwrap();
    assert_eq!(claim(&store, &id), None);
    assert_eq!(register(&engine, &mut key, "u2", None), id);
    admin.reset_user("u2", "support", "lost key").unwrap();
    assert_eq!(claim(&store, &id), None);
    register(&engine, &mut key, "u3", None);
    assert_eq!(claim(&store, &id).as_deref(), Some("u3"));
}

#[test]
fn a_stale_claim_is_taken_over_and_a_live_one_is_not() {
    let store = Arc::new(MemoryStore::new());
    let (engine, _clock, _outbox) = engine_with(webauthn_config(), store.clone());
    let mut key = reusing_key();
    let id = register(&engine, &mut key, "u1", None);
    // A live claim: u1's record has the credential.
    let reg = engine.webauthn_register_begin("u2", "Key", None).unwrap();
    let err = engine.webauthn_register_finish("u2", &key.register(&reg.options_json, ORIGIN), None).unwrap_err();
    assert!(matches!(err, Error::WebauthnRejected(_)), "{err:?}");
    // The claim now names a user whose record lacks the credential (a release that was lost).
    let key_name = format!("webauthn-credential/{id}");
    let v = store.get(&key_name).unwrap().unwrap();
    store.put(&key_name, b"ghost", Some(v.version)).unwrap();
    let admin = Admin::new(engine.clone()).unwrap();
    admin.reset_user("u1", "support", "lost key").unwrap();
    assert_eq!(claim(&store, &id).as_deref(), Some("ghost"), "a release never deletes another user's claim");
    assert_eq!(register(&engine, &mut key, "u2", None), id, "ghost's claim is stale: taken over");
    assert_eq!(claim(&store, &id).as_deref(), Some("u2"));
}
