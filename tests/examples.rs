//! The examples run as processes, as `cargo run --example NAME` would run
//! them: each must end on its own, exit 0, and print its key lines.
//!
//! The examples are built once with `cargo build --example ..` (a no-op when
//! `cargo test` has built them already) and then run straight from their
//! binaries, so a hang guard can kill the example itself, not a `cargo`
//! wrapper. Every wait is bounded; nothing sleeps; children are killed on drop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Hang guard for one example run: far longer than any of them takes.
const GUARD: Duration = Duration::from_secs(60);

/// Hang guard for building the examples (a cold build on a slow machine).
const BUILD_GUARD: Duration = Duration::from_secs(900);

/// The examples this file runs.
const EXAMPLES: [&str; 3] = ["chat", "bidirectional", "failover"];

mod support;

use support::{Finished, Proc};

/// The example binaries, built once for every test here, by name.
fn binaries() -> &'static HashMap<String, PathBuf> {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--message-format=json"]);
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        for name in EXAMPLES {
            command.args(["--example", name]);
        }
        let build = Proc::spawn(command, "cargo build --example ..".into(), None).finish(BUILD_GUARD);
        assert_eq!(build.code, Some(0), "the examples build: {}", build.stderr);
        // Cargo names each executable it built (or found fresh) in its JSON messages.
        let mut binaries = HashMap::new();
        for line in &build.stdout {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let (Some(name), Some(executable)) = (message["target"]["name"].as_str(), message["executable"].as_str())
            else {
                continue;
            };
            if message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "example")) {
                binaries.insert(name.to_owned(), PathBuf::from(executable));
            }
        }
        binaries
    })
}

/// Runs an example to its end.
fn run_example(name: &str, args: &[&str]) -> Finished {
    let binary = binaries().get(name).unwrap_or_else(|| panic!("cargo built no example named {name}"));
    let mut command = Command::new(binary);
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = Proc::spawn(command, format!("example {name}"), None).finish(GUARD);
    assert_eq!(out.code, Some(0), "example {name} exits 0: {out:#?}");
    out
}

fn has_line(out: &Finished, test: impl Fn(&str) -> bool, what: &str) {
    assert!(out.stdout.iter().any(|l| test(l)), "expected a line {what}; got {out:#?}");
}

#[test]
fn chat_example_delivers_every_message_to_every_client_and_exits_0() {
    let out = run_example("chat", &[]);
    has_line(&out, |l| l.starts_with("chat hub on ws://127.0.0.1:"), "announcing the hub");
    has_line(&out, |l| l == "alice: Hi both!", "with alice's first message");
    has_line(&out, |l| l == "carol: Here! Lunch at noon?", "with carol's message");
    let heard = out.stdout.iter().filter(|l| l.trim() == "(reached 3; heard by alice, bob, carol)").count();
    assert_eq!(heard, 4, "each of the 4 messages reached all 3: {out:#?}");
    assert_eq!(out.stdout.last().map(String::as_str), Some("4 messages, each heard by all 3 people"));
}

#[test]
fn bidirectional_example_has_the_server_use_data_it_asked_the_client_for() {
    let out = run_example("bidirectional", &[]);
    has_line(
        &out,
        |l| l.contains(r#"client.name() answered "greenhouse-7""#),
        "with the server's call by connection id",
    );
    has_line(&out, |l| l == "client: the server asked for 4 readings", "with the client answering the server");
    has_line(&out, |l| l == "server: the client sent [21.5, 22.0, 22.5, 23.0]", "with the reply reaching the server");
    has_line(
        &out,
        |l| l == "client: report from the server: sensor greenhouse-7, 4 readings, average 22.25, max 23.0",
        "with the report built from the client's data",
    );
    has_line(&out, |l| l.contains("client.secrets() failed as expected") && l.contains("-32601"), "with -32601");
}

#[test]
fn failover_example_keeps_every_call_succeeding_while_a_server_stops_and_returns() {
    let out = run_example("failover", &[]);
    let phase = |prefix: &str| -> (usize, usize) {
        let line = out
            .stdout
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("a line starting {prefix:?}: {out:#?}"));
        let count = |who: &str| -> usize {
            let after = line.split(&format!("{who} answered")).nth(1).expect("a count");
            after.split(',').next().unwrap().trim().parse().expect("a number")
        };
        (count("A"), count("B"))
    };
    let (a1, b1) = phase("1. both servers up:");
    assert!(a1 > 0 && b1 > 0, "both took load: {out:#?}");
    let (a2, b2) = phase("2. B stopped halfway:");
    assert!(a2 > b2, "A took over: {out:#?}");
    let (a3, b3) = phase("3. B back:");
    assert!(a3 > 0 && b3 > 0, "B took load again: {out:#?}");
    has_line(&out, |l| l.contains("B restarted; the client reconnected to it in"), "reporting the reconnect");
    has_line(&out, |l| l.starts_with("B ws://") && l.contains("2 connections opened"), "B was connected twice");
    has_line(&out, |l| l == "all 120 calls succeeded; B took load again after coming back", "with no call lost");
}
