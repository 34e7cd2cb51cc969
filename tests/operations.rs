//! `switchboard serve` operated as a production hub: its operations port
//! (`--metrics-addr`, and the hub's own port) counts the calls made to it, and `--log-format json`
//! writes one JSON object per log line, the audit log of every call
//! included. The hub runs as a process; every wait is bounded by a hang
//! guard, and the process is killed when its guard is dropped.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value as Measured};
use serde_json::Value;
use support::Proc;
use switchboard::server::NotReady;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

/// The binary under test, built by cargo for these tests.
const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// One `GET` with `Connection: close`; the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the operations port");
    stream.set_read_timeout(Some(GUARD)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, body.to_owned())
}

#[cfg(unix)]
#[test]
fn serve_counts_calls_on_its_metrics_port_and_writes_json_logs_with_the_audit_trail() {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "info,switchboard::audit=info");
    let mut hub = Proc::spawn(command, "switchboard serve".into(), None);
    let url = hub.line(GUARD).strip_prefix("switchboard hub listening on ").expect("the hub's URL first").to_owned();
    let metrics = loop {
        let line = hub.line(GUARD);
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.split_once('/').expect("http://ADDR/metrics").0.to_owned();
        }
    };

    for params in ["[2, 3]", "[4, 5]"] {
        let call = Command::new(BIN).args(["call", &url, "add", params]).env("RUST_LOG", "warn").output().unwrap();
        assert!(call.status.success(), "{call:?}");
    }
    let (status, body) = get(&metrics, "/metrics");
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("the Prometheus text format");
    let adds: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "switchboard_calls_total" && s.labels.get("method") == Some("add"))
        .filter(|s| s.labels.get("outcome") == Some("ok"))
        .collect();
    assert_eq!(adds.len(), 1, "{body}");
    assert_eq!(adds[0].value, Measured::Counter(2.0), "{body}");
    assert_eq!(get(&metrics, "/readyz"), (200, "ready\n".to_owned()));
    // The hub's own port answers them too.
    let hub_addr = url.trim_start_matches("ws://").trim_end_matches('/');
    assert_eq!(get(hub_addr, "/healthz"), (200, "ok\n".to_owned()));
    assert!(get(hub_addr, "/metrics").1.contains("switchboard_calls_total{"));

    let interrupted = Command::new("kill").args(["-INT", &hub.child().id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let out = hub.finish(GUARD);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let lines: Vec<Value> = out
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "listening"), "{lines:#?}");
    let audited: Vec<&Value> =
        lines.iter().filter(|l| l["target"] == "switchboard::audit" && l["fields"]["method"] == "add").collect();
    assert_eq!(audited.len(), 2, "{lines:#?}");
    for line in audited {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["outcome"], "ok");
        assert_eq!(line["fields"]["direction"], "incoming");
        assert!(line["fields"]["connection"].as_str().is_some_and(|id| id.len() == 36), "{line}");
        assert!(line["fields"]["duration_us"].is_u64(), "{line}");
    }
}

/// The sum of the samples of `metric` (0 when it has none yet).
fn total(text: &str, metric: &str) -> f64 {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the Prometheus text format");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match s.value {
            Measured::Counter(v) | Measured::Gauge(v) | Measured::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn readiness_follows_redis_and_the_redis_broker_reports_publishes_failures_and_reconnects() {
    use switchboard::server::{RedisBroker, Server};
    use switchboard::shared::Methods;

    let mut redis = support::redis::RedisServer::start();
    let broker =
        RedisBroker::builder(redis.url()).timeout(Duration::from_millis(500)).connect().await.expect("Redis is up");
    let server = Server::builder().broker(broker).build(Methods::new()).listen("127.0.0.1:0").await.unwrap();
    // A subscriber: the broker keeps a subscription connection to Redis for its topic.
    let client = switchboard::client::Client::connect(&format!("ws://{}/", server.local_addr().unwrap()))
        .await
        .expect("connect");
    let _subscription = client.subscribe("t").await.expect("subscribe");
    for n in 0..3 {
        server.publish("t", "tick", [n]).expect("publish").await.expect("published through Redis");
    }
    assert_eq!(server.readiness().await, Ok(()));

    redis.kill();
    let down = server.readiness().await.expect_err("Redis is gone");
    assert!(matches!(down, NotReady::BrokerUnavailable(_) | NotReady::BrokerTimedOut), "{down}");
    server.publish("t", "tick", [9]).expect("publish").await.expect_err("Redis is gone");

    redis.restart();
    let deadline = Instant::now() + GUARD;
    loop {
        let text = server.metrics_text().expect("metrics are on");
        if server.readiness().await.is_ok() && total(&text, "switchboard_broker_reconnects_total") >= 1.0 {
            assert_eq!(total(&text, "switchboard_broker_publish_duration_seconds_count"), 3.0, "{text}");
            let failures = total(&text, "switchboard_broker_errors_total");
            assert!(failures >= 1.0, "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready again, or no reconnect counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await;
}
