//! Settings that weaken a default say so in the log when the server is built.

use std::sync::{Arc, Mutex};

use switchboard::server::{OriginPolicy, Server};
use switchboard::shared::Methods;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What building a server with `policy` logs.
fn logged_when_built(policy: OriginPolicy) -> String {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt().with_writer(buffer.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, || drop(Server::builder().origins(policy).build(Methods::new())));
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn origin_policy_any_logs_a_warning_when_the_server_is_built() {
    let logged = logged_when_built(OriginPolicy::Any);
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains("origin policy Any: a page from any web site may open a connection"), "{logged}");
    assert_eq!(logged_when_built(OriginPolicy::SameOrigin), "", "the default logs nothing");
}
