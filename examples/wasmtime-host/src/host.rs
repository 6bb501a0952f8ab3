//! The wasmtime host: bindings of the `plugin` world, the host state behind the `store`,
//! `mailer` and `events` imports (with fault injection), and typed calls of the exported
//! resources.

use crate::adapter::Injector;
use crate::clock::VirtualClock;
use std::path::Path;
use std::sync::Arc;
use twofa_core::store::{Store as _, StoreError as CoreStoreError};
use wasmtime::component::{HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: { default: trappable },
});

pub use twofa::auth::mailer::Message;
use twofa::auth::store::{StoreError, Versioned};
pub use twofa::auth::types as wit;

/// The first bytes of a binary component (a core module has version `01 00 00 00`).
pub const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// The interface the component must export.
pub const ENGINE_EXPORT: &str = "twofa:auth/engine@0.1.0";

/// Where `make component` puts the component.
pub fn default_component_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wasm-component/target/wasm32-wasip2/release/twofa_component.wasm")
}

/// The shared store of the host (SQLite or memory): an `Arc` so that several instances, and the
/// test, can use the same one.
pub type SharedStore = Arc<dyn twofa_core::store::Store>;

/// Makes a chosen store call fail or trap. Calls are counted from the moment a fault is armed,
/// starting at 1; a fault fires once.
#[derive(Debug, Default)]
pub struct Faults {
    calls: u64,
    fail_at: Option<u64>,
    trap_at: Option<u64>,
}

impl Faults {
    /// The `n`-th store call from now returns `failed("injected failure")`.
    pub fn fail_nth_store_call(&mut self, n: u64) {
        *self = Faults { calls: 0, fail_at: Some(n), trap_at: None };
    }

    /// The `n`-th store call from now traps (the import returns `Err`).
    pub fn trap_nth_store_call(&mut self, n: u64) {
        *self = Faults { calls: 0, fail_at: None, trap_at: Some(n) };
    }

    /// Disarms any fault that has not fired.
    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    /// Whether an armed fault has not fired yet.
    pub fn pending(&self) -> bool {
        self.fail_at.is_some() || self.trap_at.is_some()
    }

    /// Store calls since the last fault was armed (or since the start).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Counts one store call; `Err` for a trap, `Ok(Some(..))` for an injected failure.
    fn next(&mut self) -> Result<Option<StoreError>> {
        self.calls += 1;
        if self.trap_at == Some(self.calls) {
            self.trap_at = None;
            return Err(wasmtime::format_err!("injected trap on store call {}", self.calls));
        }
        if self.fail_at == Some(self.calls) {
            self.fail_at = None;
            return Ok(Some(StoreError::Failed("injected failure".into())));
        }
        Ok(None)
    }
}

/// Everything the component's imports reach.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The records.
    pub store: SharedStore,
    /// Every message the component sent, oldest first.
    pub outbox: Vec<Message>,
    /// Fault injection for store calls.
    pub faults: Faults,
    /// The fault adapter's injector and call log ([`crate::adapter`]); `None` outside it.
    pub injector: Option<Injector>,
    /// Every audit event the component emitted, oldest first.
    pub events: Vec<wit::SecurityEvent>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn store_error(e: CoreStoreError) -> StoreError {
    match e {
        CoreStoreError::Conflict => StoreError::CasFailed,
        CoreStoreError::Failed(m) => StoreError::Failed(m),
    }
}

impl twofa::auth::types::Host for HostState {}

impl twofa::auth::store::Host for HostState {
    fn get(&mut self, key: String) -> Result<Result<Option<Versioned>, StoreError>> {
        if let Some(e) = self.faults.next()? {
            return Ok(Err(e));
        }
        let found = match &mut self.injector {
            Some(injector) => injector.get(self.store.as_ref(), &key)?,
            None => self.store.get(&key),
        };
        Ok(found.map(|found| found.map(|v| Versioned { value: v.bytes, version: v.version })).map_err(store_error))
    }

    fn put(&mut self, key: String, value: Vec<u8>, expected_version: Option<u64>) -> Result<Result<u64, StoreError>> {
        if let Some(e) = self.faults.next()? {
            return Ok(Err(e));
        }
        let written = match &mut self.injector {
            Some(injector) => injector.put(self.store.as_ref(), &key, &value, expected_version)?,
            None => self.store.put(&key, &value, expected_version),
        };
        Ok(written.map_err(store_error))
    }

    fn delete(&mut self, key: String, expected_version: u64) -> Result<Result<(), StoreError>> {
        if let Some(e) = self.faults.next()? {
            return Ok(Err(e));
        }
        let deleted = match &mut self.injector {
            Some(injector) => injector.delete(self.store.as_ref(), &key, expected_version)?,
            None => self.store.delete(&key, expected_version),
        };
        Ok(deleted.map_err(store_error))
    }
}

impl twofa::auth::mailer::Host for HostState {
    fn send(&mut self, message: Message) -> Result<Result<(), String>> {
        if let Some(injector) = &mut self.injector
            && let Err(reason) = injector.send(&message.to, &message.subject, &message.text)?
        {
            return Ok(Err(reason));
        }
        self.outbox.push(message);
        Ok(Ok(()))
    }
}

impl twofa::auth::events::Host for HostState {
    fn emit(&mut self, event: wit::SecurityEvent) -> Result<()> {
        self.events.push(event);
        Ok(())
    }
}

/// The compiled component with its linker: compile once, instantiate often.
pub struct Component {
    engine: Engine,
    component: wasmtime::component::Component,
    linker: Linker<HostState>,
}

impl Component {
    /// Compiles the component at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Component> {
        let path = path.as_ref();
        let engine = Engine::default();
        let component = wasmtime::component::Component::from_file(&engine, path)
            .map_err(|e| wasmtime::format_err!("loading {}: {e:?}", path.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        Ok(Component { engine, component, linker })
    }

    /// Compiles the component `make component` builds; the error says to build it when missing.
    pub fn load_default() -> Result<Component> {
        let path = default_component_path();
        if !path.exists() {
            wasmtime::bail!("{} is missing: run `make component` in the repository root first", path.display());
        }
        Component::load(path)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled component.
    pub fn component(&self) -> &wasmtime::component::Component {
        &self.component
    }

    /// A fresh instance (its own wasm state) over `store`, reading time from `clock`.
    pub fn instantiate(&self, store: SharedStore, clock: &VirtualClock) -> Result<Instance> {
        let wasi = WasiCtxBuilder::new().wall_clock(clock.clone()).monotonic_clock(clock.clone()).build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            store,
            outbox: Vec::new(),
            faults: Faults::default(),
            injector: None,
            events: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let plugin = Plugin::instantiate(&mut store, &self.component, &self.linker)?;
        Ok(Instance { store, plugin, engine: None, admin: None })
    }
}

/// One instance of the component with its opened `engine` and `admin` resources.
///
/// Every call returns `Err` for a trap and `Ok(Err(wit error))` for an expected failure. When
/// the `admin` resource could not be opened (`forbidden` without `"admin": true`), every admin
/// call answers the error its opening gave.
pub struct Instance {
    /// The wasmtime store; its data is the [`HostState`].
    pub store: Store<HostState>,
    plugin: Plugin,
    engine: Option<ResourceAny>,
    admin: Option<Result<ResourceAny, wit::Error>>,
}

type Call<T> = Result<Result<T, wit::Error>>;

impl Instance {
    /// The host state (store, outbox, faults).
    pub fn state(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Opens the `engine` resource from a JSON config, and the `admin` resource from the same
    /// config: `Ok(Err(..))` when the engine cannot be opened; when only the admin cannot (a
    /// config without `"admin": true`), the engine is open and admin calls answer that error.
    pub fn open(&mut self, config_json: &str) -> Call<()> {
        let api = self.plugin.twofa_auth_engine();
        let engine = match api.engine().call_open(&mut self.store, config_json)? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let admin = api.admin().call_open(&mut self.store, config_json)?;
        self.close()?;
        self.engine = Some(engine);
        self.admin = Some(admin);
        Ok(Ok(()))
    }

    /// Opens the `admin` resource again, from another JSON config (the engine stays): the
    /// opening's error, if any, is returned and answered by every admin call until the next.
    pub fn open_admin(&mut self, config_json: &str) -> Call<()> {
        let admin = self.plugin.twofa_auth_engine().admin().call_open(&mut self.store, config_json)?;
        if let Some(Ok(old)) = self.admin.take() {
            old.resource_drop(&mut self.store)?;
        }
        let opened = admin.as_ref().map(|_| ()).map_err(Clone::clone);
        self.admin = Some(admin);
        Ok(opened)
    }

    /// Drops the opened resources.
    pub fn close(&mut self) -> Result<()> {
        let admin = self.admin.take().and_then(Result::ok);
        for r in [self.engine.take(), admin].into_iter().flatten() {
            r.resource_drop(&mut self.store)?;
        }
        Ok(())
    }

    fn engine(&self) -> Result<ResourceAny> {
        self.engine.ok_or_else(|| wasmtime::format_err!("the engine is not open: call open first"))
    }

    /// The admin resource, or the error its opening gave.
    fn admin(&self) -> Result<Result<ResourceAny, wit::Error>> {
        self.admin.clone().ok_or_else(|| wasmtime::format_err!("the admin is not open: call open first"))
    }

    pub fn security_status(&mut self, user: &str) -> Call<wit::SecurityStatus> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_security_status(&mut self.store, e, user)
    }

    pub fn set_contact_email(&mut self, user: &str, address: &str, step_up: Option<&str>) -> Call<wit::Notices> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_set_contact_email(&mut self.store, e, user, address, step_up)
    }

    /// Sends a confirmation code to a new notice address.
    pub fn contact_email_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> Call<wit::CodeSent> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_contact_email_begin(&mut self.store, e, user, address, step_up)
    }

    /// Makes the address of `contact_email_begin` the notice address with its code.
    pub fn contact_email_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> Call<wit::Notices> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_contact_email_confirm(&mut self.store, e, user, code, step_up)
    }

    pub fn mark_order_created(&mut self, user: &str) -> Call<()> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_mark_order_created(&mut self.store, e, user)
    }

    pub fn totp_enroll_begin(&mut self, user: &str, account_name: &str, step_up: Option<&str>) -> Call<wit::TotpSetup> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_totp_enroll_begin(&mut self.store, e, user, account_name, step_up)
    }

    pub fn totp_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> Call<wit::MethodAdded> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_totp_enroll_confirm(&mut self.store, e, user, code, step_up)
    }

    pub fn email_enroll_begin(&mut self, user: &str, address: &str, step_up: Option<&str>) -> Call<wit::CodeSent> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_email_enroll_begin(&mut self.store, e, user, address, step_up)
    }

    pub fn email_enroll_confirm(&mut self, user: &str, code: &str, step_up: Option<&str>) -> Call<wit::MethodAdded> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_email_enroll_confirm(&mut self.store, e, user, code, step_up)
    }

    pub fn webauthn_register_begin(
        &mut self,
        user: &str,
        friendly_name: &str,
        step_up: Option<&str>,
    ) -> Call<wit::WebauthnRegistration> {
        let e = self.engine()?;
        let api = self.plugin.twofa_auth_engine().engine();
        api.call_webauthn_register_begin(&mut self.store, e, user, friendly_name, step_up)
    }

    pub fn webauthn_register_finish(
        &mut self,
        user: &str,
        credential_json: &str,
        step_up: Option<&str>,
    ) -> Call<wit::MethodAdded> {
        let e = self.engine()?;
        let api = self.plugin.twofa_auth_engine().engine();
        api.call_webauthn_register_finish(&mut self.store, e, user, credential_json, step_up)
    }

    pub fn rename_method(
        &mut self,
        user: &str,
        method_id: &str,
        label: &str,
        step_up: Option<&str>,
    ) -> Call<wit::MethodInfo> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_rename_method(&mut self.store, e, user, method_id, label, step_up)
    }

    pub fn remove_method(&mut self, user: &str, method_id: &str, step_up: Option<&str>) -> Call<wit::Notices> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_remove_method(&mut self.store, e, user, method_id, step_up)
    }

    pub fn recovery_codes_generate(&mut self, user: &str, step_up: Option<&str>) -> Call<wit::RecoveryCodes> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_recovery_codes_generate(&mut self.store, e, user, step_up)
    }

    pub fn login_begin(&mut self, user: &str, device_token: Option<&str>) -> Call<wit::LoginChallenge> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_login_begin(&mut self.store, e, user, device_token)
    }

    pub fn login_send_email_code(&mut self, user: &str, challenge: &str) -> Call<wit::CodeSent> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_login_send_email_code(&mut self.store, e, user, challenge)
    }

    pub fn login_verify(
        &mut self,
        user: &str,
        challenge: &str,
        proof: &wit::Proof,
        remember_device: bool,
    ) -> Call<wit::LoginSuccess> {
        let e = self.engine()?;
        let api = self.plugin.twofa_auth_engine().engine();
        api.call_login_verify(&mut self.store, e, user, challenge, proof, remember_device)
    }

    pub fn revoke_remembered_device(&mut self, user: &str, device_id: &str) -> Call<()> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_revoke_remembered_device(&mut self.store, e, user, device_id)
    }

    pub fn revoke_remembered_devices(&mut self, user: &str) -> Call<()> {
        let e = self.engine()?;
        self.plugin.twofa_auth_engine().engine().call_revoke_remembered_devices(&mut self.store, e, user)
    }

    pub fn totp_import(
        &mut self,
        user: &str,
        secret: &str,
        algorithm: wit::TotpAlgorithm,
        digits: u8,
        period: u64,
    ) -> Call<wit::MethodAdded> {
        let a = match self.admin()? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let api = self.plugin.twofa_auth_engine().admin();
        api.call_totp_import(&mut self.store, a, user, secret, algorithm, digits, period)
    }

    pub fn delete_user(&mut self, user: &str) -> Call<()> {
        let a = match self.admin()? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        self.plugin.twofa_auth_engine().admin().call_delete_user(&mut self.store, a, user)
    }

    pub fn reset_user(&mut self, user: &str, actor: &str, reason: &str) -> Call<wit::ResetDone> {
        let a = match self.admin()? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        self.plugin.twofa_auth_engine().admin().call_reset_user(&mut self.store, a, user, actor, reason)
    }

    /// The sealed export document.
    pub fn export_user(&mut self, user: &str, key: &str) -> Call<String> {
        let a = match self.admin()? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        self.plugin.twofa_auth_engine().admin().call_export_user(&mut self.store, a, user, key)
    }

    pub fn import_user(&mut self, user: &str, document: &str, key: &str) -> Call<wit::UserImported> {
        let a = match self.admin()? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        self.plugin.twofa_auth_engine().admin().call_import_user(&mut self.store, a, user, document, key)
    }
}
