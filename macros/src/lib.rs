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
/// use switchboard::topic::Topic;
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
///     /// Negates a number, at once: a plain `fn`, no future per call.
///     #[rpc(sync)]
///     fn negate(&self, value: i64) -> i64;
///     /// Adds any count of numbers: the params are the list itself, `[1, 2, 3]`.
///     #[rpc(sync, whole_params)]
///     fn sum(&self, numbers: Vec<f64>) -> f64;
///     /// Every reading the server receives (a topic: declared, not implemented).
///     #[rpc(topic)]
///     fn readings() -> Topic<Reading>;
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
///   `MethodInfo` of each) and `docs()` (their OpenRPC entries); per topic,
///   a function returning its typed descriptor (`CalculatorApi::readings()`,
///   a `switchboard::topic::Topic<Reading>`), and `topics()` (their `x-topics`
///   entries, for `ServiceInfo::topics`).
/// - **The callers** of the side that calls:
///   - for a trait the server serves (the default): `CalculatorClient`,
///     implemented for `Client`: `client.add(2, 3).await`, returning the
///     client's `Call` (`.timeout(..)` applies as to any call);
///     notifications return a future of `Result<(), Error>`; a topic `x`
///     gives `client.x()`, a `Subscriber`: `.subscribe().await` (each
///     publication decoded into its type; one that does not fit is an error
///     item) or `.subscribe_positioned().since(..).await`. With topics,
///     `CalculatorTopics`, implemented for `ServerHandle`, publishes them:
///     `server.readings().publish(&reading)`;
///   - for a trait the clients serve (`client`): `SensorPeer`, implemented
///     for `PeerHandle` (`cx.peer().readings(5).await` in a handler,
///     returning a `PeerCall`), and `SensorHub`, implemented for
///     `ServerHandle`: `server.readings(connection_id, 5)` (a `ServerCall`)
///     and `server.readings_many(target, 5, deadline)` (`call_many`: every
///     connection's `Answer`); a notification `x` gives `server.x(id, ..)`
///     (`notify`) and `server.x_many(&target, ..)` (a push).
///
/// Callers send params by position (a `whole_params` method's one param as
/// it is). Their methods are trait methods, so an
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
/// another name (still under the namespace). `#[rpc(sync)]` is for a
/// method written as a plain `fn` that answers at once without awaiting:
/// its handler allocates no future (as `Methods::register_sync`).
/// `#[rpc(whole_params)]` gives the request's whole `params` (an array or
/// an object, as sent; absent: `null`) to the method's one param: a list of
/// any length (`Vec<T>`), any JSON (`Box<RawValue>`, `Value`), or a struct
/// whose fields are the named params; discovery marks a list or any JSON
/// with `"x-params": "whole"`.
///
/// # Topics
///
/// `#[rpc(topic)] fn name() -> Topic<T>;` (a `&self` may be written) declares
/// a topic of the server's whose publications are `T`s (a struct or a list:
/// JSON-RPC params are an object or an array), named like a method
/// (`namespace.name`, or `#[rpc(topic, name = "...")]`). It is taken out of
/// the trait (implementations do not write it), and published as the
/// notification of its own name. A trait may hold only topics.
///
/// # What a method may look like
///
/// `async fn name(&self, params...) -> R` (or, under `#[rpc(sync)]`, a plain
/// `fn`), where:
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
/// not `async` (nor `#[rpc(sync)]`), a receiver other than `&self`, a
/// reference param, two methods with one name, a notification with a
/// result, a generic trait or method, `whole_params` on other than one
/// param; a topic that is `async`, has a body or params, is not a
/// `Topic<T>`, shares its name with another topic or its Rust name with a
/// method, or is declared in a `client` trait.
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
