//! The dashboard's typed wrapper (`examples/dashboard/api.js` and
//! `api.d.ts`, which the page and the TypeScript check use) is what
//! `switchboard codegen ts` makes of the running example's own discovery
//! document: generated again from the live hub, it must equal the checked-in
//! files, so they cannot go stale (`SWITCHBOARD_BLESS=1` rewrites them).
//!
//! The example is built with `cargo build --example dashboard` (a no-op when
//! `cargo test` has built it already) and run straight from its binary, so
//! the hang guard kills the example itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod support;

use support::Proc;

/// Hang guard for one process: far longer than it takes.
const GUARD: Duration = Duration::from_secs(60);

/// Hang guard for building the example (a cold build on a slow machine).
const BUILD_GUARD: Duration = Duration::from_secs(900);

/// What the checked-in declarations import the client's types from, as seen from `examples/dashboard/`.
const CLIENT_MODULE: &str = "../../client/js/switchboard.js";

/// Builds the example; returns its executable.
fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--message-format=json", "--example", "dashboard"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let build = Proc::spawn(command, "cargo build --example dashboard".into(), None).finish(BUILD_GUARD);
    assert_eq!(build.code, Some(0), "the example builds: {}", build.stderr);
    build
        .stdout
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|message| message["target"]["name"] == "dashboard" && message["executable"].is_string())
        .and_then(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_checked_in_dashboard_api_is_what_codegen_makes_of_the_live_hub() {
    let mut command = Command::new(build());
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args(["--addr", "127.0.0.1:0", "--ask-every", "0"]);
    let dashboard = Proc::spawn(command, "example dashboard".into(), None);
    let first = dashboard.line(GUARD);
    let page = first.strip_prefix("dashboard listening on ").unwrap_or_else(|| panic!("unexpected line {first:?}"));
    let hub = format!("{}rpc", page.replacen("http://", "ws://", 1));

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard_api");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let generated = dir.join("api.js");
    let mut codegen = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    codegen.args(["codegen", "ts", &hub, "-o", generated.to_str().unwrap(), "--import", CLIENT_MODULE]);
    let out = Proc::spawn(codegen, "switchboard codegen ts".into(), None).finish(GUARD);
    assert_eq!(out.code, Some(0), "{out:#?}");
    drop(dashboard);

    let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/dashboard");
    for name in ["api.js", "api.d.ts"] {
        let fresh = read(&dir.join(name));
        let path = checked_in.join(name);
        if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
            std::fs::write(&path, &fresh).expect("write the checked-in file");
        }
        assert!(
            read(&path) == fresh,
            "examples/dashboard/{name} is stale: the dashboard's API changed. Generate it again with \
             `SWITCHBOARD_BLESS=1 cargo test --test dashboard_api` (or `switchboard codegen ts {hub} -o \
             examples/dashboard/api.js --import {CLIENT_MODULE}`) and commit it. What the hub gives now:\n{fresh}"
        );
    }
    // The page's own API is in it, typed.
    let declarations = read(&dir.join("api.d.ts"));
    assert!(declarations.contains("ask_browsers(options?: CallOptions<BrowsersReport>): Promise<BrowsersReport>;"));
    assert!(declarations.contains("metrics: Topic<Metrics>;"));
    assert!(
        declarations.contains("info(asked_at: number, context: MethodContext): BrowserInfo | Promise<BrowserInfo>;")
    );
}
