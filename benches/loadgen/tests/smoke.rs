//! End-to-end check of the tools, not of any speed: the load generator's
//! modes run against the raw baseline on loopback, and `http-calls`
//! against a small HTTP/1.1 JSON-RPC echo server written here, and must
//! report a clean `RESULT` line. No figure is asserted.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
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
fn the_baseline_fans_every_publication_out_to_every_plain_subscriber() {
    let (server, url) = start_baseline();
    let pid = server.0.id().to_string();
    for rate in ["0", "200"] {
        let v = loadgen(&[
            "fanout", "--url", &url, "-c", "20", "-n", "50", "--rounds", "2", "--kind", "plain", "--rate", rate,
            "--pid", &pid,
        ]);
        assert_eq!(v["deliveries"], 20 * 50 * 2);
        assert!(v["kinds"]["plain"]["latency_us"]["p50"].as_f64().unwrap() > 0.0, "{v}");
    }
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

/// Answers one connection's POSTs (pipelined ones too, in order) with the
/// JSON-RPC echo of their params, until the client closes.
fn serve_http(mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // Answer every whole request in the buffer, then read more.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(head)) = request.parse(&buf) else { break };
            let len: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .expect("a Content-Length");
            if buf.len() < head + len {
                break;
            }
            let call: serde_json::Value = serde_json::from_slice(&buf[head..head + len]).expect("a JSON body");
            let answer = serde_json::json!({"jsonrpc": "2.0", "result": call["params"], "id": call["id"]}).to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if stream.write_all(response.as_bytes()).is_err() {
                return;
            }
            buf.drain(..head + len);
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn http_calls_pipelined_on_keep_alive_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve_http(stream));
        }
    });
    let v = loadgen(&[
        "http-calls",
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
    ]);
    assert_eq!(v["mode"], "http-calls");
    assert_eq!(v["connections"], 2);
    assert!(v["calls"].as_u64().unwrap() > 0);
    assert_eq!(v["errors"], 0);
}

#[test]
fn each_mode_refuses_the_other_protocols_urls_and_tls_without_a_ca() {
    for (args, says) in [
        (&["http-calls", "--url", "ws://127.0.0.1:9/"][..], "http-calls takes http:// or https:// URLs"),
        (&["calls", "--url", "http://127.0.0.1:9/"][..], "calls takes ws:// or wss:// URLs"),
        (&["calls", "--url", "wss://127.0.0.1:9/"][..], "TLS needs --ca FILE"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen")).args(args).output().expect("run loadgen");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("RESULT ") && stdout.contains("\"ok\":false") && stdout.contains(says),
            "{args:?}: {stdout}"
        );
    }
}

#[test]
fn gen_cert_writes_a_ca_a_certificate_and_a_key() {
    let dir = std::env::temp_dir().join(format!("loadgen-certs-{}", std::process::id()));
    let v = loadgen(&["gen-cert", "--out", dir.to_str().unwrap()]);
    for (field, begins) in [
        ("ca", "-----BEGIN CERTIFICATE-----"),
        ("cert", "-----BEGIN CERTIFICATE-----"),
        ("key", "-----BEGIN PRIVATE KEY-----"),
    ] {
        let path = v[field].as_str().expect("a path");
        let pem = std::fs::read_to_string(path).expect("the file was written");
        assert!(pem.starts_with(begins), "{field}: {pem}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
