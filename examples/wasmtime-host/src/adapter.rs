//! The component's adapter of the fault-injection harness (`tests/faults/README.md`): the host's
//! store, mailer and clock in Rust, the harness's faults injected into the `store` and `mailer`
//! imports, and the line protocol answered by [`Adapter::command`] (the `fault-adapter` binary
//! reads the lines).
//!
//! * [`SlotStore`]: the records, versions from one counter starting at 100, named copies.
//! * [`Injector`]: one armed fault, and the log of the calls and messages of an operation;
//!   [`crate::host::HostState::injector`] routes every store and mailer import through it.
//! * [`run_request`] and [`run_admin_request`]: the core's request → the typed component call
//!   → the core's outcome JSON.
//! * The audit events the component emits during an operation (recorded by the host's `events`
//!   import) are answered as the core's `SecurityEvent` JSON.
//!
//! A `crash` or `mail-crash` makes the import trap. The instance cannot be entered after a trap,
//! so the adapter instantiates the component again, over the same store, and reports the trap as
//! the error `trap`.

use crate::clock::VirtualClock;
use crate::convert;
use crate::host::{Component, Instance, wit};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use twofa_core::store::{Store, StoreError, Version, Versioned};
use twofa_core::{AdminRequest, Error, Request, SecurityEvent};

/// The fault kinds this adapter supports, by their protocol names.
pub const KINDS: [&str; 7] = ["fail", "crash", "conflict", "corrupt", "stale", "mail-fail", "mail-crash"];

/// What a `corrupt` get returns: `{"corrupt` and the byte 0xFF (not JSON, not even UTF-8).
pub const CORRUPT: &[u8] = b"{\"corrupt\xff";

/// The first version [`SlotStore`] hands out (and the version of a corrupt missing record).
pub const FIRST_VERSION: Version = 100;

/// A fault of the harness (README, "Faults").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A store call answers the `failed` case of `store-error`.
    Fail,
    /// A store call traps (the import returns `Err`).
    Crash,
    /// A put or delete answers `cas-failed` although the version matched.
    Conflict,
    /// A get returns [`CORRUPT`] with the record's current version.
    Corrupt,
    /// A get returns the record with its current version minus one.
    Stale,
    /// A send answers a delivery failure.
    MailFail,
    /// A send traps.
    MailCrash,
}

impl FaultKind {
    /// The kind of a protocol name (`"mail-fail"`), if it is one.
    pub fn parse(name: &str) -> Option<FaultKind> {
        Some(match name {
            "fail" => FaultKind::Fail,
            "crash" => FaultKind::Crash,
            "conflict" => FaultKind::Conflict,
            "corrupt" => FaultKind::Corrupt,
            "stale" => FaultKind::Stale,
            "mail-fail" => FaultKind::MailFail,
            "mail-crash" => FaultKind::MailCrash,
            _ => return None,
        })
    }

    /// The calls this kind counts and fires at.
    pub fn counts(self, call: HostCall) -> bool {
        use HostCall::*;
        match self {
            FaultKind::Fail | FaultKind::Crash => matches!(call, Get | Put | Delete),
            FaultKind::Conflict => matches!(call, Put | Delete),
            FaultKind::Corrupt | FaultKind::Stale => call == Get,
            FaultKind::MailFail | FaultKind::MailCrash => call == Send,
        }
    }

    /// Whether the call itself fails when this kind fires (an error then names the callback).
    pub fn fails_the_call(self) -> bool {
        matches!(self, FaultKind::Fail | FaultKind::Crash | FaultKind::MailFail | FaultKind::MailCrash)
    }
}

/// An import of the component the host answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCall {
    /// `store.get`.
    Get,
    /// `store.put`.
    Put,
    /// `store.delete`.
    Delete,
    /// `mailer.send`.
    Send,
}

impl HostCall {
    /// The import's name, as an error's `callback` names it (`"store.get"`, `"mailer.send"`).
    pub fn callback(self) -> &'static str {
        match self {
            HostCall::Get => "store.get",
            HostCall::Put => "store.put",
            HostCall::Delete => "store.delete",
            HostCall::Send => "mailer.send",
        }
    }

    /// The word of the call log (`"get user/alice"`).
    fn verb(self) -> &'static str {
        match self {
            HostCall::Get => "get",
            HostCall::Put => "put",
            HostCall::Delete => "delete",
            HostCall::Send => "send",
        }
    }
}

/// A message handed to the mailer, delivered or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The recipient.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// Whether the mailer delivered it (false when a fault fired at it).
    pub delivered: bool,
}

/// One armed fault, counted from [`Injector::arm`] and firing once, and the log of the calls
/// and messages since [`Injector::start`]. The host's imports call [`Injector::get`],
/// [`Injector::put`], [`Injector::delete`] and [`Injector::send`] instead of the store and
/// mailer; `Err` from them is a trap.
#[derive(Debug, Default)]
pub struct Injector {
    armed: Option<(FaultKind, u64)>,
    seen: u64,
    fired: Option<(FaultKind, HostCall)>,
    /// Every store and mailer call since [`Injector::start`], a faulted one included
    /// (`"get user/alice"`, `"send alice@example.com"`).
    pub calls: Vec<String>,
    /// Every message handed to the mailer since [`Injector::start`].
    pub mails: Vec<Mail>,
}

impl Injector {
    /// Arms `kind` at the `n`-th call of its domain from now (1 is the next one).
    pub fn arm(&mut self, kind: FaultKind, n: u64) {
        self.armed = Some((kind, n));
        self.seen = 0;
    }

    /// Disarms the fault if it has not fired.
    pub fn disarm(&mut self) {
        self.armed = None;
        self.seen = 0;
    }

    /// Starts the log of an operation: no calls, no messages, nothing fired (the armed fault
    /// keeps counting).
    pub fn start(&mut self) {
        self.calls.clear();
        self.mails.clear();
        self.fired = None;
    }

    /// The fault that fired since [`Injector::start`], and at which call.
    pub fn fired(&self) -> Option<(FaultKind, HostCall)> {
        self.fired
    }

    /// The import that failed or trapped because of the fault, if it did.
    pub fn failed_callback(&self) -> Option<&'static str> {
        self.fired.filter(|(kind, _)| kind.fails_the_call()).map(|(_, call)| call.callback())
    }

    /// Logs a call; the fault kind when the armed fault fires at it.
    fn fires(&mut self, call: HostCall, subject: &str) -> Option<FaultKind> {
        self.calls.push(format!("{} {subject}", call.verb()));
        let (kind, n) = self.armed?;
        if !kind.counts(call) {
            return None;
        }
        self.seen += 1;
        if self.seen != n {
            return None;
        }
        self.armed = None;
        self.fired = Some((kind, call));
        Some(kind)
    }

    fn trap(call: HostCall, subject: &str) -> wasmtime::Error {
        wasmtime::format_err!("injected crash in {} ({subject})", call.callback())
    }

    fn failure(call: HostCall, subject: &str) -> StoreError {
        StoreError::Failed(format!("injected store failure: {} {subject}", call.verb()))
    }

    /// `store.get` through the fault: `Err` is a trap.
    pub fn get(&mut self, store: &dyn Store, key: &str) -> wasmtime::Result<Result<Option<Versioned>, StoreError>> {
        Ok(match self.fires(HostCall::Get, key) {
            Some(FaultKind::Crash) => return Err(Injector::trap(HostCall::Get, key)),
            Some(FaultKind::Fail) => Err(Injector::failure(HostCall::Get, key)),
            Some(FaultKind::Corrupt) => store.get(key).map(|found| {
                Some(Versioned { bytes: CORRUPT.to_vec(), version: found.map_or(FIRST_VERSION, |v| v.version) })
            }),
            Some(FaultKind::Stale) => store
                .get(key)
                .map(|found| found.map(|v| Versioned { version: v.version.saturating_sub(1), bytes: v.bytes })),
            Some(FaultKind::Conflict | FaultKind::MailFail | FaultKind::MailCrash) | None => store.get(key),
        })
    }

    /// `store.put` through the fault: `Err` is a trap.
    pub fn put(
        &mut self,
        store: &dyn Store,
        key: &str,
        bytes: &[u8],
        expected: Option<Version>,
    ) -> wasmtime::Result<Result<Version, StoreError>> {
        Ok(match self.fires(HostCall::Put, key) {
            Some(FaultKind::Crash) => return Err(Injector::trap(HostCall::Put, key)),
            Some(FaultKind::Fail) => Err(Injector::failure(HostCall::Put, key)),
            Some(FaultKind::Conflict) => Err(StoreError::Conflict),
            _ => store.put(key, bytes, expected),
        })
    }

    /// `store.delete` through the fault: `Err` is a trap.
    pub fn delete(
        &mut self,
        store: &dyn Store,
        key: &str,
        expected: Version,
    ) -> wasmtime::Result<Result<(), StoreError>> {
        Ok(match self.fires(HostCall::Delete, key) {
            Some(FaultKind::Crash) => return Err(Injector::trap(HostCall::Delete, key)),
            Some(FaultKind::Fail) => Err(Injector::failure(HostCall::Delete, key)),
            Some(FaultKind::Conflict) => Err(StoreError::Conflict),
            _ => store.delete(key, expected),
        })
    }

    /// `mailer.send` through the fault: logs the message; `Ok(Ok(()))` means deliver it, `Err`
    /// is a trap.
    pub fn send(&mut self, to: &str, subject: &str, text: &str) -> wasmtime::Result<Result<(), String>> {
        let fault = self.fires(HostCall::Send, to);
        let delivered = !matches!(fault, Some(FaultKind::MailFail | FaultKind::MailCrash));
        self.mails.push(Mail { to: to.into(), subject: subject.into(), text: text.into(), delivered });
        match fault {
            Some(FaultKind::MailCrash) => Err(Injector::trap(HostCall::Send, to)),
            Some(FaultKind::MailFail) => Ok(Err(format!("injected delivery failure: {to}"))),
            _ => Ok(Ok(())),
        }
    }
}

/// The adapter's store: records in memory, versions from one counter starting at
/// [`FIRST_VERSION`] and never reused (not even across [`SlotStore::clear`] and
/// [`SlotStore::load`]), and named copies of the records.
pub struct SlotStore {
    inner: Mutex<Slots>,
}

struct Slots {
    last_version: Version,
    records: BTreeMap<String, Versioned>,
    slots: HashMap<String, BTreeMap<String, Versioned>>,
}

impl Default for SlotStore {
    fn default() -> Self {
        SlotStore::new()
    }
}

impl SlotStore {
    /// An empty store whose first version is [`FIRST_VERSION`].
    pub fn new() -> SlotStore {
        let slots = Slots { last_version: FIRST_VERSION - 1, records: BTreeMap::new(), slots: HashMap::new() };
        SlotStore { inner: Mutex::new(slots) }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Every change below completes or changes nothing.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes every record (the slots and the version counter stay).
    pub fn clear(&self) {
        self.lock().records.clear();
    }

    /// Copies the records into `slot`.
    pub fn save(&self, slot: &str) {
        let mut inner = self.lock();
        let records = inner.records.clone();
        inner.slots.insert(slot.into(), records);
    }

    /// Replaces the records with a copy of `slot`'s.
    pub fn load(&self, slot: &str) -> Result<(), String> {
        let mut inner = self.lock();
        let records = inner.slots.get(slot).cloned().ok_or_else(|| format!("no slot `{slot}`"))?;
        inner.records = records;
        Ok(())
    }

    /// The records as the protocol's `dump` lists them: `{"<key>": {"value": "<base64>",
    /// "version": N}}`.
    pub fn dump(&self) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let inner = self.lock();
        let records = inner
            .records
            .iter()
            .map(|(key, v)| (key.clone(), json!({"value": b64.encode(&v.bytes), "version": v.version})));
        Value::Object(records.collect())
    }
}

impl Store for SlotStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.lock().records.get(key).cloned())
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        let mut inner = self.lock();
        if inner.records.get(key).map(|v| v.version) != expected {
            return Err(StoreError::Conflict);
        }
        inner.last_version += 1;
        let version = inner.last_version;
        inner.records.insert(key.into(), Versioned { bytes: bytes.to_vec(), version });
        Ok(version)
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.records.get(key).map(|v| v.version) != Some(expected) {
            return Err(StoreError::Conflict);
        }
        inner.records.remove(key);
        Ok(())
    }
}

/// The answer of a component call: `Err` for a trap, else the core's outcome JSON without its
/// `type` tag (`{}` for operations that return nothing) or the core's error.
pub type Answer = wasmtime::Result<Result<Value, Error>>;

fn answer<T>(r: wasmtime::Result<Result<T, wit::Error>>, f: impl FnOnce(T) -> serde_json::Result<Value>) -> Answer {
    Ok(r?.map_err(convert::error).and_then(|t| f(t).map_err(|e| Error::Internal(format!("outcome as JSON: {e}")))))
}

/// The typed call's value through a `convert` function, as JSON.
macro_rules! out {
    ($call:expr, $convert:path) => {
        answer($call, |v| serde_json::to_value($convert(v)))
    };
}

/// Runs a user-facing request (the core's `Request`, parsed from its JSON) with the typed call
/// of its operation.
pub fn run_request(i: &mut Instance, user: &str, request: Request) -> Answer {
    match request {
        Request::SecurityStatus => out!(i.security_status(user), convert::status),
        Request::SetContactEmail { address, step_up } => {
            out!(i.set_contact_email(user, &address, step_up.as_deref()), convert::notices)
        }
        Request::ContactEmailBegin { address, step_up } => {
            out!(i.contact_email_begin(user, &address, step_up.as_deref()), convert::code_sent)
        }
        Request::ContactEmailConfirm { code, step_up } => {
            out!(i.contact_email_confirm(user, &code, step_up.as_deref()), convert::notices)
        }
        Request::MarkOrderCreated => answer(i.mark_order_created(user), |()| Ok(json!({}))),
        Request::TotpEnrollBegin { account_name, step_up } => {
            out!(i.totp_enroll_begin(user, &account_name, step_up.as_deref()), convert::totp_setup)
        }
        Request::TotpEnrollConfirm { code, step_up } => {
            out!(i.totp_enroll_confirm(user, &code, step_up.as_deref()), convert::method_added)
        }
        Request::EmailEnrollBegin { address, step_up } => {
            out!(i.email_enroll_begin(user, &address, step_up.as_deref()), convert::code_sent)
        }
        Request::EmailEnrollConfirm { code, step_up } => {
            out!(i.email_enroll_confirm(user, &code, step_up.as_deref()), convert::method_added)
        }
        Request::WebauthnRegisterBegin { friendly_name, step_up } => {
            out!(i.webauthn_register_begin(user, &friendly_name, step_up.as_deref()), convert::registration)
        }
        Request::WebauthnRegisterFinish { credential_json, step_up } => {
            out!(i.webauthn_register_finish(user, &credential_json, step_up.as_deref()), convert::method_added)
        }
        Request::RenameMethod { method_id, label, step_up } => {
            out!(i.rename_method(user, &method_id, &label, step_up.as_deref()), convert::method)
        }
        Request::RemoveMethod { method_id, step_up } => {
            out!(i.remove_method(user, &method_id, step_up.as_deref()), convert::notices)
        }
        Request::RecoveryCodesGenerate { step_up } => {
            out!(i.recovery_codes_generate(user, step_up.as_deref()), convert::recovery_codes)
        }
        Request::LoginBegin { device_token } => {
            out!(i.login_begin(user, device_token.as_deref()), convert::challenge)
        }
        Request::LoginSendEmailCode { challenge } => {
            out!(i.login_send_email_code(user, &challenge), convert::code_sent)
        }
        Request::LoginVerify { challenge, proof, remember_device } => {
            let proof = convert::proof(proof);
            out!(i.login_verify(user, &challenge, &proof, remember_device), convert::login_success)
        }
        Request::RevokeRememberedDevice { device_id } => {
            answer(i.revoke_remembered_device(user, &device_id), |()| Ok(json!({})))
        }
        Request::RevokeRememberedDevices => answer(i.revoke_remembered_devices(user), |()| Ok(json!({}))),
    }
}

/// Runs an admin request (the core's `AdminRequest`) with the typed call of its operation.
pub fn run_admin_request(i: &mut Instance, user: &str, request: AdminRequest) -> Answer {
    match request {
        AdminRequest::TotpImport { secret, algorithm, digits, period } => {
            out!(i.totp_import(user, &secret, convert::algorithm(algorithm), digits, period), convert::method_added)
        }
        AdminRequest::DeleteUser => answer(i.delete_user(user), |()| Ok(json!({}))),
        AdminRequest::ResetUser { actor, reason } => out!(i.reset_user(user, &actor, &reason), convert::reset_done),
        AdminRequest::ExportUser { key } => out!(i.export_user(user, &key), convert::user_export),
        AdminRequest::ImportUser { document, key } => {
            out!(i.import_user(user, &document, &key), convert::user_imported)
        }
    }
}

/// A core error as the protocol's error object. `callback` is the import a fault made fail: it
/// is named for the errors of its kind (`storage` for a store call, `mail` for a send), as the C
/// surface does.
pub fn error_json(e: &Error, callback: Option<&'static str>) -> Value {
    let callback = callback.filter(|cb| match e {
        Error::Storage(_) => cb.starts_with("store."),
        Error::Mail(_) => cb.starts_with("mailer."),
        _ => false,
    });
    json!({"name": e.name(), "code": e.code(), "message": e.to_string(), "callback": callback})
}

/// The message of a trap: the error the host function returned (or wasmtime's trap), without
/// the wasm backtrace wasmtime adds as context.
pub fn trap_message(trap: &wasmtime::Error) -> String {
    trap.root_cause().to_string()
}

enum Op {
    User(Request),
    Admin(AdminRequest),
}

/// The adapter: the compiled component, one instance of it over the adapter's [`SlotStore`] and
/// clock, and the [`Injector`], answering the harness's commands.
pub struct Adapter {
    component: Component,
    store: Arc<SlotStore>,
    clock: VirtualClock,
    injector: Injector,
    config: Option<String>,
    instance: Option<Instance>,
}

impl Adapter {
    /// An adapter of `component`, with no engine until the `config` command.
    pub fn new(component: Component) -> Adapter {
        Adapter {
            component,
            store: Arc::new(SlotStore::new()),
            clock: VirtualClock::at(0),
            injector: Injector::default(),
            config: None,
            instance: None,
        }
    }

    /// The store the instances use.
    pub fn store(&self) -> &Arc<SlotStore> {
        &self.store
    }

    /// Answers one command line (README, "Protocol"). A command the adapter cannot carry out
    /// (unknown, malformed, `run` before `config`) answers `{"error": {"name": "adapter", ...}}`.
    pub fn command(&mut self, line: &str) -> Value {
        self.try_command(line.trim()).unwrap_or_else(
            |message| json!({"error": {"name": "adapter", "code": null, "message": message, "callback": null}}),
        )
    }

    fn try_command(&mut self, line: &str) -> Result<Value, String> {
        let (name, rest) = line.split_once(' ').map_or((line, ""), |(name, rest)| (name, rest.trim()));
        let ok = json!({"ok": true});
        match name {
            "hello" => Ok(json!({"surface": "component", "kinds": KINDS, "crash_error": "trap"})),
            "config" => self.configure(rest),
            "time" => {
                self.clock.set(rest.parse().map_err(|e| format!("time `{rest}`: {e}"))?);
                Ok(ok)
            }
            "save" => {
                self.store.save(rest);
                Ok(ok)
            }
            "load" => {
                self.store.load(rest)?;
                Ok(ok)
            }
            "dump" => Ok(json!({"records": self.store.dump()})),
            "fault" => {
                let mut words = rest.split_whitespace();
                let (kind, n) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let n: u64 = n.parse().map_err(|e| format!("fault `{rest}`: {e}"))?;
                if kind == "none" {
                    self.injector.disarm();
                } else {
                    let kind = FaultKind::parse(kind).ok_or_else(|| format!("unknown fault kind `{kind}`"))?;
                    if n == 0 {
                        return Err(format!("fault `{rest}`: calls are counted from 1"));
                    }
                    self.injector.arm(kind, n);
                }
                Ok(ok)
            }
            "run" | "admin" => {
                let (user, request) =
                    rest.split_once(' ').ok_or_else(|| format!("{name} needs a user and a request"))?;
                self.operation(name == "admin", user, request.trim())
            }
            other => Err(format!("unknown command `{other}`")),
        }
    }

    /// A fresh instance over the store, opened with `config`; the outer `Err` is a trap or a
    /// failed instantiation.
    fn instantiate(&self, config: &str) -> Result<Result<Instance, Error>, String> {
        let mut instance = self
            .component
            .instantiate(self.store.clone(), &self.clock)
            .map_err(|e| format!("instantiating the component: {e:?}"))?;
        Ok(match instance.open(config).map_err(|e| format!("opening the engine trapped: {e:?}"))? {
            Ok(()) => Ok(instance),
            Err(e) => Err(convert::error(e)),
        })
    }

    fn configure(&mut self, config: &str) -> Result<Value, String> {
        if let Some(mut old) = self.instance.take() {
            // Best effort: the instance goes away either way.
            let _ = old.close();
        }
        self.config = None;
        self.store.clear();
        match self.instantiate(config)? {
            Ok(instance) => {
                self.instance = Some(instance);
                self.config = Some(config.into());
                Ok(json!({"ok": true}))
            }
            Err(e) => Ok(json!({"error": error_json(&e, None)})),
        }
    }

    fn operation(&mut self, admin: bool, user: &str, json: &str) -> Result<Value, String> {
        let parsed =
            if admin { AdminRequest::from_json(json).map(Op::Admin) } else { Request::from_json(json).map(Op::User) };
        self.injector.start();
        let mut events = Vec::new();
        let result = match (parsed, self.instance.as_mut()) {
            (_, None) => {
                self.injector.disarm();
                return Err("no engine: send `config` first".into());
            }
            (Err(e), Some(_)) => Ok(Err(e)),
            (Ok(op), Some(instance)) => {
                // Only this operation's events are reported (after a trap, those emitted before it).
                instance.state().events.clear();
                instance.state().injector = Some(std::mem::take(&mut self.injector));
                let result = match op {
                    Op::User(request) => run_request(instance, user, request),
                    Op::Admin(request) => run_admin_request(instance, user, request),
                };
                self.injector = instance.state().injector.take().unwrap_or_default();
                events = std::mem::take(&mut instance.state().events);
                result
            }
        };
        self.injector.disarm();
        let callback = self.injector.failed_callback();
        let (outcome, error) = match result {
            Ok(Ok(outcome)) => (outcome, Value::Null),
            Ok(Err(e)) => (Value::Null, error_json(&e, callback)),
            Err(trap) => {
                let message = trap_message(&trap);
                // The trapped instance cannot be entered again: a fresh one, same store and clock.
                self.instance = None;
                let config = self.config.clone().ok_or("no config")?;
                let instance = self.instantiate(&config)?.map_err(|e| format!("reopening after a trap: {e}"))?;
                self.instance = Some(instance);
                (Value::Null, json!({"name": "trap", "code": null, "message": message, "callback": callback}))
            }
        };
        let mails: Vec<Value> = (self.injector.mails.iter())
            .map(|m| json!({"to": m.to, "subject": m.subject, "text": m.text, "delivered": m.delivered}))
            .collect();
        let events: Vec<SecurityEvent> = events.into_iter().map(convert::event).collect();
        let events = serde_json::to_value(events).map_err(|e| format!("events as JSON: {e}"))?;
        Ok(json!({
            "outcome": outcome,
            "error": error,
            "fired": self.injector.fired().is_some(),
            "calls": self.injector.calls,
            "mails": mails,
            "events": events,
        }))
    }
}
