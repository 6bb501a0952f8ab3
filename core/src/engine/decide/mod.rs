//! The pure decisions: `f(core, record, request, now) -> (new record, outcome, mail)`.
//!
//! Nothing here reads or writes storage, sends mail or reads the clock. The driver
//! ([`super::machine`]) loads the record, calls one of these, writes the result with a
//! compare-and-swap, and only then reports the outcome or sends the mail.
//!
//! One submodule per part of the API: [`status`] (the Security tab), [`contact`] (the notice
//! address), [`methods`] (enrolment and management), [`codes`] (emailed one-time codes),
//! [`sign_in`] and [`admin`], over [`decision`] (what a decision is and the context it is made
//! in); the checks of text input are in [`super::validate`].

mod admin;
mod codes;
mod contact;
mod decision;
mod methods;
mod sign_in;
mod status;

pub(crate) use admin::decide_admin;
pub(crate) use codes::{decide_arm, decide_discard};
pub(crate) use decision::{Change, Ctx, Decision, Then};
pub(crate) use sign_in::refusal_events;

use super::types::*;
use crate::Error;
use crate::record::UserRecord;

/// Decides a user-facing operation. `record` is `None` when the user has no record yet.
pub(crate) fn decide(ctx: &Ctx<'_>, record: Option<UserRecord>, request: &Request) -> Result<Decision, Error> {
    let r = ctx.open(record)?;
    match request {
        Request::SecurityStatus => Ok(Decision::report(Outcome::Status(status::security_status(ctx, &r)))),
        Request::SetContactEmail { address, step_up } => contact::set_contact_email(ctx, r, address, step_up),
        Request::ContactEmailBegin { address, step_up } => contact::contact_email_begin(ctx, r, address, step_up),
        Request::ContactEmailConfirm { code, step_up } => contact::contact_email_confirm(ctx, r, code, step_up),
        Request::MarkOrderCreated => status::mark_order_created(ctx, r),
        Request::TotpEnrollBegin { account_name, step_up } => methods::totp_enroll_begin(ctx, r, account_name, step_up),
        Request::TotpEnrollConfirm { code, step_up } => methods::totp_enroll_confirm(ctx, r, code, step_up),
        Request::EmailEnrollBegin { address, step_up } => methods::email_enroll_begin(ctx, r, address, step_up),
        Request::EmailEnrollConfirm { code, step_up } => methods::email_enroll_confirm(ctx, r, code, step_up),
        Request::WebauthnRegisterBegin { friendly_name, step_up } => {
            methods::webauthn_register_begin(ctx, r, friendly_name, step_up)
        }
        Request::WebauthnRegisterFinish { credential_json, step_up } => {
            methods::webauthn_register_finish(ctx, r, credential_json, step_up)
        }
        Request::RenameMethod { method_id, label, step_up } => {
            methods::rename_method(ctx, r, method_id, label, step_up)
        }
        Request::RemoveMethod { method_id, step_up } => methods::remove_method(ctx, r, method_id, step_up),
        Request::RecoveryCodesGenerate { step_up } => methods::recovery_codes_generate(ctx, r, step_up),
        Request::LoginBegin { device_token } => sign_in::login_begin(ctx, r, device_token.as_deref()),
        Request::LoginSendEmailCode { challenge } => sign_in::login_send_email_code(ctx, r, challenge),
        Request::LoginVerify { challenge, proof, remember_device } => {
            sign_in::login_verify(ctx, r, challenge, proof, *remember_device)
        }
        Request::RevokeRememberedDevice { device_id } => sign_in::revoke_remembered_device(ctx, r, device_id),
        Request::RevokeRememberedDevices => sign_in::revoke_remembered_devices(ctx, r),
    }
}
