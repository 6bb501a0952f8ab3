//! The notice address: set directly (already proved by the host) or proved by a code sent to it.

use super::codes::{confirm_address, send_address_code};
use super::decision::{Ctx, Decision};
use crate::Error;
use crate::email_code::Purpose;
use crate::engine::types::*;
use crate::engine::validate::validate_address;
use crate::record::UserRecord;

/// `set_contact_email`: sets the notice address the host has already proved (step-up).
pub(super) fn set_contact_email(
    ctx: &Ctx<'_>,
    r: UserRecord,
    address: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    let address = validate_address(address)?;
    ctx.require_step_up(&r, step_up)?;
    Ok(set_contact(ctx, r, address))
}

/// `contact_email_begin`: sends a code to a new notice address, to prove it (step-up).
pub(super) fn contact_email_begin(
    ctx: &Ctx<'_>,
    r: UserRecord,
    address: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    send_address_code(ctx, r, Purpose::Contact, address, step_up, |r, _| {
        if r.schema < 2 {
            return Err(Error::invalid(
                "contact_email_begin: needs write_schema 2 (finish the rolling upgrade, docs/scaling.md)",
            ));
        }
        Ok(())
    })
}

/// `contact_email_confirm`: makes the address of `contact_email_begin` the notice address with
/// the code sent to it (step-up).
pub(super) fn contact_email_confirm(
    ctx: &Ctx<'_>,
    r: UserRecord,
    code: &str,
    step_up: &Option<String>,
) -> Result<Decision, Error> {
    confirm_address(ctx, r, Purpose::Contact, code, step_up, |r, address| Ok(set_contact(ctx, r, address)))
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
