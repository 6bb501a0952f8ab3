//! The `email` workload (twofa only): `login_send_email_code` (to an in-process mailer) then
//! `login_verify`, alternating a wrong code and the right one; `email-verify/...` times
//! `login_verify` alone.
//!
//! The user's only method is an email address. Each wrong/right pair uses one challenge from
//! `login_begin` (not timed; the right code consumes it). The clock moves past the resend
//! cooldown before every send, and the right code resets the failure count, so neither the
//! cooldown nor the lockout refuses anything.

use std::time::{Duration, Instant};

use twofa_bench::fixture::Fixture;
use twofa_core::Proof;

use crate::case::Case;
use crate::subject::{Factory, Mail, StoreKind};

/// Where the codes go.
const ADDRESS: &str = "bench-user@example.com";

/// The resend cooldown of the default config, in seconds.
const COOLDOWN: u64 = 60;

/// The `email` cases: the native engine and the C ABI over the in-memory store.
pub fn cases(factory: &Factory, fixture: &Fixture) -> Vec<Box<dyn Case>> {
    vec![
        Box::new(TwofaEmail::new(Box::new(factory.native(StoreKind::Memory)), fixture, "native/memory")),
        Box::new(TwofaEmail::new(Box::new(factory.c(StoreKind::Memory)), fixture, "c/memory")),
    ]
}

/// The first 6-digit number in a message body: the code.
fn code_in(text: &str) -> String {
    let code = text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() == 6);
    code.unwrap_or_else(|| panic!("no code in {text:?}")).into()
}

/// A well-formed code other than `code`.
fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().expect("a numeric code") + 1) % 1_000_000)
}

/// twofa's emailed-code check on one subject: `email/<subject>` and `email-verify/<subject>`.
struct TwofaEmail {
    /// The surface and store.
    subject: Box<dyn Mail>,
    /// `<surface>/<store>`.
    name: String,
    /// The user signing in.
    user: String,
    /// The challenge of the current wrong/right pair.
    challenge: Option<String>,
    /// Whether the next operation sends the right code.
    right_next: bool,
}

impl TwofaEmail {
    /// Enrols [`ADDRESS`] for the fixture's user on `subject`.
    fn new(mut subject: Box<dyn Mail>, fixture: &Fixture, name: &str) -> TwofaEmail {
        subject.email_enroll_begin(&fixture.user, ADDRESS);
        let code = code_in(&subject.take_mail());
        subject.email_enroll_confirm(&fixture.user, &code);
        TwofaEmail { subject, name: name.into(), user: fixture.user.clone(), challenge: None, right_next: false }
    }
}

impl Case for TwofaEmail {
    fn ids(&self) -> Vec<String> {
        vec![format!("email/{}", self.name), format!("email-verify/{}", self.name)]
    }

    fn run(&mut self, ops: u64) -> Vec<Duration> {
        let (mut send, mut verify) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..ops {
            let challenge = match self.challenge.take() {
                Some(challenge) => challenge,
                None => self.subject.login_begin(&self.user).id,
            };
            self.subject.clock().advance(COOLDOWN);
            let started = Instant::now();
            self.subject.login_send_email_code(&self.user, &challenge);
            send += started.elapsed();
            let code = code_in(&self.subject.take_mail());
            let right = self.right_next;
            let proof = Proof::Email(if right { code } else { wrong(&code) });
            let started = Instant::now();
            let result = self.subject.login_verify(&self.user, &challenge, proof);
            verify += started.elapsed();
            match (result, right) {
                (Ok(()), true) => {}
                (Err("invalid_code"), false) => self.challenge = Some(challenge),
                (result, _) => panic!("email/{}: expected success {right}, got {result:?}", self.name),
            }
            self.right_next = !right;
        }
        vec![send + verify, verify]
    }
}
