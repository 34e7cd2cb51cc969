//! Printing JSON: pretty on a terminal, compact (one value a line) otherwise.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// Prints `value` to stdout.
pub(crate) fn print_json(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let text = if out.is_terminal() { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    // A value that serialized once serializes again; stdout closing early (a pipe to `head`) is not an error.
    let _ = writeln!(out, "{}", text.unwrap_or_default());
    let _ = out.flush();
}
