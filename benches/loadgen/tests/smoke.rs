//! End-to-end check of the tools, not of any speed: the load generator's
//! three modes run against the raw baseline on loopback and must report a
//! clean `RESULT` line. No figure is asserted.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the raw baseline on a free port; returns it and its ws:// URL.
fn start_baseline() -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raw_baseline"))
        .args(["--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start raw_baseline");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).expect("read the listening line");
    let url = line.trim().rsplit(' ').next().expect("an address").to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "unexpected first line: {line}");
    (Server(child), url)
}

fn loadgen(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen")).args(args).output().expect("run loadgen");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RESULT ")).collect();
    assert_eq!(lines.len(), 1, "exactly one RESULT line, got: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]["RESULT ".len()..]).expect("RESULT is JSON");
    assert_eq!(v["ok"], true, "run failed: {v}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    v
}

#[test]
fn calls_flood_and_idle_against_the_baseline() {
    let (server, url) = start_baseline();
    let pid = server.0.id().to_string();
    for engine in ["lean", "tungstenite"] {
        let v = loadgen(&[
            "calls",
            "--url",
            &url,
            "-c",
            "2",
            "-k",
            "4",
            "--bytes",
            "300",
            "--seconds",
            "0.3",
            "--warmup",
            "0.1",
            "--engine",
            engine,
            "--pid",
            &pid,
        ]);
        assert!(v["calls"].as_u64().unwrap() > 0);
        assert_eq!(v["errors"], 0);
        let v = loadgen(&[
            "flood", "--url", &url, "-c", "3", "-n", "500", "--bytes", "70000", "--rounds", "2", "--engine", engine,
        ]);
        assert_eq!(v["notifications"], 3000);
    }
    let v = loadgen(&["idle", "--url", &url, "-c", "50", "--hold", "0.1", "--pid", &pid]);
    assert_eq!(v["connections"], 50);
}

#[test]
fn refuses_non_loopback_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["calls", "--url", "ws://192.0.2.1:9000/", "--seconds", "0.1"])
        .output()
        .expect("run loadgen");
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("RESULT ") && stdout.contains("\"ok\":false"), "{stdout}");
}
