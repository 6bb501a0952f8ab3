//! Fault injection: every store call of every operation fails once, in turn, and the mailer fails.
//!
//! For each operation, the same user state is built again on a fresh engine for every N (the
//! clock is a `TestClock`, so the setup replays exactly; random secrets differ per replay, so
//! every comparison is against the before-state of THAT replay). The Nth store call then fails
//! with `StoreError::Failed("injected")` without being performed. The rules:
//!
//! - a committed answer (Ok, or `invalid_code` for a wrong code) has the effect of a fault-free
//!   run: the record changed iff it changed fault-free, has the same JSON structure, and
//!   `security_status` is the same;
//! - any other answer is `storage` and the stored bytes are exactly the before-state bytes;
//!   repeating the operation without the fault then behaves like a fault-free run.
mod common;

use common::{T0, TestClock, totp_code};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use twofa_core::store::{MemoryStore, Store, StoreError, Version, Versioned};
use twofa_core::{Admin, Clock, Engine, Error, Mailer, Message, MethodKind, Proof, SecurityStatus, TotpAlgorithm};

const USER: &str = "alice";
const USER_KEY: &str = "user/alice";
const CONTACT: &str = "alice@example.com";
const EMAIL: &str = "alice.mail@example.com";
const IMPORT_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const ENROLL_SUBJECT: &str = "confirm your email address";
const LOGIN_SUBJECT: &str = "your sign-in code";

// ---------------------------------------------------------------------------------------------
// The faulty store and the recording mailer.

/// A `MemoryStore` that counts its calls and fails exactly the `fail_at`-th one (0: none)
/// without performing it.
#[derive(Default)]
struct FaultyStore {
    inner: MemoryStore,
    calls: AtomicUsize,
    fail_at: AtomicUsize,
    /// The injected failure is a panic (a bug in the host's store) instead of an error.
    panics: AtomicBool,
    log: Mutex<Vec<String>>,
}

impl FaultyStore {
    /// Resets the counter and fails the `n`-th call from now on (0: none).
    fn arm(&self, n: usize) {
        self.log.lock().unwrap().clear();
        self.calls.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, call: String) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = n == self.fail_at.load(Ordering::SeqCst);
        self.log.lock().unwrap().push(if fail { format!("{call} (injected failure)") } else { call });
        if fail && self.panics.load(Ordering::SeqCst) {
            panic!("injected store panic");
        }
        if fail { Err(StoreError::Failed("injected".into())) } else { Ok(()) }
    }

    /// The raw stored bytes of the user's record, read past the fault injection.
    fn raw(&self) -> Option<Vec<u8>> {
        self.inner.get(USER_KEY).unwrap().map(|v| v.bytes)
    }
}

impl Store for FaultyStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.count(format!("get {key}"))?;
        self.inner.get(key)
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        self.count(format!("put {key}"))?;
        self.inner.put(key, bytes, expected)
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        self.count(format!("delete {key}"))?;
        self.inner.delete(key, expected)
    }
}

/// A mailer that records every message it is handed (delivered or not), then fails on demand:
/// always, or for subjects containing a pattern.
#[derive(Clone, Default)]
struct Mail {
    log: Arc<Mutex<Vec<(Message, bool)>>>,
    fail_all: Arc<AtomicBool>,
    /// Failing sends panic (a bug in the host's mailer) instead of returning an error.
    panics: Arc<AtomicBool>,
    fail_subject: Arc<Mutex<Option<String>>>,
    fail_to: Arc<Mutex<Option<String>>>,
}

impl Mail {
    fn fail(&self, on: bool) {
        self.fail_all.store(on, Ordering::SeqCst);
    }

    fn fail_subjects_containing(&self, pattern: Option<&str>) {
        *self.fail_subject.lock().unwrap() = pattern.map(str::to_string);
    }

    fn fail_to(&self, address: Option<&str>) {
        *self.fail_to.lock().unwrap() = address.map(str::to_string);
    }

    fn all(&self) -> Vec<(Message, bool)> {
        self.log.lock().unwrap().clone()
    }

    /// Every code handed over for `to` in a message whose subject contains `subject`, with
    /// whether it was delivered, oldest first.
    fn codes(&self, to: &str, subject: &str) -> Vec<(String, bool)> {
        self.all()
            .into_iter()
            .filter(|(m, _)| m.to == to && m.subject.contains(subject))
            .map(|(m, delivered)| (code_in(&m.text), delivered))
            .collect()
    }

    /// The last delivered code.
    fn last_code(&self, to: &str, subject: &str) -> String {
        self.codes(to, subject).into_iter().rev().find(|(_, d)| *d).expect("no delivered code").0
    }
}

impl Mailer for Mail {
    fn send(&self, message: &Message) -> Result<(), String> {
        let failing = self.fail_all.load(Ordering::SeqCst)
            || self.fail_subject.lock().unwrap().as_deref().is_some_and(|p| message.subject.contains(p))
            || self.fail_to.lock().unwrap().as_deref() == Some(message.to.as_str());
        self.log.lock().unwrap().push((message.clone(), !failing));
        if failing && self.panics.load(Ordering::SeqCst) {
            panic!("injected mailer panic");
        }
        if failing { Err("smtp down".into()) } else { Ok(()) }
    }
}

/// The first run of 6+ digits of a message text.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit()).find(|s| s.len() >= 6).expect("no code in message").to_string()
}

// ---------------------------------------------------------------------------------------------
// One replay of the world.

struct World {
    engine: Engine,
    admin: Admin,
    clock: TestClock,
    store: Arc<FaultyStore>,
    mail: Mail,
    /// What an operation returned that later checks need (secrets, codes, challenge ids).
    out: Mutex<Vec<String>>,
}

impl World {
    fn new() -> World {
        let store = Arc::new(FaultyStore::default());
        let clock = TestClock::at(T0);
        let mail = Mail::default();
        let engine = Engine::new(common::config(), store.clone(), mail.clone()).unwrap().with_clock(clock.clone());
        let admin = Admin::new(engine.clone()).unwrap();
        World { engine, admin, clock, store, mail, out: Mutex::new(Vec::new()) }
    }

    fn status(&self) -> SecurityStatus {
        self.engine.security_status(USER).unwrap()
    }

    fn record(&self) -> Value {
        serde_json::from_slice(&self.store.raw().expect("no record")).expect("record is not JSON")
    }

    fn stash(&self, s: String) {
        self.out.lock().unwrap().push(s);
    }

    fn stashed(&self) -> String {
        self.out.lock().unwrap().last().cloned().expect("nothing stashed")
    }

    fn challenge(&self) -> String {
        self.engine.login_begin(USER).unwrap().challenge_id.unwrap()
    }
}

/// What a setup hands to its operation.
#[derive(Clone, Debug, Default)]
struct Ctx {
    secret: String,
    step_up: Option<String>,
    method_id: String,
    challenge: String,
    code: String,
    recovery: Vec<String>,
}

impl Ctx {
    fn step_up(&self) -> Option<&str> {
        self.step_up.as_deref()
    }
}

/// A code that is wrong for `secret` at every step the engine accepts at `t` (skew 1).
fn wrong_code(secret: &str, t: u64) -> String {
    let valid: Vec<String> = [t - 30, t, t + 30].iter().map(|s| totp_code(secret, *s)).collect();
    ["000000", "111111", "222222", "333333"].iter().find(|c| !valid.contains(&c.to_string())).unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Setups (deterministic apart from random secrets).

/// Contact address set, authenticator app enrolled at T0 (step-up token kept), clock at T0+30.
fn enrolled(w: &World) -> Ctx {
    w.engine.set_contact_email(USER, CONTACT, None).unwrap();
    let (secret, step_up) = common::enroll_totp(&w.engine, &w.clock, USER, None);
    w.clock.advance(30);
    let method_id = w.status().methods[0].id.clone();
    Ctx { secret, step_up, method_id, ..Ctx::default() }
}

/// [`enrolled`] plus a confirmed email method.
fn with_email(w: &World) -> Ctx {
    let ctx = enrolled(w);
    w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).unwrap();
    let code = w.mail.last_code(EMAIL, ENROLL_SUBJECT);
    w.engine.email_enroll_confirm(USER, &code, ctx.step_up()).unwrap();
    ctx
}

/// [`enrolled`] plus a set of recovery codes.
fn with_recovery(w: &World) -> Ctx {
    let mut ctx = enrolled(w);
    ctx.recovery = w.engine.recovery_codes_generate(USER, ctx.step_up()).unwrap().codes;
    ctx
}

// ---------------------------------------------------------------------------------------------
// The harness.

type Op = fn(&World, &Ctx) -> Result<String, Error>;

struct Scenario {
    name: &'static str,
    setup: fn(&World) -> Ctx,
    /// The operation; returns the deterministic part of its outcome.
    op: Op,
    /// The error a committed run answers (`None`: it answers Ok).
    committed: Option<&'static str>,
    /// Checks after a committed run (may change the state).
    after_ok: fn(&World, &Ctx),
    /// Checks after a failed run (must not change the state).
    after_err: fn(&World, &Ctx),
}

enum Class {
    Committed(String),
    Failed(Error),
}

fn classify(name: &str, result: Result<String, Error>, committed: Option<&str>) -> Class {
    match (result, committed) {
        (Ok(s), None) => Class::Committed(s),
        (Ok(s), Some(e)) => panic!("{name}: Ok is impossible (a committed run answers {e}), got Ok({s})"),
        (Err(e), Some(c)) if e.name() == c => Class::Committed(format!("{e:?}")),
        (Err(e), _) => Class::Failed(e),
    }
}

/// The JSON structure of a record: every string replaced by its length (random tokens, hashes
/// and sealed secrets differ per replay; their lengths, every number and every key do not).
fn shape(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(format!("<{} chars>", s.len())),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

fn shape_of(bytes: &Option<Vec<u8>>) -> Option<Value> {
    bytes.as_ref().map(|b| shape(&serde_json::from_slice(b).expect("stored record is not JSON")))
}

struct Reference {
    summary: String,
    changed: bool,
    shape: Option<Value>,
    status: SecurityStatus,
}

fn run(s: Scenario) {
    // The fault-free reference.
    let w = World::new();
    let ctx = (s.setup)(&w);
    let before = w.store.raw();
    w.store.arm(0);
    let result = (s.op)(&w, &ctx);
    let calls = w.store.calls();
    let log = w.store.log();
    let after = w.store.raw();
    let summary = match classify(s.name, result, s.committed) {
        Class::Committed(summary) => summary,
        Class::Failed(e) => panic!("{}: the fault-free run failed: {e:?}", s.name),
    };
    eprintln!("{}: {calls} store calls without faults: {log:?}; answer {summary}", s.name);
    let reference = Reference {
        summary,
        changed: before != after,
        shape: shape_of(&after),
        status: w.engine.security_status(USER).unwrap(),
    };
    (s.after_ok)(&w, &ctx);

    for n in 1..=calls + 1 {
        let w = World::new();
        let ctx = (s.setup)(&w);
        let before = w.store.raw();
        w.store.arm(n);
        let result = (s.op)(&w, &ctx);
        let made = w.store.calls();
        let log = w.store.log();
        w.store.disarm();
        let after = w.store.raw();
        let label = format!("{} with call {n} failing ({made} calls: {log:?})", s.name);
        match classify(&label, result, s.committed) {
            Class::Committed(summary) => {
                eprintln!("{label}: committed {summary}");
                check_like_reference(&label, &w, &reference, &before, &after, &summary);
                (s.after_ok)(&w, &ctx);
            }
            Class::Failed(e) => {
                eprintln!("{label}: failed with {e:?}");
                assert!(n <= made, "{label}: failed although the fault never fired: {e:?}");
                assert_eq!(e.name(), "storage", "{label}: unexpected error {e:?}");
                assert!(e.to_string().contains("injected"), "{label}: the error does not name its cause: {e}");
                assert!(
                    after == before,
                    "{label}: the operation failed ({e:?}) but the stored record changed:\nbefore {}\nafter  {}",
                    show(&before),
                    show(&after)
                );
                (s.after_err)(&w, &ctx);
                assert!(w.store.raw() == before, "{label}: after_err changed the record");
                // Nothing happened: the same operation, fault-free now, does what it does.
                let retry = (s.op)(&w, &ctx);
                let retried = w.store.raw();
                match classify(&label, retry, s.committed) {
                    Class::Committed(summary) => check_like_reference(
                        &format!("{label}, then retried"),
                        &w,
                        &reference,
                        &before,
                        &retried,
                        &summary,
                    ),
                    Class::Failed(e) => panic!("{label}: the retry without fault failed: {e:?}"),
                }
                (s.after_ok)(&w, &ctx);
            }
        }
    }
}

fn check_like_reference(
    label: &str,
    w: &World,
    reference: &Reference,
    before: &Option<Vec<u8>>,
    after: &Option<Vec<u8>>,
    summary: &str,
) {
    assert_eq!(summary, reference.summary, "{label}: another answer than the fault-free run");
    assert_eq!(before != after, reference.changed, "{label}: the record changed iff it did fault-free");
    assert_eq!(shape_of(after), reference.shape, "{label}: another record structure than the fault-free run");
    assert_eq!(w.engine.security_status(USER).unwrap(), reference.status, "{label}: another security status");
}

fn show(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "<no record>".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by several scenarios.

fn no_check(_: &World, _: &Ctx) {}

/// Every sign-in code ever handed to the mailer except the last delivered one is refused, then
/// the last delivered one signs in.
fn login_codes_behave(w: &World, ctx: &Ctx) {
    let last = w.mail.last_code(EMAIL, LOGIN_SUBJECT);
    for (code, delivered) in w.mail.codes(EMAIL, LOGIN_SUBJECT) {
        if code != last {
            let r = w.engine.login_verify(USER, &ctx.challenge, Proof::Email(code.clone()));
            assert!(r.is_err(), "a discarded sign-in code (delivered: {delivered}) was accepted");
        }
    }
    let ok = w.engine.login_verify(USER, &ctx.challenge, Proof::Email(last)).unwrap();
    assert_eq!(ok.method, MethodKind::Email);
}

/// Every enrolment code except the last delivered one is refused, then the last one confirms.
fn enroll_codes_behave(w: &World, ctx: &Ctx) {
    let last = w.mail.last_code(EMAIL, ENROLL_SUBJECT);
    for (code, delivered) in w.mail.codes(EMAIL, ENROLL_SUBJECT) {
        if code != last {
            let r = w.engine.email_enroll_confirm(USER, &code, ctx.step_up());
            assert!(r.is_err(), "a discarded enrolment code (delivered: {delivered}) was accepted");
        }
    }
    let added = w.engine.email_enroll_confirm(USER, &last, ctx.step_up()).unwrap();
    assert_eq!(added.method.label, EMAIL);
}

fn totp_signs_in(w: &World, secret: &str) {
    let ch = w.challenge();
    w.engine.login_verify(USER, &ch, Proof::Totp(totp_code(secret, w.clock.get()))).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The operations.

#[test]
fn set_contact_email() {
    run(Scenario {
        name: "set_contact_email",
        setup: enrolled,
        op: |w, ctx| w.engine.set_contact_email(USER, "new@example.com", ctx.step_up()).map(|n| format!("{n:?}")),
        committed: None,
        after_ok: |w, _| assert_eq!(w.status().contact_email.as_deref(), Some("new@example.com")),
        after_err: |w, _| assert_eq!(w.status().contact_email.as_deref(), Some(CONTACT)),
    });
}

#[test]
fn set_contact_email_of_a_new_user() {
    run(Scenario {
        name: "set_contact_email (no record yet)",
        setup: |_| Ctx::default(),
        op: |w, _| w.engine.set_contact_email(USER, CONTACT, None).map(|n| format!("{n:?}")),
        committed: None,
        after_ok: |w, _| assert_eq!(w.status().contact_email.as_deref(), Some(CONTACT)),
        after_err: |w, _| assert_eq!(w.store.raw(), None),
    });
}

#[test]
fn mark_order_created() {
    run(Scenario {
        name: "mark_order_created",
        setup: enrolled,
        op: |w, _| w.engine.mark_order_created(USER).map(|()| "()".into()),
        committed: None,
        after_ok: |w, _| assert!(w.status().two_factor_required),
        after_err: |w, _| assert!(!w.status().two_factor_required),
    });
}

#[test]
fn totp_enroll_begin() {
    run(Scenario {
        name: "totp_enroll_begin",
        setup: |w| {
            w.engine.set_contact_email(USER, CONTACT, None).unwrap();
            Ctx::default()
        },
        op: |w, _| {
            w.engine.totp_enroll_begin(USER, CONTACT, None).map(|s| {
                w.stash(s.secret.clone());
                format!("expires_at {} secret {} chars uri {} chars", s.expires_at, s.secret.len(), s.uri.len())
            })
        },
        committed: None,
        after_ok: |w, _| {
            assert!(w.status().pending.totp);
            let secret = w.stashed();
            w.engine.totp_enroll_confirm(USER, &totp_code(&secret, w.clock.get()), None).unwrap();
        },
        after_err: |w, _| assert!(!w.status().pending.totp),
    });
}

#[test]
fn totp_enroll_confirm() {
    run(Scenario {
        name: "totp_enroll_confirm",
        setup: |w| {
            w.engine.set_contact_email(USER, CONTACT, None).unwrap();
            let setup = w.engine.totp_enroll_begin(USER, CONTACT, None).unwrap();
            w.clock.advance(30);
            Ctx { secret: setup.secret, ..Ctx::default() }
        },
        op: |w, ctx| {
            let code = totp_code(&ctx.secret, w.clock.get());
            w.engine
                .totp_enroll_confirm(USER, &code, None)
                .map(|m| format!("{:?} step_up {:?} {:?}", m.method, m.step_up.map(|s| s.expires_at), m.notices))
        },
        committed: None,
        after_ok: |w, ctx| {
            let s = w.status();
            assert_eq!(s.methods.len(), 1);
            assert!(!s.pending.totp);
            w.clock.advance(30);
            totp_signs_in(w, &ctx.secret);
        },
        after_err: |w, _| {
            let s = w.status();
            assert!(s.methods.is_empty());
            assert!(s.pending.totp);
        },
    });
}

#[test]
fn email_enroll_begin() {
    run(Scenario {
        name: "email_enroll_begin",
        setup: enrolled,
        op: |w, ctx| w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).map(|c| format!("{c:?}")),
        committed: None,
        after_ok: |w, ctx| {
            assert_eq!(w.status().pending.email.as_deref(), Some(EMAIL));
            enroll_codes_behave(w, ctx);
        },
        after_err: |w, _| assert_eq!(w.status().pending.email, None),
    });
}

#[test]
fn email_enroll_begin_of_a_new_user() {
    run(Scenario {
        name: "email_enroll_begin (no record yet)",
        setup: |_| Ctx::default(),
        op: |w, _| w.engine.email_enroll_begin(USER, EMAIL, None).map(|c| format!("{c:?}")),
        committed: None,
        after_ok: |w, ctx| {
            assert_eq!(w.status().pending.email.as_deref(), Some(EMAIL));
            enroll_codes_behave(w, ctx);
        },
        after_err: |w, _| assert_eq!(w.status().pending.email, None),
    });
}

#[test]
fn email_enroll_confirm() {
    run(Scenario {
        name: "email_enroll_confirm",
        setup: |w| {
            let mut ctx = enrolled(w);
            w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).unwrap();
            ctx.code = w.mail.last_code(EMAIL, ENROLL_SUBJECT);
            ctx
        },
        op: |w, ctx| {
            w.engine
                .email_enroll_confirm(USER, &ctx.code, ctx.step_up())
                .map(|m| format!("{:?} step_up {:?} {:?}", m.method, m.step_up.is_some(), m.notices))
        },
        committed: None,
        after_ok: |w, ctx| {
            let s = w.status();
            assert_eq!(s.methods.len(), 2);
            assert_eq!(s.pending.email, None);
            let again = w.engine.email_enroll_confirm(USER, &ctx.code, ctx.step_up()).unwrap_err();
            assert!(matches!(again, Error::Replayed | Error::NotFound(_)), "{again:?}");
        },
        after_err: |w, _| {
            let s = w.status();
            assert_eq!(s.methods.len(), 1);
            assert_eq!(s.pending.email.as_deref(), Some(EMAIL));
        },
    });
}

#[test]
fn rename_method() {
    run(Scenario {
        name: "rename_method",
        setup: enrolled,
        op: |w, ctx| w.engine.rename_method(USER, &ctx.method_id, "Phone", ctx.step_up()).map(|m| format!("{m:?}")),
        committed: None,
        after_ok: |w, _| assert_eq!(w.status().methods[0].label, "Phone"),
        after_err: |w, _| assert_eq!(w.status().methods[0].label, "Authenticator app"),
    });
}

#[test]
fn remove_method() {
    run(Scenario {
        name: "remove_method",
        setup: |w| {
            let ctx = with_email(w);
            assert_eq!(w.status().methods.len(), 2);
            ctx
        },
        op: |w, ctx| w.engine.remove_method(USER, &ctx.method_id, ctx.step_up()).map(|n| format!("{n:?}")),
        committed: None,
        after_ok: |w, ctx| {
            let s = w.status();
            assert_eq!(s.methods.len(), 1);
            assert!(s.methods.iter().all(|m| m.id != ctx.method_id));
        },
        after_err: |w, ctx| {
            let s = w.status();
            assert_eq!(s.methods.len(), 2);
            assert!(s.methods.iter().any(|m| m.id == ctx.method_id));
        },
    });
}

#[test]
fn recovery_codes_generate() {
    run(Scenario {
        name: "recovery_codes_generate",
        setup: with_recovery,
        op: |w, ctx| {
            w.engine.recovery_codes_generate(USER, ctx.step_up()).map(|r| {
                w.stash(r.codes.join(" "));
                format!("{} codes {:?}", r.codes.len(), r.notices)
            })
        },
        committed: None,
        after_ok: |w, ctx| {
            assert_eq!(w.status().recovery_codes_left, 10);
            let ch = w.challenge();
            let old = w.engine.login_verify(USER, &ch, Proof::Recovery(ctx.recovery[0].clone())).unwrap_err();
            assert_eq!(old, Error::InvalidCode, "an old recovery code still works after a new set");
            let new = w.stashed().split(' ').next().unwrap().to_string();
            w.engine.login_verify(USER, &ch, Proof::Recovery(new)).unwrap();
        },
        after_err: |w, _| assert_eq!(w.status().recovery_codes_left, 10),
    });
}

#[test]
fn login_begin() {
    run(Scenario {
        name: "login_begin",
        setup: enrolled,
        op: |w, _| {
            w.engine.login_begin(USER).map(|c| {
                w.stash(c.challenge_id.clone().unwrap_or_default());
                format!(
                    "required {} enrol {} methods {:?} webauthn {} expires {:?}",
                    c.second_factor_required,
                    c.enrollment_required,
                    c.methods,
                    c.webauthn_options.is_some(),
                    c.expires_at
                )
            })
        },
        committed: None,
        after_ok: |w, ctx| {
            let ch = w.stashed();
            w.engine.login_verify(USER, &ch, Proof::Totp(totp_code(&ctx.secret, w.clock.get()))).unwrap();
        },
        after_err: no_check,
    });
}

#[test]
fn login_send_email_code() {
    run(Scenario {
        name: "login_send_email_code",
        setup: |w| {
            let mut ctx = with_email(w);
            ctx.challenge = w.challenge();
            ctx
        },
        op: |w, ctx| w.engine.login_send_email_code(USER, &ctx.challenge).map(|c| format!("{c:?}")),
        committed: None,
        after_ok: login_codes_behave,
        after_err: no_check,
    });
}

#[test]
fn login_verify_right_totp() {
    run(Scenario {
        name: "login_verify (right TOTP code)",
        setup: |w| {
            let mut ctx = enrolled(w);
            ctx.challenge = w.challenge();
            ctx.code = totp_code(&ctx.secret, w.clock.get());
            ctx
        },
        op: |w, ctx| {
            w.engine.login_verify(USER, &ctx.challenge, Proof::Totp(ctx.code.clone())).map(|s| {
                format!(
                    "{:?} {:?} step_up expires {} left {:?} {:?}",
                    s.method, s.method_id, s.step_up.expires_at, s.recovery_codes_left, s.notices
                )
            })
        },
        committed: None,
        after_ok: |w, ctx| {
            assert_eq!(w.status().methods[0].last_used, Some(w.clock.get()));
            let ch = w.challenge();
            let again = w.engine.login_verify(USER, &ch, Proof::Totp(ctx.code.clone())).unwrap_err();
            assert_eq!(again, Error::Replayed);
        },
        after_err: |w, _| assert_eq!(w.status().methods[0].last_used, None),
    });
}

#[test]
fn login_verify_wrong_totp() {
    run(Scenario {
        name: "login_verify (wrong TOTP code)",
        setup: |w| {
            let mut ctx = enrolled(w);
            ctx.challenge = w.challenge();
            ctx.code = wrong_code(&ctx.secret, w.clock.get());
            ctx
        },
        op: |w, ctx| {
            w.engine.login_verify(USER, &ctx.challenge, Proof::Totp(ctx.code.clone())).map(|s| format!("{s:?}"))
        },
        committed: Some("invalid_code"),
        after_ok: |w, _| assert_eq!(w.record()["failures"], 1, "the failure was not counted"),
        after_err: |w, _| assert_eq!(w.record()["failures"], 0),
    });
}

#[test]
fn login_verify_recovery_code() {
    run(Scenario {
        name: "login_verify (recovery code)",
        setup: |w| {
            let mut ctx = with_recovery(w);
            ctx.challenge = w.challenge();
            ctx
        },
        op: |w, ctx| {
            w.engine.login_verify(USER, &ctx.challenge, Proof::Recovery(ctx.recovery[0].clone())).map(|s| {
                format!(
                    "{:?} {:?} step_up expires {} left {:?} {:?}",
                    s.method, s.method_id, s.step_up.expires_at, s.recovery_codes_left, s.notices
                )
            })
        },
        committed: None,
        after_ok: |w, ctx| {
            assert_eq!(w.status().recovery_codes_left, 9);
            let ch = w.challenge();
            let again = w.engine.login_verify(USER, &ch, Proof::Recovery(ctx.recovery[0].clone())).unwrap_err();
            assert_eq!(again, Error::InvalidCode, "a used recovery code is refused");
        },
        after_err: |w, _| assert_eq!(w.status().recovery_codes_left, 10),
    });
}

#[test]
fn admin_totp_import() {
    run(Scenario {
        name: "Admin::totp_import",
        setup: enrolled,
        op: |w, _| {
            w.admin
                .totp_import(USER, IMPORT_SECRET, TotpAlgorithm::Sha1, 6, 30)
                .map(|m| format!("{:?} step_up {:?} {:?}", m.method, m.step_up.is_some(), m.notices))
        },
        committed: None,
        after_ok: |w, ctx| {
            let s = w.status();
            assert_eq!(s.methods.len(), 1);
            assert_ne!(s.methods[0].id, ctx.method_id);
            totp_signs_in(w, IMPORT_SECRET);
        },
        after_err: |w, ctx| {
            let s = w.status();
            assert_eq!(s.methods.len(), 1);
            assert_eq!(s.methods[0].id, ctx.method_id);
        },
    });
}

#[test]
fn admin_delete_user() {
    run(Scenario {
        name: "Admin::delete_user",
        setup: enrolled,
        op: |w, _| w.admin.delete_user(USER).map(|()| "()".into()),
        committed: None,
        after_ok: |w, _| {
            assert_eq!(w.store.raw(), None);
            assert!(w.status().methods.is_empty());
        },
        after_err: |w, _| assert_eq!(w.status().methods.len(), 1),
    });
}

// ---------------------------------------------------------------------------------------------
// Failing mail.

/// The failing mailer during `email_enroll_begin`: `mail`, the record is byte-equal, and the
/// code the mailer was handed never confirms; a later resend works.
fn failed_enrol_mail(setup: fn(&World) -> Ctx) {
    let w = World::new();
    let ctx = setup(&w);
    let before = w.store.raw();
    w.mail.fail(true);
    let err = w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).unwrap_err();
    eprintln!("email_enroll_begin with failing mail: {err:?}");
    assert_eq!(err.name(), "mail", "{err:?}");
    assert!(
        w.store.raw() == before,
        "failed delivery changed the record:\nbefore {}\nafter  {}",
        show(&before),
        show(&w.store.raw())
    );
    w.mail.fail(false);
    let codes = w.mail.codes(EMAIL, ENROLL_SUBJECT);
    assert_eq!(codes.len(), 1, "the mailer was asked once");
    let (undelivered, delivered) = codes[0].clone();
    assert!(!delivered);
    let refused = w.engine.email_enroll_confirm(USER, &undelivered, ctx.step_up()).unwrap_err();
    eprintln!("the undelivered enrolment code is refused with {refused:?}");
    assert_eq!(refused.name(), "not_found", "{refused:?}");
    assert_eq!(w.status().pending.email, None);
    // Nothing was armed, so no cooldown: a resend goes out at once and its code confirms.
    w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).unwrap();
    enroll_codes_behave(&w, &ctx);
}

#[test]
fn failing_mail_email_enroll_begin() {
    failed_enrol_mail(enrolled);
}

#[test]
fn failing_mail_email_enroll_begin_of_a_new_user() {
    failed_enrol_mail(|_| Ctx::default());
}

#[test]
fn failing_mail_login_send_email_code() {
    let w = World::new();
    let mut ctx = with_email(&w);
    ctx.challenge = w.challenge();
    let before = w.store.raw();
    w.mail.fail(true);
    let err = w.engine.login_send_email_code(USER, &ctx.challenge).unwrap_err();
    eprintln!("login_send_email_code with failing mail: {err:?}");
    assert_eq!(err.name(), "mail", "{err:?}");
    assert!(err.to_string().contains("smtp down"), "{err}");
    assert!(w.store.raw() == before, "failed delivery changed the record");
    w.mail.fail(false);
    let codes = w.mail.codes(EMAIL, LOGIN_SUBJECT);
    assert_eq!(codes.len(), 1);
    let refused = w.engine.login_verify(USER, &ctx.challenge, Proof::Email(codes[0].0.clone())).unwrap_err();
    eprintln!("the undelivered sign-in code is refused with {refused:?}");
    assert_eq!(refused.name(), "not_found", "{refused:?}");
    assert_eq!(w.record()["failures"], 0, "refusing an undelivered code is not a counted attempt");
    w.engine.login_send_email_code(USER, &ctx.challenge).unwrap();
    login_codes_behave(&w, &ctx);
}

/// A sign-in code was delivered and armed; after the cooldown a resend fails: the record is
/// exactly as before (the armed code is untouched) and the undelivered code never verifies.
#[test]
fn failing_mail_resend_keeps_the_armed_code() {
    let w = World::new();
    let mut ctx = with_email(&w);
    ctx.challenge = w.challenge();
    w.engine.login_send_email_code(USER, &ctx.challenge).unwrap();
    let first = w.mail.last_code(EMAIL, LOGIN_SUBJECT);
    w.clock.advance(61);
    let before = w.store.raw();
    w.mail.fail(true);
    assert_eq!(w.engine.login_send_email_code(USER, &ctx.challenge).unwrap_err().name(), "mail");
    assert!(w.store.raw() == before, "failed resend changed the record");
    w.mail.fail(false);
    let (undelivered, delivered) = w.mail.codes(EMAIL, LOGIN_SUBJECT).last().cloned().unwrap();
    assert!(!delivered);
    if undelivered != first {
        let r = w.engine.login_verify(USER, &ctx.challenge, Proof::Email(undelivered));
        assert!(r.is_err(), "an undelivered code was accepted");
    }
    w.engine.login_verify(USER, &ctx.challenge, Proof::Email(first)).unwrap();
}

/// The same through the common `Outbox` (which does not record a failed message).
#[test]
fn failing_outbox_login_send_email_code() {
    let store = Arc::new(MemoryStore::new());
    let (engine, clock, outbox) = common::engine_with(common::config(), store.clone());
    let (_, step_up) = common::enroll_totp(&engine, &clock, USER, None);
    engine.email_enroll_begin(USER, EMAIL, step_up.as_deref()).unwrap();
    engine.email_enroll_confirm(USER, &outbox.last_code(EMAIL), step_up.as_deref()).unwrap();
    let ch = engine.login_begin(USER).unwrap().challenge_id.unwrap();
    let before = store.get(USER_KEY).unwrap().unwrap().bytes;
    let sent = outbox.count();
    outbox.fail(true);
    assert_eq!(engine.login_send_email_code(USER, &ch).unwrap_err().name(), "mail");
    assert_eq!(engine.email_enroll_begin(USER, "other@example.com", step_up.as_deref()).unwrap_err().name(), "mail");
    assert_eq!(outbox.count(), sent);
    assert!(store.get(USER_KEY).unwrap().unwrap().bytes == before, "failed deliveries changed the record");
    outbox.fail(false);
    assert_eq!(engine.security_status(USER).unwrap().pending.email, None);
}

/// A notice that fails never undoes the change it reports.
#[test]
fn failing_notice_does_not_undo_totp_enroll_confirm() {
    let w = World::new();
    w.engine.set_contact_email(USER, CONTACT, None).unwrap();
    let setup = w.engine.totp_enroll_begin(USER, CONTACT, None).unwrap();
    w.mail.fail_subjects_containing(Some("method was added"));
    let added = w.engine.totp_enroll_confirm(USER, &totp_code(&setup.secret, w.clock.get()), None).unwrap();
    eprintln!("totp_enroll_confirm with failing notices: {:?}", added.notices);
    assert_eq!(added.notices.sent, 0);
    assert_eq!(added.notices.failed.len(), 1);
    assert!(added.notices.failed[0].starts_with(CONTACT), "{:?}", added.notices.failed);
    assert!(added.step_up.is_some());
    let s = w.status();
    assert_eq!(s.methods.len(), 1);
    assert!(!s.pending.totp);
    let notices: Vec<_> = w.mail.all().into_iter().filter(|(m, _)| m.subject.contains("method was added")).collect();
    assert_eq!(notices.len(), 1);
    assert!(!notices[0].1);
    // The step-up token of the first method works.
    w.engine.recovery_codes_generate(USER, added.step_up.as_ref().map(|s| s.token.as_str())).unwrap();
}

/// Both notices of an email confirmation fail (contact and the new address): still confirmed.
#[test]
fn failing_notices_do_not_undo_email_enroll_confirm() {
    let w = World::new();
    let ctx = enrolled(&w);
    w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).unwrap();
    let code = w.mail.last_code(EMAIL, ENROLL_SUBJECT);
    w.mail.fail_subjects_containing(Some("method was added"));
    let added = w.engine.email_enroll_confirm(USER, &code, ctx.step_up()).unwrap();
    eprintln!("email_enroll_confirm with failing notices: {:?}", added.notices);
    assert_eq!(added.notices.sent, 0);
    assert_eq!(added.notices.failed.len(), 2, "{:?}", added.notices);
    assert_eq!(w.status().methods.len(), 2);
}

/// A send-code operation whose code cannot be delivered or armed must leave exactly the
/// before-state bytes even when they hold something that has expired since they were written
/// (here: a sign-in challenge).
#[test]
fn email_enroll_begin_over_expired_state() {
    run(Scenario {
        name: "email_enroll_begin (record holds an expired challenge)",
        setup: |w| {
            let ctx = enrolled(w);
            w.challenge();
            w.clock.advance(301);
            ctx
        },
        op: |w, ctx| w.engine.email_enroll_begin(USER, EMAIL, ctx.step_up()).map(|c| format!("{c:?}")),
        committed: None,
        after_ok: |w, _| assert_eq!(w.status().pending.email.as_deref(), Some(EMAIL)),
        after_err: |w, _| assert_eq!(w.status().pending.email, None),
    });
}

/// The same for a sign-in code, over an expired step-up token.
#[test]
fn login_send_email_code_over_expired_state() {
    run(Scenario {
        name: "login_send_email_code (record holds an expired step-up token)",
        setup: |w| {
            let mut ctx = with_email(w);
            w.clock.set(T0 + 590);
            ctx.challenge = w.challenge();
            w.clock.set(T0 + 601);
            ctx
        },
        op: |w, ctx| w.engine.login_send_email_code(USER, &ctx.challenge).map(|c| format!("{c:?}")),
        committed: None,
        after_ok: login_codes_behave,
        after_err: no_check,
    });
}

/// The observable side of the empty-record bug: a user who never got a record is "found" by
/// `Admin::delete_user` after a failed email enrolment.
#[test]
fn failed_send_creates_no_user() {
    let w = World::new();
    assert_eq!(w.admin.delete_user(USER).unwrap_err().name(), "not_found");
    w.mail.fail(true);
    assert_eq!(w.engine.email_enroll_begin(USER, EMAIL, None).unwrap_err().name(), "mail");
    assert_eq!(w.store.raw(), None, "a failed operation created a record");
    assert_eq!(w.admin.delete_user(USER).unwrap_err().name(), "not_found");
}

/// A sign-in code goes to two confirmed addresses and only one delivery succeeds: the code is
/// armed (it reached the user), and the answer says where it went.
#[test]
fn partial_delivery_reports_where_the_code_went() {
    const OTHER: &str = "other@example.org";
    let w = World::new();
    let mut ctx = with_email(&w);
    w.engine.email_enroll_begin(USER, OTHER, ctx.step_up()).unwrap();
    w.engine.email_enroll_confirm(USER, &w.mail.last_code(OTHER, ENROLL_SUBJECT), ctx.step_up()).unwrap();
    ctx.challenge = w.challenge();
    w.mail.fail_to(Some(OTHER));
    let sent = w.engine.login_send_email_code(USER, &ctx.challenge).unwrap();
    w.mail.fail_to(None);
    eprintln!("partial delivery: {sent:?}");
    // The delivered code works.
    let code = w.mail.last_code(EMAIL, LOGIN_SUBJECT);
    assert!(!w.mail.codes(OTHER, LOGIN_SUBJECT).last().unwrap().1, "the second delivery failed");
    assert_eq!(sent.sent_to, vec!["a***@example.com".to_string()], "sent_to names an address the code never reached");
    w.engine.login_verify(USER, &ctx.challenge, Proof::Email(code)).unwrap();
}

/// Host callbacks that panic (bugs in a Rust host's store, mailer or clock) fail the operation
/// like an error would: `storage`, `mail` or `internal`, naming the panicking call, with the
/// record untouched; the engine keeps working. A panic never unwinds into the caller.
#[test]
fn panicking_host_callbacks_are_errors() {
    // Every store call of a TOTP sign-in panics in turn.
    let w = World::new();
    let ctx = enrolled(&w);
    w.store.panics.store(true, Ordering::SeqCst);
    let before = w.store.raw();
    for n in 1.. {
        w.store.arm(n);
        let challenge = w.engine.login_begin(USER).and_then(|c| {
            let id = c.challenge_id.unwrap_or_default();
            w.engine.login_verify(USER, &id, Proof::Totp(totp_code(&ctx.secret, w.clock.now())))
        });
        let made = w.store.calls();
        w.store.disarm();
        if n > made {
            challenge.expect("the fault never fired, so the sign-in succeeds");
            break;
        }
        let err = challenge.expect_err("a panicking store cannot let the sign-in succeed");
        assert_eq!(err.name(), "storage", "store panic at call {n}: {err:?}");
        assert!(err.to_string().contains("panicked: injected store panic"), "{err}");
        if n == 1 {
            assert_eq!(w.store.raw(), before, "the panicking first call changed the record");
        }
        w.engine.security_status(USER).expect("the engine works after a store panic");
    }

    // A mailer that panics: `mail`, the undelivered code is refused, a later send works.
    let w = World::new();
    let mut ctx = with_email(&w);
    ctx.challenge = w.challenge();
    let before = w.store.raw();
    w.mail.panics.store(true, Ordering::SeqCst);
    w.mail.fail(true);
    let err = w.engine.login_send_email_code(USER, &ctx.challenge).unwrap_err();
    w.mail.fail(false);
    assert_eq!(err.name(), "mail", "{err:?}");
    assert!(err.to_string().contains("mailer.send panicked: injected mailer panic"), "{err}");
    assert!(w.store.raw() == before, "a panicking mailer changed the record");
    let (undelivered, delivered) = w.mail.codes(EMAIL, LOGIN_SUBJECT).pop().unwrap();
    assert!(!delivered);
    let refused = w.engine.login_verify(USER, &ctx.challenge, Proof::Email(undelivered)).unwrap_err();
    assert!(["invalid_code", "not_found"].contains(&refused.name()), "{refused:?}");
    w.engine.login_send_email_code(USER, &ctx.challenge).expect("a later send works");

    // A clock that panics: `internal`, nothing read or written.
    struct PanickingClock;
    impl Clock for PanickingClock {
        fn now(&self) -> u64 {
            panic!("injected clock panic")
        }
    }
    let w = World::new();
    enrolled(&w);
    let before = w.store.raw();
    let engine = w.engine.clone().with_clock(PanickingClock);
    w.store.arm(0);
    let err = engine.security_status(USER).unwrap_err();
    assert_eq!(err.name(), "internal", "{err:?}");
    assert!(err.to_string().contains("clock.now panicked: injected clock panic"), "{err}");
    assert_eq!(w.store.calls(), 0);
    assert_eq!(w.store.raw(), before);
}
