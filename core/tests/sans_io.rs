//! The operations as a state machine, driven by hand the way an asynchronous host drives them:
//! no Engine, no Store trait, just actions performed and fed back.

mod common;
use common::*;
use std::collections::HashMap;
use twofa_core::store::{StoreError, Versioned};
use twofa_core::{Action, Core, Feedback, Message, Operation, Outcome, Request};

/// A host's own storage and outbox, performing whatever the operation asks.
#[derive(Default)]
struct Host {
    kv: HashMap<String, Versioned>,
    next_version: u64,
    sent: Vec<Message>,
    actions: Vec<&'static str>,
}

impl Host {
    fn run(&mut self, mut op: Operation) -> Result<Outcome, twofa_core::Error> {
        loop {
            let feedback = match op.action().clone() {
                Action::Load { key } => {
                    self.actions.push("load");
                    Feedback::Loaded(Ok(self.kv.get(&key).cloned()))
                }
                Action::Write { key, bytes, expected } => {
                    self.actions.push("write");
                    let current = self.kv.get(&key).map(|v| v.version);
                    if current != expected {
                        Feedback::Written(Err(StoreError::Conflict))
                    } else {
                        self.next_version += 1;
                        self.kv.insert(key, Versioned { bytes, version: self.next_version });
                        Feedback::Written(Ok(self.next_version))
                    }
                }
                Action::Delete { key, .. } => {
                    self.actions.push("delete");
                    self.kv.remove(&key);
                    Feedback::Deleted(Ok(()))
                }
                Action::Send { message } => {
                    self.actions.push("send");
                    self.sent.push(message);
                    Feedback::Sent(Ok(()))
                }
                Action::Emit { .. } => {
                    self.actions.push("emit");
                    Feedback::Emitted
                }
                Action::Done => return op.finish(),
            };
            op.feed(feedback);
        }
    }
}

#[test]
fn an_email_code_is_written_pending_sent_then_armed() {
    let core = Core::new(config()).unwrap();
    let mut host = Host::default();
    let request = Request::EmailEnrollBegin { address: "a@example.com".into(), step_up: None };
    let outcome = host.run(Operation::new(core.clone(), "u", request, T0)).unwrap();
    assert!(matches!(outcome, Outcome::CodeSent(_)));
    // The pending code, the address's budget (read, charged), the mail, then arming.
    assert_eq!(host.actions, ["load", "write", "load", "write", "send", "load", "write"]);
    let code = host.sent[0].text.split(|c: char| !c.is_ascii_digit()).find(|s| s.len() == 6).unwrap().to_string();
    host.actions.clear();
    let request = Request::EmailEnrollConfirm { code, step_up: None };
    match host.run(Operation::new(core, "u", request, T0 + 5)).unwrap() {
        Outcome::MethodAdded(added) => assert!(added.step_up.is_some()),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.actions, ["load", "write", "emit", "send"], "the committed change, its event, its notice");
    assert_eq!(host.sent[1].to, "a@example.com", "the new email method receives notices");
}

#[test]
fn a_conflicting_write_is_decided_again_and_mismatched_feedback_is_an_error() {
    let core = Core::new(config()).unwrap();
    let mut op = Operation::new(core.clone(), "u", Request::MarkOrderCreated, T0);
    op.feed(Feedback::Loaded(Ok(None)));
    assert!(matches!(op.action(), Action::Write { expected: None, .. }));
    op.feed(Feedback::Written(Err(StoreError::Conflict)));
    assert!(matches!(op.action(), Action::Load { .. }), "reload after a conflict");
    op.feed(Feedback::Sent(Ok(())));
    assert_eq!(op.action(), &Action::Done);
    assert_eq!(op.finish().unwrap_err().name(), "internal");
}

#[test]
fn requests_and_outcomes_are_json() {
    let request: Request =
        serde_json::from_str(r#"{"op":"login_verify","challenge":"c","proof":{"kind":"totp","value":"123456"}}"#)
            .unwrap();
    assert_eq!(request.name(), "login_verify");
    for bad in [
        r#"{"op":"login_begin","x":1}"#,
        r#"{"op":"security_status","op":"login_begin"}"#,
        r#"{"op":"set_contact_email","address":"a@b.com","address":"c@d.com"}"#,
        r#"{"op":"set_contact_email","address":"a@b.com","extra":true}"#,
        r#"{"op":"nope"}"#,
        r#"{"op":"login_verify","challenge":"c","proof":{"kind":"totp","value":"1","x":1}}"#,
        "[]",
    ] {
        assert_eq!(Request::from_json(bad).unwrap_err().name(), "invalid_input", "{bad}");
    }
    assert_eq!(Request::from_json(r#"{"op":"login_begin"}"#).unwrap(), Request::LoginBegin { device_token: None });
    assert!(twofa_core::AdminRequest::from_json(r#"{"op":"delete_user","user":"x"}"#).is_err());
    assert!(!format!("{request:?}").contains("123456"));
    let core = Core::new(config()).unwrap();
    let outcome = Host::default().run(Operation::new(core, "u", Request::SecurityStatus, T0)).unwrap();
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["type"], "status");
    assert_eq!(json["two_factor_required"], false);
}
