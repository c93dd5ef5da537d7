//! Each way out of the sandbox fails cleanly and specifically.

use serde_json::json;
use stratagem_runtime::{Hook, InvokeError};

use crate::support::{options, run_probe, strategy, PROBE};

async fn exception(case: &str) -> (String, String, u32) {
    let probe = strategy(PROBE).await;
    match run_probe(&probe, json!({ "case": case }), &options()).await.result {
        Err(InvokeError::Exception { exception }) => {
            let line = exception.traceback.last().map_or(0, |frame| frame.line);
            (exception.type_name, exception.message, line)
        }
        other => panic!("{case}: expected a Python exception, got {other:?}"),
    }
}

#[tokio::test]
async fn errors_when_reading_a_host_file() {
    let (kind, message, line) = exception("open_file").await;
    assert_eq!((kind.as_str(), message.as_str(), line), ("FileNotFoundError", "[Errno 44] No such file or directory: '/etc/passwd'", 40));
}

#[tokio::test]
async fn errors_when_listing_the_root_directory() {
    let (kind, _, line) = exception("list_dir").await;
    assert_eq!((kind.as_str(), line), ("FileNotFoundError", 43));
}

#[tokio::test]
async fn errors_when_opening_a_socket() {
    // `socket` imports from the library; WASI denies the name lookup.
    let (kind, message, _) = exception("socket").await;
    assert_eq!((kind.as_str(), message.as_str()), ("socket.gaierror", "[Errno -4] Non-recoverable error"));
}

#[tokio::test]
async fn errors_when_starting_a_subprocess() {
    let (kind, message, _) = exception("subprocess").await;
    assert_eq!((kind.as_str(), message.as_str()), ("OSError", "[Errno 58] wasi does not support processes."));
}

#[tokio::test]
async fn errors_when_loading_native_code_with_ctypes() {
    let (kind, message, _) = exception("ctypes").await;
    // Its C half is not part of the guest's CPython.
    assert_eq!((kind.as_str(), message.as_str()), ("ModuleNotFoundError", "No module named '_ctypes'"));
}

#[tokio::test]
async fn errors_when_importing_a_module_that_is_not_bundled() {
    let (kind, message, line) = exception("import_missing").await;
    assert_eq!((kind.as_str(), message.as_str(), line), ("ModuleNotFoundError", "No module named 'numpy'", 78));
}

#[tokio::test]
async fn errors_when_exiting_instead_of_ending_the_sandbox() {
    let (kind, message, _) = exception("exit").await;
    assert_eq!((kind.as_str(), message.as_str()), ("SystemExit", "3"));
}

#[tokio::test]
async fn works_when_the_environment_is_empty() {
    // Set on the host, and present while the component was built.
    std::env::set_var("STRATAGEM_TEST_SECRET", "hunter2");
    let probe = strategy(PROBE).await;
    let contact = run_probe(&probe, json!({"case": "environ"}), &options()).await.result.expect("ok").expect("contact");
    assert_eq!(contact.internal_data["environ"], json!({}));
}

#[tokio::test]
async fn errors_when_opening_a_raw_socket_through_the_builtin_module() {
    // `_socket` is compiled into the guest's CPython; WASI networking is
    // what denies it.
    let (kind, message, line) = exception("raw_socket").await;
    assert_eq!((kind.as_str(), message.as_str(), line), ("PermissionError", "[Errno 2] Permission denied", 98));
}

/// A component made without the SDK can return any record; each kind of
/// malformed contact becomes an invalid result that names the field, never
/// a stored contact. Kept communications are the ones the host sent, each
/// at most once, whatever indices the guest returns.
#[tokio::test]
async fn errors_when_a_handmade_component_returns_a_malformed_contact() {
    let app = "from wit_world import exports\n\
        from wit_world.imports import types\n\
        def returned(contact, **changes):\n\
        \x20   fields = dict(vars(contact), communications=[types.ReturnedCommunication_Kept(i) for i in range(len(contact.communications))])\n\
        \x20   fields.update(changes)\n\
        \x20   return types.ReturnedContact(**fields)\n\
        class Hooks(exports.Hooks):\n\
        \x20   def data_load(self, campaign, contact, existing):\n\
        \x20       kept = {'out of range': [5], 'twice': [0, 0], 'in order': [1, 0]}.get(contact.name)\n\
        \x20       if kept is None:\n\
        \x20           return returned(contact, parameters='[1]')\n\
        \x20       return returned(contact, communications=[types.ReturnedCommunication_Kept(i) for i in kept])\n\
        \x20   def aggregation(self, campaign, contact, session_results):\n\
        \x20       state = types.CommunicationState(types.CommunicationStatus.PLANNED, None, None)\n\
        \x20       never = 2 ** 63 - 1\n\
        \x20       comm = types.Communication(None, 'x', 'y', never, None, state, False, None, '{}')\n\
        \x20       return returned(contact, communications=[types.ReturnedCommunication_Changed(comm)])\n\
        \x20   def contact_answer(self, campaign, contact, message):\n\
        \x20       return returned(contact, internal_data='{oops')\n";
    let bytes = crate::support::handmade_component(&crate::support::repo_root().join("wit"), "strategy", app);
    let (strategy, _) = crate::support::runtime().load(&bytes).expect("the contract's world loads");
    let contact = crate::support::contact(json!({}));
    let message = stratagem_domain::Message {
        role: stratagem_domain::MessageRole::Contact,
        content: "hi".into(),
        sent_at: "2026-11-26T10:00:00Z".parse().expect("time"),
        communication_id: None,
    };
    let with_history = |name: &str| {
        let mut contact = contact.clone();
        contact.name = name.into();
        contact.communications = ["First", "Second"]
            .into_iter()
            .map(|name| stratagem_domain::Communication {
                id: Some(format!("comm-{name}")),
                name: name.into(),
                stage_name: "1. First contact".into(),
                start_date: "2026-11-26T09:00:00Z".parse().expect("time"),
                end_date: None,
                status: Default::default(),
                flagged: name == "Second",
                alternative: None,
                parameters: Default::default(),
            })
            .collect();
        Hook::DataLoad { contact, existing: None }
    };
    let cases = [
        (Hook::DataLoad { contact: contact.clone(), existing: None }, "contact.parameters must be a JSON object, got an array"),
        (
            Hook::Aggregation { contact: contact.clone(), session_results: None },
            "contact.communications[0].start_date is out of range (9223372036854775807 µs from the Unix epoch)",
        ),
        (Hook::ContactAnswer { contact: contact.clone(), message }, "contact.internal_data is not valid JSON: key must be a string at line 1 column 2"),
        (with_history("out of range"), "contact.communications[0] keeps received communication 5, but the contact had 2"),
        (with_history("twice"), "contact.communications[1] keeps received communication 0 a second time; each is kept at most once"),
    ];
    for (hook, expected) in cases {
        match strategy.invoke(&hook, &options()).await.result {
            Err(InvokeError::InvalidResult { message }) => assert_eq!(message, expected),
            other => panic!("expected InvalidResult {expected:?}, got {other:?}"),
        }
    }
    // Indices in range, each once: the communications sent, as sent.
    let hook = with_history("in order");
    let sent = hook.contact().communications.clone();
    let returned = strategy.invoke(&hook, &options()).await.result.expect("a valid result").expect("a contact");
    assert_eq!(returned.communications, vec![sent[1].clone(), sent[0].clone()]);
}

/// The contract's clock gives the call's time as microseconds since the
/// epoch, the time `datetime.now()` reads too.
#[tokio::test]
async fn works_when_the_contract_clock_and_datetime_now_agree() {
    let app = "from datetime import datetime\n\
        from wit_world import exports\n\
        from wit_world.imports import clock, types\n\
        class Hooks(exports.Hooks):\n\
        \x20   def data_load(self, campaign, contact, existing):\n\
        \x20       fields = dict(vars(contact), communications=[], name=f'{clock.now()} {datetime.now().isoformat()}')\n\
        \x20       return types.ReturnedContact(**fields)\n\
        \x20   def aggregation(self, campaign, contact, session_results):\n\
        \x20       raise NotImplementedError\n\
        \x20   def contact_answer(self, campaign, contact, message):\n\
        \x20       raise NotImplementedError\n";
    let bytes = crate::support::handmade_component(&crate::support::repo_root().join("wit"), "strategy", app);
    let (strategy, _) = crate::support::runtime().load(&bytes).expect("the contract's world loads");
    let hook = Hook::DataLoad { contact: crate::support::contact(json!({})), existing: None };
    let returned = strategy.invoke(&hook, &options()).await.result.expect("a valid result").expect("a contact");
    // options() runs the call at 2026-11-26T10:00:00Z.
    assert_eq!(returned.name, "1795687200000000 2026-11-26T10:00:00");
}

/// The Python library every guest imports from is read-only, and nothing
/// beside it is reachable through it.
#[tokio::test]
async fn errors_when_writing_to_or_climbing_out_of_the_python_library() {
    let (kind, message, _) = exception("write_library").await;
    assert_eq!((kind.as_str(), message.as_str()), ("PermissionError", "[Errno 63] Operation not permitted: '/python/json/__init__.py'"));
    let (kind, message, _) = exception("escape_library").await;
    assert_eq!((kind.as_str(), message.as_str()), ("PermissionError", "[Errno 63] Operation not permitted: '/python/../../etc/passwd'"));
}
