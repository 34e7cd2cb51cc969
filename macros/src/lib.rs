//! `#[rpc]`: one trait defines a typed JSON-RPC API for Switchboard. Use it
//! through the facade, as `#[switchboard::rpc]`; see [`macro@rpc`].

mod expand;
mod model;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Turns a trait of `async fn` methods into a typed JSON-RPC API: the
/// registration of an implementation, typed callers for the other side, and
/// the discovery (OpenRPC) entries, all from the one definition.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use switchboard::shared::{Context, ErrorObject};
///
/// #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
/// pub struct Reading {
///     pub celsius: f64,
/// }
///
/// /// Served by the server (the default); clients call it.
/// #[switchboard::rpc(namespace = "calc")]
/// pub trait Calculator {
///     /// Adds two numbers.
///     async fn add(&self, a: i64, b: i64) -> Result<i64, ErrorObject>;
///     /// Who is calling: a `Context` param is the call's context, not a param on the wire.
///     async fn whoami(&self, cx: Context) -> String;
///     /// Forgets everything.
///     #[rpc(notification)]
///     async fn reset(&self);
/// }
///
/// /// Served by the clients; the server calls it.
/// #[switchboard::rpc(client, namespace = "sensor")]
/// pub trait Sensor {
///     /// The latest readings, newest last.
///     async fn readings(&self, count: usize) -> Vec<Reading>;
/// }
/// ```
///
/// # What it generates
///
/// For a trait `Calculator` (names are `namespace.method`, here `calc.add`):
///
/// - **The trait**, whose methods an implementation writes as `async fn`
///   (each must return a `Send` future: calls run on the runtime's threads;
///   the trait gets `Send + Sync + 'static` as supertraits, since one
///   implementation serves every connection; a method may have a default
///   body), and a provided `into_methods(self) -> Methods`: the implementation's
///   methods, each under its name and with its discovery info, to merge into
///   a server's methods (`methods.merge(calc.into_methods())`) or to give to
///   a client (`ClientBuilder::methods`). Each accepts positional params
///   (`[2, 3]`) and named ones (`{"a": 2, "b": 3}`); a param left out reads
///   as absent (`None` for an `Option`, else a misfit); a misfit answers
///   -32602 with a `data` that names the param (`param ` + the name + `:
///   invalid type: ...`, `missing param ...`, `unknown param ...`, `too many
///   params: ...`).
/// - **`CalculatorApi`**: a constant per method holding its JSON-RPC name
///   (`CalculatorApi::ADD == "calc.add"`), `infos()` (name and
///   `MethodInfo` of each) and `docs()` (their OpenRPC entries).
/// - **The callers** of the side that calls:
///   - for a trait the server serves (the default): `CalculatorClient`,
///     implemented for `Client`: `client.add(2, 3).await`, returning the
///     client's `Call` (`.timeout(..)` applies as to any call);
///     notifications return a future of `Result<(), Error>`.
///   - for a trait the clients serve (`client`): `SensorPeer`, implemented
///     for `PeerHandle` (`cx.peer().readings(5).await` in a handler,
///     returning a `PeerCall`), and `SensorHub`, implemented for
///     `ServerHandle`: `server.readings(connection_id, 5)` (a `ServerCall`)
///     and `server.readings_many(target, 5, deadline)` (`call_many`: every
///     connection's `Answer`); a notification `x` gives `server.x(id, ..)`
///     (`notify`) and `server.x_many(&target, ..)` (a push).
///
/// Callers send params by position. Their methods are trait methods, so an
/// inherent method of the same name wins (`Client::call`, `PeerHandle::close`,
/// `ServerHandle::join`, ...): name the trait for those
/// (`CalculatorClient::close(&client)`) or rename the method.
///
/// # Arguments
///
/// - `namespace = "calc"`: the methods are named `calc.method` (without it,
///   just `method`);
/// - `client`: the clients serve the methods and the server calls them
///   (`server`, the default, is the other way round);
/// - `crate = "::switchboard"`: the path of the `switchboard` crate, if it
///   is named otherwise.
///
/// On a method, `#[rpc(notification)]` makes it a notification (no id, no
/// answer; it has no return type), and `#[rpc(name = "other")]` gives it
/// another name (still under the namespace).
///
/// # What a method may look like
///
/// `async fn name(&self, params...) -> R`, where:
///
/// - each param (at most 16) is a plain name with an owned type that is `Serialize`,
///   `DeserializeOwned` and `JsonSchema` (no references, lifetimes or
///   `impl Trait`); one param of type `Context` (written so) is the call's
///   context on the serving side and is not sent;
/// - `R` is `Result<T, E>` or `RpcResult<T>` (the result is `T`, and an
///   error converts into an `ErrorObject`: the caller gets it as
///   `Error::Rpc`), `()` or no return type (a `null` result), or any other
///   owned type `T` (the result, always).
///
/// The doc comment's first paragraph is the method's summary in discovery;
/// the params (in order, each `required` unless it may be left out) and the
/// result are described by their types' JSON Schemas. A server's own
/// methods appear in its `rpc.discover`; for a `client` API, add its
/// entries to the service's `x-client-methods` with
/// `ServiceInfo::client_api(SensorApi::docs())`.
///
/// Misuse is a compile error at the span of what is wrong: a method that is
/// not `async`, a receiver other than `&self`, a reference param, two
/// methods with one name, a notification with a result, a generic trait or
/// method.
#[proc_macro_attribute]
pub fn rpc(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item = match syn::parse::<syn::ItemTrait>(item) {
        Ok(item) => item,
        Err(e) => {
            let e = syn::Error::new(e.span(), "#[switchboard::rpc] goes on a trait of `async fn` methods");
            return e.to_compile_error().into();
        }
    };
    let args = match model::Args::parse(args.into()) {
        Ok(args) => args,
        Err(e) => {
            model::strip_method_attrs(&mut item);
            let mut out = e.to_compile_error();
            item.to_tokens(&mut out);
            return out.into();
        }
    };
    match model::Api::parse(args, item) {
        Ok(api) => expand::expand(&api).into(),
        Err((error, item)) => {
            let mut out = error.to_compile_error();
            item.to_tokens(&mut out);
            out.into()
        }
    }
}
