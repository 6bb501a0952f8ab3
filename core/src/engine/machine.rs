//! The driver as a sans-IO state machine: an [`Operation`] asks for one [`Action`] at a time
//! (load a record, compare-and-swap write, delete, send a message) and is fed each result.
//!
//! The synchronous [`super::Engine`] performs the actions with a `Store` and a `Mailer`; an
//! asynchronous host performs the same actions with awaits. Either way the retry loop, the
//! WebAuthn credential claims, the pending-send-arm sequence of one-time codes, the notice
//! reporting and the delivery of audit events live here, once.
//!
//! ```text
//! Load ─▶ decide ─▶ [Write claims] ─▶ Write/Delete record ─┬─▶ [Emit events] ─▶ [Release claims] ─▶ [Send notices] ─▶ Done
//!   ▲                                      │ conflict      │
//!   └──────────────────────────────────────┘               └─▶ [Charge address budget] ─▶ Send code ─▶ Load ─▶ arm (or discard) ─▶ Write ─▶ Done
//! ```
//! No outcome is reported, and no event emitted, before the write that records it has committed.
//! Events go out right after that write, before the notices, so a mailer that fails (or a host
//! that dies in it) cannot cost the audit log an event.
//!
//! **Credential claims** (`webauthn-credential/{id}`, holding the user id) keep a WebAuthn
//! credential on one account. A registration whose claim names another user reads that user's
//! record: if the record lacks the credential the claim is stale and is taken over by
//! compare-and-swap. Claims of removed devices (removal, reset, deletion) are released only after
//! the record's write has committed, each only while it still names this user, so no other
//! account can take a credential that is still live. A release that fails leaves a stale claim,
//! which the next registration of that credential takes over.
//!
//! **Address budgets** (`email-address/{keyed hash}`): an enrolment or contact code counts
//! against its address's budget of `email_code.address_limit` codes per `address_window_secs`,
//! across users, charged after the pending code has committed and before it is sent; over the
//! budget the code is discarded and the answer is `rate_limited`.

use super::context::{Core, admin_forbidden};
use super::decide::{self, Change, Ctx, Decision, Then};
use super::types::{AdminRequest, Notices, Outcome, Request, SecurityEvent};
use super::validate::validate_user;
use crate::Error;
use crate::email_code::Purpose;
use crate::mail::Message;
use crate::record::{AddressBudget, UserRecord, credential_key, user_key};
use crate::store::{Store, StoreAnswer, StoreCall, StoreError, Version, Versioned};
use std::collections::VecDeque;
use std::sync::Arc;

/// What the host must do next for an [`Operation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `Store::get(key)`; feed [`Feedback::Loaded`].
    Load {
        /// The key to read.
        key: String,
    },
    /// `Store::put(key, bytes, expected)`; feed [`Feedback::Written`].
    Write {
        /// The key to write.
        key: String,
        /// The new value.
        bytes: Vec<u8>,
        /// The version it must still have (`None`: insert only).
        expected: Option<Version>,
    },
    /// `Store::delete(key, expected)`; feed [`Feedback::Deleted`].
    Delete {
        /// The key to delete.
        key: String,
        /// The version it must still have.
        expected: Version,
    },
    /// `Mailer::send(message)`; feed [`Feedback::Sent`].
    Send {
        /// The message to deliver.
        message: Message,
    },
    /// Hand the audit event to the host's event handler (if it has one); feed
    /// [`Feedback::Emitted`] whatever the handler did: the change is already durable.
    Emit {
        /// The event.
        event: SecurityEvent,
    },
    /// Finished: take the result with [`Operation::finish`].
    Done,
}

/// The result of the last [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feedback {
    /// Result of [`Action::Load`].
    Loaded(Result<Option<Versioned>, StoreError>),
    /// Result of [`Action::Write`].
    Written(Result<Version, StoreError>),
    /// Result of [`Action::Delete`].
    Deleted(Result<(), StoreError>),
    /// Result of [`Action::Send`].
    Sent(Result<(), String>),
    /// [`Action::Emit`] was performed (or there is no handler).
    Emitted,
}

impl From<StoreCall> for Action {
    /// The action that performs a store call.
    fn from(call: StoreCall) -> Action {
        match call {
            StoreCall::Get { key } => Action::Load { key },
            StoreCall::Put { key, bytes, expected } => Action::Write { key, bytes, expected },
            StoreCall::Delete { key, expected } => Action::Delete { key, expected },
        }
    }
}

impl TryFrom<Feedback> for StoreAnswer {
    /// Feedback of a mailer or event action, which answers no store call.
    type Error = Feedback;

    fn try_from(feedback: Feedback) -> Result<StoreAnswer, Feedback> {
        match feedback {
            Feedback::Loaded(result) => Ok(StoreAnswer::Get(result)),
            Feedback::Written(result) => Ok(StoreAnswer::Put(result)),
            Feedback::Deleted(result) => Ok(StoreAnswer::Delete(result)),
            other => Err(other),
        }
    }
}

#[derive(Debug)]
enum Job {
    User(Request),
    Admin(AdminRequest),
    Arm { purpose: Purpose, id: String },
    Discard { purpose: Purpose, id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    LoadRecord,
    WriteClaim,
    CheckClaim,
    CheckClaimOwner,
    WriteRecord,
    ReleaseClaim,
    LoadReleased,
    DeleteReleased,
    LoadBudget,
    WriteBudget,
    Sending,
    Emitting,
    Done,
}

/// One canonical operation in progress (see the module documentation).
pub struct Operation {
    core: Arc<Core>,
    user: String,
    now: u64,
    job: Job,
    stage: Stage,
    action: Action,
    conflicts: u32,
    version: Option<Version>,
    decision: Option<Decision>,
    /// Credential claims taken (key, and the version written once it is written), in order.
    claims: Vec<(String, Option<Version>)>,
    /// Audit events to emit when the operation ends.
    events: VecDeque<SecurityEvent>,
    /// Claims to release once the change has committed (keys), and the one being released.
    releases: VecDeque<String>,
    releasing: Option<String>,
    /// The version of a claim naming another user, while that user's record is read.
    foreign_claim: Option<Version>,
    /// The budget key to charge before a code is sent.
    budget: Option<String>,
    result: Option<Result<Outcome, Error>>,
    outbox: VecDeque<Message>,
    notices: Notices,
    /// Per message of the outbox, in order: whether it was delivered.
    delivered: Vec<bool>,
    then: Then,
    /// The bytes a pending code's write replaced (`None`: there was no record), and the
    /// version that write produced: a failed send restores exactly these bytes if nothing else
    /// wrote the record since.
    before_code: Option<(Option<Vec<u8>>, Option<Version>)>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Operation {{ job: {:?}, stage: {:?} }}", self.job, self.stage)
    }
}

impl Operation {
    /// Starts a user-facing operation for `user` at Unix time `now`.
    pub fn new(core: Arc<Core>, user: &str, request: Request, now: u64) -> Operation {
        Operation::start(core, user, Job::User(request), now)
    }

    /// Starts an admin operation. It ends at once with `forbidden` unless the config grants the
    /// admin capability (`"admin": true`).
    pub fn admin(core: Arc<Core>, user: &str, request: AdminRequest, now: u64) -> Operation {
        let allowed = core.config.admin;
        let mut op = Operation::start(core, user, Job::Admin(request), now);
        if !allowed {
            op.finish_with(Err(admin_forbidden()));
        }
        op
    }

    fn start(core: Arc<Core>, user: &str, job: Job, now: u64) -> Operation {
        let mut op = Operation {
            core,
            user: user.to_string(),
            now,
            job,
            stage: Stage::LoadRecord,
            action: Action::Load { key: user_key(user) },
            conflicts: 0,
            version: None,
            decision: None,
            claims: Vec::new(),
            events: VecDeque::new(),
            releases: VecDeque::new(),
            releasing: None,
            foreign_claim: None,
            budget: None,
            result: None,
            outbox: VecDeque::new(),
            notices: Notices::default(),
            delivered: Vec::new(),
            then: Then::Report,
            before_code: None,
        };
        if let Err(e) = validate_user(user).and_then(|()| crate::totp::check_clock(now).map(drop)) {
            op.finish_with(Err(e));
        }
        op
    }

    /// The action the host must perform next.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The outcome, once [`Operation::action`] is [`Action::Done`]; before that, `internal`.
    pub fn finish(self) -> Result<Outcome, Error> {
        self.result.unwrap_or_else(|| Err(Error::Internal("operation not finished".into())))
    }

    /// Performs the store actions with `store` until the operation needs a message sent or is
    /// done: for hosts whose store is at hand (the built-in ones) but whose mail is not.
    /// A store that panics fails that call instead (see [`host_call`]).
    pub fn run_store(&mut self, store: &dyn Store) {
        loop {
            let feedback = match &self.action {
                Action::Load { key } => Feedback::Loaded(host_call("store.get", StoreError::Failed, || store.get(key))),
                Action::Write { key, bytes, expected } => {
                    Feedback::Written(host_call("store.put", StoreError::Failed, || store.put(key, bytes, *expected)))
                }
                Action::Delete { key, expected } => {
                    Feedback::Deleted(host_call("store.delete", StoreError::Failed, || store.delete(key, *expected)))
                }
                Action::Send { .. } | Action::Emit { .. } | Action::Done => return,
            };
            self.feed(feedback);
        }
    }

    /// Feeds the result of the current action and moves to the next one.
    pub fn feed(&mut self, feedback: Feedback) {
        match (self.stage, feedback) {
            (Stage::LoadRecord, Feedback::Loaded(r)) => self.on_record(r),
            (Stage::WriteClaim, Feedback::Written(r)) => self.on_claim_written(r),
            (Stage::CheckClaim, Feedback::Loaded(r)) => self.on_claim_checked(r),
            (Stage::CheckClaimOwner, Feedback::Loaded(r)) => self.on_claim_owner(r),
            (Stage::WriteRecord, Feedback::Written(r)) => self.on_record_written(r.map(Some)),
            (Stage::WriteRecord, Feedback::Deleted(r)) => self.on_record_written(r.map(|()| None)),
            // Best effort: the claim names a credential that is not registered; a leftover one
            // only blocks that id, which an authenticator never reuses.
            (Stage::ReleaseClaim, Feedback::Deleted(_)) => self.release_next_claim(),
            (Stage::LoadReleased, Feedback::Loaded(r)) => self.on_released_loaded(r),
            // Best effort too: the change has committed; a claim left behind is stale. A claim
            // that changed since it was read is read again (within the retry budget).
            (Stage::DeleteReleased, Feedback::Deleted(Err(StoreError::Conflict))) => self.retry_release(),
            (Stage::DeleteReleased, Feedback::Deleted(_)) => {
                self.releasing = None;
                self.emit_next();
            }
            (Stage::LoadBudget, Feedback::Loaded(r)) => self.on_budget_loaded(r),
            (Stage::WriteBudget, Feedback::Written(r)) => self.on_budget_written(r),
            (Stage::Sending, Feedback::Sent(r)) => self.on_sent(r),
            (Stage::Emitting, Feedback::Emitted) => self.emit_next(),
            (Stage::Done, _) => {}
            (stage, _) => {
                self.claims.clear();
                self.events.clear();
                self.releases.clear();
                self.budget = None;
                self.outbox.clear();
                self.finish_with(Err(Error::Internal(format!(
                    "feedback does not match the pending action ({stage:?})"
                ))));
            }
        }
    }

    /// Ends with `result` (after the audit events still pending, if any).
    fn finish_with(&mut self, result: Result<Outcome, Error>) {
        self.result = Some(result);
        self.emit_next();
    }

    /// Emits the pending audit events, then goes on: claims to release, the address budget to
    /// charge, the mail still to send, or the end.
    fn emit_next(&mut self) {
        if let Some(event) = self.events.pop_front() {
            self.stage = Stage::Emitting;
            self.action = Action::Emit { event };
        } else if let Some(key) = self.releases.pop_front() {
            self.stage = Stage::LoadReleased;
            self.releasing = Some(key.clone());
            self.action = Action::Load { key };
        } else if let Some(key) = self.budget.clone() {
            self.stage = Stage::LoadBudget;
            self.action = Action::Load { key };
        } else if self.outbox.is_empty() {
            self.stage = Stage::Done;
            self.action = Action::Done;
        } else {
            self.send_next();
        }
    }

    /// Deletes the next written claim (after a failure), or finishes with the first error.
    fn release_next_claim(&mut self) {
        while let Some((key, version)) = self.claims.pop() {
            if let Some(expected) = version {
                self.stage = Stage::ReleaseClaim;
                self.action = Action::Delete { key, expected };
                return;
            }
        }
        let result = self.result.take().unwrap_or(Err(Error::Conflict));
        self.finish_with(result);
    }

    /// Ends with `error`, releasing a credential claim first if one is held. A code that was
    /// sent but cannot be armed is discarded instead, so a failed operation leaves the record
    /// as it was; a failed discard still reports the first error.
    fn fail(&mut self, error: Error) {
        match &self.job {
            Job::Arm { purpose, id } => {
                self.job = Job::Discard { purpose: *purpose, id: id.clone() };
                self.result = Some(Err(error));
                self.conflicts = 0;
                return self.load_record();
            }
            Job::Discard { .. } => {
                let first = self.result.take().unwrap_or(Err(error));
                return self.finish_with(first);
            }
            _ => {}
        }
        self.result = Some(Err(error));
        self.release_next_claim();
    }

    fn load_record(&mut self) {
        self.stage = Stage::LoadRecord;
        self.action = Action::Load { key: user_key(&self.user) };
    }

    fn on_record(&mut self, loaded: Result<Option<Versioned>, StoreError>) {
        let loaded = match loaded {
            Ok(v) => v,
            Err(e) => return self.fail(storage(e)),
        };
        self.version = loaded.as_ref().map(|v| v.version);
        if let (Job::Discard { .. }, Some((before, Some(written)))) = (&self.job, &self.before_code)
            && self.version == Some(*written)
        {
            // Nothing wrote the record since the pending code: put back exactly what was there.
            let key = user_key(&self.user);
            self.action = match before {
                Some(bytes) => Action::Write { key, bytes: bytes.clone(), expected: Some(*written) },
                None => Action::Delete { key, expected: *written },
            };
            self.decision = Some(Decision::restore());
            self.stage = Stage::WriteRecord;
            return;
        }
        let (record, loaded_bytes) = match loaded.map(|v| UserRecord::from_bytes(&v.bytes).map(|r| (r, v.bytes))) {
            None => (None, None),
            Some(Ok((record, bytes))) => (Some(record), Some(bytes)),
            Some(Err(e)) => return self.fail(e),
        };
        let ctx = Ctx { core: &self.core, user: &self.user, now: self.now };
        let decision = match &self.job {
            Job::User(request) => decide::decide(&ctx, record, request),
            Job::Admin(request) => decide::decide_admin(&ctx, record, request),
            Job::Arm { purpose, id } => decide::decide_arm(&ctx, record, *purpose, id),
            Job::Discard { purpose, id } => Ok(decide::decide_discard(record, *purpose, id)),
        };
        let decision = match decision {
            Ok(d) => d,
            Err(e) => {
                if let Job::User(request) = &self.job {
                    self.events = decide::refusal_events(&ctx, request, &e).into();
                }
                return self.fail(e);
            }
        };
        if matches!(decision.then, Then::SendCode { .. }) {
            self.before_code = Some((loaded_bytes, None));
        }
        let wanted: Vec<String> = decision.claims.iter().map(|id| credential_key(id)).collect();
        if self.claims.iter().any(|(held, _)| !wanted.contains(held)) {
            // A re-decision no longer wants a claim already taken: start clean.
            return self.fail(Error::Conflict);
        }
        self.decision = Some(decision);
        self.next_claim();
    }

    /// Writes the next claim the decision needs (before a record `Put` only), or the record.
    fn next_claim(&mut self) {
        let Some(decision) = self.decision.as_ref() else { return self.fail(Error::Internal("no decision".into())) };
        if matches!(decision.change, Change::Put(_)) {
            let next = decision
                .claims
                .iter()
                .map(|id| credential_key(id))
                .find(|key| !self.claims.iter().any(|(held, _)| held == key));
            if let Some(key) = next {
                self.stage = Stage::WriteClaim;
                self.action = Action::Write { key: key.clone(), bytes: self.user.as_bytes().to_vec(), expected: None };
                self.claims.push((key, None));
                return;
            }
        }
        self.write_record();
    }

    fn write_record(&mut self) {
        let Some(decision) = self.decision.as_ref() else { return self.fail(Error::Internal("no decision".into())) };
        let key = user_key(&self.user);
        match (&decision.change, self.version) {
            (Change::Keep, _) | (Change::Delete, None) => self.committed(),
            (Change::Put(record), expected) => match record.to_bytes() {
                Ok(bytes) => {
                    self.stage = Stage::WriteRecord;
                    self.action = Action::Write { key, bytes, expected };
                }
                Err(e) => self.fail(e),
            },
            (Change::Delete, Some(expected)) => {
                self.stage = Stage::WriteRecord;
                self.action = Action::Delete { key, expected };
            }
        }
    }

    fn on_claim_written(&mut self, written: Result<Version, StoreError>) {
        match written {
            Ok(version) => {
                if let Some((_, v)) = self.claims.last_mut() {
                    *v = Some(version);
                }
                self.next_claim();
            }
            Err(StoreError::Conflict) => {
                let Some((key, _)) = self.claims.last().cloned() else {
                    return self.fail(Error::Internal("no claim".into()));
                };
                self.stage = Stage::CheckClaim;
                self.action = Action::Load { key };
            }
            Err(e) => {
                self.claims.pop();
                self.fail(storage(e));
            }
        }
    }

    fn on_claim_checked(&mut self, loaded: Result<Option<Versioned>, StoreError>) {
        match loaded {
            // Ours already, from an earlier operation (a claim this one wrote stays held across
            // retries): it is not this operation's to release if it fails.
            Ok(Some(v)) if v.bytes == self.user.as_bytes() => self.next_claim(),
            // A claim holds a user id; anything else is a damaged store, not another account.
            Ok(Some(v)) if !std::str::from_utf8(&v.bytes).is_ok_and(|id| validate_user(id).is_ok()) => {
                self.claims.pop();
                self.fail(Error::Storage("a stored credential claim is not a user id".into()));
            }
            Ok(Some(v)) => {
                // Another user's claim: taken over below if that user's record lacks the credential.
                let owner = String::from_utf8_lossy(&v.bytes).into_owned();
                self.foreign_claim = Some(v.version);
                self.stage = Stage::CheckClaimOwner;
                self.action = Action::Load { key: user_key(&owner) };
            }
            Ok(None) => self.retry_or(Error::Conflict, |op| {
                op.claims.pop();
                op.load_record();
            }),
            Err(e) => {
                self.claims.pop();
                self.fail(storage(e));
            }
        }
    }

    /// The record of the user another claim names: a claim whose user lacks the credential is
    /// stale and is taken over (compare-and-swap on the version seen).
    fn on_claim_owner(&mut self, loaded: Result<Option<Versioned>, StoreError>) {
        let Some((key, _)) = self.claims.last().cloned() else { return self.fail(Error::Internal("no claim".into())) };
        let id = key.strip_prefix(&credential_key("")).unwrap_or_default();
        let stale = match &loaded {
            Ok(None) => true,
            // A record this engine cannot read keeps its claims.
            Ok(Some(v)) => {
                UserRecord::from_bytes(&v.bytes).is_ok_and(|r| !r.methods.iter().any(|m| m.credential_id() == Some(id)))
            }
            Err(_) => false,
        };
        match (loaded, self.foreign_claim.take()) {
            (Err(e), _) => {
                self.claims.pop();
                self.fail(storage(e));
            }
            (Ok(_), Some(version)) if stale => self.retry_or(Error::Conflict, |op| {
                op.stage = Stage::WriteClaim;
                op.action = Action::Write { key, bytes: op.user.as_bytes().to_vec(), expected: Some(version) };
            }),
            _ => {
                self.claims.pop();
                self.fail(Error::WebauthnRejected("this credential is already registered to another account".into()));
            }
        }
    }

    /// A claim to release after the commit: deleted only while it names this user.
    fn on_released_loaded(&mut self, loaded: Result<Option<Versioned>, StoreError>) {
        match (loaded, self.releasing.clone()) {
            (Ok(Some(v)), Some(key)) if v.bytes == self.user.as_bytes() => {
                self.stage = Stage::DeleteReleased;
                self.action = Action::Delete { key, expected: v.version };
            }
            _ => {
                self.releasing = None;
                self.emit_next();
            }
        }
    }

    /// Reads a claim again after its delete met a concurrent change, unless retries are spent.
    fn retry_release(&mut self) {
        self.conflicts += 1;
        if let (Some(key), true) = (self.releasing.take(), self.conflicts <= self.core.config.conflict_retries) {
            self.releases.push_front(key);
        }
        self.emit_next();
    }

    /// Charges the address budget before a code is sent; over it, the code is discarded.
    fn on_budget_loaded(&mut self, loaded: Result<Option<Versioned>, StoreError>) {
        let (stored, expected) = match loaded {
            Ok(Some(v)) => (serde_json::from_slice::<AddressBudget>(&v.bytes).ok(), Some(v.version)),
            Ok(None) => (None, None),
            Err(e) => return self.refuse_code(storage(e)),
        };
        let cfg = &self.core.config.email_code;
        // A damaged budget starts a new window; one from another server's clock ahead still runs.
        let mut budget = stored
            .filter(|b| self.now < b.since.saturating_add(cfg.address_window_secs))
            .unwrap_or(AddressBudget { since: self.now, sent: 0 });
        if budget.sent >= cfg.address_limit {
            let retry_after = budget.since.saturating_add(cfg.address_window_secs).saturating_sub(self.now).max(1);
            return self.refuse_code(Error::RateLimited { retry_after });
        }
        budget.sent += 1;
        let (Some(key), Ok(bytes)) = (self.budget.clone(), serde_json::to_vec(&budget)) else {
            return self.refuse_code(Error::Internal("address budget".into()));
        };
        self.stage = Stage::WriteBudget;
        self.action = Action::Write { key, bytes, expected };
    }

    fn on_budget_written(&mut self, written: Result<Version, StoreError>) {
        match written {
            Ok(_) => {
                self.budget = None;
                self.emit_next();
            }
            Err(StoreError::Conflict) => {
                self.conflicts += 1;
                if self.conflicts > self.core.config.conflict_retries {
                    self.refuse_code(Error::Conflict);
                } else {
                    self.emit_next();
                }
            }
            Err(e) => self.refuse_code(storage(e)),
        }
    }

    /// Discards the pending code instead of sending it, ending with `error`.
    fn refuse_code(&mut self, error: Error) {
        self.budget = None;
        self.outbox.clear();
        match std::mem::replace(&mut self.then, Then::Report) {
            Then::SendCode { purpose, id } => {
                self.job = Job::Discard { purpose, id };
                self.result = Some(Err(error));
                self.conflicts = 0;
                self.load_record();
            }
            _ => self.fail(error),
        }
    }

    fn retry_or(&mut self, error: Error, retry: impl FnOnce(&mut Operation)) {
        self.conflicts += 1;
        if self.conflicts > self.core.config.conflict_retries {
            self.fail(error);
        } else {
            retry(self);
        }
    }

    fn on_record_written(&mut self, written: Result<Option<Version>, StoreError>) {
        match written {
            Ok(version) => {
                if let Some((_, written)) = &mut self.before_code
                    && written.is_none()
                {
                    *written = version;
                }
                self.committed()
            }
            Err(StoreError::Conflict) => self.retry_or(Error::Conflict, Operation::load_record),
            Err(e) => self.fail(storage(e)),
        }
    }

    /// The decision is durable: report it, or deliver its mail first.
    fn committed(&mut self) {
        self.claims.clear();
        let Some(decision) = self.decision.take() else { return self.fail(Error::Internal("no decision".into())) };
        if matches!(self.job, Job::User(_) | Job::Admin(_)) {
            self.events = decision.events.into();
            self.releases = decision.releases.iter().map(|id| credential_key(id)).collect();
        }
        match &self.job {
            Job::Arm { .. } => {
                let result = self.result.take().unwrap_or(Err(Error::Internal("no outcome to arm".into())));
                return self.finish_with(result);
            }
            Job::Discard { .. } => {
                let result = self.result.take().unwrap_or(Err(Error::Mail("delivery failed".into())));
                return self.finish_with(result);
            }
            _ => {}
        }
        let outcome = match decision.outcome {
            Ok(o) => o,
            Err(e) => return self.finish_with(Err(e)),
        };
        if decision.then == Then::Report || decision.mail.is_empty() {
            return self.finish_with(Ok(outcome));
        }
        self.result = Some(Ok(outcome));
        self.then = decision.then;
        self.outbox = decision.mail.into();
        self.budget = decision.budget;
        self.emit_next();
    }

    fn send_next(&mut self) {
        if let Some(message) = self.outbox.pop_front() {
            self.stage = Stage::Sending;
            self.action = Action::Send { message };
            return;
        }
        let notices = std::mem::take(&mut self.notices);
        match std::mem::replace(&mut self.then, Then::Report) {
            Then::SendCode { purpose, id } => {
                self.conflicts = 0;
                if notices.sent > 0 {
                    // Report only the addresses the code reached.
                    if let Some(Ok(Outcome::CodeSent(sent))) = &mut self.result {
                        let mut delivered = self.delivered.iter();
                        sent.sent_to.retain(|_| delivered.next().copied().unwrap_or(false));
                    }
                    self.job = Job::Arm { purpose, id };
                } else {
                    self.job = Job::Discard { purpose, id };
                    self.result = Some(Err(Error::Mail(notices.failed.join("; "))));
                }
                self.load_record();
            }
            _ => {
                let mut result = self.result.take().unwrap_or(Err(Error::Internal("no outcome".into())));
                if let Some(n) = result.as_mut().ok().and_then(Outcome::notices_mut) {
                    *n = notices;
                }
                self.finish_with(result);
            }
        }
    }

    fn on_sent(&mut self, sent: Result<(), String>) {
        // The Sending stage always has a Send action pending.
        let Action::Send { message } = &self.action else { return self.fail(Error::Internal("no message".into())) };
        self.delivered.push(sent.is_ok());
        match sent {
            Ok(()) => self.notices.sent += 1,
            Err(reason) => self.notices.failed.push(format!("{}: {reason}", message.to)),
        }
        self.send_next();
    }
}

fn storage(e: StoreError) -> Error {
    match e {
        StoreError::Conflict => Error::Conflict,
        StoreError::Failed(m) => Error::Storage(m),
    }
}

/// Calls into the host's code (`what`: `store.get`, `mailer.send`, ...). A panic there is a bug
/// in the host, but it must not unwind through the engine into the caller: it becomes that call's
/// failure (`fail` builds it), so the operation ends in `storage` (or `mail`) with the record as
/// the contract leaves it. Where panics abort (the wasm component), there is nothing to catch.
pub(crate) fn host_call<T, E>(what: &str, fail: fn(String) -> E, call: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(fail(format!("{what} panicked: {reason}")))
    })
}
