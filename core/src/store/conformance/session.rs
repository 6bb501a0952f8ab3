//! The conformance suite as a sans-IO session, for hosts whose store is asynchronous (Node's
//! `pg`, Python's asyncpg): the host asks for the next store action, performs it however it
//! likes (several at once, with awaits) and feeds the result back.
//!
//! The suite itself is [`check`](super::check), unchanged: it runs on a background thread
//! against a store whose every call becomes an action of this session and waits for its
//! answer. Its concurrency check calls the store from several threads, so several actions may be
//! outstanding at once; [`Next::Wait`] says that nothing new can happen until one of them is
//! answered.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread;

use super::{Failure, Report, check};
use crate::store::{Store, StoreAnswer, StoreCall, StoreError, Version, Versioned};

/// What the host does next; `A` is the store call, as a [`StoreCall`] or in the host's own
/// vocabulary made from one (the engine's `Action`, say).
#[derive(Debug)]
pub enum Next<A = StoreCall> {
    /// Perform this store call and answer it with [`Session::feed`] under `id`. Other calls may
    /// be handed out before it is answered.
    Action {
        /// Identifies the call when feeding its result.
        id: u64,
        /// The store call to perform.
        action: A,
    },
    /// Every action handed out is still unanswered and nothing else can happen before one is:
    /// feed one, then ask again.
    Wait,
    /// The suite has finished: [`Session::finish`] returns its result.
    Done,
}

/// A conformance run in progress (see the module documentation).
pub struct Session {
    requests: Receiver<Message>,
    queued: VecDeque<(u64, StoreCall)>,
    replies: HashMap<u64, Sender<Option<StoreAnswer>>>,
    next_id: u64,
    result: Option<Result<Report, Failure>>,
}

/// A call of the suite with where its answer goes (`None`: the host fed something else).
enum Message {
    Call(StoreCall, Sender<Option<StoreAnswer>>),
    Finished(Result<Report, Failure>),
}

/// The store the suite runs against: each call is sent to the session and waits for its answer.
struct Relay(Sender<Message>);

impl Relay {
    fn call(&self, call: StoreCall) -> Result<Option<StoreAnswer>, StoreError> {
        let (reply, answer) = channel();
        self.0.send(Message::Call(call, reply)).map_err(|_| abandoned())?;
        answer.recv().map_err(|_| abandoned())
    }
}

fn abandoned() -> StoreError {
    StoreError::Failed("the conformance session was abandoned".into())
}

fn mismatch() -> StoreError {
    StoreError::Failed("the host answered a store action with the wrong kind of result".into())
}

impl Store for Relay {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        match self.call(StoreCall::Get { key: key.into() })? {
            Some(StoreAnswer::Get(result)) => result,
            _ => Err(mismatch()),
        }
    }

    fn put(&self, key: &str, bytes: &[u8], expected: Option<Version>) -> Result<Version, StoreError> {
        match self.call(StoreCall::Put { key: key.into(), bytes: bytes.to_vec(), expected })? {
            Some(StoreAnswer::Put(result)) => result,
            _ => Err(mismatch()),
        }
    }

    fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
        match self.call(StoreCall::Delete { key: key.into(), expected })? {
            Some(StoreAnswer::Delete(result)) => result,
            _ => Err(mismatch()),
        }
    }
}

impl Session {
    /// Starts the suite on a background thread. Fails only if the thread cannot be started.
    pub fn start() -> Result<Session, Failure> {
        let (send, requests) = channel();
        let relay = Relay(send.clone());
        thread::Builder::new()
            .name("twofa-conformance".into())
            .spawn(move || {
                let result = check(&relay);
                let _ = send.send(Message::Finished(result));
            })
            .map_err(|e| Failure { check: super::SETUP, message: format!("cannot start the suite's thread: {e}") })?;
        Ok(Session { requests, queued: VecDeque::new(), replies: HashMap::new(), next_id: 1, result: None })
    }

    fn receive(&mut self, message: Message) {
        match message {
            Message::Call(call, reply) => {
                let id = self.next_id;
                self.next_id += 1;
                self.replies.insert(id, reply);
                self.queued.push_back((id, call));
            }
            Message::Finished(result) => self.result = Some(result),
        }
    }

    /// The next thing to do. Blocks only while the suite computes (never on the host's I/O):
    /// when actions are outstanding and none is ready, it returns [`Next::Wait`] at once.
    pub fn next_action<A: From<StoreCall>>(&mut self) -> Next<A> {
        loop {
            if let Some((id, call)) = self.queued.pop_front() {
                return Next::Action { id, action: call.into() };
            }
            if self.result.is_some() {
                return Next::Done;
            }
            let message = if self.replies.is_empty() {
                // Nobody waits for the host: the suite is computing and will call or finish.
                match self.requests.recv() {
                    Ok(m) => m,
                    Err(_) => {
                        let message = "the suite's thread stopped without a result".into();
                        self.result = Some(Err(Failure { check: super::SETUP, message }));
                        continue;
                    }
                }
            } else {
                match self.requests.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => return Next::Wait,
                    Err(TryRecvError::Disconnected) => {
                        self.replies.clear();
                        continue;
                    }
                }
            };
            self.receive(message);
        }
    }

    /// Answers the action `id` with the result of performing it, as a [`StoreAnswer`] or in the
    /// host's own vocabulary (the engine's `Feedback`, say); anything but a store answer fails
    /// the running check. Returns `false` if no action with that id is outstanding (nothing is
    /// fed then).
    pub fn feed(&mut self, id: u64, answer: impl TryInto<StoreAnswer>) -> bool {
        match self.replies.remove(&id) {
            Some(reply) => {
                let _ = reply.send(answer.try_into().ok());
                true
            }
            None => false,
        }
    }

    /// The result, once [`Session::next_action`] said [`Next::Done`]; `None` before.
    pub fn finish(&mut self) -> Option<Result<Report, Failure>> {
        self.result.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn perform(store: &dyn Store, call: StoreCall) -> StoreAnswer {
        match call {
            StoreCall::Get { key } => StoreAnswer::Get(store.get(&key)),
            StoreCall::Put { key, bytes, expected } => StoreAnswer::Put(store.put(&key, &bytes, expected)),
            StoreCall::Delete { key, expected } => StoreAnswer::Delete(store.delete(&key, expected)),
        }
    }

    /// Drives a session against `store` like an async host: it collects up to `batch`
    /// outstanding actions, then answers them last first.
    fn drive(store: &dyn Store, batch: usize) -> Result<Report, Failure> {
        let mut session = Session::start()?;
        let mut pending: Vec<(u64, StoreCall)> = Vec::new();
        let mut most = 0;
        loop {
            match session.next_action() {
                Next::Action { id, action } => {
                    pending.push((id, action));
                    most = most.max(pending.len());
                    if pending.len() < batch {
                        continue;
                    }
                }
                Next::Wait => assert!(!pending.is_empty(), "Wait with nothing outstanding"),
                Next::Done => {
                    assert!(pending.is_empty());
                    assert!(batch == 1 || most > 1, "the concurrency check never had two calls outstanding");
                    return session.finish().expect("a result after Done");
                }
            }
            while let Some((id, action)) = pending.pop() {
                assert!(session.feed(id, perform(store, action)));
            }
        }
    }

    #[test]
    fn a_conforming_store_passes_sequentially_and_out_of_order() {
        for batch in [1, 8] {
            let report = drive(&MemoryStore::new(), batch).expect("the memory store conforms");
            assert_eq!(report.passed, super::super::CHECKS.to_vec());
        }
    }

    #[test]
    fn a_broken_store_fails_its_check() {
        struct NoConflicts(MemoryStore);
        impl Store for NoConflicts {
            fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
                self.0.get(key)
            }
            fn put(&self, key: &str, bytes: &[u8], _: Option<Version>) -> Result<Version, StoreError> {
                let current = self.0.get(key)?.map(|v| v.version);
                self.0.put(key, bytes, current)
            }
            fn delete(&self, key: &str, expected: Version) -> Result<(), StoreError> {
                self.0.delete(key, expected)
            }
        }
        let failure = drive(&NoConflicts(MemoryStore::new()), 1).expect_err("a store without conflicts fails");
        assert_eq!(failure.check, "insert_existing_conflicts");
    }

    #[test]
    fn unknown_ids_are_refused_and_an_abandoned_session_ends() {
        let mut session = Session::start().expect("start");
        let Next::<StoreCall>::Action { id, action } = session.next_action() else {
            panic!("the suite starts with a store call")
        };
        assert!(!session.feed(id + 1000, StoreAnswer::Delete(Ok(()))));
        assert!(matches!(action, StoreCall::Get { .. }));
        // A wrong kind of answer is a store failure of the running check.
        assert!(session.feed(id, StoreAnswer::Delete(Ok(()))));
        let failure = loop {
            match session.next_action::<StoreCall>() {
                Next::Action { id, .. } => {
                    session.feed(id, StoreAnswer::Delete(Err(StoreError::Failed("cleanup refused".into()))));
                }
                Next::Wait => panic!("nothing is outstanding"),
                Next::Done => break session.finish().expect("a result").expect_err("the check failed"),
            }
        };
        assert_eq!(failure.check, "get_missing");
        assert!(failure.message.contains("wrong kind of result"), "{}", failure.message);
        drop(Session::start().expect("start"));
    }
}
