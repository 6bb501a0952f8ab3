//! The runner of the shared scenarios (`tests/scenarios/*.json`, format in
//! `tests/scenarios/README.md`) for any [`Surface`]: it evaluates each step's arguments, calls the
//! surface (a `without_admin` step on an admin handle opened without the capability), asserts
//! `expect`, `check`, `mails` and `events`, keeps `save`d values, checks at the end that no
//! audit event contains a secret of the run, and records each outcome
//! (operation, user and error name, never a random value) in a [`Transcript`], so the native core
//! and the component can be compared step by step. It only translates: every expectation lives in
//! the file.
//!
//! Where the format leaves room, this runner reads it strictly: unknown keys (in the file, a step,
//! an expression or an operation's `args`) and unknown operations are refused when the file is
//! parsed; a `check` or `save` path that names nothing fails the step (so `{"not": null}` means
//! present and not null); a failed step's error is `{"name", "code", "retry_after"}` with
//! `retry_after` null when there is none; `{"not": V}` accepts a matcher as `V`; `length` of a
//! string counts characters; `time` and `advance` steps (which may carry a `note`) add no
//! transcript line, and each run of a `repeat`ed step adds one, its arguments evaluated afresh.

use crate::surface::{R, Surface};
use crate::webauthn_support::SoftAuthenticator;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt;
use twofa_core::{Config, Error, Proof, SecurityEvent, TotpAlgorithm};

/// The project's shared scenario, embedded so the binary is self-contained.
pub const SECURITY_TAB_JSON: &str = include_str!("../../../tests/scenarios/security_tab.json");

/// A time the host's own tests start their clocks at (the scenario sets its clock itself).
pub const T0: u64 = 1_700_000_000;

/// The shared scenario (`tests/scenarios/security_tab.json`).
pub fn security_tab() -> Scenario {
    Scenario::from_json(SECURITY_TAB_JSON).unwrap_or_else(|e| panic!("tests/scenarios/security_tab.json: {e}"))
}

/// The shared scenario's engine config.
pub fn config() -> Config {
    security_tab().config
}

/// Runs the shared scenario; panics at the first step that does not go as the file says.
pub fn run_scenario(s: &mut dyn Surface) -> Transcript {
    security_tab().run(s)
}

/// What happened at each executed operation: `"<op> <user>: ok"` or
/// `"<op> <user>: <error name>[ retry_after=N]"`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    pub steps: Vec<String>,
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// The name of an error as every surface reports it, with its retry delay if any.
pub fn error_name(e: &Error) -> String {
    match e.retry_after() {
        Some(secs) => format!("{} retry_after={secs}", e.name()),
        None => e.name().to_string(),
    }
}

/// The TOTP code of a base32 secret at `t`, computed independently with totp-rs.
pub fn totp_code(secret_b32: &str, t: u64, alg: totp_rs::Algorithm, digits: u8, period: u64) -> String {
    try_totp_code(secret_b32, t, alg, digits, period).unwrap_or_else(|e| panic!("{e}"))
}

fn try_totp_code(secret_b32: &str, t: u64, alg: totp_rs::Algorithm, digits: u8, period: u64) -> Result<String, String> {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).map_err(|e| format!("not a base32 secret: {e:?}"))?;
    let totp = totp_rs::Builder::new()
        .with_algorithm(alg)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret.as_ref().to_vec())
        .build_noncompliant();
    Ok(totp.generate(t).to_string())
}

/// The operations a step may name, with their arguments.
const OPS: [(&str, &[&str]); 24] = [
    ("security_status", &[]),
    ("set_contact_email", &["address", "step_up"]),
    ("contact_email_begin", &["address", "step_up"]),
    ("contact_email_confirm", &["code", "step_up"]),
    ("mark_order_created", &[]),
    ("totp_enroll_begin", &["account_name", "step_up"]),
    ("totp_enroll_confirm", &["code", "step_up"]),
    ("email_enroll_begin", &["address", "step_up"]),
    ("email_enroll_confirm", &["code", "step_up"]),
    ("webauthn_register_begin", &["friendly_name", "step_up"]),
    ("webauthn_register_finish", &["credential_json", "step_up"]),
    ("rename_method", &["method_id", "label", "step_up"]),
    ("remove_method", &["method_id", "step_up"]),
    ("recovery_codes_generate", &["step_up"]),
    ("login_begin", &["device_token"]),
    ("login_send_email_code", &["challenge"]),
    ("login_verify", &["challenge", "proof", "remember_device"]),
    ("revoke_remembered_device", &["device_id"]),
    ("revoke_remembered_devices", &[]),
    ("admin.totp_import", &["secret", "algorithm", "digits", "period"]),
    ("admin.delete_user", &[]),
    ("admin.reset_user", &["actor", "reason"]),
    ("admin.export_user", &["key"]),
    ("admin.import_user", &["document", "key"]),
];

/// The fields of an outcome whose strings are secrets of the run (README, "Events").
const SECRET_FIELDS: [&str; 5] = ["secret", "uri", "token", "codes", "document"];

/// A parsed scenario file.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The engine config (validated).
    pub config: Config,
    /// The browser origin of the WebAuthn ceremonies.
    pub origin: String,
    steps: Vec<Step>,
}

#[derive(Debug)]
enum Step {
    Time(u64),
    Advance(u64),
    Op(Box<OpStep>),
}

#[derive(Debug)]
struct OpStep {
    op: String,
    user: String,
    args: Map<String, Value>,
    expect: String,
    check: Map<String, Value>,
    save: Vec<(String, String)>,
    mails: Option<u64>,
    repeat: u64,
    note: Option<String>,
    /// The events the step must emit (each listed object's fields compared), if checked.
    events: Option<Vec<Map<String, Value>>>,
    /// Run this admin step on an admin handle opened without the capability.
    without_admin: bool,
}

fn object<'v>(v: &'v Value, what: &str) -> Result<&'v Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{what} must be an object, not {v}"))
}

fn string(v: &Value, what: &str) -> Result<String, String> {
    v.as_str().map(str::to_string).ok_or_else(|| format!("{what} must be a string, not {v}"))
}

fn unsigned(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("{what} must be a non-negative integer, not {v}"))
}

/// Refuses keys outside `allowed`, so that a misspelt key cannot be silently ignored.
fn only(m: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: unknown key `{k}` (expected one of {allowed:?})")),
        None => Ok(()),
    }
}

impl Scenario {
    /// Parses a scenario file, refusing unknown keys, unknown operations and an invalid config.
    pub fn from_json(json: &str) -> Result<Scenario, String> {
        let file: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let top = object(&file, "the scenario")?;
        only(top, &["name", "description", "config", "origin", "steps"], "the scenario")?;
        let field = |k: &str| top.get(k).ok_or_else(|| format!("the scenario has no `{k}`"));
        let config = Config::from_json(&field("config")?.to_string()).map_err(|e| format!("config: {e}"))?;
        let steps = field("steps")?.as_array().ok_or("`steps` must be an array")?;
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, step)| Step::parse(step).map_err(|e| format!("steps[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Scenario {
            name: string(field("name")?, "name")?,
            description: top.get("description").map(|d| string(d, "description")).transpose()?.unwrap_or_default(),
            config,
            origin: string(field("origin")?, "origin")?,
            steps,
        })
    }

    /// Runs every step against `s`, starting with its clock at 0; panics at the first step that
    /// does not go as the file says, naming the step's index, operation, user and note.
    pub fn run(&self, s: &mut dyn Surface) -> Transcript {
        s.set_time(0);
        let mut runner = Runner {
            s,
            origin: &self.origin,
            config: &self.config,
            vars: HashMap::new(),
            authenticators: HashMap::new(),
            secrets: HashSet::new(),
            transcript: Transcript::default(),
        };
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Time(t) => runner.s.set_time(*t),
                Step::Advance(secs) => {
                    let now = runner.s.now();
                    runner.s.set_time(now + secs)
                }
                Step::Op(step) => {
                    for n in 1..=step.repeat {
                        if let Err(what) = runner.run(step) {
                            let run =
                                if step.repeat > 1 { format!(" (run {n} of {})", step.repeat) } else { String::new() };
                            let note = step.note.as_deref().map(|n| format!(" [{n}]")).unwrap_or_default();
                            panic!(
                                "scenario {:?} on {}: steps[{i}] {} {}{run}{note}: {what}",
                                self.name,
                                runner.s.name(),
                                step.op,
                                step.user
                            );
                        }
                    }
                }
            }
        }
        if let Err(what) = no_secret_in(&runner.s.events(), &runner.secrets) {
            panic!("scenario {:?} on {}: {what}", self.name, runner.s.name());
        }
        runner.transcript
    }
}

impl Step {
    fn parse(v: &Value) -> Result<Step, String> {
        let m = object(v, "a step")?;
        if let Some(t) = m.get("time") {
            only(m, &["time", "note"], "a time step")?;
            return Ok(Step::Time(unsigned(t, "time")?));
        }
        if let Some(secs) = m.get("advance") {
            only(m, &["advance", "note"], "an advance step")?;
            return Ok(Step::Advance(unsigned(secs, "advance")?));
        }
        let keys =
            ["op", "user", "args", "expect", "check", "save", "mails", "repeat", "note", "events", "without_admin"];
        only(m, &keys, "an operation")?;
        let op = string(m.get("op").ok_or("a step needs `op`, `time` or `advance`")?, "op")?;
        let params = OPS.iter().find(|(name, _)| *name == op).ok_or(format!("unknown op `{op}`"))?.1;
        let args = m.get("args").map(|a| object(a, "args").cloned()).transpose()?.unwrap_or_default();
        only(&args, params, &format!("the args of {op}"))?;
        let save = match m.get("save") {
            Some(save) => object(save, "save")?
                .iter()
                .map(|(var, path)| Ok((var.clone(), string(path, "a save path")?)))
                .collect::<Result<_, String>>()?,
            None => Vec::new(),
        };
        let repeat = m.get("repeat").map(|r| unsigned(r, "repeat")).transpose()?.unwrap_or(1);
        if repeat == 0 {
            return Err("repeat must be at least 1".into());
        }
        let events = match m.get("events") {
            Some(events) => Some(
                (events.as_array().ok_or("`events` must be an array")?.iter().enumerate())
                    .map(|(i, e)| object(e, &format!("events[{i}]")).cloned())
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let without_admin = match m.get("without_admin") {
            Some(v) => v.as_bool().ok_or_else(|| format!("without_admin must be a boolean, not {v}"))?,
            None => false,
        };
        if without_admin && !op.starts_with("admin.") {
            return Err(format!("without_admin is for admin operations, not `{op}`"));
        }
        Ok(Step::Op(Box::new(OpStep {
            user: string(m.get("user").ok_or("an operation needs `user`")?, "user")?,
            args,
            expect: m.get("expect").map(|e| string(e, "expect")).transpose()?.unwrap_or_else(|| "ok".into()),
            check: m.get("check").map(|c| object(c, "check").cloned()).transpose()?.unwrap_or_default(),
            save,
            mails: m.get("mails").map(|n| unsigned(n, "mails")).transpose()?,
            repeat,
            note: m.get("note").map(|n| string(n, "note")).transpose()?,
            events,
            without_admin,
            op,
        })))
    }
}

/// The state of one run: saved variables, the named software authenticators and the secrets
/// the run handled.
struct Runner<'a> {
    s: &'a mut dyn Surface,
    origin: &'a str,
    /// The scenario's config (`without_admin` steps open an admin handle from it).
    config: &'a Config,
    vars: HashMap<String, Value>,
    authenticators: HashMap<String, SoftAuthenticator>,
    /// Every code computed or read from mail, and every string under a secret outcome field.
    secrets: HashSet<String>,
    transcript: Transcript,
}

impl Runner<'_> {
    /// Runs one operation step once; `Err` says what did not go as the file says.
    fn run(&mut self, step: &OpStep) -> Result<(), String> {
        let args = self.eval_args(&step.args)?;
        let before = self.s.outbox().len();
        let events_before = self.s.events().len();
        let result = if step.without_admin {
            self.call_without_admin(step, args)?
        } else {
            self.call(&step.op, &step.user, args)?
        };
        let delivered = self.s.outbox().len() - before;
        let emitted = self.s.events().split_off(events_before);
        if let Ok(outcome) = &result {
            collect_secrets(outcome, false, &mut self.secrets);
        }
        let (subject, line) = match result {
            Ok(outcome) if step.expect == "ok" => (outcome, "ok".to_string()),
            Ok(_) => return Err(format!("expected {}, got ok", step.expect)),
            Err(e) if e.name() != step.expect => {
                return Err(format!("expected {}, got {}: {e}", step.expect, error_name(&e)));
            }
            Err(e) => {
                let subject = json!({"name": e.name(), "code": e.code(), "retry_after": e.retry_after()});
                (subject, error_name(&e))
            }
        };
        for (path, expected) in &step.check {
            let actual =
                lookup(&subject, path).ok_or_else(|| format!("check `{path}`: no such value in the outcome"))?;
            if !matches(&actual, expected)? {
                return Err(format!("check `{path}`: expected {expected}, got {actual}"));
            }
        }
        if let Some(mails) = step.mails
            && delivered as u64 != mails
        {
            return Err(format!("expected {mails} message(s) delivered, got {delivered}"));
        }
        if let Some(expected) = &step.events {
            check_events(&emitted, expected)?;
        }
        for (var, path) in &step.save {
            let value = lookup(&subject, path).ok_or_else(|| format!("save `{var}`: no `{path}` in the outcome"))?;
            self.vars.insert(var.clone(), value);
        }
        self.transcript.steps.push(format!("{} {}: {line}", step.op, step.user));
        Ok(())
    }

    /// Calls an admin step on an admin handle opened from the scenario's config without the
    /// capability (refused when it opens: that is the step's result), then opens the usual one
    /// again.
    fn call_without_admin(&mut self, step: &OpStep, args: Map<String, Value>) -> Result<R<Value>, String> {
        let without = Config { admin: false, ..self.config.clone() };
        let result = match self.s.open_admin(&without) {
            Err(refused) => Ok(Err(refused)),
            Ok(()) => self.call(&step.op, &step.user, args),
        };
        if let Err(e) = self.s.open_admin(self.config)
            && self.config.admin
        {
            return Err(format!("opening the admin handle again: {e}"));
        }
        result
    }

    /// The value of a saved variable reference (`name` or `name.path`).
    fn var(&self, reference: &str) -> Result<Value, String> {
        let (name, path) = reference.split_once('.').unwrap_or((reference, ""));
        let value = self.vars.get(name).ok_or_else(|| format!("no saved variable `${name}`"))?;
        lookup(value, path).ok_or_else(|| format!("no `{path}` in `${name}`"))
    }

    /// Evaluates the values of `args`; an error names the value's path (`args.proof.value`).
    /// Evaluates the values of `args`; an error names the value's path (`args.proof.value: ...`).
    fn eval_args(&mut self, args: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        self.eval_object(args, "args")
    }

    fn eval_object(&mut self, m: &Map<String, Value>, at: &str) -> Result<Map<String, Value>, String> {
        m.iter().map(|(k, v)| Ok((k.clone(), self.eval(v, &format!("{at}.{k}"))?))).collect()
    }

    /// Evaluates the value at `at`: variable references and expressions; anything else as it is.
    fn eval(&mut self, v: &Value, at: &str) -> Result<Value, String> {
        match v {
            Value::String(s) if s.starts_with('$') => self.var(&s[1..]).map_err(|e| format!("{at}: {e}")),
            Value::Array(items) => {
                let items = items.iter().enumerate().map(|(i, item)| self.eval(item, &format!("{at}.{i}")));
                items.collect::<Result<_, _>>().map(Value::Array)
            }
            Value::Object(m) => {
                match ["totp", "wrong_totp", "mailed_code", "wrong_mailed_code", "webauthn_create", "webauthn_get"]
                    .into_iter()
                    .find(|k| m.contains_key(*k))
                {
                    Some(kind) => {
                        let operand = match self.eval(&m[kind], &format!("{at}.{kind}"))? {
                            Value::String(s) => s,
                            options @ Value::Object(_) if kind.starts_with("webauthn") => options.to_string(),
                            other => return Err(format!("{at}.{kind}: must be a string, not {other}")),
                        };
                        self.expression(kind, &operand, m).map(Value::String).map_err(|e| format!("{at}: {e}"))
                    }
                    None => self.eval_object(m, at).map(Value::Object),
                }
            }
            other => Ok(other.clone()),
        }
    }

    /// Evaluates one expression object of `kind` (see "Values" in tests/scenarios/README.md), its
    /// operand already evaluated.
    fn expression(&mut self, kind: &str, operand: &str, m: &Map<String, Value>) -> Result<String, String> {
        let now = self.s.now();
        match kind {
            "totp" => {
                only(m, &["totp", "algorithm", "digits", "period"], "a totp expression")?;
                let alg = match m.get("algorithm").map(|a| string(a, "algorithm")).transpose()?.as_deref() {
                    None | Some("SHA1") => totp_rs::Algorithm::SHA1,
                    Some("SHA256") => totp_rs::Algorithm::SHA256,
                    Some("SHA512") => totp_rs::Algorithm::SHA512,
                    Some(other) => return Err(format!("unknown TOTP algorithm `{other}`")),
                };
                let digits = m.get("digits").map(|d| unsigned(d, "digits")).transpose()?.unwrap_or(6);
                let digits = u8::try_from(digits).map_err(|_| format!("digits: {digits}"))?;
                let period = m.get("period").map(|p| unsigned(p, "period")).transpose()?.unwrap_or(30);
                if period == 0 {
                    return Err("period must be at least 1".into());
                }
                let code = try_totp_code(operand, now, alg, digits, period)?;
                self.secrets.insert(code.clone());
                Ok(code)
            }
            "wrong_totp" => {
                only(m, &["wrong_totp"], "a wrong_totp expression")?;
                let valid = (-2i64..=2)
                    .map(|k| now.checked_add_signed(k * 30).unwrap_or(0))
                    .map(|t| try_totp_code(operand, t, totp_rs::Algorithm::SHA1, 6, 30))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((0..).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap_or_default())
            }
            "mailed_code" | "wrong_mailed_code" => {
                only(m, &[kind], "a mailed-code expression")?;
                let outbox = self.s.outbox();
                let message = outbox.iter().rev().find(|m| m.to == operand).ok_or(format!("no mail to {operand}"))?;
                let code = message.text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() >= 6);
                let code = code.ok_or(format!("no code in the last mail to {operand}"))?;
                if kind == "mailed_code" {
                    self.secrets.insert(code.to_string());
                    return Ok(code.to_string());
                }
                // Every digit shifted by one: the same shape, a different code.
                Ok(code.bytes().map(|d| char::from(b'0' + (d - b'0' + 1) % 10)).collect())
            }
            "webauthn_create" => {
                only(m, &[kind, "authenticator", "same_credential"], "a webauthn_create expression")?;
                let name = string(m.get("authenticator").ok_or("`authenticator` is missing")?, "authenticator")?;
                let same_credential = match m.get("same_credential") {
                    None => false,
                    Some(v) => v.as_bool().ok_or_else(|| format!("same_credential must be a boolean, not {v}"))?,
                };
                let key = self.authenticators.entry(name.clone()).or_default();
                let response = if same_credential {
                    key.try_register_same_credential(operand, self.origin)
                } else {
                    key.try_register(operand, self.origin)
                };
                response.map_err(|e| format!("authenticator `{name}` refused the {kind}: {e}"))
            }
            _ => {
                only(m, &[kind, "authenticator", "sign_count"], "a webauthn_get expression")?;
                let name = string(m.get("authenticator").ok_or("`authenticator` is missing")?, "authenticator")?;
                let sign_count = m.get("sign_count").map(|n| unsigned(n, "sign_count")).transpose()?;
                let sign_count =
                    sign_count.map(|n| u32::try_from(n).map_err(|_| format!("sign_count: {n}"))).transpose()?;
                let key = self.authenticators.entry(name.clone()).or_default();
                let response = match sign_count {
                    Some(n) => key.try_authenticate_with_sign_count(operand, self.origin, n),
                    None => key.try_authenticate(operand, self.origin),
                };
                response.map_err(|e| format!("authenticator `{name}` refused the {kind}: {e}"))
            }
        }
    }

    /// Calls the operation (whose argument names were checked at parsing); the outer `Err` is a
    /// missing or ill-typed argument.
    fn call(&mut self, op: &str, user: &str, args: Map<String, Value>) -> Result<R<Value>, String> {
        let mut a = Args(args);
        let s = &mut *self.s;
        // The outcome as JSON, without a `type` tag.
        macro_rules! out {
            ($r:expr) => {{
                $r.map(|v| {
                    let mut v = serde_json::to_value(v).unwrap_or_else(|e| panic!("an outcome as JSON: {e}"));
                    if let Value::Object(m) = &mut v {
                        m.remove("type");
                    }
                    v
                })
            }};
        }
        let step_up = a.opt("step_up")?;
        let step_up = step_up.as_deref();
        Ok(match op {
            "security_status" => out!(s.security_status(user)),
            "set_contact_email" => out!(s.set_contact_email(user, &a.str("address")?, step_up)),
            "contact_email_begin" => out!(s.contact_email_begin(user, &a.str("address")?, step_up)),
            "contact_email_confirm" => out!(s.contact_email_confirm(user, &a.str("code")?, step_up)),
            "mark_order_created" => out!(s.mark_order_created(user).map(|()| json!({}))),
            "totp_enroll_begin" => out!(s.totp_enroll_begin(user, &a.str("account_name")?, step_up)),
            "totp_enroll_confirm" => out!(s.totp_enroll_confirm(user, &a.str("code")?, step_up)),
            "email_enroll_begin" => out!(s.email_enroll_begin(user, &a.str("address")?, step_up)),
            "email_enroll_confirm" => out!(s.email_enroll_confirm(user, &a.str("code")?, step_up)),
            "webauthn_register_begin" => out!(s.webauthn_register_begin(user, &a.str("friendly_name")?, step_up)),
            "webauthn_register_finish" => out!(s.webauthn_register_finish(user, &a.str("credential_json")?, step_up)),
            "rename_method" => out!(s.rename_method(user, &a.str("method_id")?, &a.str("label")?, step_up)),
            "remove_method" => out!(s.remove_method(user, &a.str("method_id")?, step_up)),
            "recovery_codes_generate" => out!(s.recovery_codes_generate(user, step_up)),
            "login_begin" => out!(s.login_begin_remembered(user, a.opt("device_token")?.as_deref())),
            "login_send_email_code" => out!(s.login_send_email_code(user, &a.str("challenge")?)),
            "login_verify" => {
                let challenge = a.str("challenge")?;
                let proof: Proof = serde_json::from_value(a.take("proof")?).map_err(|e| format!("args.proof: {e}"))?;
                let remember_device = a.flag("remember_device")?;
                out!(s.login_verify_remembering(user, &challenge, proof, remember_device))
            }
            "revoke_remembered_device" => {
                out!(s.revoke_remembered_device(user, &a.str("device_id")?).map(|()| json!({})))
            }
            "revoke_remembered_devices" => out!(s.revoke_remembered_devices(user).map(|()| json!({}))),
            "admin.totp_import" => {
                let secret = a.str("secret")?;
                let algorithm: TotpAlgorithm =
                    serde_json::from_value(a.take("algorithm")?).map_err(|e| format!("args.algorithm: {e}"))?;
                let digits = unsigned(&a.take("digits")?, "args.digits")?;
                let digits = u8::try_from(digits).map_err(|_| format!("args.digits: {digits}"))?;
                let period = unsigned(&a.take("period")?, "args.period")?;
                out!(s.totp_import(user, &secret, algorithm, digits, period))
            }
            "admin.delete_user" => out!(s.delete_user(user).map(|()| json!({}))),
            "admin.reset_user" => out!(s.reset_user(user, &a.str("actor")?, &a.str("reason")?)),
            "admin.export_user" => out!(s.export_user(user, &a.str("key")?)),
            "admin.import_user" => out!(s.import_user(user, &a.str("document")?, &a.str("key")?)),
            other => return Err(format!("unknown op `{other}`")),
        })
    }
}

/// The evaluated arguments of a call, taken one by one.
struct Args(Map<String, Value>);

impl Args {
    fn take(&mut self, name: &str) -> Result<Value, String> {
        self.0.remove(name).ok_or_else(|| format!("args.{name} is missing"))
    }

    fn str(&mut self, name: &str) -> Result<String, String> {
        string(&self.take(name)?, &format!("args.{name}"))
    }

    /// An optional string argument (absent or `null`: none).
    fn opt(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => string(&v, &format!("args.{name}")).map(Some),
        }
    }

    /// An optional boolean argument (absent: false).
    fn flag(&mut self, name: &str) -> Result<bool, String> {
        match self.0.remove(name) {
            None => Ok(false),
            Some(v) => v.as_bool().ok_or_else(|| format!("args.{name} must be a boolean, not {v}")),
        }
    }
}

/// Adds every non-empty string under a field named in [`SECRET_FIELDS`] to `secrets`.
fn collect_secrets(v: &Value, secret: bool, secrets: &mut HashSet<String>) {
    match v {
        Value::String(s) if secret && !s.is_empty() => {
            secrets.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|item| collect_secrets(item, secret, secrets)),
        Value::Object(m) => {
            for (k, item) in m {
                collect_secrets(item, secret || SECRET_FIELDS.contains(&k.as_str()), secrets);
            }
        }
        _ => {}
    }
}

/// Fails if the JSON text of any of `events` contains one of `secrets`.
fn no_secret_in(events: &[SecurityEvent], secrets: &HashSet<String>) -> Result<(), String> {
    for (i, event) in events.iter().enumerate() {
        let json = serde_json::to_value(event).map_err(|e| format!("an event as JSON: {e}"))?;
        // Only strings: a 6-digit code may well occur inside a timestamp.
        let strings = json.as_object().into_iter().flat_map(|o| o.values()).filter_map(Value::as_str);
        if strings.into_iter().any(|text| secrets.iter().any(|secret| text.contains(secret.as_str()))) {
            return Err(format!("event {i} contains a secret of the run: {json}"));
        }
    }
    Ok(())
}

/// Checks the events a step emitted against its `events`: the same count, and each listed
/// field of each expected object met by the event's (a JSON value or a matcher).
fn check_events(emitted: &[SecurityEvent], expected: &[Map<String, Value>]) -> Result<(), String> {
    let emitted = serde_json::to_value(emitted).map_err(|e| format!("events as JSON: {e}"))?;
    let list = emitted.as_array().map_or(0, Vec::len);
    if list != expected.len() {
        return Err(format!("expected {} event(s), got {list}: {emitted}", expected.len()));
    }
    for (i, fields) in expected.iter().enumerate() {
        for (field, want) in fields {
            let actual = lookup(&emitted[i], field).ok_or_else(|| format!("event {i} has no `{field}`: {emitted}"))?;
            if !matches(&actual, want)? {
                return Err(format!("event {i} `{field}`: expected {want}, got {actual}: {emitted}"));
            }
        }
    }
    Ok(())
}

/// The value at `path` (dot-separated field names and array indexes; `length` of an array or a
/// string is its length; the empty path is the value itself), or `None` when there is none.
fn lookup(v: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(v.clone());
    }
    let mut current = v.clone();
    for segment in path.split('.') {
        current = match current {
            Value::Object(mut m) => m.remove(segment)?,
            Value::Array(items) if segment == "length" => items.len().into(),
            Value::Array(mut items) => {
                let i: usize = segment.parse().ok()?;
                (i < items.len()).then(|| items.swap_remove(i))?
            }
            Value::String(s) if segment == "length" => s.chars().count().into(),
            _ => return None,
        };
    }
    Some(current)
}

/// Whether `actual` meets `expected`: a matcher object (`gt`, `prefix`, `contains`, `not`) or a
/// JSON value compared as JSON (numbers by value).
fn matches(actual: &Value, expected: &Value) -> Result<bool, String> {
    if let Value::Object(m) = expected
        && m.len() == 1
        && let Some((name, operand)) = m.iter().next()
    {
        let text = || operand.as_str().ok_or(format!("`{name}` needs a string, not {operand}"));
        match name.as_str() {
            "gt" => {
                let n = operand.as_f64().ok_or(format!("`gt` needs a number, not {operand}"))?;
                return Ok(actual.as_f64().is_some_and(|a| a > n));
            }
            "prefix" => {
                let prefix = text()?;
                return Ok(actual.as_str().is_some_and(|a| a.starts_with(prefix)));
            }
            "contains" => {
                return Ok(match actual {
                    Value::String(a) => a.contains(text()?),
                    Value::Array(items) => items.iter().any(|item| json_eq(item, operand)),
                    _ => false,
                });
            }
            "not" => return Ok(!matches(actual, operand)?),
            _ => {}
        }
    }
    Ok(json_eq(actual, expected))
}

/// JSON equality, with numbers compared by value (`9` equals `9.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VirtualClock;
    use crate::surface::Native;

    fn native(scenario: &Scenario) -> Native {
        Native::new(scenario.config.clone(), VirtualClock::at(T0)).unwrap()
    }

    /// A scenario of the shared file's config with `steps`.
    fn inline(steps: Value) -> Scenario {
        let mut file: Value = serde_json::from_str(SECURITY_TAB_JSON).unwrap();
        file["name"] = "inline".into();
        file["steps"] = steps;
        Scenario::from_json(&file.to_string()).unwrap()
    }

    /// Runs `steps` and returns the panic message.
    fn failure(steps: Value) -> String {
        let scenario = inline(steps);
        let mut surface = native(&scenario);
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario.run(&mut surface)))
            .expect_err("the runner must fail");
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    fn enrol(user: &str) -> Value {
        json!([
            {"time": T0},
            {"op": "totp_enroll_begin", "user": user, "args": {"account_name": "x@example.com"}, "save": {"s": "secret"}},
            {"op": "totp_enroll_confirm", "user": user, "args": {"code": {"totp": "$s"}}, "save": {"t": "step_up.token"}},
        ])
    }

    fn with(mut steps: Value, more: Value) -> Value {
        steps.as_array_mut().unwrap().extend(more.as_array().unwrap().iter().cloned());
        steps
    }

    #[test]
    fn the_shared_file_parses_and_totp_rs_agrees_with_rfc_6238() {
        let scenario = security_tab();
        assert_eq!(scenario.name, "security-tab");
        assert!(scenario.steps.len() > 50);
        // The independent implementation behind `{"totp": ...}`, against RFC 6238 appendix B.
        let sha1 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(sha1, 59, totp_rs::Algorithm::SHA1, 8, 30), "94287082");
        let sha256 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
        assert_eq!(totp_code(sha256, 1_111_111_109, totp_rs::Algorithm::SHA256, 8, 30), "68084774");
        let sha512 =
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";
        assert_eq!(totp_code(sha512, 2_000_000_000, totp_rs::Algorithm::SHA512, 8, 30), "38618901");
    }

    #[test]
    fn a_passing_inline_scenario_records_each_run() {
        let steps = with(
            enrol("u"),
            json!([
                {"advance": 30},
                {"op": "login_begin", "user": "u", "save": {"ch": "challenge_id"},
                 "check": {"methods": ["totp"], "methods.length": 1, "challenge_id": {"not": null}}},
                {"op": "login_verify", "user": "u", "repeat": 2, "expect": "invalid_code",
                 "args": {"challenge": "$ch", "proof": {"kind": "totp", "value": {"wrong_totp": "$s"}}},
                 "check": {"name": "invalid_code", "code": 2, "retry_after": null}},
                {"op": "login_verify", "user": "u",
                 "args": {"challenge": "$ch", "proof": {"kind": "totp", "value": {"totp": "$s", "digits": 6}}},
                 "check": {"method": "totp", "step_up.token": {"not": {"prefix": "$"}}, "recovery_codes_left": null}},
                {"op": "security_status", "user": "u",
                 "check": {"methods.0.kind": "totp", "methods.0.last_used": {"gt": T0}, "locked_until": null}},
                {"op": "admin.delete_user", "user": "u", "check": {}, "mails": 0}
            ]),
        );
        let scenario = inline(steps);
        let transcript = scenario.run(&mut native(&scenario));
        let expected = [
            "totp_enroll_begin u: ok",
            "totp_enroll_confirm u: ok",
            "login_begin u: ok",
            "login_verify u: invalid_code",
            "login_verify u: invalid_code",
            "login_verify u: ok",
            "security_status u: ok",
            "admin.delete_user u: ok",
        ];
        assert_eq!(transcript.steps, expected);
    }

    #[test]
    fn a_wrong_expect_fails_the_run() {
        let message = failure(with(
            enrol("u"),
            json!([{"op": "login_begin", "user": "u", "expect": "locked_out", "note": "wrong on purpose"}]),
        ));
        assert!(
            message.contains("steps[3] login_begin u [wrong on purpose]: expected locked_out, got ok"),
            "{message}"
        );
        assert!(message.contains("on native"), "{message}");

        let message = failure(with(
            enrol("u"),
            json!([{"op": "security_status", "user": "u", "args": {}, "expect": "invalid_code"}]),
        ));
        assert!(message.contains("expected invalid_code, got ok"), "{message}");

        let message = failure(json!([{"op": "remove_method", "user": "u", "args": {"method_id": "totp-1"}}]));
        assert!(message.contains("steps[0] remove_method u: expected ok, got "), "{message}");
    }

    #[test]
    fn a_wrong_error_name_fails_the_run() {
        let message = failure(with(
            enrol("u"),
            json!([
                {"op": "login_begin", "user": "u", "save": {"ch": "challenge_id"}},
                {"op": "login_verify", "user": "u", "expect": "replayed",
                 "args": {"challenge": "$ch", "proof": {"kind": "totp", "value": {"wrong_totp": "$s"}}}}
            ]),
        ));
        assert!(message.contains("steps[4] login_verify u: expected replayed, got invalid_code"), "{message}");
    }

    #[test]
    fn a_wrong_check_fails_the_run() {
        for (check, what) in [
            (json!({"method.kind": "email"}), "check `method.kind`: expected \"email\", got \"totp\""),
            (json!({"method.label": {"prefix": "Soft"}}), "check `method.label`"),
            (json!({"method.created": {"gt": T0}}), "check `method.created`"),
            (json!({"step_up": null}), "check `step_up`"),
            (json!({"no.such.path": {"not": null}}), "check `no.such.path`: no such value"),
            (json!({"step_up.nothing": null}), "check `step_up.nothing`: no such value"),
            (json!({"method.label": {"contains": "email"}}), "check `method.label`"),
            (json!({"notices.failed": {"contains": "x"}}), "check `notices.failed`"),
            (json!({"notices.failed.length": 1}), "check `notices.failed.length`: expected 1, got 0"),
        ] {
            let steps = json!([
                {"time": T0},
                {"op": "totp_enroll_begin", "user": "u", "args": {"account_name": "x@example.com"}, "save": {"s": "secret"}},
                {"op": "totp_enroll_confirm", "user": "u", "args": {"code": {"totp": "$s"}}, "check": check},
            ]);
            let message = failure(steps);
            assert!(message.contains(&format!("steps[2] totp_enroll_confirm u: {what}")), "{check}: {message}");
        }
        let message = failure(json!([
            {"op": "security_status", "user": "", "expect": "invalid_input", "check": {"name": "invalid_input"}},
            {"op": "security_status", "user": "", "expect": "invalid_input", "check": {"code": 2}}
        ]));
        assert!(message.contains("steps[1] security_status : check `code`: expected 2, got 1"), "{message}");
    }

    #[test]
    fn wrong_mails_and_bad_steps_fail_the_run() {
        let message = failure(json!([
            {"time": T0},
            {"op": "email_enroll_begin", "user": "b", "args": {"address": "b@example.com"}, "mails": 2}
        ]));
        assert!(message.contains("expected 2 message(s) delivered, got 1"), "{message}");

        let message = failure(json!([{"op": "recovery_codes_generate", "user": "u", "args": {"step_up": "$nothing"}}]));
        assert!(message.contains("args.step_up: no saved variable `$nothing`"), "{message}");

        let message = failure(json!([{"op": "login_verify", "user": "u",
            "args": {"challenge": "c", "proof": {"kind": "totp", "value": {"totp": "$nothing"}}}}]));
        assert!(message.contains("args.proof.value.totp: no saved variable `$nothing`"), "{message}");

        let message = failure(json!([{"op": "webauthn_register_finish", "user": "u",
            "args": {"credential_json": {"webauthn_create": "{}"}}}]));
        assert!(message.contains("args.credential_json: `authenticator` is missing"), "{message}");

        let message = failure(json!([{"op": "security_status", "user": "u", "save": {"x": "nope"}}]));
        assert!(message.contains("save `x`: no `nope`"), "{message}");

        let message = failure(
            json!([{"op": "set_contact_email", "user": "u", "args": {"address": {"mailed_code": "u@example.com"}}}]),
        );
        assert!(message.contains("args.address: no mail to u@example.com"), "{message}");
    }

    #[test]
    fn a_changed_expectation_in_the_shared_file_fails_the_run() {
        for (from, to, what) in [
            (r#""codes.length": 10"#, r#""codes.length": 11"#, "recovery_codes_generate alice: check `codes.length`"),
            (
                r#""expect": "replayed", "note""#,
                r#""expect": "ok", "note""#,
                "login_verify alice [the same code again]: expected ok",
            ),
            (
                r#""retry_after": {"gt": 0}}, "note": "even"#,
                r#""retry_after": {"gt": 60}}, "note": "even"#,
                "login_verify erin",
            ),
            (
                r#""retry_after": 60}, "mails": 0, "note": "the cooldown"#,
                r#""retry_after": 59}, "mails": 0, "note": "the cooldown"#,
                "email_enroll_begin ivan [the cooldown runs from the code's issue]: check `retry_after`",
            ),
            (
                r#""mails": 2, "note": "the old and the new"#,
                r#""mails": 1, "note": "the old and the new"#,
                "set_contact_email ivan [the old and the new address are told]: expected 1 message(s) delivered",
            ),
            (r#""repeat": 10"#, r#""repeat": 9"#, "login_verify erin [even the right code is refused]"),
            (
                r#""bob@example.com"}, "mails": 1"#,
                r#""bob@example.com"}, "mails": 2"#,
                "email_enroll_begin bob: expected 2",
            ),
        ] {
            assert_eq!(SECURITY_TAB_JSON.matches(from).count(), 1, "{from}");
            let scenario = Scenario::from_json(&SECURITY_TAB_JSON.replace(from, to)).unwrap();
            let mut surface = native(&scenario);
            let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario.run(&mut surface)))
                .expect_err(&format!("{to} must fail the run"));
            let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(message.contains(what), "{to}: {message}");
        }
    }

    #[test]
    fn malformed_files_are_refused() {
        let base: Value = serde_json::from_str(SECURITY_TAB_JSON).unwrap();
        for (steps, what) in [
            (json!([{"op": "log_in"}]), "unknown op `log_in`"),
            (json!([{"op": "login_begin", "user": "u", "expected": "ok"}]), "unknown key `expected`"),
            (json!([{"op": "login_begin"}]), "needs `user`"),
            (json!([{"time": 1, "advance": 2}]), "unknown key `advance`"),
            (json!([{"advance": 2, "notes": "x"}]), "unknown key `notes`"),
            (json!([{"op": "login_begin", "user": "u", "repeat": 0}]), "repeat must be at least 1"),
            (json!([{"op": "set_contact_email", "user": "u", "args": {"adress": "x"}}]), "unknown key `adress`"),
            (json!([{"op": "login_begin", "user": "u", "args": {"step_up": "x"}}]), "unknown key `step_up`"),
        ] {
            let mut file = base.clone();
            file["steps"] = steps;
            let e = Scenario::from_json(&file.to_string()).unwrap_err();
            assert!(e.contains(what) && e.starts_with("steps[0]: "), "{e}");
        }
        let mut file = base.clone();
        file["steps"] = json!([{"time": 1, "note": "a time step may say why"}, {"advance": 2, "note": "so may this"}]);
        assert!(Scenario::from_json(&file.to_string()).is_ok());
        file["config"]["keys"] = json!([]);
        assert!(Scenario::from_json(&file.to_string()).unwrap_err().starts_with("config: "));
    }

    #[test]
    fn events_are_checked_and_without_admin_steps_are_refused() {
        let message = failure(with(
            enrol("u"),
            json!([{"op": "login_begin", "user": "u", "events": [{"kind": "login_succeeded"}]}]),
        ));
        assert!(message.contains("steps[3] login_begin u: expected 1 event(s), got 0: []"), "{message}");
        let message = failure(with(
            enrol("u"),
            json!([{"op": "recovery_codes_generate", "user": "u", "args": {"step_up": "$t"},
                    "events": [{"kind": "method_added"}]}]),
        ));
        assert!(
            message.contains("event 0 `kind`: expected \"method_added\", got \"recovery_codes_generated\""),
            "{message}"
        );
        let message = failure(with(
            enrol("u"),
            json!([{"op": "recovery_codes_generate", "user": "u", "args": {"step_up": "$t"}, "events": [{"nope": 1}]}]),
        ));
        assert!(message.contains("event 0 has no `nope`"), "{message}");

        let steps = with(
            enrol("u"),
            json!([
                {"op": "admin.delete_user", "user": "u", "without_admin": true, "expect": "forbidden",
                 "check": {"code": 18}, "events": [], "mails": 0},
                {"op": "admin.delete_user", "user": "u", "events": [{"kind": "user_deleted", "user": "u", "at": T0}]}
            ]),
        );
        let scenario = inline(steps);
        let transcript = scenario.run(&mut native(&scenario));
        assert_eq!(transcript.steps[2..], ["admin.delete_user u: forbidden", "admin.delete_user u: ok"]);

        let base: Value = serde_json::from_str(SECURITY_TAB_JSON).unwrap();
        let mut file = base.clone();
        file["steps"] = json!([{"op": "login_begin", "user": "u", "without_admin": true}]);
        assert!(Scenario::from_json(&file.to_string()).unwrap_err().contains("without_admin is for admin operations"));
        file["steps"] = json!([{"op": "login_begin", "user": "u", "events": {}}]);
        assert!(Scenario::from_json(&file.to_string()).unwrap_err().contains("`events` must be an array"));
    }

    #[test]
    fn an_event_holding_a_secret_fails_the_check() {
        let event = SecurityEvent {
            kind: twofa_core::EventKind::LoginFailed,
            user: "u".into(),
            at: T0,
            method: None,
            method_id: None,
            reason: Some("code 123456".into()),
            actor: None,
        };
        let mut secrets = HashSet::from(["654321".to_string()]);
        assert_eq!(no_secret_in(std::slice::from_ref(&event), &secrets), Ok(()));
        secrets.insert("123456".into());
        let e = no_secret_in(&[event], &secrets).unwrap_err();
        assert!(e.starts_with("event 0 contains a secret of the run: "), "{e}");

        let mut found = HashSet::new();
        let outcome = json!({"secret": "S", "uri": "U", "step_up": {"token": "T"}, "codes": ["A", "B"],
                             "document": "D", "label": "L", "method_id": "M", "expires_at": 1});
        collect_secrets(&outcome, false, &mut found);
        let mut found: Vec<_> = found.into_iter().collect();
        found.sort();
        assert_eq!(found, ["A", "B", "D", "S", "T", "U"]);
    }

    #[test]
    fn same_credential_and_sign_count_drive_the_named_authenticator() {
        let steps = with(
            enrol("u"),
            json!([
                {"op": "webauthn_register_begin", "user": "u", "args": {"friendly_name": "Key", "step_up": "$t"},
                 "save": {"o": "options_json"}},
                {"op": "webauthn_register_finish", "user": "u",
                 "args": {"credential_json": {"webauthn_create": "$o", "authenticator": "k"}, "step_up": "$t"},
                 "save": {"key": "method.id"}},
                {"op": "webauthn_register_begin", "user": "v", "args": {"friendly_name": "Key"}, "save": {"o": "options_json"}},
                {"op": "webauthn_register_finish", "user": "v", "expect": "webauthn_rejected",
                 "args": {"credential_json": {"webauthn_create": "$o", "authenticator": "k", "same_credential": true}},
                 "note": "u's credential again: still claimed by u"},
                {"op": "login_begin", "user": "u", "save": {"ch": "challenge_id", "lo": "webauthn_options"}},
                {"op": "login_verify", "user": "u",
                 "args": {"challenge": "$ch", "proof": {"kind": "webauthn",
                          "value": {"webauthn_get": "$lo", "authenticator": "k", "sign_count": 41}}},
                 "check": {"method": "webauthn"}},
                {"op": "login_begin", "user": "u", "save": {"ch": "challenge_id", "lo": "webauthn_options"}},
                {"op": "login_verify", "user": "u",
                 "args": {"challenge": "$ch", "proof": {"kind": "webauthn",
                          "value": {"webauthn_get": "$lo", "authenticator": "k"}}},
                 "check": {"method": "webauthn"}, "note": "the counter continues from 41"},
                {"op": "login_begin", "user": "u", "save": {"ch": "challenge_id", "lo": "webauthn_options"}},
                {"op": "login_verify", "user": "u", "expect": "webauthn_rejected",
                 "args": {"challenge": "$ch", "proof": {"kind": "webauthn",
                          "value": {"webauthn_get": "$lo", "authenticator": "k", "sign_count": 42}}},
                 "events": [{"kind": "counter_regressed"}]},
                {"op": "security_status", "user": "u", "check": {"methods.1.flagged": true}},
                {"op": "remove_method", "user": "u", "args": {"method_id": "$key", "step_up": "$t"},
                 "expect": "step_up_required", "note": "the flag revoked the tokens issued before"},
                {"advance": 30},
                {"op": "login_begin", "user": "u", "save": {"ch": "challenge_id"}},
                {"op": "login_verify", "user": "u",
                 "args": {"challenge": "$ch", "proof": {"kind": "totp", "value": {"totp": "$s"}}},
                 "save": {"t": "step_up.token"}},
                {"op": "remove_method", "user": "u", "args": {"method_id": "$key", "step_up": "$t"}},
                {"op": "webauthn_register_finish", "user": "v",
                 "args": {"credential_json": {"webauthn_create": "$o", "authenticator": "k", "same_credential": true}},
                 "note": "the claim went with u's device"},
                {"op": "login_begin", "user": "v", "save": {"ch": "challenge_id", "lo": "webauthn_options"}},
                {"op": "login_verify", "user": "v",
                 "args": {"challenge": "$ch", "proof": {"kind": "webauthn",
                          "value": {"webauthn_get": "$lo", "authenticator": "k"}}},
                 "check": {"method": "webauthn"}}
            ]),
        );
        let scenario = inline(steps);
        let transcript = scenario.run(&mut native(&scenario));
        assert_eq!(transcript.steps.len(), 20, "{transcript}");

        let message = failure(json!([{"op": "webauthn_register_finish", "user": "u",
            "args": {"credential_json": {"webauthn_create": "{}", "authenticator": "k", "sign_count": 1}}}]));
        assert!(message.contains("a webauthn_create expression: unknown key `sign_count`"), "{message}");
        let message = failure(json!([{"op": "webauthn_register_finish", "user": "u",
            "args": {"credential_json": {"webauthn_create": "{}", "authenticator": "k", "same_credential": 1}}}]));
        assert!(message.contains("same_credential must be a boolean"), "{message}");
        let message = failure(json!([
            {"time": T0},
            {"op": "webauthn_register_begin", "user": "u", "args": {"friendly_name": "Key"}, "save": {"o": "options_json"}},
            {"op": "webauthn_register_finish", "user": "u",
             "args": {"credential_json": {"webauthn_create": "$o", "authenticator": "k", "same_credential": true}}}
        ]));
        assert!(
            message.contains("authenticator `k` refused the webauthn_create: the authenticator holds no credential")
        );
    }

    #[test]
    fn paths_and_matchers() {
        let v = json!({"codes": ["a", "b"], "n": 9, "s": "otpauth://totp/x", "o": {"x": null}});
        assert_eq!(lookup(&v, "codes.1"), Some(json!("b")));
        assert_eq!(lookup(&v, "codes.length"), Some(json!(2)));
        assert_eq!(lookup(&v, "s.length"), Some(json!(16)));
        assert_eq!(lookup(&v, "o.x"), Some(Value::Null));
        assert_eq!(lookup(&v, "codes.2"), None);
        assert_eq!(lookup(&v, "n.x"), None);
        assert_eq!(lookup(&v, ""), Some(v.clone()));
        let ok = |actual: Value, expected: Value| matches(&actual, &expected).unwrap();
        assert!(ok(json!(9), json!(9.0)) && !ok(json!(9), json!(10)));
        assert!(ok(json!(1), json!({"gt": 0})) && !ok(json!(0), json!({"gt": 0})) && !ok(json!("1"), json!({"gt": 0})));
        assert!(ok(json!("otpauth://totp/x"), json!({"prefix": "otpauth://totp/"})));
        assert!(!ok(json!("otpauth://hotp/x"), json!({"prefix": "otpauth://totp/"})));
        assert!(ok(json!("abc"), json!({"contains": "b"})) && ok(json!([1, 2]), json!({"contains": 2})));
        assert!(!ok(json!([1, 2]), json!({"contains": 3})) && !ok(Value::Null, json!({"contains": "x"})));
        assert!(ok(json!("x"), json!({"not": null})) && !ok(Value::Null, json!({"not": null})));
        assert!(ok(json!({"a": 1}), json!({"a": 1})) && !ok(json!({"a": 1}), json!({"a": 1, "b": 2})));
        assert!(matches(&json!(1), &json!({"gt": "x"})).is_err());
    }
}
