//! Printing JSON: pretty on a terminal, compact (one value a line) otherwise.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// Prints `value` to stdout, then flushes. Fails only when stdout is gone
/// (a pipe to `head` that has closed): callers that print forever stop then.
pub(crate) fn print_json(value: &impl Serialize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let text = if out.is_terminal() { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    // A value that serialized once serializes again: `Value`s and the types printed here have no failing impls.
    writeln!(out, "{}", text.unwrap_or_default())?;
    out.flush()
}
