//! `switchboard serve` on several interfaces at once (`--addr` and repeated
//! `--listen`), and `switchboard call` / `switchboard listen` over `tcp://`
//! and `unix:` URLs; all real processes.
//!
//! Every wait is on an event (a line of a child's stdout, a child's exit),
//! bounded by a generous hang guard. Children are killed when dropped.
#![cfg(unix)]

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod support;

use support::{Finished, Proc};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

/// The binary under test, built by cargo for these tests.
const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn switchboard(args: &[&str]) -> Proc {
    let mut command = Command::new(BIN);
    command.args(args).env("RUST_LOG", "warn");
    Proc::spawn(command, format!("switchboard {}", args.join(" ")), None)
}

fn run(args: &[&str]) -> Finished {
    switchboard(args).finish(GUARD)
}

#[test]
fn serve_on_ws_tcp_and_unix_answers_call_and_listen_over_each() {
    let dir = std::env::temp_dir().join(format!("sb-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let socket = dir.join("hub.sock");
    let unix = format!("unix:{}", socket.display());
    let mut serve =
        switchboard(&["serve", "--addr", "127.0.0.1:0", "--listen", "tcp://127.0.0.1:0", "--listen", &unix]);
    let mut urls = Vec::new();
    for _ in 0..3 {
        let line = serve.line(GUARD);
        let url = line.strip_prefix("switchboard hub listening on ").unwrap_or_else(|| panic!("{line:?}"));
        urls.push(url.to_owned());
    }
    assert!(urls[0].starts_with("ws://127.0.0.1:"), "{urls:?}");
    assert!(urls[1].starts_with("tcp://127.0.0.1:") && !urls[1].ends_with(":0"), "the bound port: {urls:?}");
    assert_eq!(urls[2], unix);

    for url in &urls {
        let out = run(&["call", url, "add", "[2, 3]"]);
        assert_eq!((out.code, out.stdout.clone()), (Some(0), vec!["5".to_owned()]), "{url}: {out:#?}");
        let out = run(&["call", url, "no_such_method"]);
        assert_eq!(out.code, Some(1), "{url}: {out:#?}");
    }

    // The demo hub publishes the time every second on `clock`.
    let listen = switchboard(&["listen", &unix, "--topic", "clock"]);
    let tick: Value = serde_json::from_str(&listen.line(GUARD)).expect("a JSON line");
    assert!(tick.to_string().contains("unix_ms"), "{tick}");
    drop(listen);

    let status = Command::new("kill").args(["-INT", &serve.child().id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = serve.finish(GUARD);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(!socket.exists(), "the socket file is removed at stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_listen_url_is_a_usage_error() {
    let out = run(&["serve", "--listen", "udp://127.0.0.1:9"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(out.stderr.contains("is not served here"), "{out:#?}");
}

#[test]
fn call_to_a_unix_socket_nobody_serves_exits_3() {
    let out = run(&["call", "unix:/nonexistent/switchboard.sock", "add", "[1, 2]"]);
    assert_eq!(out.code, Some(3), "{out:#?}");
    assert!(out.stderr.starts_with("switchboard: could not connect to unix:/nonexistent/switchboard.sock"), "{out:#?}");
}
