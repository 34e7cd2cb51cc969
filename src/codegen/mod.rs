//! TypeScript from discovery: a typed wrapper over the JavaScript client
//! (`client/js/switchboard.js`), generated from a service's OpenRPC document
//! (what `rpc.discover` answers). `switchboard codegen ts URL|FILE -o api.js`
//! runs it.
//!
//! The wrapper is two files: a JavaScript module with no dependencies (it
//! calls the client it is given) and its TypeScript declarations, which
//! import the client's types. It has three functions:
//!
//! - `methods(client)`: one function per method the server serves, grouped
//!   by the dots of their names (`methods(client).calc.add(2, 3)`), with the
//!   params and result types of their JSON Schemas; a method without a
//!   result is a notification (OpenRPC's rule), sent with `notify`;
//! - `topics(client)`: one typed topic per `x-topics` entry, to subscribe
//!   to plain or positioned (`topics(client).prices.subscribe(handler)`);
//! - `clientMethods(handlers)`: the methods the server calls on the browser
//!   (`x-client-methods`), made from typed handlers, to give to
//!   `connect(url, { methods })`; each handler gets the params one by one
//!   (by position or by name, as the server sent them) and the call's context.
//!
//! Params are sent by name (an object) unless the document says
//! `by-position`, and as they are when it says `"x-params": "whole"`.
//! Named types are declared for `$ref`s and titled objects, enums and
//! unions (after their titles or definitions). Everything is sorted by name, so the same
//! document always gives the same text.
//!
//! ```
//! let document = serde_json::json!({
//!     "openrpc": "1.3.2",
//!     "info": {"title": "calc", "version": "1.0.0"},
//!     "methods": [{
//!         "name": "calc.add",
//!         "summary": "Adds two integers.",
//!         "params": [
//!             {"name": "a", "schema": {"type": "integer"}, "required": true},
//!             {"name": "b", "schema": {"type": "integer"}, "required": true},
//!         ],
//!         "result": {"name": "result", "schema": {"type": "integer"}},
//!     }],
//! });
//! let module = switchboard::codegen::typescript(&document, "./switchboard.js")?;
//! assert!(module.declarations.contains("add(a: number, b: number, options?: CallOptions<number>): Promise<number>;"));
//! assert!(module.javascript.contains("add: (a, b, options) => client.call('calc.add', { a, b }, options),"));
//! # Ok::<(), switchboard::codegen::CodegenError>(())
//! ```

mod api;
mod names;
mod render;
mod schema;

use serde_json::Value;

/// Why no module was generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// The document is not an OpenRPC document (the reason says which part
    /// did not fit): give `rpc.discover`'s answer, or a file holding it.
    #[error("not an OpenRPC document: {0}")]
    NotOpenRpc(String),
    /// Two names cannot both be functions of the module: a method (or topic)
    /// is named like the group of others (`a` and `a.b`), or twice. Rename
    /// one on the server.
    #[error("`{0}` cannot be generated: another name of the document is, or groups, the same name")]
    NameClash(String),
    /// A part of the name is `__proto__`, which a JavaScript object cannot
    /// hold as a property. Rename it on the server.
    #[error("`{0}` cannot be a property of a JavaScript object (`__proto__`): rename it on the server")]
    UnsafeName(String),
}

/// A generated wrapper: the JavaScript module and its declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The JavaScript module (`api.js`).
    pub javascript: String,
    /// Its TypeScript declarations (`api.d.ts`).
    pub declarations: String,
}

/// Generates the typed wrapper of the API `document` describes. The
/// declarations import the client's types from `client_module` (the module
/// specifier of `switchboard.js` as seen from where the files go, e.g.
/// `./switchboard.js`).
pub fn typescript(document: &Value, client_module: &str) -> Result<Module, CodegenError> {
    let api = api::Api::read(document)?;
    Ok(Module { javascript: render::javascript(&api), declarations: render::declarations(&api, client_module) })
}
