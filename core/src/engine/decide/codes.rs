//! Emailed one-time codes: written pending, sent by the driver, then armed or discarded.

use super::decision::{Change, Ctx, Decision, Then};
use crate::Error;
use crate::email_code::{self, Purpose, Verdict};
use crate::engine::types::*;
use crate::engine::validate::{mask, validate_address};
use crate::login;
use crate::record::UserRecord;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The keyed-hash domain of address budgets.
const ADDRESS_DOMAIN: &str = "twofa/address-budget";

/// The inbox an address reaches, as far as the budget is concerned: lower case, without a
/// `+tag` in the local part (`Victim+1@Example.com` and `victim@example.com` share one budget).
fn budget_identity(address: &str) -> String {
    let address = address.to_ascii_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{domain}", local.split('+').next().unwrap_or(local)),
        None => address,
    }
}

/// Writes a pending code and asks the driver to send it, then arm it: to `address` (enrolment
/// and contact codes, which also count against the address's budget) or to every email method
/// (sign-in codes, bound to `challenge`, the addresses shown masked).
pub(super) fn send_code(
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
            let tag = core.keyring.tag(ADDRESS_DOMAIN, "", budget_identity(a).as_bytes())?;
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

/// Sends the code that proves an address (`Enroll` or `Contact`, step-up) once `check` accepts
/// the record and the address, outside the purpose's resend cooldown.
pub(super) fn send_address_code(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    purpose: Purpose,
    address: &str,
    step_up: &Option<String>,
    check: impl FnOnce(&UserRecord, &str) -> Result<(), Error>,
) -> Result<Decision, Error> {
    let address = validate_address(address)?;
    ctx.require_step_up(&r, step_up)?;
    check(&r, &address)?;
    email_code::check_cooldown(purpose.slot(&mut r), &ctx.core.config.email_code, ctx.now)?;
    send_code(ctx, r, purpose, Some(address), None)
}

/// Checks the code that proves an address (`Enroll` or `Contact`, step-up): once accepted, the
/// slot is cleared, the attempt budget reset and `then` decides with the address the code was
/// sent to. A wrong code is not a sign-in, but it spends the same budget: only a lockout is an
/// event.
pub(super) fn confirm_address(
    ctx: &Ctx<'_>,
    mut r: UserRecord,
    purpose: Purpose,
    code: &str,
    step_up: &Option<String>,
    then: impl FnOnce(UserRecord, String) -> Result<Decision, Error>,
) -> Result<Decision, Error> {
    let core = ctx.core;
    let cfg = &core.config;
    let now = ctx.now;
    let code = login::parse_digits(code, cfg.email_code.digits)?;
    ctx.require_step_up(&r, step_up)?;
    login::check_lockout(&r, now)?;
    match email_code::verify(&core.keyring, purpose.slot(&mut r), ctx.user, purpose, &cfg.email_code, &code, None, now)?
    {
        Verdict::Accepted(entry) => {
            purpose.slot(&mut r).clear();
            login::record_success(&mut r);
            let what = if purpose == Purpose::Contact { "contact" } else { "enrolment" };
            let address = entry.address.ok_or_else(|| Error::Internal(format!("{what} code without address")))?;
            then(r, address)
        }
        Verdict::Wrong => {
            let events = ctx.count_failure(&mut r).into_iter().collect();
            Ok(Decision { events, ..ctx.put(r, Err(Error::InvalidCode)) })
        }
    }
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
