//! What a decision is ([`Decision`]: the change, the outcome, what follows) and the context
//! every decision shares ([`Ctx`]), with the helpers the operations build theirs with.

use crate::Error;
use crate::email_code::Purpose;
use crate::engine::context::Core;
use crate::engine::types::*;
use crate::login::{self, StepUpToken};
use crate::mail::{Message, Template};
use crate::record::{Method, UserRecord};

/// What happens to the stored record.
#[derive(Debug)]
pub(crate) enum Change {
    /// Nothing is written.
    Keep,
    /// The record is replaced by this one (inserted if there was none).
    Put(Box<UserRecord>),
    /// The record is deleted.
    Delete,
}

/// What the driver does after the write commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Then {
    /// Report the outcome.
    Report,
    /// Send the notices, then report (failures are listed, never fatal).
    SendNotices,
    /// Send the code, then arm it (or discard it if every delivery failed).
    SendCode { purpose: Purpose, id: String },
}

/// One decision.
#[derive(Debug)]
pub(crate) struct Decision {
    pub change: Change,
    pub outcome: Result<Outcome, Error>,
    pub mail: Vec<Message>,
    pub then: Then,
    /// WebAuthn credential ids to claim (globally) before the record is written.
    pub claims: Vec<String>,
    /// WebAuthn credential ids whose claims go once the change has committed (the methods are
    /// gone); a claim is deleted only if it still names this user.
    pub releases: Vec<String>,
    /// The address a code goes to that counts against its budget across users (enrolment and
    /// contact codes), charged once the pending code has committed.
    pub budget: Option<String>,
    /// Audit events to deliver once the change has committed.
    pub events: Vec<SecurityEvent>,
}

impl Decision {
    /// The driver writes back the bytes it saved itself (a failed code send); nothing to decide.
    pub(crate) fn restore() -> Decision {
        Decision::report(Outcome::Done(Notices::default()))
    }

    /// Makes `change` and answers `outcome`, with nothing else to do.
    pub(super) fn new(change: Change, outcome: Result<Outcome, Error>) -> Decision {
        Decision {
            change,
            outcome,
            mail: Vec::new(),
            then: Then::Report,
            claims: Vec::new(),
            releases: Vec::new(),
            budget: None,
            events: Vec::new(),
        }
    }

    /// Answers `outcome` and changes nothing.
    pub(super) fn report(outcome: Outcome) -> Decision {
        Decision::new(Change::Keep, Ok(outcome))
    }

    pub(super) fn with_event(mut self, event: SecurityEvent) -> Decision {
        self.events.push(event);
        self
    }
}

/// The inputs every decision shares.
pub(crate) struct Ctx<'a> {
    pub core: &'a Core,
    pub user: &'a str,
    pub now: u64,
}

impl Ctx<'_> {
    pub(super) fn put(&self, mut record: UserRecord, outcome: Result<Outcome, Error>) -> Decision {
        record.prune(self.now);
        Decision::new(Change::Put(Box::new(record)), outcome)
    }

    /// Opens the loaded record (or a new one) for this engine: it is written in the schema of
    /// `write_schema` or its own, whichever is newer, and a schema 2 record gets its generation
    /// now (a record without one gets a new one, so tokens made before fail).
    pub(crate) fn open(&self, record: Option<UserRecord>) -> Result<UserRecord, Error> {
        let mut r = record.unwrap_or(UserRecord { schema: 0, ..UserRecord::default() });
        r.schema = r.schema.max(self.core.config.write_schema);
        if r.schema >= 2 && r.generation.is_none() {
            r.generation = Some(crate::crypto::random_token(self.core.rng.as_ref())?);
        }
        Ok(r)
    }

    /// An audit event about this user at this time.
    pub(super) fn event(&self, kind: EventKind) -> SecurityEvent {
        SecurityEvent {
            kind,
            user: self.user.to_string(),
            at: self.now,
            method: None,
            method_id: None,
            reason: None,
            actor: None,
        }
    }

    /// Revokes every remembered device (`why` goes into the event, if there was any).
    pub(super) fn revoke_devices(&self, r: &mut UserRecord, why: &str) -> Option<SecurityEvent> {
        if r.remembered.is_empty() {
            return None;
        }
        r.remembered.clear();
        Some(self.event(EventKind::RememberedDevicesRevoked).because(why))
    }

    /// Counts one failed attempt; a `locked_out` event when it starts a lockout.
    pub(super) fn count_failure(&self, r: &mut UserRecord) -> Option<SecurityEvent> {
        let was_locked = r.locked_until.is_some_and(|t| t > self.now);
        login::record_failure(r, &self.core.config.lockout, self.now);
        let until = r.locked_until.filter(|t| *t > self.now && !was_locked)?;
        Some(self.event(EventKind::LockedOut).because(&(until - self.now).to_string()))
    }

    pub(super) fn put_with_notices(&self, record: UserRecord, outcome: Outcome, mail: Vec<Message>) -> Decision {
        let then = if mail.is_empty() { Then::Report } else { Then::SendNotices };
        Decision { mail, then, ..self.put(record, Ok(outcome)) }
    }

    pub(super) fn vars<'v>(&'v self, extra: &[(&'static str, &'v str)]) -> Vec<(&'static str, &'v str)> {
        let mut v = vec![("issuer", self.core.config.issuer.as_str())];
        v.extend_from_slice(extra);
        v
    }

    pub(super) fn notices(
        &self,
        record: &UserRecord,
        template: &Template,
        extra: &[(&'static str, &str)],
    ) -> Vec<Message> {
        let vars = self.vars(extra);
        record.notice_addresses().iter().map(|to| template.render(to, &vars)).collect()
    }

    pub(super) fn method_event(&self, kind: EventKind, method: &Method) -> SecurityEvent {
        self.event(kind).about(method.data.kind(), Some(method.id.clone()))
    }

    pub(super) fn method_notice(&self, record: &UserRecord, template: &Template, method: &Method) -> Vec<Message> {
        let kind = method.data.kind().describe();
        self.notices(record, template, &[("method", kind), ("label", &method.label)])
    }

    pub(super) fn step_up(&self, record: &UserRecord) -> Result<StepUpToken, Error> {
        let c = self.core;
        login::issue_step_up(record, &c.keyring, c.rng.as_ref(), &c.config, self.user, self.now)
    }

    pub(super) fn require_step_up(&self, record: &UserRecord, token: &Option<String>) -> Result<(), Error> {
        login::require_step_up(record, &self.core.keyring, self.user, token.as_deref(), self.now)
    }
}
