//! The log setup of Switchboard's own programs (`switchboard serve`, the
//! examples), for programs that want the same.
//!
//! - The level comes from `RUST_LOG` (e.g. `RUST_LOG=debug`, or
//!   `RUST_LOG=switchboard::server=debug`), else a default; per-connection
//!   open and close lines are at `debug`, so `info` shows one line per
//!   server event, not per client.
//! - The WebSocket library's own records (`tungstenite`, `tokio_tungstenite`,
//!   through the `log` crate) are kept at `info` and above whatever
//!   `RUST_LOG` says: at `debug` and `trace` they print frames and upgrade
//!   requests whole, credentials (`Authorization`, `?token=`, `rpc.refresh`
//!   answers) included. Keep them there in your own setup too.
//! - Lines are plain text (no colour codes) unless standard error is a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// The targets whose records may hold credentials below `info`.
pub const NOISY_TARGETS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// `RUST_LOG` (or `default`, e.g. `"info"`, when it is unset or invalid),
/// with [`NOISY_TARGETS`] capped at `info`.
pub fn filter(default: &str) -> EnvFilter {
    capped(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
}

/// `directives` (`RUST_LOG` syntax, e.g. `"debug,switchboard::call=trace"`)
/// with [`NOISY_TARGETS`] capped at `info`; invalid directives are skipped.
pub fn filter_from(directives: &str) -> EnvFilter {
    capped(EnvFilter::new(directives))
}

/// `filter` with [`NOISY_TARGETS`] capped at `info`.
fn capped(mut filter: EnvFilter) -> EnvFilter {
    for target in NOISY_TARGETS {
        let directive: Directive = format!("{target}=info").parse().expect("a valid directive");
        filter = filter.add_directive(directive);
    }
    filter
}

/// Logs to standard error with [`filter`]`(default)`: plain text unless
/// standard error is a terminal. Does nothing when a subscriber is already set.
pub fn init_stderr(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

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

    /// What the subscriber made with `directives` writes of one record per target and level.
    fn logged(directives: &str) -> String {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(capped(EnvFilter::new(directives)))
            .with_writer(buffer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "tungstenite::protocol", "tungstenite trace");
            tracing::info!(target: "tungstenite::protocol", "tungstenite info");
            tracing::trace!(target: "tokio_tungstenite", "tokio_tungstenite trace");
            tracing::trace!(target: "switchboard::server", "switchboard trace");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_websocket_library_stays_at_info_whatever_the_directives_say() {
        for directives in ["trace", "tungstenite=trace,tokio_tungstenite=trace,trace", "debug,tungstenite=trace"] {
            let out = logged(directives);
            assert!(!out.contains("tungstenite trace"), "{directives}: {out}");
            assert!(!out.contains("tokio_tungstenite trace"), "{directives}: {out}");
            assert!(out.contains("tungstenite info"), "{directives}: {out}");
        }
        assert!(logged("trace").contains("switchboard trace"), "other targets keep the level asked for");
        assert!(!logged("trace").contains('\x1b'), "plain text");
    }
}
