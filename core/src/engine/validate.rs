//! The checks of text input, in one place: user ids, labels and device names, account names,
//! an administrator's name and reason, addresses; and how an address is shown masked.
//!
//! Every text that can reach a mail subject or an otpauth label is refused with control,
//! invisible (format) or line-separator characters.

use crate::Error;
use crate::mail::is_invisible;

pub(crate) use crate::mail::validate_address;

/// Checks a host user id: 1 to 256 bytes, no control characters.
pub(crate) fn validate_user(user: &str) -> Result<(), Error> {
    if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
        return Err(Error::invalid("user id: 1 to 256 bytes without control characters"));
    }
    Ok(())
}

/// Checks a label, an administrator's name or a reason: trimmed, 1 to `max` characters, no
/// control, invisible (format) or line-separator characters, which could reach a mail subject.
pub(crate) fn validate_text(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(Error::invalid(format!("{field}: 1 to {max} characters without control or invisible characters")));
    }
    Ok(value.to_string())
}

/// Checks a method label or device name: 1 to 64 characters, as [`validate_text`].
pub(crate) fn validate_label(label: &str) -> Result<String, Error> {
    validate_text("name", label, 64)
}

/// Checks an account name for the otpauth label: 1 to 128 characters, no `:` or control chars.
pub(crate) fn validate_account_name(name: &str) -> Result<(), Error> {
    let bad = |c: char| c == ':' || c.is_control() || is_invisible(c);
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(bad) {
        return Err(Error::invalid("account name: 1 to 128 characters, no ':', control or invisible characters"));
    }
    Ok(())
}

/// `j***@example.com`: enough for the user to recognise, little for someone with the password.
pub(crate) fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}
