//! One interface over the two ways to run twofa: the native core and the component.
//!
//! Both answer with the core's result structs and the core's [`Error`] (whose `name()` and
//! `retry_after()` are what every surface exposes), and both record the audit events they emit
//! as the core's [`SecurityEvent`]s, so one scenario can drive either.

use crate::clock::VirtualClock;
use crate::convert;
use crate::host::{Component, Instance, SharedStore};
use std::sync::{Arc, Mutex};
use twofa_core::store::MemoryStore;
use twofa_core::{
    Admin, CodeSent, Config, Engine, Error, EventHandler, LoginChallenge, LoginSuccess, Mailer, Message, MethodAdded,
    MethodInfo, Notices, Proof, RecoveryCodes, ResetDone, SecurityEvent, SecurityStatus, TotpAlgorithm, TotpSetup,
    UserExport, UserImported, WebauthnRegistration,
};

/// The result of an operation on any surface.
pub type R<T> = Result<T, Error>;

/// The canonical operations, plus the host's clock, outbox and event log.
pub trait Surface {
    /// A short name for transcripts ("native", "component").
    fn name(&self) -> &'static str;
    /// Sets the time every later operation sees (Unix seconds).
    fn set_time(&mut self, unix: u64);
    /// The time operations see.
    fn now(&self) -> u64;
    /// Every message sent so far, oldest first.
    fn outbox(&mut self) -> Vec<Message>;
    /// Every audit event emitted so far (by the engine and the admin handle), oldest first.
    fn events(&mut self) -> Vec<SecurityEvent>;
    /// Opens the admin handle again from `config` (same store, mailer, clock and event log).
    /// When the config does not grant the capability, the error (`forbidden`) is returned and
    /// every admin operation answers it until the next `open_admin`.
    fn open_admin(&mut self, config: &Config) -> R<()>;

    fn security_status(&mut self, user: &str) -> R<SecurityStatus>;
    fn set_contact_email(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<Notices>;
    fn contact_email_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<CodeSent>;
    fn contact_email_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<Notices>;
    fn mark_order_created(&mut self, user: &str) -> R<()>;
    fn totp_enroll_begin(&mut self, user: &str, account_name: &str, step_up: Option<&str>) -> R<TotpSetup>;
    fn totp_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<MethodAdded>;
    fn email_enroll_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<CodeSent>;
    fn email_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<MethodAdded>;
    fn webauthn_register_begin(&mut self, user: &str, name: &str, step_up: Option<&str>) -> R<WebauthnRegistration>;
    fn webauthn_register_finish(&mut self, user: &str, credential: &str, step_up: Option<&str>) -> R<MethodAdded>;
    fn rename_method(&mut self, user: &str, method_id: &str, label: &str, step_up: Option<&str>) -> R<MethodInfo>;
    fn remove_method(&mut self, user: &str, method_id: &str, step_up: Option<&str>) -> R<Notices>;
    fn recovery_codes_generate(&mut self, user: &str, step_up: Option<&str>) -> R<RecoveryCodes>;
    /// Starts a sign-in without a device token.
    fn login_begin(&mut self, user: &str) -> R<LoginChallenge> {
        self.login_begin_remembered(user, None)
    }
    /// Starts a sign-in with the device token of a remembered browser, if any.
    fn login_begin_remembered(&mut self, user: &str, device_token: Option<&str>) -> R<LoginChallenge>;
    fn login_send_email_code(&mut self, user: &str, challenge: &str) -> R<CodeSent>;
    /// Verifies a second factor, without remembering the browser.
    fn login_verify(&mut self, user: &str, challenge: &str, proof: Proof) -> R<LoginSuccess> {
        self.login_verify_remembering(user, challenge, proof, false)
    }
    /// Verifies a second factor; with `remember_device`, asks for a device token.
    fn login_verify_remembering(
        &mut self,
        user: &str,
        challenge: &str,
        proof: Proof,
        remember_device: bool,
    ) -> R<LoginSuccess>;
    fn revoke_remembered_device(&mut self, user: &str, device_id: &str) -> R<()>;
    fn revoke_remembered_devices(&mut self, user: &str) -> R<()>;
    /// Admin: imports a confirmed TOTP secret.
    fn totp_import(&mut self, user: &str, secret: &str, alg: TotpAlgorithm, digits: u8, period: u64) -> R<MethodAdded>;
    /// Admin: deletes the user.
    fn delete_user(&mut self, user: &str) -> R<()>;
    /// Admin: resets the user's second factors.
    fn reset_user(&mut self, user: &str, actor: &str, reason: &str) -> R<ResetDone>;
    /// Admin: exports the user's second factors.
    fn export_user(&mut self, user: &str, key: &str) -> R<UserExport>;
    /// Admin: imports an exported document.
    fn import_user(&mut self, user: &str, document: &str, key: &str) -> R<UserImported>;
}

/// A mailer keeping every message.
#[derive(Clone, Default)]
pub struct Outbox(pub Arc<Mutex<Vec<Message>>>);

impl Mailer for Outbox {
    fn send(&self, message: &Message) -> Result<(), String> {
        self.0.lock().map_err(|_| "outbox poisoned")?.push(message.clone());
        Ok(())
    }
}

/// An event handler keeping every event.
#[derive(Clone, Default)]
pub struct EventLog(pub Arc<Mutex<Vec<SecurityEvent>>>);

impl EventHandler for EventLog {
    fn handle(&self, event: &SecurityEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event.clone());
        }
    }
}

/// The native core: an `Engine` and an `Admin` over one in-memory store, a virtual clock, an
/// outbox and an event log. The admin is the error `Admin::new` gave when the config does not
/// grant the capability; admin operations then answer it.
pub struct Native {
    engine: Engine,
    admin: R<Admin>,
    store: Arc<MemoryStore>,
    clock: VirtualClock,
    outbox: Outbox,
    events: EventLog,
}

impl Native {
    pub fn new(config: Config, clock: VirtualClock) -> R<Native> {
        let store = Arc::new(MemoryStore::new());
        let (outbox, events) = (Outbox::default(), EventLog::default());
        let engine = engine_over(config.clone(), &store, &clock, &outbox, &events)?;
        let admin = engine_over(config, &store, &clock, &outbox, &events).and_then(Admin::new);
        Ok(Native { engine, admin, store, clock, outbox, events })
    }

    fn admin(&self) -> R<&Admin> {
        self.admin.as_ref().map_err(Clone::clone)
    }
}

/// An engine of `config` over the store, clock, outbox and event log of a [`Native`].
fn engine_over(
    config: Config,
    store: &Arc<MemoryStore>,
    clock: &VirtualClock,
    outbox: &Outbox,
    events: &EventLog,
) -> R<Engine> {
    Ok(Engine::new(config, store.clone(), outbox.clone())?.with_clock(clock.clone()).with_events(events.clone()))
}

impl Surface for Native {
    fn name(&self) -> &'static str {
        "native"
    }
    fn set_time(&mut self, unix: u64) {
        self.clock.set(unix)
    }
    fn now(&self) -> u64 {
        self.clock.get()
    }
    fn outbox(&mut self) -> Vec<Message> {
        self.outbox.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    fn events(&mut self) -> Vec<SecurityEvent> {
        self.events.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
    fn open_admin(&mut self, config: &Config) -> R<()> {
        let engine = engine_over(config.clone(), &self.store, &self.clock, &self.outbox, &self.events);
        self.admin = engine.and_then(Admin::new);
        self.admin().map(drop)
    }
    fn security_status(&mut self, user: &str) -> R<SecurityStatus> {
        self.engine.security_status(user)
    }
    fn set_contact_email(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<Notices> {
        self.engine.set_contact_email(user, address, step_up)
    }
    fn contact_email_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<CodeSent> {
        self.engine.contact_email_begin(user, address, step_up)
    }
    fn contact_email_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<Notices> {
        self.engine.contact_email_confirm(user, code, step_up)
    }
    fn mark_order_created(&mut self, user: &str) -> R<()> {
        self.engine.mark_order_created(user)
    }
    fn totp_enroll_begin(&mut self, user: &str, account_name: &str, step_up: Option<&str>) -> R<TotpSetup> {
        self.engine.totp_enroll_begin(user, account_name, step_up)
    }
    fn totp_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<MethodAdded> {
        self.engine.totp_enroll_confirm(user, code, step_up)
    }
    fn email_enroll_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<CodeSent> {
        self.engine.email_enroll_begin(user, address, step_up)
    }
    fn email_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<MethodAdded> {
        self.engine.email_enroll_confirm(user, code, step_up)
    }
    fn webauthn_register_begin(&mut self, user: &str, name: &str, step_up: Option<&str>) -> R<WebauthnRegistration> {
        self.engine.webauthn_register_begin(user, name, step_up)
    }
    fn webauthn_register_finish(&mut self, user: &str, credential: &str, step_up: Option<&str>) -> R<MethodAdded> {
        self.engine.webauthn_register_finish(user, credential, step_up)
    }
    fn rename_method(&mut self, user: &str, method_id: &str, label: &str, step_up: Option<&str>) -> R<MethodInfo> {
        self.engine.rename_method(user, method_id, label, step_up)
    }
    fn remove_method(&mut self, user: &str, method_id: &str, step_up: Option<&str>) -> R<Notices> {
        self.engine.remove_method(user, method_id, step_up)
    }
    fn recovery_codes_generate(&mut self, user: &str, step_up: Option<&str>) -> R<RecoveryCodes> {
        self.engine.recovery_codes_generate(user, step_up)
    }
    fn login_begin_remembered(&mut self, user: &str, device_token: Option<&str>) -> R<LoginChallenge> {
        self.engine.login_begin_remembered(user, device_token)
    }
    fn login_send_email_code(&mut self, user: &str, challenge: &str) -> R<CodeSent> {
        self.engine.login_send_email_code(user, challenge)
    }
    fn login_verify_remembering(
        &mut self,
        user: &str,
        challenge: &str,
        proof: Proof,
        remember_device: bool,
    ) -> R<LoginSuccess> {
        self.engine.login_verify_remembering(user, challenge, proof, remember_device)
    }
    fn revoke_remembered_device(&mut self, user: &str, device_id: &str) -> R<()> {
        self.engine.revoke_remembered_device(user, device_id)
    }
    fn revoke_remembered_devices(&mut self, user: &str) -> R<()> {
        self.engine.revoke_remembered_devices(user)
    }
    fn totp_import(&mut self, user: &str, secret: &str, alg: TotpAlgorithm, digits: u8, period: u64) -> R<MethodAdded> {
        self.admin()?.totp_import(user, secret, alg, digits, period)
    }
    fn delete_user(&mut self, user: &str) -> R<()> {
        self.admin()?.delete_user(user)
    }
    fn reset_user(&mut self, user: &str, actor: &str, reason: &str) -> R<ResetDone> {
        self.admin()?.reset_user(user, actor, reason)
    }
    fn export_user(&mut self, user: &str, key: &str) -> R<UserExport> {
        self.admin()?.export_user(user, key)
    }
    fn import_user(&mut self, user: &str, document: &str, key: &str) -> R<UserImported> {
        self.admin()?.import_user(user, document, key)
    }
}

/// The component behind the same interface. A trap is a bug here (the scenario never injects
/// faults), so it panics with the trap's message.
pub struct ComponentSurface {
    /// The instance, for tests that want the raw WIT results or the host state.
    pub instance: Instance,
    clock: VirtualClock,
}

impl ComponentSurface {
    /// A fresh instance of `component` over `store`, opened with `config`.
    pub fn new(component: &Component, store: SharedStore, config: &Config, clock: VirtualClock) -> R<ComponentSurface> {
        let mut instance = component.instantiate(store, &clock).map_err(trap)?;
        let json = serde_json::to_string(config).map_err(|e| Error::InvalidInput(e.to_string()))?;
        instance.open(&json).map_err(trap)?.map_err(convert::error)?;
        Ok(ComponentSurface { instance, clock })
    }
}

fn trap(e: wasmtime::Error) -> Error {
    panic!("the component trapped: {e:?}")
}

/// Unwraps the trap level and converts both the value and the WIT error.
fn done<T, U>(r: wasmtime::Result<Result<T, crate::host::wit::Error>>, f: impl FnOnce(T) -> U) -> R<U> {
    r.map_err(trap)?.map(f).map_err(convert::error)
}

impl Surface for ComponentSurface {
    fn name(&self) -> &'static str {
        "component"
    }
    fn set_time(&mut self, unix: u64) {
        self.clock.set(unix)
    }
    fn now(&self) -> u64 {
        self.clock.get()
    }
    fn outbox(&mut self) -> Vec<Message> {
        self.instance.state().outbox.iter().cloned().map(convert::message).collect()
    }
    fn events(&mut self) -> Vec<SecurityEvent> {
        self.instance.state().events.iter().cloned().map(convert::event).collect()
    }
    fn open_admin(&mut self, config: &Config) -> R<()> {
        let json = serde_json::to_string(config).map_err(|e| Error::InvalidInput(e.to_string()))?;
        done(self.instance.open_admin(&json), |()| ())
    }
    fn security_status(&mut self, user: &str) -> R<SecurityStatus> {
        done(self.instance.security_status(user), convert::status)
    }
    fn set_contact_email(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<Notices> {
        done(self.instance.set_contact_email(user, address, step_up), convert::notices)
    }
    fn contact_email_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<CodeSent> {
        done(self.instance.contact_email_begin(user, address, step_up), convert::code_sent)
    }
    fn contact_email_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<Notices> {
        done(self.instance.contact_email_confirm(user, code, step_up), convert::notices)
    }
    fn mark_order_created(&mut self, user: &str) -> R<()> {
        done(self.instance.mark_order_created(user), |()| ())
    }
    fn totp_enroll_begin(&mut self, user: &str, account_name: &str, step_up: Option<&str>) -> R<TotpSetup> {
        done(self.instance.totp_enroll_begin(user, account_name, step_up), convert::totp_setup)
    }
    fn totp_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<MethodAdded> {
        done(self.instance.totp_enroll_confirm(user, code, step_up), convert::method_added)
    }
    fn email_enroll_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> R<CodeSent> {
        done(self.instance.email_enroll_begin(user, address, step_up), convert::code_sent)
    }
    fn email_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> R<MethodAdded> {
        done(self.instance.email_enroll_confirm(user, code, step_up), convert::method_added)
    }
    fn webauthn_register_begin(&mut self, user: &str, name: &str, step_up: Option<&str>) -> R<WebauthnRegistration> {
        done(self.instance.webauthn_register_begin(user, name, step_up), convert::registration)
    }
    fn webauthn_register_finish(&mut self, user: &str, credential: &str, step_up: Option<&str>) -> R<MethodAdded> {
        done(self.instance.webauthn_register_finish(user, credential, step_up), convert::method_added)
    }
    fn rename_method(&mut self, user: &str, method_id: &str, label: &str, step_up: Option<&str>) -> R<MethodInfo> {
        done(self.instance.rename_method(user, method_id, label, step_up), convert::method)
    }
    fn remove_method(&mut self, user: &str, method_id: &str, step_up: Option<&str>) -> R<Notices> {
        done(self.instance.remove_method(user, method_id, step_up), convert::notices)
    }
    fn recovery_codes_generate(&mut self, user: &str, step_up: Option<&str>) -> R<RecoveryCodes> {
        done(self.instance.recovery_codes_generate(user, step_up), convert::recovery_codes)
    }
    fn login_begin_remembered(&mut self, user: &str, device_token: Option<&str>) -> R<LoginChallenge> {
        done(self.instance.login_begin(user, device_token), convert::challenge)
    }
    fn login_send_email_code(&mut self, user: &str, challenge: &str) -> R<CodeSent> {
        done(self.instance.login_send_email_code(user, challenge), convert::code_sent)
    }
    fn login_verify_remembering(
        &mut self,
        user: &str,
        challenge: &str,
        proof: Proof,
        remember_device: bool,
    ) -> R<LoginSuccess> {
        let proof = convert::proof(proof);
        done(self.instance.login_verify(user, challenge, &proof, remember_device), convert::login_success)
    }
    fn revoke_remembered_device(&mut self, user: &str, device_id: &str) -> R<()> {
        done(self.instance.revoke_remembered_device(user, device_id), |()| ())
    }
    fn revoke_remembered_devices(&mut self, user: &str) -> R<()> {
        done(self.instance.revoke_remembered_devices(user), |()| ())
    }
    fn totp_import(&mut self, user: &str, secret: &str, alg: TotpAlgorithm, digits: u8, period: u64) -> R<MethodAdded> {
        done(self.instance.totp_import(user, secret, convert::algorithm(alg), digits, period), convert::method_added)
    }
    fn delete_user(&mut self, user: &str) -> R<()> {
        done(self.instance.delete_user(user), |()| ())
    }
    fn reset_user(&mut self, user: &str, actor: &str, reason: &str) -> R<ResetDone> {
        done(self.instance.reset_user(user, actor, reason), convert::reset_done)
    }
    fn export_user(&mut self, user: &str, key: &str) -> R<UserExport> {
        done(self.instance.export_user(user, key), convert::user_export)
    }
    fn import_user(&mut self, user: &str, document: &str, key: &str) -> R<UserImported> {
        done(self.instance.import_user(user, document, key), convert::user_imported)
    }
}
