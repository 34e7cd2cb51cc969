//! The operators' options of `switchboard serve`: the log format, and the
//! port that serves `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use switchboard::server::ServerHandle;

use crate::{Failure, Outcome};

/// How log lines are written (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (the message and the event's fields).
    Json,
}

/// `switchboard serve`'s options for operating the hub.
#[derive(Debug, Args)]
pub(crate) struct Operations {
    /// Also serve `GET /metrics` (Prometheus), `/healthz` and `/readyz` on this address (the hub's
    /// own port answers them too; port 0 picks one, its URL is printed after the hub's). It keeps
    /// answering while the hub drains, so `/readyz` turns 503 there as soon as a shutdown begins.
    #[cfg(feature = "http")]
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Log format on stderr. RUST_LOG filters as usual (default `info`); the audit log of every
    /// call is the target `switchboard::audit`, off unless RUST_LOG names it
    /// (`RUST_LOG=info,switchboard::audit=info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

impl Operations {
    /// Installs the logger: RUST_LOG, or `info` without the audit log.
    pub(crate) fn init_logs(&self) {
        // Noisy libraries capped (they would print tokens at debug), and no
        // colour codes when stderr is not a terminal.
        let filter = switchboard::logging::filter("info,switchboard::audit=off");
        let logs = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        match self.log_format {
            LogFormat::Text => logs.init(),
            LogFormat::Json => logs.json().init(),
        }
    }

    /// Starts the operations port, if asked for, and prints its URL.
    pub(crate) async fn serve(&self, hub: &ServerHandle) -> Result<(), Failure> {
        #[cfg(feature = "http")]
        if let Some(addr) = self.metrics_addr {
            let bound = switchboard::server::operations::listen(hub, addr)
                .await
                .map_err(|e| Failure::new(Outcome::Unreachable, format!("cannot serve metrics on {addr}: {e}")))?;
            println!("metrics on http://{bound}/metrics (health: /healthz, readiness: /readyz)");
        }
        #[cfg(not(feature = "http"))]
        let _ = hub;
        Ok(())
    }
}
