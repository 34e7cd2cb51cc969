//! A throwaway `redis-server` per test: its own free loopback port, no
//! persistence, killed and reaped on drop. Tests that need Redis say
//! `mod support;` and `use support::redis::RedisServer;`.
//!
//! `scripts/test.sh` installs `redis-server` (Debian's package) when it is
//! missing, so a test that cannot find it fails loudly instead of skipping.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long `redis-server` may take to say it is ready (a generous hang guard).
const READY_GUARD: Duration = Duration::from_secs(20);

/// A running `redis-server` on 127.0.0.1.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a fresh server on a free loopback port (retrying on another
    /// port when the one picked was taken meanwhile).
    pub fn start() -> RedisServer {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(port) {
                Ok(child) => return RedisServer { port, child: Some(child) },
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}")
    }

    /// `redis://127.0.0.1:PORT`, for brokers and for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it with SIGKILL (what a crash looks like to its clients) and
    /// waits until it is gone. Its data is gone with it (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        // The port was just freed; a few tries cover a slow kernel.
        for _ in 0..50 {
            match spawn(self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(why) => last = why,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}: {last}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

/// Starts `redis-server` on `port` and waits for its "Ready to accept
/// connections" line; the error says what it printed instead.
fn spawn(port: u16) -> Result<Child, String> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "yes", "--loglevel", "notice"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run redis-server (scripts/test.sh installs it): {e}"))?;
    let out = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains("Ready to accept connections") {
                let _ = tx.send(Ok(()));
                // Keep draining so redis never blocks on a full pipe.
                continue;
            }
            seen.push(line);
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(READY_GUARD) {
        Ok(Ok(())) => Ok(child),
        Ok(Err(printed)) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("redis-server on port {port} exited: {printed}"))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("redis-server on port {port} was not ready within {READY_GUARD:?}"))
        }
    }
}
