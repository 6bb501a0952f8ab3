//! Sign-in: challenges, the second factor, remembered devices.

use super::codes::send_code;
use super::decision::{Ctx, Decision};
use crate::Error;
use crate::email_code::{self, Purpose, Verdict};
use crate::engine::types::*;
use crate::record::{Challenge, MethodData, MethodKind, Remembered, UserRecord};
use crate::webauthn::AssertionOutcome;
use crate::{login, policy, recovery, totp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How many live sign-in challenges a record keeps (the oldest goes first).
const MAX_CHALLENGES: usize = 16;
/// How many remembered devices a record keeps (the oldest goes first).
const MAX_REMEMBERED: usize = 20;
/// The keyed-hash domain of device tokens.
const DEVICE_DOMAIN: &str = "twofa/device";

/// `login_begin`: starts a sign-in (after the host checked the password).
pub(super) fn login_begin(ctx: &Ctx<'_>, mut r: UserRecord, device_token: Option<&str>) -> Result<Decision, Error> {
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

/// `login_send_email_code`: emails a fresh sign-in code for a challenge.
pub(super) fn login_send_email_code(ctx: &Ctx<'_>, r: UserRecord, challenge: &str) -> Result<Decision, Error> {
    let cfg = &ctx.core.config;
    let now = ctx.now;
    find_challenge(&r, challenge, now)?;
    if r.email_addresses().is_empty() {
        return Err(Error::NotEnrolled);
    }
    login::check_lockout(&r, now)?;
    email_code::check_cooldown(&r.login_code, &cfg.email_code, now)?;
    // Schema 1 cannot store the binding: the code then completes any challenge, as before.
    let bound = (r.schema >= 2).then(|| challenge.to_string());
    send_code(ctx, r, Purpose::Login, None, bound)
}

/// `login_verify`: verifies a second factor for a challenge.
pub(super) fn login_verify(
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
                    // A clone may have signed in first: nothing it obtained stays valid, neither
                    // its step-up tokens nor a browser it had remembered.
                    r.step_up_epoch = r.step_up_epoch.wrapping_add(1);
                    events.extend(ctx.revoke_devices(&mut r, "counter_regressed"));
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

/// `revoke_remembered_device`: revokes one remembered device.
pub(super) fn revoke_remembered_device(ctx: &Ctx<'_>, mut r: UserRecord, device_id: &str) -> Result<Decision, Error> {
    let now = ctx.now;
    let pos = r
        .remembered
        .iter()
        .position(|d| d.id == device_id && d.expires > now)
        .ok_or_else(|| Error::NotFound(format!("remembered device {device_id}")))?;
    r.remembered.remove(pos);
    let event = ctx.event(EventKind::RememberedDevicesRevoked).because("user").device(device_id);
    Ok(ctx.put(r, Ok(Outcome::Done(Notices::default()))).with_event(event))
}

/// `revoke_remembered_devices`: revokes every remembered device of the user.
pub(super) fn revoke_remembered_devices(ctx: &Ctx<'_>, mut r: UserRecord) -> Result<Decision, Error> {
    let event = ctx.revoke_devices(&mut r, "user");
    let mut d = ctx.put(r, Ok(Outcome::Done(Notices::default())));
    d.events.extend(event);
    Ok(d)
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

/// The challenge `id` of the record: `not_found` when there is none, `expired` when it lapsed.
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
