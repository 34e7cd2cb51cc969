//! `switchboard codegen ts SOURCE [-o OUT.js] [--import SPEC]`: a typed
//! wrapper over the JavaScript client from an OpenRPC document, read live
//! (`rpc.discover` over ws:// or wss://) or from a file (see
//! `switchboard::codegen`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use switchboard::client::Reconnect;
use switchboard::codegen::{CodegenError, Module};
use switchboard::shared::Methods;

use crate::commands::{call_failure, connect};
use crate::{Failure, Outcome, Target};

/// Whether `source` is a WebSocket URL rather than a file.
fn is_url(source: &str) -> bool {
    source.starts_with("ws://") || source.starts_with("wss://")
}

/// The document: `rpc.discover`'s answer, or the file's JSON (`-`: stdin).
async fn document(target: &Target) -> Result<Value, Failure> {
    let source = target.url.as_str();
    if is_url(source) {
        let client = connect(target, Methods::new(), Reconnect::Never).await?;
        let document = client.call::<Value>("rpc.discover", ()).await;
        client.close().await;
        return document.map_err(|e| call_failure(e, target));
    }
    let text = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::new(Outcome::Usage, format!("cannot read stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(source).map_err(|e| {
            Failure::new(Outcome::Usage, format!("cannot read {source}: {e} (give a ws:// URL or a file)"))
        })?
    };
    serde_json::from_str(&text).map_err(|e| Failure::new(Outcome::Usage, format!("{source} is not JSON: {e}")))
}

/// Where the declarations of `out` (`api.js`) go: `api.d.ts` beside it.
fn declarations_path(out: &Path) -> Result<PathBuf, Failure> {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match name.strip_suffix(".js") {
        Some(stem) if !stem.is_empty() => Ok(out.with_file_name(format!("{stem}.d.ts"))),
        _ => Err(Failure::new(
            Outcome::Usage,
            format!(
                "-o takes the JavaScript module's path, ending in .js (its .d.ts goes beside it), not {}",
                out.display()
            ),
        )),
    }
}

pub(crate) async fn typescript(target: &Target, out: Option<&Path>, import: &str) -> Result<Outcome, Failure> {
    let paths = out.map(|out| declarations_path(out).map(|dts| (out, dts))).transpose()?;
    let document = document(target).await?;
    // A document that cannot be made into a module is bad input, as a bad file is.
    let module = switchboard::codegen::typescript(&document, import)
        .map_err(|e: CodegenError| Failure::new(Outcome::Usage, format!("{}: {e}", target.url)))?;
    match paths {
        Some((js, dts)) => write(&module, js, &dts),
        None => {
            // stdout closing early (a pipe to `head`) is not a failure.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(module.declarations.as_bytes()).and_then(|()| stdout.flush());
            Ok(Outcome::Success)
        }
    }
}

fn write(module: &Module, js: &Path, dts: &Path) -> Result<Outcome, Failure> {
    for (path, text) in [(js, &module.javascript), (dts, &module.declarations)] {
        std::fs::write(path, text)
            .map_err(|e| Failure::new(Outcome::Usage, format!("cannot write {}: {e}", path.display())))?;
    }
    eprintln!("switchboard: wrote {} and {}", js.display(), dts.display());
    Ok(Outcome::Success)
}
