//! The `fault-adapter` protocol (tests/faults/README.md) driven in-process through
//! [`Adapter::command`]: every fault kind, the call log, traps and the re-instantiation after
//! them. The harness itself (tests/faults/harness.py) runs the shared scenario with it.
//!
//! Needs the component: `make component`.

use serde_json::{Value, json};
use std::sync::Arc;
use twofa_core::store::MemoryStore;
use twofa_wasmtime_host::VirtualClock;
use twofa_wasmtime_host::adapter::{Adapter, FIRST_VERSION};
use twofa_wasmtime_host::host::{Component, default_component_path};
use twofa_wasmtime_host::scenario::{self, T0};

/// A compiled component for each adapter (the adapter owns it; compiling takes about a second).
fn component() -> Component {
    Component::load(default_component_path()).unwrap_or_else(|e| panic!("{e}: run `make component`"))
}

fn adapter() -> Adapter {
    let mut a = Adapter::new(component());
    let config = serde_json::to_string(&scenario::config()).unwrap();
    assert_eq!(a.command(&format!("config {config}")), json!({"ok": true}));
    assert_eq!(a.command(&format!("time {T0}")), json!({"ok": true}));
    a
}

fn run(a: &mut Adapter, user: &str, request: Value) -> Value {
    a.command(&format!("run {user} {request}"))
}

fn records(a: &mut Adapter) -> Value {
    a.command("dump")["records"].clone()
}

#[test]
fn hello_dump_and_versions() {
    let mut a = adapter();
    let hello = a.command("hello");
    assert_eq!(hello["crash_error"], "trap");
    assert_eq!(hello["kinds"].as_array().unwrap().len(), 7);
    assert_eq!(records(&mut a), json!({}));

    let r = run(&mut a, "u", json!({"op": "set_contact_email", "address": "u@example.com"}));
    assert_eq!(r["outcome"], json!({"sent": 0, "failed": []}), "{r}");
    assert_eq!(r["calls"], json!(["get user/u", "put user/u"]));
    assert_eq!((r["error"].clone(), r["fired"].clone()), (Value::Null, json!(false)));
    assert_eq!(records(&mut a)["user/u"]["version"], FIRST_VERSION);

    let r = run(&mut a, "u", json!({"op": "mark_order_created"}));
    assert_eq!(r["outcome"], json!({}), "{r}");
    assert_eq!(records(&mut a)["user/u"]["version"], FIRST_VERSION + 1);

    // A malformed request is the core's invalid_input; unknown commands are the adapter's.
    let r = run(&mut a, "u", json!({"op": "no_such_op"}));
    assert_eq!((r["error"]["name"].clone(), r["error"]["code"].clone()), (json!("invalid_input"), json!(1)));
    assert_eq!(a.command("frobnicate")["error"]["name"], "adapter");
    assert_eq!(a.command("load missing")["error"]["name"], "adapter");
}

#[test]
fn save_load_and_config_keep_the_version_counter() {
    let mut a = adapter();
    run(&mut a, "u", json!({"op": "set_contact_email", "address": "u@example.com"}));
    assert_eq!(a.command("save before"), json!({"ok": true}));
    let before = records(&mut a);
    run(&mut a, "u", json!({"op": "set_contact_email", "address": "v@example.com"}));
    assert_ne!(records(&mut a), before);
    assert_eq!(a.command("load before"), json!({"ok": true}));
    assert_eq!(records(&mut a), before);
    run(&mut a, "u", json!({"op": "set_contact_email", "address": "w@example.com"}));
    assert_eq!(records(&mut a)["user/u"]["version"], FIRST_VERSION + 2, "versions are never reused");

    let config = serde_json::to_string(&scenario::config()).unwrap();
    assert_eq!(a.command(&format!("config {config}")), json!({"ok": true}));
    assert_eq!(records(&mut a), json!({}), "config empties the store");
    run(&mut a, "u", json!({"op": "set_contact_email", "address": "u@example.com"}));
    assert_eq!(records(&mut a)["user/u"]["version"], FIRST_VERSION + 3);
    assert_eq!(a.command("config {")["error"]["name"], "invalid_input");
}

#[test]
fn every_store_fault() {
    let mut a = adapter();
    let set = |address: &str| json!({"op": "set_contact_email", "address": address});
    run(&mut a, "u", set("u@example.com"));
    let before = records(&mut a);

    // fail: the `failed` case, reported as storage naming the call.
    a.command("fault fail 2");
    let r = run(&mut a, "u", set("v@example.com"));
    assert_eq!(r["error"]["name"], "storage", "{r}");
    assert_eq!(r["error"]["code"], 12);
    assert_eq!(r["error"]["callback"], "store.put");
    assert_eq!((r["fired"].clone(), r["calls"].clone()), (json!(true), json!(["get user/u", "put user/u"])));
    assert_eq!(records(&mut a), before);

    // The fault is disarmed after the operation.
    let r = run(&mut a, "u", json!({"op": "security_status"}));
    assert_eq!((r["fired"].clone(), r["error"].clone()), (json!(false), Value::Null), "{r}");

    // A fault beyond the operation's calls does not fire.
    a.command("fault fail 9");
    let r = run(&mut a, "u", json!({"op": "security_status"}));
    assert_eq!((r["fired"].clone(), r["error"].clone()), (json!(false), Value::Null), "{r}");

    // corrupt: the record cannot be read; the call itself did not fail.
    a.command("fault corrupt 1");
    let r = run(&mut a, "u", json!({"op": "security_status"}));
    assert_eq!((r["error"]["name"].clone(), r["error"]["callback"].clone()), (json!("storage"), Value::Null), "{r}");

    // conflict and stale are absorbed by the engine's retry (the old and the new address are
    // told).
    for (kind, old) in [("conflict", "u"), ("stale", "conflict")] {
        a.command(&format!("fault {kind} 1"));
        let r = run(&mut a, "u", set(&format!("{kind}@example.com")));
        assert_eq!((r["fired"].clone(), r["error"].clone()), (json!(true), Value::Null), "{kind}: {r}");
        let sends = [format!("send {old}@example.com"), format!("send {kind}@example.com")];
        let calls = json!(["get user/u", "put user/u", "get user/u", "put user/u", sends[0], sends[1]]);
        assert_eq!(r["calls"], calls);
        assert_eq!(
            (r["mails"][0]["delivered"].clone(), r["mails"][1]["delivered"].clone()),
            (json!(true), json!(true))
        );
    }
    // Fault-free, the same change goes through.
    let r = run(&mut a, "u", set("x@example.com"));
    assert_eq!(r["error"], Value::Null, "{r}");
}

#[test]
fn a_crash_traps_and_the_adapter_continues_on_a_fresh_instance() {
    let mut a = adapter();
    run(&mut a, "u", json!({"op": "set_contact_email", "address": "u@example.com"}));
    let before = records(&mut a);

    a.command("fault crash 2");
    let r = run(&mut a, "u", json!({"op": "set_contact_email", "address": "v@example.com"}));
    let error = &r["error"];
    assert_eq!((error["name"].clone(), error["code"].clone()), (json!("trap"), Value::Null), "{r}");
    assert_eq!(error["callback"], "store.put");
    assert!(error["message"].as_str().unwrap().contains("injected crash"), "{r}");
    assert_eq!(records(&mut a), before, "the trap stopped the write");

    let r = run(&mut a, "u", json!({"op": "security_status"}));
    assert_eq!(r["outcome"]["contact_email"], "u@example.com", "{r}");
    let r = run(&mut a, "u", json!({"op": "set_contact_email", "address": "v@example.com"}));
    assert_eq!(r["error"], Value::Null, "{r}");
}

#[test]
fn mail_faults() {
    let mut a = adapter();
    let begin = json!({"op": "email_enroll_begin", "address": "m@example.com"});

    a.command("fault mail-fail 1");
    let r = run(&mut a, "u", begin.clone());
    assert_eq!(r["error"]["name"], "mail", "{r}");
    assert_eq!((r["error"]["code"].clone(), r["error"]["callback"].clone()), (json!(14), json!("mailer.send")));
    assert_eq!(r["mails"][0]["delivered"], false);
    assert!(r["mails"][0]["text"].as_str().unwrap().contains("code"), "{r}");

    a.command("fault mail-crash 1");
    let r = run(&mut a, "u", begin.clone());
    assert_eq!((r["error"]["name"].clone(), r["error"]["callback"].clone()), (json!("trap"), json!("mailer.send")));
    assert_eq!(r["mails"][0]["delivered"], false, "{r}");

    // The host died between writing the code and sending it: the pending code keeps the resend
    // cooldown, and may be replaced once it has run out.
    let r = run(&mut a, "u", begin.clone());
    assert_eq!((r["error"]["name"].clone(), r["mails"].clone()), (json!("rate_limited"), json!([])), "{r}");
    a.command(&format!("time {}", T0 + 60));
    let r = run(&mut a, "u", begin);
    assert_eq!(r["error"], Value::Null, "{r}");
    assert_eq!(r["mails"][0]["delivered"], true);
}

#[test]
fn each_answer_reports_its_own_events_even_after_a_trap() {
    let mut a = adapter();
    let r = run(&mut a, "u", json!({"op": "set_contact_email", "address": "u@example.com"}));
    let event = json!({"kind": "contact_email_changed", "user": "u", "at": T0, "method": null,
        "method_id": null, "reason": null, "actor": null});
    assert_eq!(r["events"], json!([event]), "{r}");
    assert_eq!(run(&mut a, "u", json!({"op": "security_status"}))["events"], json!([]), "not the last command's");

    // A trap at the notice comes after the commit, and after the events: they are reported.
    let r = a.command(&format!("admin nobody {}", json!({"op": "reset_user", "actor": "ops", "reason": "lost"})));
    assert_eq!((r["error"]["name"].clone(), r["events"].clone()), (json!("not_found"), json!([])), "{r}");
    a.command("fault mail-crash 1");
    let r = a.command(&format!("admin u {}", json!({"op": "reset_user", "actor": "ops", "reason": "lost"})));
    assert_eq!(r["error"]["name"], "trap", "{r}");
    assert_eq!(r["events"][0]["kind"], "admin_reset", "{r}");
    assert_eq!(r["events"][0]["actor"], "ops", "{r}");
    // A failed store call decides nothing: no event.
    a.command("fault fail 1");
    let r = run(&mut a, "u", json!({"op": "set_contact_email", "address": "w@example.com"}));
    assert_eq!((r["error"]["name"].clone(), r["events"].clone()), (json!("storage"), json!([])), "{r}");
}

/// What the adapter relies on: wasmtime refuses to enter an instance that trapped, while a new
/// instance of the same component over the same host store works.
#[test]
fn a_trapped_instance_cannot_be_entered_again() {
    let component = component();
    let store = Arc::new(MemoryStore::new());
    let clock = VirtualClock::at(T0);
    let config = serde_json::to_string(&scenario::config()).unwrap();
    let mut first = component.instantiate(store.clone(), &clock).unwrap();
    first.open(&config).unwrap().unwrap();
    first.state().faults.trap_nth_store_call(1);
    first.security_status("u").expect_err("the import trapped");
    let again = first.security_status("u").expect_err("a trapped instance cannot be entered");
    eprintln!("calling the trapped instance again: {again:?}");

    let mut second = component.instantiate(store, &clock).unwrap();
    second.open(&config).unwrap().unwrap();
    second.security_status("u").unwrap().unwrap();
}

#[test]
fn contact_email_requests_reach_the_component() {
    let mut a = adapter();
    let r = run(&mut a, "u", json!({"op": "contact_email_begin", "address": "c@example.com", "step_up": null}));
    assert_eq!(r["outcome"]["sent_to"], json!(["c@example.com"]), "{r}");
    let code = r["mails"][0]["text"].as_str().unwrap().split(|c: char| !c.is_ascii_digit()).find(|d| d.len() >= 6);
    let r = run(&mut a, "u", json!({"op": "contact_email_confirm", "code": code.unwrap()}));
    assert_eq!(r["outcome"], json!({"sent": 0, "failed": []}), "the first address is not told: {r}");
    assert_eq!(r["events"][0]["kind"], "contact_email_changed", "{r}");
    let r = run(&mut a, "u", json!({"op": "security_status"}));
    assert_eq!(r["outcome"]["contact_email"], "c@example.com", "{r}");
    let r = run(&mut a, "u", json!({"op": "set_contact_email", "address": "d@example.com", "step_up": null}));
    assert_eq!(r["outcome"], json!({"sent": 2, "failed": []}), "the old and the new address: {r}");
}
