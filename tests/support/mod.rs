//! Child processes for the end-to-end tests: stdout line by line as it
//! comes, stderr once it ends, every wait bounded, killed and reaped on drop.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A running child process.
pub struct Proc {
    what: String,
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

/// How a process ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Proc {
    /// Starts `command` (named `what` in failures), writing `stdin` to it and
    /// closing it (small inputs fit in the pipe's buffer).
    pub fn spawn(mut command: Command, what: String, stdin: Option<&str>) -> Proc {
        let mut child = command
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        let (line_tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        Proc { what, child, stdout, stderr }
    }

    /// The next line the process prints, waiting at most `guard`.
    pub fn line(&self, guard: Duration) -> String {
        match self.stdout.recv_timeout(guard) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("{}: no line on stdout within {guard:?}", self.what),
            Err(RecvTimeoutError::Disconnected) => {
                let stderr = self.stderr.recv_timeout(guard).unwrap_or_default();
                panic!("{}: stdout ended; stderr: {stderr}", self.what)
            }
        }
    }

    /// Waits, at most `guard`, for the process to end (its pipes close), then reaps it.
    pub fn finish(&mut self, guard: Duration) -> Finished {
        let deadline = Instant::now() + guard;
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut stdout = Vec::new();
        loop {
            match self.stdout.recv_timeout(left()) {
                Ok(line) => stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{} did not end within {guard:?}; printed so far: {stdout:#?}", self.what)
                }
            }
        }
        let stderr = self.stderr.recv_timeout(left()).unwrap_or_else(|_| panic!("{}: stderr stayed open", self.what));
        // Both pipes closed: the process is exiting, so this returns at once.
        let status = self.child.wait().expect("wait for the child");
        Finished { code: status.code(), stdout, stderr }
    }

    /// The child itself (to signal it).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
pub mod certs;
pub mod logs;
pub mod redis;
