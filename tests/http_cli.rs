//! JSON-RPC over HTTP against a real `switchboard serve` process, driven by
//! curl the way a script or a health check would, and by `switchboard call
//! http://...`; over https with a certificate made at run time.
//!
//! Every wait is bounded: curl by `--max-time`, the processes by the hang
//! guard; the hub's first stdout line says when it listens. Children are
//! killed when their guard is dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

mod support;

use support::Proc;
use support::certs::TestCerts;

const GUARD: Duration = Duration::from_secs(60);
const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A `switchboard serve` process on a free port.
struct Hub {
    /// `http://127.0.0.1:PORT/` (or https://localhost:PORT/).
    url: String,
    _process: Proc,
}

impl Hub {
    fn start(extra: &[&str], scheme: &str) -> Hub {
        let mut command = Command::new(BIN);
        command.args(["serve", "--addr", "127.0.0.1:0"]).args(extra).env("RUST_LOG", "warn");
        let process = Proc::spawn(command, "switchboard serve".into(), None);
        let first = process.line(GUARD);
        let ws = first
            .strip_prefix("switchboard hub listening on ")
            .unwrap_or_else(|| panic!("unexpected first line of serve: {first:?}"));
        let port = ws.rsplit(':').next().unwrap().trim_end_matches('/');
        let host = if scheme == "https" { "localhost" } else { "127.0.0.1" };
        Hub { url: format!("{scheme}://{host}:{port}/"), _process: process }
    }
}

/// What curl got: the status code, the response head (lowercased) and the body.
struct Curled {
    status: u16,
    head: String,
    body: String,
}

impl Curled {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Runs curl with `args` against `url` (`-i`: the head comes first).
fn curl(url: &str, args: &[&str]) -> Curled {
    let output = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed (apt-get install curl)");
    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    // A `100 Continue` head may come first.
    let text = text.strip_prefix("HTTP/1.1 100 Continue\r\n\r\n").unwrap_or(&text);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {head}"));
    Curled { status, head: head.to_ascii_lowercase(), body: body.to_owned() }
}

const JSON: [&str; 2] = ["-H", "Content-Type: application/json"];

#[test]
fn curl_posts_a_call_a_batch_and_a_notification_to_switchboard_serve() {
    let hub = Hub::start(&[], "http");

    let call = curl(&hub.url, &[JSON[0], JSON[1], "-d", r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#]);
    assert_eq!(call.status, 200);
    assert!(call.head.contains("content-type: application/json"), "{}", call.head);
    assert_eq!(call.json(), json!({"jsonrpc": "2.0", "result": 5, "id": 1}));

    let batch = r#"[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1},
                    {"jsonrpc":"2.0","method":"echo","params":["hi"]},
                    {"jsonrpc":"2.0","method":"echo","params":["there"],"id":"b"}]"#;
    let batch = curl(&hub.url, &[JSON[0], JSON[1], "-d", batch]);
    assert_eq!(batch.status, 200);
    assert_eq!(
        batch.json(),
        json!([{"jsonrpc": "2.0", "result": 3, "id": 1}, {"jsonrpc": "2.0", "result": ["there"], "id": "b"}])
    );

    let notification = curl(&hub.url, &[JSON[0], JSON[1], "-d", r#"{"jsonrpc":"2.0","method":"echo","params":["x"]}"#]);
    assert_eq!(notification.status, 204);
    assert_eq!(notification.body, "");
}

#[test]
fn curl_gets_413_for_a_body_over_the_limit_and_415_for_the_wrong_content_type() {
    let hub = Hub::start(&[], "http");
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;

    let form = curl(&hub.url, &["-d", body]);
    assert_eq!(form.status, 415, "curl -d alone sends application/x-www-form-urlencoded");
    let text = curl(&hub.url, &["-H", "Content-Type: text/plain", "-d", body]);
    assert_eq!(text.status, 415);

    // Over the default max_message_size of 10 MiB.
    let file = std::env::temp_dir().join(format!("switchboard-big-{}.json", uuid::Uuid::new_v4()));
    let big = format!(r#"{{"jsonrpc":"2.0","method":"echo","params":["{}"],"id":1}}"#, "x".repeat(11 << 20));
    std::fs::write(&file, big).unwrap();
    let at_file = format!("@{}", file.display());
    let too_large = curl(&hub.url, &[JSON[0], JSON[1], "--data-binary", &at_file]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(too_large.status, 413);
    assert!(too_large.body.contains("10485760"), "{}", too_large.body);

    let put = curl(&hub.url, &["-X", "PUT"]);
    assert_eq!(put.status, 405);
    assert!(put.head.contains("allow: get, post, options"), "{}", put.head);
}

#[test]
fn curl_preflights_are_answered_for_the_allowed_origin_and_refused_for_others() {
    let app = "https://app.example";
    let hub = Hub::start(&["--cors-origin", app], "http");
    let preflight = |origin: &str| {
        curl(
            &hub.url,
            &[
                "-X",
                "OPTIONS",
                "-H",
                &format!("Origin: {origin}"),
                "-H",
                "Access-Control-Request-Method: POST",
                "-H",
                "Access-Control-Request-Headers: content-type",
            ],
        )
    };
    let allowed = preflight(app);
    assert_eq!(allowed.status, 204);
    assert!(allowed.head.contains(&format!("access-control-allow-origin: {app}")), "{}", allowed.head);
    assert!(allowed.head.contains("access-control-allow-methods: post"), "{}", allowed.head);
    assert!(allowed.head.contains("access-control-allow-headers: content-type"), "{}", allowed.head);
    assert!(allowed.head.contains("access-control-max-age: 600"), "{}", allowed.head);

    let refused = preflight("https://evil.example");
    assert_eq!(refused.status, 403);
    assert!(!refused.head.contains("access-control-allow-origin"), "{}", refused.head);

    let origin = format!("Origin: {app}");
    let call = curl(
        &hub.url,
        &[JSON[0], JSON[1], "-H", &origin, "-d", r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#],
    );
    assert_eq!(call.status, 200);
    assert!(call.head.contains(&format!("access-control-allow-origin: {app}")), "{}", call.head);
}

#[test]
fn curl_calls_over_https_with_the_hubs_ca() {
    let certs = TestCerts::make();
    let (cert, key) = (certs.cert_file(), certs.key_file());
    let hub = Hub::start(&["--tls-cert", &path(&cert), "--tls-key", &path(&key)], "https");
    let cacert = path(&certs.ca_file());
    let call = curl(
        &hub.url,
        &["--cacert", &cacert, JSON[0], JSON[1], "-d", r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#],
    );
    assert_eq!(call.status, 200);
    assert_eq!(call.json()["result"], 5);

    // Without the CA, curl refuses the certificate.
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "30", JSON[0], JSON[1], "-d", "{}"])
        .arg(&hub.url)
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
}

#[test]
fn switchboard_call_works_over_http_and_https() {
    let hub = Hub::start(&[], "http");
    let mut call = run(&["call", &hub.url, "add", "[2, 3]"]);
    assert_eq!((call.code, call.stdout.as_slice()), (Some(0), ["5".to_owned()].as_slice()), "{}", call.stderr);
    call = run(&["call", &hub.url, "no_such_method"]);
    assert_eq!(call.code, Some(1), "an error answer exits 1");
    assert!(call.stdout[0].contains("-32601"), "{:?}", call.stdout);
    let notify = run(&["notify", &hub.url, "echo", "[1]"]);
    assert_eq!(notify.code, Some(0), "{}", notify.stderr);
    let subscribe = run(&["call", &hub.url, "rpc.subscribe", r#"["clock"]"#]);
    assert_eq!(subscribe.code, Some(1));
    assert!(subscribe.stdout[0].contains("-32004"), "{:?}", subscribe.stdout);

    let certs = TestCerts::make();
    let (cert, key) = (certs.cert_file(), certs.key_file());
    let secure = Hub::start(&["--tls-cert", &path(&cert), "--tls-key", &path(&key)], "https");
    let call = run(&["call", &secure.url, "add", "[20, 22]", "--cacert", &path(&certs.ca_file())]);
    assert_eq!((call.code, call.stdout.as_slice()), (Some(0), ["42".to_owned()].as_slice()), "{}", call.stderr);
    let untrusted = run(&["call", &secure.url, "add", "[1, 1]"]);
    assert_eq!(untrusted.code, Some(3));
    assert!(untrusted.stderr.contains("TLS handshake failed"), "{}", untrusted.stderr);
}

fn run(args: &[&str]) -> support::Finished {
    let mut command = Command::new(BIN);
    command.args(args).env("RUST_LOG", "warn");
    Proc::spawn(command, format!("switchboard {}", args.join(" ")), None).finish(GUARD)
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
