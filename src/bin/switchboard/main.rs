//! `switchboard`: run a demo hub, or talk to any JSON-RPC 2.0 WebSocket
//! service from the shell.
//!
//! ```text
//! switchboard serve [--addr 127.0.0.1:9000] [--listen URL ...] [--redis redis://127.0.0.1:6379 [--cluster-ttl-ms MS]]
//!                   [--tls-cert FILE --tls-key FILE] [--cors-origin ORIGIN ...]
//!                   [--allow-origin ORIGIN ...] [--rate-limit N] [--rate-burst N]
//!                   [--metrics-addr ADDR] [--log-format text|json]
//! switchboard call URL METHOD [PARAMS_JSON]      (URL: ws://, wss://, tcp://, unix:, http:// or https://)
//! switchboard notify URL METHOD [PARAMS_JSON]
//! switchboard batch URL [FILE|-]
//! switchboard describe URL [METHOD]
//! switchboard listen URL [--topic T ...] [--positioned] [--since EPOCH:OFFSET]
//! switchboard codegen ts URL|FILE [-o OUT.js] [--import SPEC]
//! ```
//!
//! Exit codes: 0 success, 1 the server answered with an error (printed),
//! 2 usage error, 3 could not connect, lost the connection, or timed out
//! (see [`EXIT_CODES`], which `--help` shows).

mod codegen;
mod commands;
mod operations;
mod output;
mod serve;
mod transport_http;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchboard::client::StreamPosition;

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the server answered with an error: its error object is printed on stdout
  2  usage error: bad arguments, PARAMS_JSON or batch
  3  could not connect (refused, HTTP 401/403...), the connection was lost, or no reply came
     within --timeout (a client-side timeout: `switchboard: timeout: ...` on stderr, no error
     object on stdout)
Every failure also prints one line on stderr, starting with `switchboard: `.";

/// Switchboard: a WebSocket JSON-RPC 2.0 hub, and a shell tool for any JSON-RPC WebSocket service.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a demo hub: the benchmark contract's methods, a `clock` topic, and discovery.
    ///
    /// The same port answers WebSocket upgrades and JSON-RPC over HTTP POST
    /// (`curl -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}' http://ADDR/`).
    /// Without --addr or --listen it listens on ws://127.0.0.1:9000/. It prints one line per
    /// listener, `switchboard hub listening on URL`, in the order given (--addr first).
    ///
    /// Guarded by default: browser pages may connect only from the hub's own origin (add others with
    /// --allow-origin); at most 256 connections per client address (HTTP 503 beyond); each
    /// connection may make --rate-limit calls a second on average and --rate-burst at once (calls
    /// over it are answered -32005 "Rate limited" with `{"retry_after_ms": N}`, notifications
    /// dropped, and 1,000 refusals in a row close the connection with 1008). Logs go to stderr
    /// (RUST_LOG sets the level; plain text unless stderr is a terminal).
    Serve(serve::ServeArgs),
    /// Call METHOD and print its result.
    ///
    /// URL may be ws:// or wss:// (a WebSocket), or http:// or https:// (one HTTP POST).
    ///
    /// The result is printed on stdout as JSON (exit 0). An error answer prints the server's error
    /// object on stdout (exit 1). No reply within --timeout is a client-side timeout: nothing on
    /// stdout, `switchboard: timeout: no reply within 10s (--timeout 10)` on stderr (exit 3).
    #[command(after_help = EXIT_CODES)]
    Call {
        #[command(flatten)]
        target: Target,
        /// The method name.
        method: String,
        /// Params as JSON: an array (positional) or an object (named).
        #[arg(value_name = "PARAMS_JSON")]
        params: Option<String>,
    },
    /// Send METHOD as a notification (no reply).
    #[command(after_help = EXIT_CODES)]
    Notify {
        #[command(flatten)]
        target: Target,
        /// The method name.
        method: String,
        /// Params as JSON: an array (positional) or an object (named).
        #[arg(value_name = "PARAMS_JSON")]
        params: Option<String>,
    },
    /// Send a JSON array of requests (from FILE, or stdin when FILE is `-` or absent) as one batch.
    ///
    /// The requests go out with your own ids; the server's replies are printed as one JSON array, in
    /// the order of the requests, each as the server sent it (exit 0, or 1 if any is an error). A
    /// reply that matches no request (an error for a malformed entry) comes last. A batch of
    /// notifications only prints `[]`.
    ///
    /// When the server answers the whole batch with one error (`"id": null`, e.g. a batch longer than
    /// it accepts), that error reply is printed as it came, and the exit code is 1.
    ///
    /// Requests without a reply within --timeout: the replies that did come are printed, then
    /// `switchboard: timeout: no reply within 10s (--timeout 10) to the batch entries with ids ...` on
    /// stderr (exit 3). Nothing is made up for them.
    #[command(after_help = EXIT_CODES)]
    Batch {
        #[command(flatten)]
        target: Target,
        /// A file holding a JSON array of request objects (`-` or absent: stdin).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// List the service's methods (from `rpc.discover`), or show one method in full.
    #[command(after_help = EXIT_CODES)]
    Describe {
        #[command(flatten)]
        target: Target,
        /// Show this method's signature, params and result.
        method: Option<String>,
    },
    /// Print every notification the server pushes, one JSON object a line, until interrupted.
    ///
    /// Reconnects (with backoff) and subscribes to the topics again when the connection drops. On
    /// stderr, one line when the connection drops (`switchboard: connection to URL lost;
    /// reconnecting`), one when it is back (`switchboard: reconnected to URL`), and one for each topic
    /// the server refuses to subscribe again (retried with the same backoff). Ctrl-C or a closed
    /// stdout ends it (exit 0).
    ///
    /// With --positioned (or --since), the topics' publications come with their position in the
    /// topic's stream (`rpc.publication`): each is printed whole, as
    /// `{"topic":..,"epoch":..,"offset":..,"method":..,"params":..}`, in offset order, never twice. After a reconnect the
    /// listener resumes after the last one printed, and stderr says whether the missed ones were
    /// recovered (`switchboard: reconnected to URL; recovered 12 missed publications of "t" after
    /// E:41`, then they are printed) or are lost (`...; missed publications of "t" are lost (new
    /// epoch E2); continuing after E2:0`). Offsets that jump are filled from `rpc.history` the same
    /// way. To resume in a later run, pass the last printed publication's epoch and offset to --since
    /// (`--since EPOCH:OFFSET`).
    #[command(after_help = EXIT_CODES)]
    Listen {
        #[command(flatten)]
        target: Target,
        /// Subscribe to this topic first (repeatable).
        #[arg(long = "topic", value_name = "T")]
        topics: Vec<String>,
        /// Subscribe with positions: print each publication whole, with its topic, epoch and offset.
        #[arg(long)]
        positioned: bool,
        /// Resume after this position of the one --topic (the last publication you have: its
        /// epoch and offset); implies --positioned. stderr says whether every publication after it
        /// was recovered.
        #[arg(long, value_name = "EPOCH:OFFSET")]
        since: Option<StreamPosition>,
    },
    /// Generate code from the service's OpenRPC document.
    #[command(subcommand)]
    Codegen(Codegen),
}

/// The languages `codegen` writes.
#[derive(Debug, Subcommand)]
enum Codegen {
    /// A typed TypeScript wrapper over the JavaScript client (`client/js/switchboard.js`).
    ///
    /// Reads the OpenRPC document live (`rpc.discover` over a ws:// or wss:// URL) or from a FILE
    /// (`-`: stdin), and writes a JavaScript module OUT.js (`methods(client)`, `topics(client)`,
    /// `clientMethods(handlers)`) and its declarations OUT.d.ts: one typed function per method
    /// (params and result from their JSON Schemas), a typed subscription per topic (`x-topics`), a
    /// typed handler per method the server calls on the browser (`x-client-methods`). The output is
    /// sorted, so the same document gives the same files. Without -o, prints the declarations.
    #[command(after_help = EXIT_CODES)]
    Ts {
        /// The document: the service's WebSocket URL, or a JSON file (`-`: stdin).
        #[command(flatten)]
        source: Target,
        /// The JavaScript module to write, ending in .js; its .d.ts goes beside it.
        #[arg(short = 'o', long = "out", value_name = "OUT.js")]
        out: Option<PathBuf>,
        /// The module specifier the declarations import the client's types from.
        #[arg(long = "import", value_name = "SPEC", default_value = "./switchboard.js")]
        import: String,
    },
}

/// Where to connect and how.
#[derive(Debug, Args)]
struct Target {
    /// The service's URL: ws://HOST:PORT/PATH or wss://... (WebSocket), tcp://HOST:PORT or
    /// unix:/PATH (newline-delimited JSON-RPC on a raw socket), or http://... / https://... for
    /// `call`, `notify` and `describe` over HTTP POST.
    url: String,
    /// Bearer token sent as `Authorization: Bearer TOKEN`.
    #[arg(long, global = true)]
    token: Option<String>,
    /// Extra upgrade-request header `K:V` (repeatable).
    #[arg(long = "header", value_name = "K:V", global = true)]
    headers: Vec<String>,
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, default_value_t = 10.0, global = true)]
    timeout: f64,
    /// Also trust this PEM CA certificate for wss:// and https:// (a private CA, a self-signed hub).
    #[arg(long, value_name = "FILE", global = true)]
    cacert: Option<PathBuf>,
}

/// How the command ended; the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success = 0,
    ServerError = 1,
    Usage = 2,
    Unreachable = 3,
}

/// A failure with its exit code and one-line message.
#[derive(Debug)]
struct Failure {
    outcome: Outcome,
    message: String,
}

impl Failure {
    fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Failure { outcome, message: message.into() }
    }
}

impl Target {
    fn timeout(&self) -> Result<Duration, Failure> {
        Duration::try_from_secs_f64(self.timeout).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
            Failure::new(
                Outcome::Usage,
                format!("--timeout must be a positive number of seconds, not {}", self.timeout),
            )
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Call { target, method, params } => commands::call(&target, &method, params.as_deref()).await,
        Command::Notify { target, method, params } => commands::notify(&target, &method, params.as_deref()).await,
        Command::Batch { target, file } => commands::batch(&target, file.as_deref()).await,
        Command::Describe { target, method } => commands::describe(&target, method.as_deref()).await,
        Command::Listen { target, topics, positioned, since } => {
            commands::listen(&target, &topics, positioned, since).await
        }
        Command::Codegen(Codegen::Ts { source, out, import }) => {
            codegen::typescript(&source, out.as_deref(), &import).await
        }
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(failure) => {
            eprintln!("switchboard: {}", failure.message);
            ExitCode::from(failure.outcome as u8)
        }
    }
}

/// A `--rate-limit`: a finite number of calls a second, 0 or more.
/// `--help` and `--version` print to stdout as clap renders them (exit 0);
/// a bare `switchboard` prints the help to stderr (exit 2); any other parse
/// error is one line on stderr with the usage it broke (exit 2).
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::from(if error.use_stderr() { Outcome::Usage as u8 } else { Outcome::Success as u8 });
    }
    eprintln!("switchboard: {}", one_line(&error.render().to_string()));
    ExitCode::from(Outcome::Usage as u8)
}

/// Clap's multi-line message as one line: the error, its details, then the usage.
fn one_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim().to_owned());
        } else if !line.starts_with("For more information") {
            parts.push(line.strip_prefix("error:").unwrap_or(line).trim());
        }
    }
    let mut message = parts.join(" ");
    if let Some(usage) = usage {
        message.push_str(&format!(" (usage: {usage}; see --help)"));
    }
    message
}
