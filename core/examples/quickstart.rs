//! A walk-through of twofa against the embedded SQLite store: what a shop's user sees, step by
//! step, from "2FA is now required" to signing in with every kind of second factor.
//!
//! Run it with `cargo run --example quickstart -p twofa-core` (or `make demo`).
//!
//! Three stand-ins play the outside world:
//! - [`TerminalMailer`] prints every message instead of sending it, and keeps it so the "user" can
//!   read a code from it;
//! - [`DemoClock`] starts at the real time but only moves when the demo says so: an authenticator
//!   app shows a new code every 30 s, and a demo should not have to wait for it;
//! - [`AuthenticatorApp`] reads the otpauth URI and computes codes with totp-rs, as a phone would;
//!   a `SoftPasskey` (webauthn-authenticator-rs) plays the browser and its security key.

use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use twofa_core::store::SqliteStore;
use twofa_core::webauthn::{UserVerification, WebauthnConfig};
use twofa_core::{
    Clock, Config, Engine, LoginChallenge, LoginSuccess, Mailer, Message, MethodKind, Proof, SecurityStatus,
    StepUpToken, SystemClock,
};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The shop's user id (whatever the host uses as a primary key).
const USER: &str = "user-42";
/// Alice's address: where notices and emailed codes go.
const ALICE: &str = "alice@example.com";
/// The browser origin of the shop, for WebAuthn.
const ORIGIN: &str = "http://localhost:8080";
/// A master key for this demo only. A real deployment generates its own
/// (`openssl rand -base64 32`) and keeps it out of source control.
const DEMO_KEY: &str = "ZGVtby1rZXktZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9uIQ==";

fn main() -> Result<()> {
    let clock = DemoClock::starting_now();
    let mailer = TerminalMailer::default();
    let engine = open_engine(&clock, &mailer)?;

    heading("1. The account places its first order: 2FA becomes required");
    engine.set_contact_email(USER, ALICE, None)?;
    engine.mark_order_created(USER)?;
    print_status(&engine.security_status(USER)?, &clock);

    heading("2. Alice sets up an authenticator app");
    let (app, step_up) = enroll_authenticator_app(&engine, &clock)?;

    heading("3. Alice adds her email address as a second method");
    clock.advance(5);
    enroll_email(&engine, &mailer, &step_up.token)?;

    heading("4. Alice saves a set of recovery codes");
    let recovery_codes = engine.recovery_codes_generate(USER, Some(&step_up.token))?.codes;
    println!("Shown once; twofa keeps only their hashes:");
    for code in &recovery_codes {
        println!("    {code}");
    }

    heading("5. Alice registers a security key (WebAuthn) and signs in with it");
    clock.advance(5);
    register_and_sign_in_with_security_key(&engine, &clock, &step_up.token)?;

    heading("6. Signing in with the authenticator app");
    clock.advance(30); // the app shows the next code
    sign_in_with_app(&engine, &clock, &app)?;

    heading("7. Signing in with an emailed code");
    clock.advance(30);
    sign_in_with_email(&engine, &mailer)?;

    heading("8. Signing in with a recovery code");
    clock.advance(30);
    let signed_in = sign_in_with_recovery_code(&engine, &recovery_codes[0])?;

    heading("9. A wrong code is refused");
    clock.advance(30);
    show_wrong_code_refused(&engine, &clock, &app)?;

    heading("10. Changing a method needs the step-up token of a recent sign-in");
    rename_security_key(&engine, &clock, &signed_in.step_up)?;

    heading("11. The Security tab at the end");
    print_status(&engine.security_status(USER)?, &clock);
    Ok(())
}

// ---- setting up ---------------------------------------------------------------------------------

/// The engine over a fresh SQLite file, the terminal mailer and the demo clock.
fn open_engine(clock: &DemoClock, mailer: &TerminalMailer) -> Result<Engine> {
    let mut config = Config::new("Example Shop", "k1", DEMO_KEY);
    config.webauthn = Some(WebauthnConfig {
        rp_id: "localhost".into(),
        rp_name: "Example Shop".into(),
        origins: vec![ORIGIN.into()],
        user_verification: UserVerification::Preferred,
        timeout_secs: 300,
    });
    let path = fresh_database_path()?;
    println!("Database: {}", path.display());
    let store = SqliteStore::open(&path)?;
    Ok(Engine::new(config, store, mailer.clone())?.with_clock(clock.clone()))
}

/// `target/quickstart/twofa-demo.sqlite3` in the workspace, deleted first so every run starts empty.
fn fresh_database_path() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/quickstart");
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let path = dir.join("twofa-demo.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::remove_file(file)?;
        }
    }
    Ok(path)
}

// ---- the steps ----------------------------------------------------------------------------------

/// Step 2: begin, "scan" the URI, confirm with the app's code. Returns the app and the step-up
/// token the first method yields (needed to add the next ones).
fn enroll_authenticator_app(engine: &Engine, clock: &DemoClock) -> Result<(AuthenticatorApp, StepUpToken)> {
    let setup = engine.totp_enroll_begin(USER, ALICE, None)?;
    println!("Scan this with the app (or type the secret {}):", setup.secret);
    println!("    {}", setup.uri);
    println!("(The page shows it as a QR code: an SVG image of {} bytes.)", setup.qr_svg.len());

    let app = AuthenticatorApp::scan(&setup.uri)?;
    let code = app.code_at(clock.now())?;
    println!("The app shows {code}; Alice types it in.");
    let added = engine.totp_enroll_confirm(USER, &code, None)?;
    println!("Added method {} ({}).", added.method.id, added.method.label);
    let step_up = added.step_up.ok_or("the first method should come with a step-up token")?;
    println!(
        "As her first method, it also proves a fresh second factor: a step-up token, valid until {}.",
        clock.describe(step_up.expires_at)
    );
    Ok((app, step_up))
}

/// Step 3: the code goes out by mail; Alice copies it back.
fn enroll_email(engine: &Engine, mailer: &TerminalMailer, step_up: &str) -> Result<()> {
    let sent = engine.email_enroll_begin(USER, ALICE, Some(step_up))?;
    println!("A code was sent to {}.", sent.sent_to.join(", "));
    let code = mailer.last_code_to(ALICE)?;
    println!("Alice types {code}.");
    let added = engine.email_enroll_confirm(USER, &code, Some(step_up))?;
    println!("Added method {} ({}); {} notice(s) sent.", added.method.id, added.method.label, added.notices.sent);
    Ok(())
}

/// Step 5: registration and one sign-in with a software passkey.
fn register_and_sign_in_with_security_key(engine: &Engine, clock: &DemoClock, step_up: &str) -> Result<LoginSuccess> {
    let mut passkey = SoftPasskey::default();
    let origin = Url::parse(ORIGIN)?;

    // Registration: the options go to the browser (`navigator.credentials.create`), its
    // response comes back as JSON.
    let registration = engine.webauthn_register_begin(USER, "Demo security key", Some(step_up))?;
    let options: CreationChallengeResponse = serde_json::from_str(&registration.options_json)?;
    let response = passkey.do_registration(origin.clone(), options).map_err(|e| format!("passkey: {e:?}"))?;
    let added = engine.webauthn_register_finish(USER, &serde_json::to_string(&response)?, Some(step_up))?;
    println!("Added method {} ({}).", added.method.id, added.method.label);

    // Sign-in: the challenge carries the request options when a device is registered.
    clock.advance(5);
    let challenge = engine.login_begin(USER)?;
    print_challenge(&challenge);
    let challenge_id = challenge.challenge_id.ok_or("a second factor should be required")?;
    let options_json = challenge.webauthn_options.ok_or("the challenge should offer WebAuthn")?;
    let options: RequestChallengeResponse = serde_json::from_str(&options_json)?;
    let assertion = passkey.do_authentication(origin, options).map_err(|e| format!("passkey: {e:?}"))?;
    let ok = engine.login_verify(USER, &challenge_id, Proof::Webauthn(serde_json::to_string(&assertion)?))?;
    println!("Signed in with {} ({}).", ok.method.as_str(), ok.method_id.as_deref().unwrap_or("-"));
    Ok(ok)
}

/// Step 6.
fn sign_in_with_app(engine: &Engine, clock: &DemoClock, app: &AuthenticatorApp) -> Result<LoginSuccess> {
    let challenge = engine.login_begin(USER)?;
    print_challenge(&challenge);
    let challenge_id = challenge.challenge_id.ok_or("a second factor should be required")?;
    let code = app.code_at(clock.now())?;
    println!("The app shows {code}.");
    let ok = engine.login_verify(USER, &challenge_id, Proof::Totp(code.clone()))?;
    println!("Signed in with {} ({}).", ok.method.as_str(), ok.method_id.as_deref().unwrap_or("-"));

    // The same code cannot be used twice, not even through a new challenge.
    let again = engine.login_begin(USER)?.challenge_id.ok_or("a second factor should be required")?;
    if let Err(e) = engine.login_verify(USER, &again, Proof::Totp(code)) {
        println!("Typing the same code again: {}", describe(&e));
    }
    Ok(ok)
}

/// Step 7.
fn sign_in_with_email(engine: &Engine, mailer: &TerminalMailer) -> Result<LoginSuccess> {
    let challenge_id = engine.login_begin(USER)?.challenge_id.ok_or("a second factor should be required")?;
    let sent = engine.login_send_email_code(USER, &challenge_id)?;
    println!("The page says: code sent to {} (masked).", sent.sent_to.join(", "));
    let code = mailer.last_code_to(ALICE)?;
    let ok = engine.login_verify(USER, &challenge_id, Proof::Email(code))?;
    println!("Signed in with {} ({}).", ok.method.as_str(), ok.method_id.as_deref().unwrap_or("-"));
    Ok(ok)
}

/// Step 8: a recovery code works once, and a notice goes out.
fn sign_in_with_recovery_code(engine: &Engine, code: &str) -> Result<LoginSuccess> {
    let challenge_id = engine.login_begin(USER)?.challenge_id.ok_or("a second factor should be required")?;
    println!("Alice lost her phone and types the recovery code {code}.");
    let ok = engine.login_verify(USER, &challenge_id, Proof::Recovery(code.into()))?;
    println!(
        "Signed in with {}; {} recovery codes left; {} notice(s) sent.",
        ok.method.as_str(),
        ok.recovery_codes_left.unwrap_or(0),
        ok.notices.sent
    );
    Ok(ok)
}

/// Step 9: a well-formed but wrong code is `invalid_code` (and counts against the attempt
/// budget); a malformed one is `invalid_input` (and does not).
fn show_wrong_code_refused(engine: &Engine, clock: &DemoClock, app: &AuthenticatorApp) -> Result<()> {
    let challenge_id = engine.login_begin(USER)?.challenge_id.ok_or("a second factor should be required")?;
    let wrong = app.a_wrong_code_at(clock.now())?;
    for typed in [wrong.as_str(), "12345x"] {
        match engine.login_verify(USER, &challenge_id, Proof::Totp(typed.into())) {
            Err(e) => println!("Typing {typed:?}: {}", describe(&e)),
            Ok(_) => return Err(format!("{typed:?} should have been refused").into()),
        }
    }
    let lockout = &engine.core().config().lockout;
    println!(
        "Only the wrong code counted: {} failures in a row lock sign-in for {} s (doubling after that).",
        lockout.threshold, lockout.base_delay_secs
    );
    Ok(())
}

/// Step 10: management operations (rename, remove, add, new recovery codes) need a step-up
/// token once the user has a method; every successful sign-in hands one out.
fn rename_security_key(engine: &Engine, clock: &DemoClock, step_up: &StepUpToken) -> Result<()> {
    let status = engine.security_status(USER)?;
    let key = status.methods.iter().find(|m| m.kind == MethodKind::Webauthn).ok_or("no security key")?;
    if let Err(e) = engine.rename_method(USER, &key.id, "Blue key", None) {
        println!("Renaming without a token: {}", describe(&e));
    }
    let renamed = engine.rename_method(USER, &key.id, "Blue key", Some(&step_up.token))?;
    println!(
        "With the token from step 8 (valid until {}): {} is now {:?}.",
        clock.describe(step_up.expires_at),
        renamed.id,
        renamed.label
    );
    Ok(())
}

// ---- printing -----------------------------------------------------------------------------------

fn heading(title: &str) {
    println!("\n== {title}\n");
}

/// `refused, error 2 invalid_code: the code is not valid`: the stable number and name that every
/// surface shares, then the message.
fn describe(e: &twofa_core::Error) -> String {
    format!("refused, error {} {}: {e}", e.code(), e.name())
}

/// The snake_case name a value has on every surface (its serde name).
fn name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn print_challenge(challenge: &LoginChallenge) {
    let methods: Vec<&str> = challenge.methods.iter().map(|m| m.as_str()).collect();
    println!("Password accepted; second factor required: {}.", challenge.second_factor_required);
    println!("The page offers: {}.", methods.join(", "));
}

fn print_status(status: &SecurityStatus, clock: &DemoClock) {
    println!("2FA required: {}   compliant: {}", status.two_factor_required, status.compliant);
    println!("Notices go to: {}", status.contact_email.as_deref().unwrap_or("(nobody)"));
    if status.methods.is_empty() {
        println!("Methods: none");
    }
    for m in &status.methods {
        let last_used = m.last_used.map(|t| clock.describe(t)).unwrap_or_else(|| "never".into());
        let kind = m.kind.as_str();
        println!(
            "Method {:<11} {kind:<8} {:<22} added {}, last used {last_used}",
            m.id,
            m.label,
            clock.describe(m.created)
        );
    }
    println!("Recovery codes left: {}", status.recovery_codes_left);
    let recommendations: Vec<String> = status.recommendations.iter().map(name).collect();
    let warnings: Vec<String> = status.warnings.iter().map(name).collect();
    println!(
        "Recommendations: {}",
        if recommendations.is_empty() { "none".into() } else { recommendations.join(", ") }
    );
    println!("Warnings: {}", if warnings.is_empty() { "none".into() } else { warnings.join(", ") });
}

// ---- the outside world --------------------------------------------------------------------------

/// Prints every message to the terminal and keeps it, as a mailbox the demo can read.
#[derive(Clone, Default)]
struct TerminalMailer {
    sent: Arc<Mutex<Vec<Message>>>,
}

impl Mailer for TerminalMailer {
    fn send(&self, message: &Message) -> std::result::Result<(), String> {
        println!("  +-- mail to {}: {}", message.to, message.subject);
        for line in message.text.lines() {
            println!("  |   {line}");
        }
        println!("  +--");
        self.sent.lock().map_err(|_| "mailbox poisoned")?.push(message.clone());
        Ok(())
    }
}

impl TerminalMailer {
    /// The one-time code in the last message to `to`: its first run of 6 or more digits.
    fn last_code_to(&self, to: &str) -> Result<String> {
        let sent = self.sent.lock().map_err(|_| "mailbox poisoned")?;
        let message = sent.iter().rev().find(|m| m.to == to).ok_or("no mail to that address")?;
        let code = message.text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() >= 6);
        Ok(code.ok_or("no code in the mail")?.to_string())
    }
}

/// A clock that starts at the real time and moves only when told to.
#[derive(Clone)]
struct DemoClock {
    start: u64,
    now: Arc<AtomicU64>,
}

impl DemoClock {
    fn starting_now() -> DemoClock {
        let start = SystemClock.now();
        DemoClock { start, now: Arc::new(AtomicU64::new(start)) }
    }

    fn advance(&self, secs: u64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }

    /// `start + 35 s`: times relative to the start of the demo are easier to follow.
    fn describe(&self, t: u64) -> String {
        format!("start + {} s", t.saturating_sub(self.start))
    }
}

impl Clock for DemoClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// What a phone app keeps after scanning the QR code: the secret and the code parameters.
struct AuthenticatorApp {
    secret: Vec<u8>,
    digits: u8,
    period: u64,
}

impl AuthenticatorApp {
    /// Reads `otpauth://totp/Issuer:account?secret=...&digits=6&period=30` (SHA-1 assumed, the
    /// default twofa config).
    fn scan(uri: &str) -> Result<AuthenticatorApp> {
        let url = Url::parse(uri)?;
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let secret = param("secret").ok_or("no secret in the URI")?;
        Ok(AuthenticatorApp {
            secret: totp_rs::Secret::try_from_base32(&secret)?.as_ref().to_vec(),
            digits: param("digits").as_deref().unwrap_or("6").parse()?,
            period: param("period").as_deref().unwrap_or("30").parse()?,
        })
    }

    /// The code the app shows at Unix time `t`.
    fn code_at(&self, t: u64) -> Result<String> {
        let totp = totp_rs::Builder::new()
            .with_secret(self.secret.clone())
            .with_digits(self.digits)
            .with_step_duration(self.period)
            .build()?;
        Ok(totp.generate(t).to_string())
    }

    /// A well-formed code that is none of the codes twofa accepts around `t` (skew is 1 step).
    fn a_wrong_code_at(&self, t: u64) -> Result<String> {
        let near = [self.code_at(t.saturating_sub(self.period))?, self.code_at(t)?, self.code_at(t + self.period)?];
        let mut candidates = ('0'..='9').map(|d| d.to_string().repeat(usize::from(self.digits)));
        Ok(candidates.find(|c| !near.contains(c)).ok_or("no wrong code found")?)
    }
}
