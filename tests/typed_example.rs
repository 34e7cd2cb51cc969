//! `examples/typed.rs` runs as a process, as `cargo run --example typed`
//! would run it: it must end on its own, exit 0, and print its key lines.
//!
//! The example is built with `cargo build --example typed` (a no-op when
//! `cargo test` has built it already) and then run straight from its
//! binary, so the hang guard kills the example itself. Every wait is
//! bounded; nothing sleeps; the child is killed on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod support;

use support::Proc;

/// Hang guard for the run: far longer than it takes.
const GUARD: Duration = Duration::from_secs(60);

/// Hang guard for building the example (a cold build on a slow machine).
const BUILD_GUARD: Duration = Duration::from_secs(900);

/// Builds the example; returns its executable.
fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--message-format=json", "--example", "typed"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let build = Proc::spawn(command, "cargo build --example typed".into(), None).finish(BUILD_GUARD);
    assert_eq!(build.code, Some(0), "the example builds: {}", build.stderr);
    build
        .stdout
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|message| message["target"]["name"] == "typed" && message["executable"].is_string())
        .and_then(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}

#[test]
fn typed_example_calls_both_ways_and_exits_0() {
    let mut command = Command::new(build());
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = Proc::spawn(command, "example typed".into(), None).finish(GUARD);
    assert_eq!(out.code, Some(0), "example typed exits 0: {out:#?}");
    let has = |want: &str| {
        assert!(out.stdout.iter().any(|l| l.starts_with(want)), "expected a line starting {want:?}: {out:#?}");
    };
    has("client: station.add(2, 3) = 5");
    has("client: by name, positional 42, named 42");
    has("client: a string for b: -32602 param `b`: invalid type: string \"two\", expected i64");
    has("server: logged \"hello from the greenhouse\"");
    has("client: report: sensor greenhouse-7, 4 readings, average 22.25");
    has("server: sensor.readings(2) on ");
    has("discover: station.add(a: integer, b: integer) -> integer  Adds two integers; -32000 on overflow.");
    has("discover (client): sensor.readings(count: integer) -> number[]  The latest readings in °C, oldest first.");
    has("done: both directions typed, over one socket");
}
