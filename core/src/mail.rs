//! Mail: the [`Mailer`] trait the host fills, the messages twofa sends, and their templates.
//!
//! Two kinds of mail leave twofa: one-time codes (enrolment and sign-in), which an operation
//! depends on, and security notices (method added or removed, recovery codes used or generated,
//! contact address changed), which never undo the change they report. Subjects and bodies come
//! from [`Templates`] that a host can replace; placeholders are `{issuer}`, `{code}`,
//! `{minutes}`, `{method}`, `{label}`, `{left}` and `{address}`. Values are HTML-escaped in the
//! HTML body and stripped of control characters in the subject, so user-supplied text (a device
//! name) can neither inject markup nor headers.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One email, ready to deliver.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// One validated address.
    pub to: String,
    /// The subject line (no control characters).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl fmt::Debug for Message {
    // A body may hold a one-time code: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message {{ to: {:?}, subject: {:?}, .. }}", self.to, self.subject)
    }
}

/// Delivers mail. Implemented by the host (SMTP, an API, a queue); must be thread-safe.
pub trait Mailer: Send + Sync {
    /// Delivers one message; an error is a short reason (it reaches the caller as `mail`).
    fn send(&self, message: &Message) -> Result<(), String>;
}

impl<M: Mailer + ?Sized> Mailer for std::sync::Arc<M> {
    fn send(&self, message: &Message) -> Result<(), String> {
        (**self).send(message)
    }
}

/// A subject with a plain-text and an HTML body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl Template {
    fn new(subject: &str, text: &str, html: &str) -> Template {
        Template { subject: subject.into(), text: text.into(), html: html.into() }
    }
}

/// Every message twofa sends; each may be replaced in the config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Templates {
    /// The code that confirms a new email method (`{code}`, `{minutes}`).
    pub enroll_code: Template,
    /// The code for signing in (`{code}`, `{minutes}`).
    pub login_code: Template,
    /// A method was added (`{method}`, `{label}`).
    pub method_added: Template,
    /// A method was removed (`{method}`, `{label}`).
    pub method_removed: Template,
    /// A recovery code was used (`{left}`).
    pub recovery_used: Template,
    /// A new set of recovery codes was generated.
    pub recovery_generated: Template,
    /// Notices now go to another address (`{address}`); sent to the previous one.
    pub contact_changed: Template,
    /// An administrator removed every second factor (`{reason}`).
    pub admin_reset: Template,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            enroll_code: Template::new(
                "{issuer}: confirm your email address",
                "Your {issuer} confirmation code is {code}. It expires in {minutes} minutes.\nIf you did not ask for it, ignore this message.",
                "<p>Your {issuer} confirmation code is <b>{code}</b>. It expires in {minutes} minutes.</p><p>If you did not ask for it, ignore this message.</p>",
            ),
            login_code: Template::new(
                "{issuer}: your sign-in code",
                "Your {issuer} sign-in code is {code}. It expires in {minutes} minutes.\nIf you are not signing in, change your password: someone knows it.",
                "<p>Your {issuer} sign-in code is <b>{code}</b>. It expires in {minutes} minutes.</p><p>If you are not signing in, change your password: someone knows it.</p>",
            ),
            method_added: Template::new(
                "{issuer}: a sign-in method was added",
                "A new second factor was added to your {issuer} account: {method} \"{label}\".\nIf this was not you, secure your account now.",
                "<p>A new second factor was added to your {issuer} account: {method} &ldquo;{label}&rdquo;.</p><p>If this was not you, secure your account now.</p>",
            ),
            method_removed: Template::new(
                "{issuer}: a sign-in method was removed",
                "A second factor was removed from your {issuer} account: {method} \"{label}\".\nIf this was not you, secure your account now.",
                "<p>A second factor was removed from your {issuer} account: {method} &ldquo;{label}&rdquo;.</p><p>If this was not you, secure your account now.</p>",
            ),
            recovery_used: Template::new(
                "{issuer}: a recovery code was used",
                "A recovery code was used to sign in to your {issuer} account. {left} codes are left.\nIf this was not you, secure your account now.",
                "<p>A recovery code was used to sign in to your {issuer} account. {left} codes are left.</p><p>If this was not you, secure your account now.</p>",
            ),
            recovery_generated: Template::new(
                "{issuer}: new recovery codes",
                "New recovery codes were generated for your {issuer} account; the old ones no longer work.\nIf this was not you, secure your account now.",
                "<p>New recovery codes were generated for your {issuer} account; the old ones no longer work.</p><p>If this was not you, secure your account now.</p>",
            ),
            contact_changed: Template::new(
                "{issuer}: security notices now go elsewhere",
                "Security notices for your {issuer} account will now go to {address}.\nIf this was not you, secure your account now.",
                "<p>Security notices for your {issuer} account will now go to {address}.</p><p>If this was not you, secure your account now.</p>",
            ),
            admin_reset: Template::new(
                "{issuer}: your two-factor methods were reset",
                "An administrator removed every second factor and recovery code of your {issuer} account. Reason: {reason}\nSet up two-factor authentication again at your next sign-in. If you did not ask for this, contact support now.",
                "<p>An administrator removed every second factor and recovery code of your {issuer} account. Reason: {reason}</p><p>Set up two-factor authentication again at your next sign-in. If you did not ask for this, contact support now.</p>",
            ),
        }
    }
}

impl Templates {
    fn all(&self) -> [(&'static str, &Template); 8] {
        [
            ("enroll_code", &self.enroll_code),
            ("login_code", &self.login_code),
            ("method_added", &self.method_added),
            ("method_removed", &self.method_removed),
            ("recovery_used", &self.recovery_used),
            ("recovery_generated", &self.recovery_generated),
            ("contact_changed", &self.contact_changed),
            ("admin_reset", &self.admin_reset),
        ]
    }

    /// Refuses subjects with control characters and code templates without `{code}`.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (name, t) in self.all() {
            if t.subject.chars().any(char::is_control) || t.subject.is_empty() {
                return Err(Error::invalid(format!(
                    "config.templates.{name}.subject: empty or has control characters"
                )));
            }
        }
        for (name, t) in [("enroll_code", &self.enroll_code), ("login_code", &self.login_code)] {
            if !t.text.contains("{code}") || !t.html.contains("{code}") {
                return Err(Error::invalid(format!("config.templates.{name}: bodies must contain {{code}}")));
            }
        }
        Ok(())
    }
}

/// Values substituted into a template.
pub(crate) type Vars<'a> = [(&'static str, &'a str)];

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fill(template: &str, vars: &Vars<'_>, escape: fn(&str) -> String) -> String {
    // One pass, so a value that contains "{code}" is never expanded again.
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}').map(|end| (&after[..end], end)) {
            Some((name, end)) if vars.iter().any(|(n, _)| *n == name) => {
                let value = vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or("");
                out.push_str(&escape(value));
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Template {
    /// Renders this template for one recipient.
    pub(crate) fn render(&self, to: &str, vars: &Vars<'_>) -> Message {
        let no_controls = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        Message {
            to: to.to_string(),
            subject: fill(&self.subject, vars, no_controls),
            text: fill(&self.text, vars, str::to_string),
            html: fill(&self.html, vars, escape_html),
        }
    }
}

/// Checks an email address: at most 254 bytes, no control characters or spaces, one `@` with a
/// non-empty local part (at most 64 bytes) and a dotted (or `localhost`) domain of letters,
/// digits, `-` and `.`. Returns it trimmed.
pub fn validate_address(address: &str) -> Result<String, Error> {
    let bad = |why: &str| Err(Error::invalid(format!("email address: {why}")));
    let a = address.trim_matches(' ');
    if a.is_empty() || a.len() > 254 {
        return bad("1 to 254 bytes");
    }
    if a.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("no spaces or control characters");
    }
    let Some((local, domain)) = a.rsplit_once('@') else { return bad("missing @") };
    if local.is_empty() || local.len() > 64 || local.contains('@') || local.contains(['<', '>', ',', ';', '"']) {
        return bad("invalid local part");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !(domain.split('.').all(label_ok) && (domain.contains('.') || domain == "localhost")) {
        return bad("invalid domain");
    }
    Ok(a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_inject_markup_or_headers() {
        let t = Templates::default().method_added;
        let m = t.render(
            "a@example.com",
            &[("issuer", "Shop"), ("method", "security key"), ("label", "<b>x</b>\r\nBcc: evil@x.com {code}")],
        );
        assert!(!m.subject.contains('\n'));
        assert!(m.html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(m.text.contains("{code}"), "values are not expanded again");
    }

    #[test]
    fn addresses() {
        assert_eq!(validate_address(" a.b+c@example.com ").unwrap(), "a.b+c@example.com");
        assert!(validate_address("user@localhost").is_ok());
        for bad in ["", "a", "a@", "@b.com", "a@b", "a\r\n@b.com", "a@b.com\0", "a b@c.com", "a@-b.com", "x<y@b.com"] {
            assert!(validate_address(bad).is_err(), "{bad:?}");
        }
        assert!(validate_address(&format!("{}@b.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn debug_hides_bodies() {
        let m = Templates::default().login_code.render("a@b.com", &[("code", "123456")]);
        assert!(m.text.contains("123456"));
        assert!(!format!("{m:?}").contains("123456"));
    }
}
