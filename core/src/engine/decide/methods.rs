//! Managing second factors: enrolment of each kind, renaming, removal, recovery codes.

use super::codes::{confirm_address, send_address_code};
use super::decision::{Ctx, Decision};
use crate::Error;
use crate::email_code::Purpose;
use crate::engine::types::*;
use crate::engine::validate::{validate_account_name, validate_label};
use crate::record::{Method, MethodData, PendingTotp, PendingWebauthn, UserRecord};
use crate::{login, policy, recovery, totp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A confirmed method as the Security tab lists it.
pub(super) fn method_info(m: &Method) -> MethodInfo {
    MethodInfo {
        id: m.id.clone(),
        kind: m.data.kind(),
        label: m.label.clone(),
        created: m.created,
        last_used: m.last_used,
        flagged: matches!(m.data, MethodData::Webauthn { flagged: true, .. }),
    }
}

/// Adds a confirmed method; returns its outcome with a step-up token if it is the first.
pub(super) fn add_method(
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
pub(super) fn replace_totp(ctx: &Ctx<'_>, r: &mut UserRecord) -> Vec<SecurityEvent> {
    let Some(i) = r.totp_index() else { return Vec::new() };
    let old = r.methods.remove(i);
    let mut events = vec![ctx.method_event(EventKind::MethodRemoved, &old).because("replaced")];
    events.extend(ctx.revoke_devices(r, "method_removed"));
    events
}

/// `totp_enroll_begin`: starts an authenticator-app enrolment (step-up).
pub(super) fn totp_enroll_begin(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    account_name: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config;
    let now = ctx.now;
    validate_account_name(account_name)?;
    ctx.require_step_up(&r, step_up)?;
    let (seed, secret) = totp::new_seed(&core.keyring, core.rng.as_ref(), ctx.user, &cfg.totp)?;
    let uri = totp::otpauth_uri(&cfg.issuer, account_name, &secret, &cfg.totp);
    let qr_svg = totp::qr_svg(&uri)?;
    let expires_at = now.saturating_add(cfg.lifetimes.enrollment_secs);
    r.pending_totp = Some(PendingTotp { seed, expires: expires_at });
    Ok(ctx.put(r, Ok(Outcome::TotpSetup(TotpSetup { secret, uri, qr_svg, expires_at }))))
}

/// `totp_enroll_confirm`: confirms the pending authenticator app with a code (step-up).
pub(super) fn totp_enroll_confirm(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    code: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config;
    let now = ctx.now;
    let pending = r.pending_totp.clone().ok_or(Error::NotEnrolled)?;
    if pending.expires <= now {
        return Err(Error::Expired);
    }
    let code = login::parse_digits(code, pending.seed.digits)?;
    ctx.require_step_up(&r, step_up)?;
    let totp::Match::Fresh(step) = totp::check(&core.keyring, ctx.user, &pending.seed, &code, now, cfg.totp.skew)?
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

/// `email_enroll_begin`: sends a code to a new email address (step-up).
pub(super) fn email_enroll_begin(
    ctx: &Ctx<'_>,
    r: UserRecord,
    address: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    send_address_code(ctx, r, Purpose::Enroll, address, step_up, refuse_confirmed)
}

/// `email_enroll_confirm`: confirms the pending email address with the code sent to it (step-up).
pub(super) fn email_enroll_confirm(
    ctx: &Ctx<'_>,
    r: UserRecord,
    code: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    confirm_address(ctx, r, Purpose::Enroll, code, step_up, |r, address| {
        refuse_confirmed(&r, &address)?;
        add_method(ctx, r, "email", address.clone(), MethodData::Email { address })
    })
}

/// Refuses an address that is already one of the user's email methods.
fn refuse_confirmed(r: &UserRecord, address: &str) -> Result<(), Error> {
    if r.email_addresses().iter().any(|a| a.eq_ignore_ascii_case(address)) {
        return Err(Error::invalid("email address: already a confirmed method"));
    }
    Ok(())
}

/// `webauthn_register_begin`: starts registering a WebAuthn device (step-up).
pub(super) fn webauthn_register_begin(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    friendly_name: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config;
    let now = ctx.now;
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

/// `webauthn_register_finish`: finishes the registration with the browser's response (step-up).
pub(super) fn webauthn_register_finish(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    credential_json: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let now = ctx.now;
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

/// `rename_method`: renames a method (step-up).
pub(super) fn rename_method(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    method_id: &str,
    label: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let label = validate_label(label)?;
    ctx.require_step_up(&r, step_up)?;
    let m = r
        .methods
        .iter_mut()
        .find(|m| m.id == method_id)
        .ok_or_else(|| Error::NotFound(format!("method {method_id}")))?;
    if matches!(m.data, MethodData::Email { .. }) {
        return Err(Error::invalid("an email method is named by its address"));
    }
    m.label = label;
    let info = method_info(m);
    let event = ctx.method_event(EventKind::MethodRenamed, m);
    Ok(ctx.put(r, Ok(Outcome::Method(info))).with_event(event))
}

/// `remove_method`: removes a method, unless policy forbids it (step-up).
pub(super) fn remove_method(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    method_id: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let cfg = &ctx.core.config;
    ctx.require_step_up(&r, step_up)?;
    let pos = r
        .methods
        .iter()
        .position(|m| m.id == method_id)
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

/// `recovery_codes_generate`: replaces the recovery codes with a fresh set (step-up).
pub(super) fn recovery_codes_generate(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config;
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
