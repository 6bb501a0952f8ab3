//! The admin capability: TOTP import, deletion, reset, export and import of a user.

use super::decision::{Change, Ctx, Decision};
use super::methods::{add_method, method_info, replace_totp};
use crate::Error;
use crate::engine::types::*;
use crate::engine::validate::{validate_address, validate_label, validate_text};
use crate::record::{Method, MethodData, UserRecord};
use crate::{export, login, totp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
