//! `loadgen fanout` against a small topic hub written here (blocking
//! tungstenite, one thread per connection): every subscriber must count
//! every publication, and a hub that loses a publication or skips a
//! positioned offset must fail the run with a definite error, not hang or
//! pass. No figure is asserted. The hub writes each frame in two pieces so
//! the generator also meets frames split across reads.

use std::{
    collections::HashMap,
    io::Write,
    net::{TcpListener, TcpStream},
    process::Command,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

/// How the hub misbehaves, if at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The publication with this offset is not sent to anybody.
    Lose(u64),
    /// Positioned publications from this offset on carry offset + 1.
    SkipOffsetAt(u64),
}

type Conn = Arc<Mutex<TcpStream>>;

#[derive(Default)]
struct Topic {
    next_offset: u64,
    subscribers: Vec<(Conn, bool)>,
}

/// Writes one unmasked text frame, in two writes.
fn send(conn: &Conn, text: &str) {
    let mut frame = vec![0x81];
    match text.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= 0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(text.as_bytes());
    let mut s = conn.lock().unwrap();
    let half = frame.len() / 2;
    // A subscriber that went away is not this hub's failure to report.
    let _ = s.write_all(&frame[..half]).and_then(|()| s.write_all(&frame[half..]));
}

fn serve(stream: TcpStream, topics: Arc<Mutex<HashMap<String, Topic>>>, fault: Fault) {
    stream.set_nodelay(true).unwrap();
    let Ok(mut ws) = tungstenite::accept(stream) else { return };
    let conn: Conn = Arc::new(Mutex::new(ws.get_ref().try_clone().unwrap()));
    while let Ok(msg) = ws.read() {
        let Message::Text(text) = msg else { continue };
        let call: Value = serde_json::from_str(text.as_str()).unwrap();
        let params = &call["params"];
        let result = match call["method"].as_str().unwrap() {
            "rpc.subscribe" => {
                let (topic, positioned) = match params {
                    Value::Array(a) => (a[0].as_str().unwrap().to_owned(), false),
                    p => (p["topic"].as_str().unwrap().to_owned(), p["positioned"] == true),
                };
                topics.lock().unwrap().entry(topic).or_default().subscribers.push((conn.clone(), positioned));
                json!({"epoch": "e0"})
            }
            "publish" => {
                let (name, method, inner) = (params[0].as_str().unwrap(), &params[1], &params[2]);
                let mut topics = topics.lock().unwrap();
                let topic = topics.entry(name.to_owned()).or_default();
                let offset = topic.next_offset;
                topic.next_offset += 1;
                if fault != Fault::Lose(offset) {
                    let shown = match fault {
                        Fault::SkipOffsetAt(at) if offset >= at => offset + 1,
                        _ => offset,
                    };
                    let plain = json!({"jsonrpc": "2.0", "method": method, "params": inner}).to_string();
                    let positioned = json!({"jsonrpc": "2.0", "method": "rpc.publication", "params":
                        {"topic": name, "epoch": "e0", "offset": shown, "method": method, "params": inner}})
                    .to_string();
                    for (sub, is_positioned) in &topic.subscribers {
                        send(sub, if *is_positioned { &positioned } else { &plain });
                    }
                }
                json!({"epoch": "e0", "offset": offset})
            }
            other => panic!("the hub does not serve {other}"),
        };
        send(&conn, &json!({"jsonrpc": "2.0", "result": result, "id": call["id"]}).to_string());
    }
}

/// Starts a hub on a free port; returns its ws:// URL. Its threads end with
/// the test process.
fn start_hub(fault: Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let topics = Arc::new(Mutex::new(HashMap::new()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let topics = topics.clone();
            std::thread::spawn(move || serve(stream, topics, fault));
        }
    });
    url
}

/// Runs `loadgen fanout` with `args`; its exit status and RESULT.
fn fanout(args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen")).arg("fanout").args(args).output().expect("run loadgen");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RESULT ")).collect();
    assert_eq!(lines.len(), 1, "exactly one RESULT line, got: {stdout}");
    (out.status.success(), serde_json::from_str(&lines[0]["RESULT ".len()..]).expect("RESULT is JSON"))
}

#[test]
fn every_subscriber_counts_every_publication_plain_and_positioned() {
    let url = start_hub(Fault::None);
    let (ok, v) = fanout(&["--url", &url, "-c", "20", "-n", "300", "-k", "8", "--rounds", "2", "--kind", "both"]);
    assert!(ok, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["deliveries"], 20 * 300 * 2 * 2);
    assert_eq!(v["expected"], v["deliveries"]);
    for kind in ["plain", "positioned"] {
        let k = &v["kinds"][kind];
        assert!(k["deliveries_per_sec"].as_f64().unwrap() > 0.0, "{kind}: {k}");
        // Every publication is stamped: the latency is measured, not zero.
        let p50 = k["latency_us"]["p50"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= k["latency_us"]["max"].as_f64().unwrap(), "{kind}: {k}");
        assert!(k["client_ns_per_delivery"].as_f64().unwrap() > 0.0, "{kind}: {k}");
    }
}

#[test]
fn a_fixed_rate_run_publishes_at_that_rate() {
    let url = start_hub(Fault::None);
    let (ok, v) = fanout(&["--url", &url, "-c", "5", "-n", "40", "--rounds", "1", "--kind", "plain", "--rate", "200"]);
    assert!(ok, "{v}");
    // 40 publications at 200/s take at least 195 ms: never faster than asked.
    let rate = v["kinds"]["plain"]["publishes_per_sec"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 205.0, "publishes/s {rate}");
}

#[test]
fn a_positioned_offset_that_skips_fails_the_run() {
    let url = start_hub(Fault::SkipOffsetAt(17));
    let (ok, v) = fanout(&["--url", &url, "-c", "3", "-n", "50", "--rounds", "1", "--kind", "positioned"]);
    assert!(!ok);
    assert_eq!(v["ok"], false);
    let e = v["first_error"].as_str().unwrap();
    assert!(e.starts_with("unexpected message") && e.contains(r#""offset":18"#), "{e}");
}

#[test]
fn a_lost_publication_ends_the_run_with_an_error_at_the_timeout() {
    let url = start_hub(Fault::Lose(7));
    let (ok, v) = fanout(&["--url", &url, "-c", "3", "-n", "20", "--rounds", "1", "--kind", "plain", "--timeout", "2"]);
    assert!(!ok);
    assert_eq!(v["deliveries"], 3 * 19);
    let e = v["first_error"].as_str().unwrap();
    assert_eq!(e, "timed out with 19 of 20 publications");
}
