//! The pure decisions: `f(core, record, request, now) -> (new record, outcome, mail)`.
//!
//! Nothing here reads or writes storage, sends mail or reads the clock. The driver
//! ([`super::machine`]) loads the record, calls one of these, writes the result with a
//! compare-and-swap, and only then reports the outcome or sends the mail.

use super::Core;
use super::types::*;
use crate::Error;
use crate::email_code::{self, Purpose, Verdict};
use crate::login::{self, StepUpToken};
use crate::mail::{Message, Template, validate_address};
use crate::policy::{self, MethodKind};
use crate::record::{Challenge, Method, MethodData, PendingTotp, PendingWebauthn, Remembered, UserRecord};
use crate::webauthn::AssertionOutcome;
use crate::{export, recovery, totp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How many live sign-in challenges a record keeps (the oldest goes first).
const MAX_CHALLENGES: usize = 16;
/// How many remembered devices a record keeps (the oldest goes first).
const MAX_REMEMBERED: usize = 20;
/// The keyed-hash domain of device tokens.
const DEVICE_DOMAIN: &str = "twofa/device";

/// What happens to the stored record.
#[derive(Debug)]
pub(crate) enum Change {
    /// Nothing is written.
    Keep,
    /// The record is replaced by this one (inserted if there was none).
    Put(Box<UserRecord>),
    /// The record is deleted.
    Delete,
}

/// What the driver does after the write commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Then {
    /// Report the outcome.
    Report,
    /// Send the notices, then report (failures are listed, never fatal).
    SendNotices,
    /// Send the code, then arm it (or discard it if every delivery failed).
    SendCode { purpose: Purpose, id: String },
}

/// One decision.
#[derive(Debug)]
pub(crate) struct Decision {
    pub change: Change,
    pub outcome: Result<Outcome, Error>,
    pub mail: Vec<Message>,
    pub then: Then,
    /// WebAuthn credential ids to claim (globally) before the record is written.
    pub claims: Vec<String>,
    /// WebAuthn credential ids whose claims go once the change has committed (the methods are
    /// gone); a claim is deleted only if it still names this user.
    pub releases: Vec<String>,
    /// The address a code goes to that counts against its budget across users (enrolment and
    /// contact codes), charged once the pending code has committed.
    pub budget: Option<String>,
    /// Audit events to deliver once the change has committed.
    pub events: Vec<SecurityEvent>,
}

impl Decision {
    /// The driver writes back the bytes it saved itself (a failed code send); nothing to decide.
    pub(crate) fn restore() -> Decision {
        Decision::report(Outcome::Done(Notices::default()))
    }

    fn report(outcome: Outcome) -> Decision {
        Decision {
            change: Change::Keep,
            outcome: Ok(outcome),
            mail: Vec::new(),
            then: Then::Report,
            claims: Vec::new(),
            releases: Vec::new(),
            budget: None,
            events: Vec::new(),
        }
    }

    fn with_event(mut self, event: SecurityEvent) -> Decision {
        self.events.push(event);
        self
    }
}

/// The inputs every decision shares.
pub(crate) struct Ctx<'a> {
    pub core: &'a Core,
    pub user: &'a str,
    pub now: u64,
}

impl Ctx<'_> {
    fn put(&self, mut record: UserRecord, outcome: Result<Outcome, Error>) -> Decision {
        record.prune(self.now);
        Decision {
            change: Change::Put(Box::new(record)),
            outcome,
            mail: Vec::new(),
            then: Then::Report,
            claims: Vec::new(),
            releases: Vec::new(),
            budget: None,
            events: Vec::new(),
        }
    }

    /// Opens the loaded record (or a new one) for this engine: it is written in the schema of
    /// `write_schema` or its own, whichever is newer, and a schema 2 record gets its generation
    /// now (a record without one gets a new one, so tokens made before fail).
    pub(crate) fn open(&self, record: Option<UserRecord>) -> Result<UserRecord, Error> {
        let mut r = record.unwrap_or(UserRecord { schema: 0, ..UserRecord::default() });
        r.schema = r.schema.max(self.core.config.write_schema);
        if r.schema >= 2 && r.generation.is_none() {
            r.generation = Some(crate::crypto::random_token(self.core.rng.as_ref())?);
        }
        Ok(r)
    }

    /// An audit event about this user at this time.
    fn event(&self, kind: EventKind) -> SecurityEvent {
        SecurityEvent {
            kind,
            user: self.user.to_string(),
            at: self.now,
            method: None,
            method_id: None,
            reason: None,
            actor: None,
        }
    }

    /// Revokes every remembered device (`why` goes into the event, if there was any).
    fn revoke_devices(&self, r: &mut UserRecord, why: &str) -> Option<SecurityEvent> {
        if r.remembered.is_empty() {
            return None;
        }
        r.remembered.clear();
        Some(self.event(EventKind::RememberedDevicesRevoked).because(why))
    }

    /// Counts one failed attempt; a `locked_out` event when it starts a lockout.
    fn count_failure(&self, r: &mut UserRecord) -> Option<SecurityEvent> {
        let was_locked = r.locked_until.is_some_and(|t| t > self.now);
        login::record_failure(r, &self.core.config.lockout, self.now);
        let until = r.locked_until.filter(|t| *t > self.now && !was_locked)?;
        Some(self.event(EventKind::LockedOut).because(&(until - self.now).to_string()))
    }

    fn put_with_notices(&self, record: UserRecord, outcome: Outcome, mail: Vec<Message>) -> Decision {
        let then = if mail.is_empty() { Then::Report } else { Then::SendNotices };
        Decision { mail, then, ..self.put(record, Ok(outcome)) }
    }

    fn vars<'v>(&'v self, extra: &[(&'static str, &'v str)]) -> Vec<(&'static str, &'v str)> {
        let mut v = vec![("issuer", self.core.config.issuer.as_str())];
        v.extend_from_slice(extra);
        v
    }

    fn notices(&self, record: &UserRecord, template: &Template, extra: &[(&'static str, &str)]) -> Vec<Message> {
        let vars = self.vars(extra);
        record.notice_addresses().iter().map(|to| template.render(to, &vars)).collect()
    }

    fn method_event(&self, kind: EventKind, method: &Method) -> SecurityEvent {
        self.event(kind).about(method.data.kind(), Some(method.id.clone()))
    }

    fn method_notice(&self, record: &UserRecord, template: &Template, method: &Method) -> Vec<Message> {
        let kind = method.data.kind().describe();
        self.notices(record, template, &[("method", kind), ("label", &method.label)])
    }

    fn step_up(&self, record: &UserRecord) -> Result<StepUpToken, Error> {
        let c = self.core;
        login::issue_step_up(record, &c.keyring, c.rng.as_ref(), &c.config, self.user, self.now)
    }

    fn require_step_up(&self, record: &UserRecord, token: &Option<String>) -> Result<(), Error> {
        login::require_step_up(record, &self.core.keyring, self.user, token.as_deref(), self.now)
    }
}

fn method_info(m: &Method) -> MethodInfo {
    MethodInfo {
        id: m.id.clone(),
        kind: m.data.kind(),
        label: m.label.clone(),
        created: m.created,
        last_used: m.last_used,
        flagged: matches!(m.data, MethodData::Webauthn { flagged: true, .. }),
    }
}

fn validate_label(label: &str) -> Result<String, Error> {
    validate_text("name", label, 64)
}

/// `j***@example.com`: enough for the user to recognise, little for someone with the password.
fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Adds a confirmed method; returns its outcome with a step-up token if it is the first.
fn add_method(
    ctx: &Ctx<'_>,
    mut record: UserRecord,
    kind: &str,
    label: String,
    data: MethodData,
) -> Result<Decision, Error> {
    let first = record.methods.is_empty();
    let id = record.new_method_id(kind);
    let method = Method { id, label, created: ctx.now, last_used: None, data };
    let info = method_info(&method);
    record.methods.push(method.clone());
    let step_up = if first { Some(ctx.step_up(&record)?) } else { None };
    let mail = ctx.method_notice(&record, &ctx.core.config.templates.method_added, &method);
    let outcome = Outcome::MethodAdded(MethodAdded { method: info, step_up, notices: Notices::default() });
    Ok(ctx.put_with_notices(record, outcome, mail).with_event(ctx.method_event(EventKind::MethodAdded, &method)))
}

/// Removes the user's authenticator app before a new one replaces it; remembered devices go
/// with it (they were remembered on the strength of the old seed).
fn replace_totp(ctx: &Ctx<'_>, r: &mut UserRecord) -> Vec<SecurityEvent> {
    let Some(i) = r.totp_index() else { return Vec::new() };
    let old = r.methods.remove(i);
    let mut events = vec![ctx.method_event(EventKind::MethodRemoved, &old).because("replaced")];
    events.extend(ctx.revoke_devices(r, "method_removed"));
    events
}

/// Decides a user-facing operation. `record` is `None` when the user has no record yet.
pub(crate) fn decide(ctx: &Ctx<'_>, record: Option<UserRecord>, request: &Request) -> Result<Decision, Error> {
    let mut r = ctx.open(record)?;
    let core = ctx.core;
    let cfg = &core.config;
    let now = ctx.now;
    match request {
        Request::SecurityStatus => Ok(Decision::report(Outcome::Status(status(ctx, &r)))),

        Request::SetContactEmail { address, step_up } => {
            let address = validate_address(address)?;
            ctx.require_step_up(&r, step_up)?;
            Ok(set_contact(ctx, r, address))
        }

        Request::ContactEmailBegin { address, step_up } => {
            let address = validate_address(address)?;
            ctx.require_step_up(&r, step_up)?;
            if r.schema < 2 {
                return Err(Error::invalid(
                    "contact_email_begin: needs write_schema 2 (finish the rolling upgrade, docs/scaling.md)",
                ));
            }
            email_code::check_cooldown(&r.contact_code, &cfg.email_code, now)?;
            send_code(ctx, r, Purpose::Contact, Some(address), None)
        }

        Request::ContactEmailConfirm { code, step_up } => {
            let code = login::parse_digits(code, cfg.email_code.digits)?;
            ctx.require_step_up(&r, step_up)?;
            login::check_lockout(&r, now)?;
            let verdict = email_code::verify(
                &core.keyring,
                &mut r.contact_code,
                ctx.user,
                Purpose::Contact,
                &cfg.email_code,
                &code,
                None,
                now,
            )?;
            match verdict {
                Verdict::Accepted(entry) => {
                    r.contact_code.clear();
                    login::record_success(&mut r);
                    let address =
                        entry.address.ok_or_else(|| Error::Internal("contact code without address".into()))?;
                    Ok(set_contact(ctx, r, address))
                }
                Verdict::Wrong => {
                    let events = ctx.count_failure(&mut r).into_iter().collect();
                    Ok(Decision { events, ..ctx.put(r, Err(Error::InvalidCode)) })
                }
            }
        }

        Request::MarkOrderCreated => {
            if r.orders_created_at.is_some() {
                return Ok(Decision::report(Outcome::Done(Notices::default())));
            }
            r.orders_created_at = Some(now);
            Ok(ctx.put(r, Ok(Outcome::Done(Notices::default()))).with_event(ctx.event(EventKind::TwoFactorRequired)))
        }

        Request::TotpEnrollBegin { account_name, step_up } => {
            totp::validate_account_name(account_name)?;
            ctx.require_step_up(&r, step_up)?;
            let (seed, secret) = totp::new_seed(&core.keyring, core.rng.as_ref(), ctx.user, &cfg.totp)?;
            let uri = totp::otpauth_uri(&cfg.issuer, account_name, &secret, &cfg.totp);
            let qr_svg = totp::qr_svg(&uri)?;
            let expires_at = now.saturating_add(cfg.lifetimes.enrollment_secs);
            r.pending_totp = Some(PendingTotp { seed, expires: expires_at });
            Ok(ctx.put(r, Ok(Outcome::TotpSetup(TotpSetup { secret, uri, qr_svg, expires_at }))))
        }

        Request::TotpEnrollConfirm { code, step_up } => {
            let pending = r.pending_totp.clone().ok_or(Error::NotEnrolled)?;
            if pending.expires <= now {
                return Err(Error::Expired);
            }
            let code = login::parse_digits(code, pending.seed.digits)?;
            ctx.require_step_up(&r, step_up)?;
            let totp::Match::Fresh(step) =
                totp::check(&core.keyring, ctx.user, &pending.seed, &code, now, cfg.totp.skew)?
            else {
                return Err(Error::InvalidCode);
            };
            let mut seed = pending.seed;
            seed.last_step = Some(step);
            r.pending_totp = None;
            let replaced = replace_totp(ctx, &mut r);
            let mut d = add_method(ctx, r, "totp", "Authenticator app".into(), MethodData::Totp(seed))?;
            d.events.splice(0..0, replaced);
            Ok(d)
        }

        Request::EmailEnrollBegin { address, step_up } => {
            let address = validate_address(address)?;
            ctx.require_step_up(&r, step_up)?;
            if r.email_addresses().iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                return Err(Error::invalid("email address: already a confirmed method"));
            }
            email_code::check_cooldown(&r.enroll_code, &cfg.email_code, now)?;
            send_code(ctx, r, Purpose::Enroll, Some(address), None)
        }

        Request::EmailEnrollConfirm { code, step_up } => {
            let code = login::parse_digits(code, cfg.email_code.digits)?;
            ctx.require_step_up(&r, step_up)?;
            login::check_lockout(&r, now)?;
            match email_code::verify(
                &core.keyring,
                &mut r.enroll_code,
                ctx.user,
                Purpose::Enroll,
                &cfg.email_code,
                &code,
                None,
                now,
            )? {
                Verdict::Accepted(entry) => {
                    r.enroll_code.clear();
                    login::record_success(&mut r);
                    let address =
                        entry.address.ok_or_else(|| Error::Internal("enrolment code without address".into()))?;
                    if r.email_addresses().iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                        return Err(Error::invalid("email address: already a confirmed method"));
                    }
                    add_method(ctx, r, "email", address.clone(), MethodData::Email { address })
                }
                Verdict::Wrong => {
                    // Not a sign-in, but it spends the same budget: only a lockout is an event.
                    let events = ctx.count_failure(&mut r).into_iter().collect();
                    Ok(Decision { events, ..ctx.put(r, Err(Error::InvalidCode)) })
                }
            }
        }

        Request::WebauthnRegisterBegin { friendly_name, step_up } => {
            let rp = core.rp.as_ref().ok_or_else(|| Error::invalid("webauthn is not configured"))?;
            let friendly_name = validate_label(friendly_name)?;
            ctx.require_step_up(&r, step_up)?;
            let handle = match &r.webauthn_user_handle {
                Some(h) => URL_SAFE_NO_PAD.decode(h).map_err(|_| Error::Storage("malformed user handle".into()))?,
                None => {
                    let h = crate::crypto::random_bytes(core.rng.as_ref(), 32)?;
                    r.webauthn_user_handle = Some(URL_SAFE_NO_PAD.encode(&h));
                    h
                }
            };
            let name = r.contact_email.clone().unwrap_or_else(|| ctx.user.to_string());
            let (options_json, state) = rp.register_begin(&handle, &name, &name, &r.credentials(false))?;
            let expires_at = now.saturating_add(cfg.lifetimes.enrollment_secs);
            r.pending_webauthn = Some(PendingWebauthn { state, friendly_name, expires: expires_at });
            Ok(ctx.put(r, Ok(Outcome::WebauthnRegistration(WebauthnRegistration { options_json, expires_at }))))
        }

        Request::WebauthnRegisterFinish { credential_json, step_up } => {
            let rp = core.rp.as_ref().ok_or_else(|| Error::invalid("webauthn is not configured"))?;
            let pending = r.pending_webauthn.clone().ok_or(Error::NotEnrolled)?;
            if pending.expires <= now {
                return Err(Error::Expired);
            }
            ctx.require_step_up(&r, step_up)?;
            let credential = rp.register_finish(credential_json, &pending.state)?;
            if r.credentials(false).iter().any(|c| c.id() == credential.id()) {
                return Err(Error::WebauthnRejected("credential already registered".into()));
            }
            let claim = credential.id().to_string();
            r.pending_webauthn = None;
            let data = MethodData::Webauthn { credential: Box::new(credential), flagged: false };
            let mut d = add_method(ctx, r, "webauthn", pending.friendly_name, data)?;
            d.claims = vec![claim];
            Ok(d)
        }

        Request::RenameMethod { method_id, label, step_up } => {
            let label = validate_label(label)?;
            ctx.require_step_up(&r, step_up)?;
            let m = r
                .methods
                .iter_mut()
                .find(|m| &m.id == method_id)
                .ok_or_else(|| Error::NotFound(format!("method {method_id}")))?;
            if matches!(m.data, MethodData::Email { .. }) {
                return Err(Error::invalid("an email method is named by its address"));
            }
            m.label = label;
            let info = method_info(m);
            let event = ctx.method_event(EventKind::MethodRenamed, m);
            Ok(ctx.put(r, Ok(Outcome::Method(info))).with_event(event))
        }

        Request::RemoveMethod { method_id, step_up } => {
            ctx.require_step_up(&r, step_up)?;
            let pos = r
                .methods
                .iter()
                .position(|m| &m.id == method_id)
                .ok_or_else(|| Error::NotFound(format!("method {method_id}")))?;
            if !policy::may_remove(&r, method_id) {
                return Err(Error::PolicyViolation(
                    "2FA is required for this account: add another method before removing the last one".into(),
                ));
            }
            // Notices go to the addresses known before the removal (an email method being removed
            // is told too).
            let removed = r.methods.remove(pos);
            let mut mail_record = r.clone();
            mail_record.methods.push(removed.clone());
            let mail = ctx.method_notice(&mail_record, &cfg.templates.method_removed, &removed);
            r.step_up_epoch = r.step_up_epoch.wrapping_add(1);
            if !r.has_usable_method() {
                // Recovery codes back up methods; with no usable method left they go too.
                r.recovery.clear();
                r.login_code.clear();
            }
            let mut events = vec![ctx.method_event(EventKind::MethodRemoved, &removed)];
            events.extend(ctx.revoke_devices(&mut r, "method_removed"));
            let releases = removed.credential_id().map(str::to_string).into_iter().collect();
            Ok(Decision { events, releases, ..ctx.put_with_notices(r, Outcome::Done(Notices::default()), mail) })
        }

        Request::RecoveryCodesGenerate { step_up } => {
            if !r.has_usable_method() {
                return Err(Error::NotEnrolled);
            }
            ctx.require_step_up(&r, step_up)?;
            let (codes, hashes) = recovery::generate(&core.keyring, core.rng.as_ref(), ctx.user, cfg.recovery_codes)?;
            r.recovery = hashes;
            let mail = ctx.notices(&r, &cfg.templates.recovery_generated, &[]);
            Ok(ctx
                .put_with_notices(r, Outcome::RecoveryCodes(RecoveryCodes { codes, notices: Notices::default() }), mail)
                .with_event(ctx.event(EventKind::RecoveryCodesGenerated)))
        }

        Request::LoginBegin { device_token } => login_begin(ctx, r, device_token.as_deref()),

        Request::LoginSendEmailCode { challenge } => {
            find_challenge(&r, challenge, now)?;
            if r.email_addresses().is_empty() {
                return Err(Error::NotEnrolled);
            }
            login::check_lockout(&r, now)?;
            email_code::check_cooldown(&r.login_code, &cfg.email_code, now)?;
            // Schema 1 cannot store the binding: the code then completes any challenge, as before.
            let bound = (r.schema >= 2).then(|| challenge.clone());
            send_code(ctx, r, Purpose::Login, None, bound)
        }

        Request::LoginVerify { challenge, proof, remember_device } => {
            login_verify(ctx, r, challenge, proof, *remember_device)
        }

        Request::RevokeRememberedDevice { device_id } => {
            let pos = r
                .remembered
                .iter()
                .position(|d| &d.id == device_id && d.expires > now)
                .ok_or_else(|| Error::NotFound(format!("remembered device {device_id}")))?;
            r.remembered.remove(pos);
            let event = ctx.event(EventKind::RememberedDevicesRevoked).because("user").device(device_id);
            Ok(ctx.put(r, Ok(Outcome::Done(Notices::default()))).with_event(event))
        }

        Request::RevokeRememberedDevices => {
            let event = ctx.revoke_devices(&mut r, "user");
            let mut d = ctx.put(r, Ok(Outcome::Done(Notices::default())));
            d.events.extend(event);
            Ok(d)
        }
    }
}

/// The audit events of a request refused without any write: a sign-in attempt that failed
/// before anything was counted (a replay, a lockout, an unknown or expired challenge, a
/// malformed proof). Store, mail and internal failures are not outcomes of the attempt.
pub(crate) fn refusal_events(ctx: &Ctx<'_>, request: &Request, error: &Error) -> Vec<SecurityEvent> {
    let Request::LoginVerify { proof, .. } = request else { return Vec::new() };
    let kind = match error {
        Error::Replayed => EventKind::ReplayRefused,
        Error::Storage(_)
        | Error::Conflict
        | Error::Mail(_)
        | Error::UnsupportedSchema
        | Error::Panic
        | Error::Internal(_)
        | Error::Forbidden(_) => return Vec::new(),
        _ => EventKind::LoginFailed,
    };
    vec![ctx.event(kind).about(proof.kind(), None).because(error.name())]
}

/// The keyed-hash domain of address budgets.
const ADDRESS_DOMAIN: &str = "twofa/address-budget";

/// Writes a pending code and asks the driver to send it, then arm it: to `address` (enrolment
/// and contact codes, which also count against the address's budget) or to every email method
/// (sign-in codes, bound to `challenge`, the addresses shown masked).
fn send_code(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    purpose: Purpose,
    address: Option<String>,
    challenge: Option<String>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config.email_code;
    let (to, shown, budget) = match &address {
        Some(a) => {
            let tag = core.keyring.tag(ADDRESS_DOMAIN, "", a.to_ascii_lowercase().as_bytes())?;
            (vec![a.clone()], vec![a.clone()], Some(crate::record::address_budget_key(&URL_SAFE_NO_PAD.encode(tag))))
        }
        None => {
            let to = r.email_addresses();
            let shown = to.iter().map(|a| mask(a)).collect();
            (to, shown, None)
        }
    };
    let (mut entry, code) = email_code::issue(&core.keyring, core.rng.as_ref(), ctx.user, purpose, cfg, ctx.now)?;
    entry.address = address;
    entry.challenge = challenge;
    let template = match purpose {
        Purpose::Enroll | Purpose::Contact => &core.config.templates.enroll_code,
        Purpose::Login => &core.config.templates.login_code,
    };
    let minutes = (cfg.ttl_secs / 60).to_string();
    let vars = ctx.vars(&[("code", code.as_str()), ("minutes", minutes.as_str())]);
    let mail = to.iter().map(|a| template.render(a, &vars)).collect();
    let sent = CodeSent {
        sent_to: shown,
        expires_at: entry.expires,
        resend_after: ctx.now.saturating_add(cfg.resend_cooldown_secs),
    };
    let id = entry.id.clone();
    purpose.slot(&mut r).pending = Some(entry);
    Ok(Decision { mail, budget, then: Then::SendCode { purpose, id }, ..ctx.put(r, Ok(Outcome::CodeSent(sent))) })
}

/// Makes `address` the notice address. A change from another address is told to both; the
/// first address is not mailed (it is set at sign-up, or was just proved by a code).
fn set_contact(ctx: &Ctx<'_>, mut r: UserRecord, address: String) -> Decision {
    let previous = r.contact_email.replace(address.clone());
    let changed = previous.as_ref().is_none_or(|p| !p.eq_ignore_ascii_case(&address));
    let mut mail = Vec::new();
    if let Some(previous) = previous.filter(|_| changed) {
        let vars = ctx.vars(&[("address", address.as_str())]);
        let template = &ctx.core.config.templates.contact_changed;
        mail = vec![template.render(&previous, &vars), template.render(&address, &vars)];
    }
    let mut d = ctx.put_with_notices(r, Outcome::Done(Notices::default()), mail);
    if changed {
        d.events.push(ctx.event(EventKind::ContactEmailChanged));
    }
    d
}

/// Arms a delivered code (a second write). Superseded meanwhile: `conflict`.
pub(crate) fn decide_arm(
    ctx: &Ctx<'_>,
    record: Option<UserRecord>,
    purpose: Purpose,
    id: &str,
) -> Result<Decision, Error> {
    let mut r = record.ok_or(Error::Conflict)?;
    if !email_code::arm(purpose.slot(&mut r), id, ctx.now) {
        return Err(Error::Conflict);
    }
    Ok(ctx.put(r, Ok(Outcome::Done(Notices::default()))))
}

/// Discards a code whose delivery failed (or whose address is over its budget), so it can
/// never be armed.
pub(crate) fn decide_discard(record: Option<UserRecord>, purpose: Purpose, id: &str) -> Decision {
    let Some(mut r) = record else { return Decision::report(Outcome::Done(Notices::default())) };
    let slot = purpose.slot(&mut r);
    if slot.pending.as_ref().is_none_or(|c| c.id != id) {
        return Decision::report(Outcome::Done(Notices::default()));
    }
    email_code::discard(slot, id);
    // Not `ctx.put`: nothing else may change, so a failed send leaves the record as it was.
    Decision { change: Change::Put(Box::new(r)), ..Decision::report(Outcome::Done(Notices::default())) }
}

fn status(ctx: &Ctx<'_>, r: &UserRecord) -> SecurityStatus {
    let now = ctx.now;
    SecurityStatus {
        methods: r.methods.iter().map(method_info).collect(),
        recovery_codes_left: r.recovery.len() as u32,
        two_factor_required: policy::required(r),
        compliant: policy::complies(r),
        recommendations: policy::recommendations(r),
        warnings: policy::warnings(r),
        contact_email: r.contact_email.clone(),
        pending: PendingEnrollments {
            totp: r.pending_totp.as_ref().is_some_and(|p| p.expires > now),
            email: r.enroll_code.armed.as_ref().filter(|c| c.expires > now && !c.used).and_then(|c| c.address.clone()),
            webauthn: r.pending_webauthn.as_ref().is_some_and(|p| p.expires > now),
        },
        locked_until: r.locked_until.filter(|t| *t > now),
        enrollment_deadline: policy::enrollment_deadline(r, &ctx.core.config.policy),
        remembered_devices: r
            .remembered
            .iter()
            .filter(|d| d.expires > now)
            .map(|d| RememberedDevice {
                id: d.id.clone(),
                method: d.method,
                created: d.created,
                expires_at: d.expires,
                last_used: d.last_used,
            })
            .collect(),
        last_reset: r.last_reset.clone(),
    }
}

fn find_challenge<'r>(r: &'r UserRecord, id: &str, now: u64) -> Result<&'r Challenge, Error> {
    let c = r.challenges.iter().find(|c| c.id == id).ok_or_else(|| Error::NotFound("sign-in challenge".into()))?;
    if c.expires <= now {
        return Err(Error::Expired);
    }
    Ok(c)
}

/// The remembered device a token names, if the token is valid for this user now.
fn remembered_device(ctx: &Ctx<'_>, r: &UserRecord, token: &str) -> Option<usize> {
    if token.len() > 128 {
        return None;
    }
    let (id, _) = token.split_once('.')?;
    let i = r.remembered.iter().position(|d| d.id == id && d.expires > ctx.now)?;
    ctx.core.keyring.verify(&r.remembered[i].hash, DEVICE_DOMAIN, ctx.user, token.as_bytes()).then_some(i)
}

/// Remembers this browser: a fresh token, stored as a keyed hash.
fn remember_device(ctx: &Ctx<'_>, r: &mut UserRecord, method: MethodKind) -> Result<DeviceToken, Error> {
    let core = ctx.core;
    let id = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(core.rng.as_ref(), 9)?);
    let secret = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(core.rng.as_ref(), 32)?);
    let token = format!("{id}.{secret}");
    let expires_at = ctx.now.saturating_add(core.config.remember_device.ttl_secs);
    let hash = core.keyring.hash(DEVICE_DOMAIN, ctx.user, token.as_bytes())?;
    r.remembered.push(Remembered {
        id: id.clone(),
        hash,
        method,
        created: ctx.now,
        expires: expires_at,
        last_used: None,
    });
    while r.remembered.len() > MAX_REMEMBERED {
        r.remembered.remove(0);
    }
    Ok(DeviceToken { token, device_id: id, expires_at })
}

fn login_begin(ctx: &Ctx<'_>, mut r: UserRecord, device_token: Option<&str>) -> Result<Decision, Error> {
    let core = ctx.core;
    let mut methods: Vec<MethodKind> = Vec::new();
    for m in r.methods.iter().filter(|m| m.usable()) {
        let k = m.data.kind();
        if !methods.contains(&k) {
            methods.push(k);
        }
    }
    let skipped = LoginChallenge {
        challenge_id: None,
        second_factor_required: false,
        enrollment_required: false,
        methods: methods.clone(),
        webauthn_options: None,
        expires_at: None,
        enrollment_deadline: None,
        remembered_device: None,
    };
    // Flagged devices do not count; recovery codes left still ask for a second factor.
    if !r.has_usable_method() && r.recovery.is_empty() {
        let deadline = policy::enrollment_deadline(&r, &core.config.policy);
        return Ok(Decision::report(Outcome::Challenge(LoginChallenge {
            enrollment_required: deadline.is_some_and(|d| ctx.now >= d),
            enrollment_deadline: deadline,
            ..skipped
        })));
    }
    if let Some(i) = device_token.filter(|_| r.has_usable_method()).and_then(|t| remembered_device(ctx, &r, t)) {
        let device = &mut r.remembered[i];
        device.last_used = Some(ctx.now);
        let event = ctx.event(EventKind::LoginSucceeded).because("remembered_device").device(&device.id);
        let outcome = Outcome::Challenge(LoginChallenge { remembered_device: Some(device.id.clone()), ..skipped });
        return Ok(ctx.put(r, Ok(outcome)).with_event(event));
    }
    if !r.recovery.is_empty() {
        methods.push(MethodKind::Recovery);
    }
    let creds = r.credentials(true);
    let (webauthn_options, webauthn) = match (&core.rp, creds.is_empty()) {
        (Some(rp), false) => {
            let (json, state) = rp.authenticate_begin(&creds)?;
            (Some(json), Some(state))
        }
        _ => (None, None),
    };
    let id = crate::crypto::random_token(core.rng.as_ref())?;
    let expires_at = ctx.now.saturating_add(core.config.lifetimes.challenge_secs);
    r.prune(ctx.now);
    r.challenges.push(Challenge { id: id.clone(), expires: expires_at, webauthn: webauthn.map(Box::new) });
    while r.challenges.len() > MAX_CHALLENGES {
        r.challenges.remove(0);
    }
    let outcome = Outcome::Challenge(LoginChallenge {
        challenge_id: Some(id),
        second_factor_required: true,
        methods,
        webauthn_options,
        expires_at: Some(expires_at),
        ..skipped
    });
    Ok(ctx.put(r, Ok(outcome)))
}

fn login_verify(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    challenge: &str,
    proof: &Proof,
    remember: bool,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config;
    let now = ctx.now;
    if remember && !cfg.remember_device.enabled {
        return Err(Error::invalid("remember_device: not enabled in the config (remember_device.enabled)"));
    }
    let auth_state = find_challenge(&r, challenge, now)?.webauthn.clone();
    if !r.has_usable_method() && r.recovery.is_empty() {
        return Err(Error::NotEnrolled);
    }

    // Counts one failure and reports `error` once that is written.
    let fail = |mut r: UserRecord, error: Error| {
        let mut events = vec![ctx.event(EventKind::LoginFailed).about(proof.kind(), None).because(error.name())];
        events.extend(ctx.count_failure(&mut r));
        Ok(Decision { events, ..ctx.put(r, Err(error)) })
    };

    let mut events = Vec::new();
    let (method_id, mail) = match proof {
        Proof::Totp(code) => {
            let i = r.totp_index().ok_or(Error::NotEnrolled)?;
            let MethodData::Totp(seed) = &r.methods[i].data else { return Err(Error::NotEnrolled) };
            let code = login::parse_digits(code, seed.digits)?;
            login::check_lockout(&r, now)?;
            let step = match totp::check(&core.keyring, ctx.user, seed, &code, now, cfg.totp.skew)? {
                totp::Match::Fresh(step) => step,
                totp::Match::Used => return Err(Error::Replayed),
                totp::Match::None => return fail(r, Error::InvalidCode),
            };
            let m = &mut r.methods[i];
            if let MethodData::Totp(seed) = &mut m.data {
                seed.last_step = Some(step);
            }
            m.last_used = Some(now);
            (Some(m.id.clone()), Vec::new())
        }
        Proof::Email(code) => {
            if r.email_addresses().is_empty() {
                return Err(Error::NotEnrolled);
            }
            let code = login::parse_digits(code, cfg.email_code.digits)?;
            login::check_lockout(&r, now)?;
            match email_code::verify(
                &core.keyring,
                &mut r.login_code,
                ctx.user,
                Purpose::Login,
                &cfg.email_code,
                &code,
                Some(challenge),
                now,
            )? {
                Verdict::Wrong => return fail(r, Error::InvalidCode),
                Verdict::Accepted(_) => {}
            }
            let mut id = None;
            for m in r.methods.iter_mut().filter(|m| matches!(m.data, MethodData::Email { .. })) {
                m.last_used = Some(now);
                id.get_or_insert_with(|| m.id.clone());
            }
            (id, Vec::new())
        }
        Proof::Recovery(code) => {
            let code = recovery::normalize(code)?;
            login::check_lockout(&r, now)?;
            if !recovery::consume(&core.keyring, &mut r.recovery, ctx.user, &code) {
                return fail(r, Error::InvalidCode);
            }
            let left = r.recovery.len().to_string();
            events.push(ctx.event(EventKind::RecoveryCodeUsed).because(&left));
            // A recovery code means a lost factor: no browser stays trusted on its strength.
            events.extend(ctx.revoke_devices(&mut r, "recovery_code_used"));
            (None, ctx.notices(&r, &cfg.templates.recovery_used, &[("left", left.as_str())]))
        }
        Proof::Webauthn(json) => {
            let rp = core.rp.as_ref().ok_or_else(|| Error::invalid("webauthn is not configured"))?;
            let state =
                auth_state.ok_or_else(|| Error::WebauthnRejected("this challenge has no WebAuthn options".into()))?;
            let handle =
                r.webauthn_user_handle.as_deref().and_then(|h| URL_SAFE_NO_PAD.decode(h).ok()).unwrap_or_default();
            match rp.authenticate_finish(json, &state, &r.credentials(true), &handle)? {
                AssertionOutcome::CounterRegressed { credential_id } => {
                    let mut events = Vec::new();
                    for m in &mut r.methods {
                        if let MethodData::Webauthn { credential, flagged } = &mut m.data
                            && credential.id() == credential_id
                        {
                            *flagged = true;
                            events.push(ctx.method_event(EventKind::CounterRegressed, m));
                        }
                    }
                    let error = Error::WebauthnRejected(
                        "signature counter went backwards: the device is flagged as possibly cloned".into(),
                    );
                    return Ok(Decision { events, ..ctx.put(r, Err(error)) });
                }
                AssertionOutcome::Verified { credential_id, updated, .. } => {
                    let m = r
                        .methods
                        .iter_mut()
                        .find(|m| matches!(&m.data, MethodData::Webauthn { credential, .. } if credential.id() == credential_id))
                        .ok_or_else(|| Error::WebauthnRejected("unknown credential".into()))?;
                    m.data = MethodData::Webauthn { credential: Box::new(updated), flagged: false };
                    m.last_used = Some(now);
                    (Some(m.id.clone()), Vec::new())
                }
            }
        }
    };
    login::record_success(&mut r);
    r.challenges.retain(|c| c.id != challenge);
    let step_up = ctx.step_up(&r)?;
    let recovery_codes_left = matches!(proof, Proof::Recovery(_)).then_some(r.recovery.len() as u32);
    events.insert(0, ctx.event(EventKind::LoginSucceeded).about(proof.kind(), method_id.clone()));
    let device_token = if remember {
        let token = remember_device(ctx, &mut r, proof.kind())?;
        events.push(ctx.event(EventKind::DeviceRemembered).about(proof.kind(), None).device(&token.device_id));
        Some(token)
    } else {
        None
    };
    let outcome = Outcome::LoginSuccess(LoginSuccess {
        method: proof.kind(),
        method_id,
        step_up,
        recovery_codes_left,
        device_token,
        notices: Notices::default(),
    });
    Ok(Decision { events, ..ctx.put_with_notices(r, outcome, mail) })
}

/// Checks a label, an administrator's name or a reason: trimmed, 1 to `max` characters, no
/// control, invisible (format) or line-separator characters, which could reach a mail subject.
fn validate_text(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty()
        || value.chars().count() > max
        || value.chars().any(|c| c.is_control() || crate::mail::is_invisible(c))
    {
        return Err(Error::invalid(format!("{field}: 1 to {max} characters without control or invisible characters")));
    }
    Ok(value.to_string())
}

/// Decides an admin operation.
pub(crate) fn decide_admin(
    ctx: &Ctx<'_>,
    record: Option<UserRecord>,
    request: &AdminRequest,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let exists = record.is_some();
    let mut r = ctx.open(record)?;
    match request {
        AdminRequest::TotpImport { secret, algorithm, digits, period } => {
            if !(6..=8).contains(digits) {
                return Err(Error::invalid("digits: 6 to 8"));
            }
            if !(1..=300).contains(period) {
                return Err(Error::invalid("period: 1 to 300 seconds"));
            }
            let bytes = totp::decode_base32(secret)?;
            let seed =
                totp::seal_seed(&core.keyring, core.rng.as_ref(), ctx.user, &bytes, *algorithm, *digits, *period)?;
            let replaced = replace_totp(ctx, &mut r);
            r.pending_totp = None;
            let mut d = add_method(ctx, r, "totp", "Authenticator app".into(), MethodData::Totp(seed))?;
            d.events.splice(0..0, replaced);
            // An import is an administrator's act, not a sign-in: it yields no step-up token, and
            // revokes the user's tokens like any replacement of a method.
            if let Ok(Outcome::MethodAdded(m)) = &mut d.outcome {
                m.step_up = None;
            }
            if let Change::Put(r) = &mut d.change {
                r.step_up_epoch = r.step_up_epoch.wrapping_add(1);
            }
            Ok(d)
        }
        AdminRequest::DeleteUser if exists => Ok(Decision {
            change: Change::Delete,
            releases: credential_ids(&r),
            ..Decision::report(Outcome::Done(Notices::default()))
        }
        .with_event(ctx.event(EventKind::UserDeleted))),
        AdminRequest::DeleteUser => Err(Error::NotFound("user".into())),
        AdminRequest::ResetUser { actor, reason } => {
            let actor = validate_text("actor", actor, 128)?;
            let reason = validate_text("reason", reason, 512)?;
            if !exists {
                return Err(Error::NotFound("user".into()));
            }
            let releases = credential_ids(&r);
            // Every address known before the reset is told, the removed email methods included.
            let vars = ctx.vars(&[("reason", reason.as_str())]);
            let mail =
                r.notice_addresses().iter().map(|to| core.config.templates.admin_reset.render(to, &vars)).collect();
            let methods_removed = r.methods.len() as u32;
            let mut events: Vec<SecurityEvent> = r
                .methods
                .iter()
                .map(|m| ctx.method_event(EventKind::MethodRemoved, m).because("admin_reset"))
                .collect();
            events.extend(ctx.revoke_devices(&mut r, "admin_reset"));
            let mut event = ctx.event(EventKind::AdminReset).because(&reason);
            event.actor = Some(actor.clone());
            events.insert(0, event);
            r.methods.clear();
            r.recovery.clear();
            r.pending_totp = None;
            r.pending_webauthn = None;
            r.enroll_code.clear();
            r.login_code.clear();
            r.contact_code.clear();
            r.challenges.clear();
            login::record_success(&mut r);
            r.step_up_epoch = r.step_up_epoch.wrapping_add(1);
            r.last_reset = Some(ResetInfo { actor, reason, at: ctx.now });
            let outcome = Outcome::Reset(ResetDone { methods_removed, notices: Notices::default() });
            Ok(Decision { events, releases, ..ctx.put_with_notices(r, outcome, mail) })
        }
        AdminRequest::ExportUser { key } => {
            if !exists {
                return Err(Error::NotFound("user".into()));
            }
            let document = export::seal(core.rng.as_ref(), key, ctx.user, &export_payload(ctx, &r)?, ctx.now)?;
            Ok(Decision::report(Outcome::Exported(UserExport { document }))
                .with_event(ctx.event(EventKind::UserExported)))
        }
        AdminRequest::ImportUser { document, key } => import_user(ctx, r, export::open(key, ctx.user, document)?),
    }
}

/// The WebAuthn credential ids of the user's devices.
fn credential_ids(r: &UserRecord) -> Vec<String> {
    r.methods.iter().filter_map(Method::credential_id).map(str::to_string).collect()
}

/// The durable part of a record, secrets opened, for an export.
fn export_payload(ctx: &Ctx<'_>, r: &UserRecord) -> Result<export::Payload, Error> {
    let rp_id = ctx.core.config.webauthn.as_ref().map(|w| w.rp_id.clone()).unwrap_or_default();
    let mut methods = Vec::new();
    for m in &r.methods {
        let data = match &m.data {
            MethodData::Totp(seed) => export::ExportedData::Totp {
                secret: totp::encode_base32(&totp::open_seed(&ctx.core.keyring, ctx.user, seed)?),
                algorithm: seed.algorithm,
                digits: seed.digits,
                period: seed.period,
                last_step: seed.last_step,
            },
            MethodData::Email { address } => export::ExportedData::Email { address: address.clone() },
            MethodData::Webauthn { credential, flagged } => export::ExportedData::Webauthn {
                rp_id: rp_id.clone(),
                credential: credential.clone(),
                flagged: *flagged,
            },
        };
        methods.push(export::ExportedMethod {
            id: m.id.clone(),
            label: m.label.clone(),
            created: m.created,
            last_used: m.last_used,
            data,
        });
    }
    Ok(export::Payload {
        methods,
        contact_email: r.contact_email.clone(),
        orders_created_at: r.orders_created_at,
        webauthn_user_handle: r.webauthn_user_handle.clone(),
        next_id: r.next_id,
    })
}

/// Restores an opened export into a user without second factors.
fn import_user(ctx: &Ctx<'_>, mut r: UserRecord, payload: export::Payload) -> Result<Decision, Error> {
    let core = ctx.core;
    if !r.methods.is_empty() {
        return Err(Error::invalid("user already has second factors: reset or delete them before an import"));
    }
    let rp_id = core.config.webauthn.as_ref().map(|w| w.rp_id.as_str());
    let mut skipped = Vec::new();
    let mut claims = Vec::new();
    for m in payload.methods {
        let kind = m.id.split_once('-').map(|(k, _)| k);
        let numbered = m.id.split_once('-').is_some_and(|(_, n)| n.parse::<u64>().is_ok_and(|n| n <= payload.next_id));
        if !numbered || r.methods.iter().any(|o| o.id == m.id) {
            return Err(Error::invalid("document: a method id is malformed or repeated"));
        }
        let data = match m.data {
            export::ExportedData::Totp { secret, algorithm, digits, period, last_step } => {
                if kind != Some("totp")
                    || r.totp_index().is_some()
                    || !(6..=8).contains(&digits)
                    || !(1..=300).contains(&period)
                {
                    return Err(Error::invalid("document: a TOTP method is malformed"));
                }
                let bytes = totp::decode_base32(&secret)?;
                let mut seed =
                    totp::seal_seed(&core.keyring, core.rng.as_ref(), ctx.user, &bytes, algorithm, digits, period)?;
                seed.last_step = last_step;
                MethodData::Totp(seed)
            }
            export::ExportedData::Email { address } => {
                if kind != Some("email") {
                    return Err(Error::invalid("document: an email method is malformed"));
                }
                MethodData::Email { address: validate_address(&address)? }
            }
            export::ExportedData::Webauthn { rp_id: from, credential, flagged } => {
                if kind != Some("webauthn") {
                    return Err(Error::invalid("document: a WebAuthn method is malformed"));
                }
                if Some(from.as_str()) != rp_id {
                    skipped.push(format!("{}: registered for relying party {from:?}, not this one", m.id));
                    continue;
                }
                if claims.iter().any(|c| c == credential.id()) {
                    return Err(Error::invalid("document: a WebAuthn credential is repeated"));
                }
                claims.push(credential.id().to_string());
                MethodData::Webauthn { credential, flagged }
            }
        };
        let label = match &data {
            MethodData::Email { address } => address.clone(),
            _ => validate_label(&m.label)?,
        };
        r.methods.push(Method { id: m.id, label, created: m.created, last_used: m.last_used, data });
    }
    if let Some(address) = payload.contact_email.filter(|_| r.contact_email.is_none()) {
        r.contact_email = Some(validate_address(&address)?);
    }
    r.orders_created_at = r.orders_created_at.or(payload.orders_created_at);
    if let Some(handle) = payload.webauthn_user_handle {
        URL_SAFE_NO_PAD.decode(&handle).map_err(|_| Error::invalid("document: malformed WebAuthn user handle"))?;
        r.webauthn_user_handle = Some(handle);
    }
    r.next_id = r.next_id.max(payload.next_id);
    r.pending_totp = None;
    r.pending_webauthn = None;
    r.challenges.clear();
    r.remembered.clear();
    r.step_up_epoch = r.step_up_epoch.wrapping_add(1);
    let methods = r.methods.iter().map(method_info).collect();
    let event = ctx.event(EventKind::UserImported).because(&format!("{} methods", r.methods.len()));
    let mut d = ctx.put(r, Ok(Outcome::Imported(UserImported { methods, skipped })));
    d.claims = claims;
    Ok(d.with_event(event))
}
