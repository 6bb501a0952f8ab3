//! Mail: the [`Mailer`] trait the host fills, the messages twofa sends, and their templates.
//!
//! Two kinds of mail leave twofa: one-time codes (enrolment and sign-in), which an operation
//! depends on, and security notices (method added or removed, recovery codes used or generated,
//! contact address changed), which never undo the change they report. Subjects and bodies come
//! from [`Templates`] that a host can replace; placeholders are `{issuer}`, `{code}`,
//! `{minutes}`, `{method}`, `{label}`, `{left}` and `{address}`. Values are HTML-escaped in the
//! HTML body, so user-supplied text (a device name) cannot inject markup. A rendered subject never
//! holds a control character, a Unicode format character (general category Cf: bidirectional
//! overrides, zero-width characters, the byte order mark...) or a line or paragraph separator
//! (U+2028, U+2029): controls and separators become spaces, format characters are removed, after
//! substitution, whatever the template or a stored value holds, so nothing can inject a header or
//! break a host's mail library. Addresses holding any of them are refused ([`validate_address`]),
//! and so are template subjects ([`Templates`] validation).

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
    /// Notices now go to another address (`{address}`); sent to the previous and the new one.
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
                "{issuer}: the address for security notices changed",
                "Security notices for your {issuer} account now go to {address}.\nIf this was not you, secure your account now.",
                "<p>Security notices for your {issuer} account now go to {address}.</p><p>If this was not you, secure your account now.</p>",
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

    /// Refuses empty subjects, subjects with control, format (Cf) or line/paragraph separator
    /// characters, and code templates without `{code}`.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (name, t) in self.all() {
            if t.subject.is_empty() || t.subject.chars().any(|c| c.is_control() || is_invisible(c)) {
                return Err(Error::invalid(format!(
                    "config.templates.{name}.subject: empty or has control, invisible or bidirectional characters"
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

/// A subject line safe for any mail library: controls and line/paragraph separators become
/// spaces, format (Cf) characters are removed.
fn clean_subject(subject: &str) -> String {
    subject
        .chars()
        .filter(|c| !is_format(*c))
        .map(|c| if c.is_control() || is_invisible(c) { ' ' } else { c })
        .collect()
}

impl Template {
    /// Renders this template for one recipient. The subject is cleaned after substitution
    /// ([`clean_subject`]): a host's template or a label stored before labels were checked may
    /// hold a character that a header must not.
    pub(crate) fn render(&self, to: &str, vars: &Vars<'_>) -> Message {
        Message {
            to: to.to_string(),
            subject: clean_subject(&fill(&self.subject, vars, str::to_string)),
            text: fill(&self.text, vars, str::to_string),
            html: fill(&self.html, vars, escape_html),
        }
    }
}

/// The characters of general category Cf (format) in Unicode 15.1, as inclusive ranges in code
/// point order (DerivedGeneralCategory.txt of Unicode 15.1.0: 170 code points; 15.1 added none to
/// 15.0). Bidirectional controls (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C),
/// zero-width characters (U+200B..U+200D, U+2060), the byte order mark (U+FEFF), the soft hyphen
/// (U+00AD) and tag characters (U+E0001, U+E0020..U+E007F) are all here.
const FORMAT_RANGES: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a format character (general category Cf, Unicode 15.1).
fn is_format(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_RANGES
        .binary_search_by(|&(first, last)| {
            if last < c {
                std::cmp::Ordering::Less
            } else if first > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Whether `c` is invisible or reorders text: a format character (general category Cf, Unicode
/// 15.1: bidirectional controls, zero-width characters, the byte order mark...) or the line or
/// paragraph separator (U+2028 Zl, U+2029 Zp). None of them may appear in an address, a label or
/// a subject.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}') || is_format(c)
}

/// Checks an email address: at most 254 bytes, no control characters, spaces, format characters
/// (Unicode general category Cf: bidirectional controls, zero-width characters, the byte order
/// mark...) or line/paragraph separators, one `@` with a non-empty local part (at most 64 bytes)
/// and a dotted (or `localhost`) domain of letters, digits, `-` and `.`. Returns it trimmed.
pub fn validate_address(address: &str) -> Result<String, Error> {
    let bad = |why: &str| Err(Error::invalid(format!("email address: {why}")));
    let a = address.trim_matches(' ');
    if a.is_empty() || a.len() > 254 {
        return bad("1 to 254 bytes");
    }
    if a.chars().any(is_invisible) {
        return bad("no invisible or bidirectional characters");
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
    fn addresses_with_invisible_or_bidirectional_characters_refused() {
        for c in ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{00AD}', '\u{2066}', '\u{E0041}'] {
            for address in [format!("ev{c}il@example.com"), format!("{c}a@example.com"), format!("a@exa{c}mple.com")] {
                assert_eq!(
                    validate_address(&address),
                    Err(Error::invalid("email address: no invisible or bidirectional characters")),
                    "{address:?}"
                );
            }
        }
        // Other non-ASCII characters in the local part are still accepted.
        assert!(validate_address("a\u{00E9}@example.com").is_ok());
    }

    #[test]
    fn subjects_never_hold_controls_or_invisible_characters() {
        // A label as stored before labels were checked, through a host template with `{label}`.
        let label =
            "Key\u{2028}Bcc: x@evil.example\u{2029}\u{202E}moc.\u{200B}\u{FEFF}\u{00AD}\u{E0041}\r\n\t\u{85}end";
        let vars = [("issuer", "Shop"), ("method", "key\u{2029}"), ("label", label)];
        let host =
            Template { subject: "{label} was added ({method})".into(), text: String::new(), html: String::new() };
        let subject = host.render("a@example.com", &vars).subject;
        assert_eq!(subject, "Key Bcc: x@evil.example moc.    end was added (key )");
        for template in [Templates::default().method_added, Templates::default().method_removed, host] {
            let m = template.render("a@example.com", &vars);
            assert!(!m.subject.chars().any(|c| c.is_control() || is_invisible(c)), "{:?}", m.subject);
        }
        // A host template holding one (written before validation refused it) is cleaned too.
        let old =
            Template { subject: "\u{202E}{issuer}\u{2028}notice".into(), text: String::new(), html: String::new() };
        assert_eq!(old.render("a@example.com", &[("issuer", "Shop")]).subject, "Shop notice");
    }

    #[test]
    fn template_subjects_with_invisible_characters_refused() {
        assert!(Templates::default().validate().is_ok());
        for c in ['\n', '\u{7F}', '\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{2029}'] {
            let mut t = Templates::default();
            t.recovery_used.subject = format!("{{issuer}}{c}: a recovery code was used");
            let e = t.validate().unwrap_err();
            assert!(e.to_string().contains("config.templates.recovery_used.subject"), "{c:?}: {e}");
        }
    }

    #[test]
    fn format_table_is_unicode_15_1_cf() {
        // Sorted, disjoint, 170 code points in all (DerivedGeneralCategory-15.1.0: Cf).
        assert!(FORMAT_RANGES.windows(2).all(|w| w[0].1 < w[1].0 && w[0].0 <= w[0].1));
        assert_eq!(FORMAT_RANGES.iter().map(|(a, b)| b - a + 1).sum::<u32>(), 170);
        let cf = [
            0x00AD, 0x0600, 0x0605, 0x061C, 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x180E, 0x200B, 0x200C, 0x200D,
            0x200E, 0x200F, 0x202A, 0x202E, 0x2060, 0x2064, 0x2066, 0x2069, 0x206F, 0xFEFF, 0xFFF9, 0xFFFB, 0x110BD,
            0x110CD, 0x13430, 0x1343F, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0001, 0xE0020, 0xE0041, 0xE007F,
        ];
        let not_cf = [
            0x0000, 0x0020, 0x0041, 0x00A0, 0x00AC, 0x00AE, 0x05FF, 0x0606, 0x061B, 0x061D, 0x06DC, 0x06DE, 0x070E,
            0x0710, 0x088F, 0x0892, 0x08E1, 0x08E3, 0x180D, 0x180F, 0x200A, 0x2010, 0x2027, 0x202F, 0x205F, 0x2065,
            0x2070, 0xFEFE, 0xFF00, 0xFFF8, 0xFFFC, 0x110BC, 0x110BE, 0x110CC, 0x110CE, 0x1342F, 0x13440, 0x1BC9F,
            0x1BCA4, 0x1D172, 0x1D17B, 0xE0000, 0xE0002, 0xE001F, 0xE0080, 0x10FFFF,
        ];
        for c in cf.iter().filter_map(|&c| char::from_u32(c)) {
            assert!(is_format(c) && is_invisible(c), "U+{:04X}", u32::from(c));
        }
        for c in not_cf.iter().filter_map(|&c| char::from_u32(c)) {
            assert!(!is_format(c) && !is_invisible(c), "U+{:04X}", u32::from(c));
        }
        // The line and paragraph separators (Zl, Zp) are invisible but not format characters.
        for c in ['\u{2028}', '\u{2029}'] {
            assert!(is_invisible(c) && !is_format(c));
        }
        assert_eq!((0..=0x10FFFF).filter_map(char::from_u32).filter(|c| is_format(*c)).count(), 170);
    }

    #[test]
    fn debug_hides_bodies() {
        let m = Templates::default().login_code.render("a@b.com", &[("code", "123456")]);
        assert!(m.text.contains("123456"));
        assert!(!format!("{m:?}").contains("123456"));
    }
}
