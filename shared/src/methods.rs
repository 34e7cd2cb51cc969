//! The method registry: names to async (or plain) handlers with typed params.
//!
//! A handler receives its params decoded by serde into its own type (a tuple
//! for positional params, a struct for named ones; derived structs accept
//! both) and the connection's [`Context`]. A mismatch answers -32602 with a
//! `data` string saying what did not fit. Params are decoded straight from
//! the frame: nothing is parsed twice.
//!
//! Sync and async handlers take the same [`Context`], by value. A handler
//! written as a function names its result type, so no annotation is needed
//! at the `Ok`; a closure's error type must be named somewhere (here with
//! the turbofish), because a closure's return type is inferred.
//!
//! A method's **index** is its position in the registry, in the order of
//! registration (a name registered again keeps its place; removing a
//! method moves the later ones down by one). The engine tells a
//! [`CallObserver`](crate::peer::CallObserver) the index of each method it
//! ran ([`CallEvent::method_index`](crate::peer::CallEvent::method_index)),
//! so an observer can keep per-method state in a `Vec` laid out by
//! [`Methods::iter`] instead of looking the name up again on every call.
//!
//! ```
//! use switchboard_shared::{Context, ErrorObject, Methods, RpcResult};
//!
//! async fn add((a, b): (i64, i64), _cx: Context) -> RpcResult<i64> {
//!     Ok(a + b)
//! }
//!
//! let mut methods = Methods::new();
//! methods.register("add", add);
//! methods.register_sync("version", |(): (), _cx: Context| Ok::<_, ErrorObject>("1.0"));
//! assert!(methods.contains("add"));
//! ```

use std::any::{Any, TypeId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::codec::{ErrorObject, Id, encode};
use crate::context::Context;

/// The future of a handler that did not finish at once. It resolves to the
/// encoded response frame, or `None` for a notification.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// What invoking a handler gives the peer engine.
#[non_exhaustive]
pub enum Dispatch {
    /// The handler finished at once: the encoded response (or `None` for a notification).
    Ready(Option<String>),
    /// The handler must be awaited.
    Pending(HandlerFuture),
}

type Erased = dyn Fn(Option<&RawValue>, &Context, Option<Id>) -> Dispatch + Send + Sync;

/// One callable method: a type-erased handler plus what discovery says of it.
#[derive(Clone)]
pub struct Method {
    handler: Arc<Erased>,
    info: MethodInfo,
}

/// What `rpc.discover` tells about a method.
#[derive(Debug, Clone, Default)]
pub struct MethodInfo {
    /// A one-line summary.
    pub description: Option<String>,
    /// JSON Schema of the params, when known.
    pub params_schema: Option<serde_json::Value>,
    /// JSON Schema of the result, when known.
    pub result_schema: Option<serde_json::Value>,
    /// Names of positional params, when known (for OpenRPC's by-name form),
    /// or the positional order of an object schema's properties.
    pub param_names: Vec<String>,
    /// Errors the method is documented to return: (code, message).
    pub errors: Vec<(i64, String)>,
}

/// Decodes params: absent params read as `null`; empty containers also fit
/// types that accept `null` (so `()` and `Option<T>` accept `[]` and `{}`).
pub fn decode_params<P: DeserializeOwned + 'static>(params: Option<&RawValue>) -> Result<P, ErrorObject> {
    if TypeId::of::<P>() == TypeId::of::<Box<RawValue>>() {
        // The frame decoder has validated these bytes already: copy them
        // instead of scanning them again (16 KiB of params scanned twice
        // cost a sixth of an echo server's time).
        let raw: Box<dyn Any> = Box::new(params.unwrap_or(RawValue::NULL).to_owned());
        return Ok(*raw.downcast::<P>().expect("P is Box<RawValue>"));
    }
    let text = params.map_or("null", RawValue::get);
    match serde_json::from_str(text) {
        Ok(p) => Ok(p),
        Err(e) => {
            if matches!(text.trim(), "[]" | "{}")
                && let Ok(p) = serde_json::from_str("null")
            {
                return Ok(p);
            }
            Err(ErrorObject::invalid_params(e))
        }
    }
}

/// Encodes a handler's outcome. `size_hint` (the params' length) pre-sizes
/// the frame, so an echo-like answer is written without regrowing it.
fn respond<R: Serialize, E: Into<ErrorObject>>(
    id: Option<Id>,
    outcome: Result<R, E>,
    size_hint: usize,
) -> Option<String> {
    let id = id?;
    Some(match outcome {
        Ok(value) => encode::success_sized(&id, &value, size_hint)
            .unwrap_or_else(|e| encode::error(&id, &ErrorObject::internal(format_args!("result not encodable: {e}")))),
        Err(e) => encode::error(&id, &e.into()),
    })
}

/// The -32603 answer for a handler that panicked.
pub(crate) fn panicked(id: Option<Id>) -> Option<String> {
    id.map(|id| encode::error(&id, &ErrorObject::internal("the handler panicked")))
}

impl Method {
    /// An async handler.
    pub fn new<P, R, E, F, Fut>(handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: Into<ErrorObject> + 'static,
        F: Fn(P, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        Method::with_decoder(decode_params::<P>, handler)
    }

    /// An async handler whose params are decoded by `decode` instead of by
    /// `P`'s `Deserialize` alone: a decoder may accept several shapes and
    /// word its own -32602. The code `#[switchboard::rpc]` generates uses it
    /// to take positional and named params and name the param that did not fit.
    ///
    /// ```
    /// use switchboard_shared::{Context, ErrorObject, Method};
    /// use serde_json::value::RawValue;
    ///
    /// fn one_number(params: Option<&RawValue>) -> Result<f64, ErrorObject> {
    ///     let text = params.map_or("null", RawValue::get);
    ///     serde_json::from_str::<[f64; 1]>(text)
    ///         .map(|[n]| n)
    ///         .or_else(|_| serde_json::from_str::<f64>(text))
    ///         .map_err(|_| ErrorObject::invalid_params("expected one number"))
    /// }
    ///
    /// let method = Method::with_decoder(one_number, |n: f64, _cx: Context| async move { Ok::<_, ErrorObject>(n.sqrt()) });
    /// # let _ = method;
    /// ```
    pub fn with_decoder<P, R, E, D, F, Fut>(decode: D, handler: F) -> Self
    where
        P: Send + 'static,
        R: Serialize + 'static,
        E: Into<ErrorObject> + 'static,
        D: Fn(Option<&RawValue>) -> Result<P, ErrorObject> + Send + Sync + 'static,
        F: Fn(P, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let erased = move |params: Option<&RawValue>, cx: &Context, id: Option<Id>| match decode(params) {
            Err(e) => Dispatch::Ready(respond::<(), _>(id, Err(e), 0)),
            Ok(p) => {
                let size_hint = params.map_or(0, |p| p.get().len());
                let fut = handler(p, cx.for_call(id.clone()));
                // A panic while awaiting is the engine's to answer: it knows the id too.
                Dispatch::Pending(Box::pin(async move { respond(id, fut.await, size_hint) }))
            }
        };
        Method { handler: Arc::new(erased), info: MethodInfo::default() }
    }

    /// A handler that answers without awaiting: no future is allocated.
    pub fn sync<P, R, E, F>(handler: F) -> Self
    where
        P: DeserializeOwned + 'static,
        R: Serialize + 'static,
        E: Into<ErrorObject> + 'static,
        F: Fn(P, Context) -> Result<R, E> + Send + Sync + 'static,
    {
        let erased = move |params: Option<&RawValue>, cx: &Context, id: Option<Id>| {
            Dispatch::Ready(match decode_params::<P>(params) {
                Err(e) => respond::<(), _>(id, Err(e), 0),
                Ok(p) => respond(id, handler(p, cx.clone()), params.map_or(0, |p| p.get().len())),
            })
        };
        Method { handler: Arc::new(erased), info: MethodInfo::default() }
    }

    /// A handler that answers without awaiting (as [`Method::sync`]), whose
    /// params are decoded by `decode` (as for [`Method::with_decoder`]): no
    /// future is allocated. The code `#[switchboard::rpc]` generates for a
    /// `#[rpc(sync)]` method uses it.
    pub fn sync_with_decoder<P, R, E, D, F>(decode: D, handler: F) -> Self
    where
        R: Serialize + 'static,
        E: Into<ErrorObject> + 'static,
        D: Fn(Option<&RawValue>) -> Result<P, ErrorObject> + Send + Sync + 'static,
        F: Fn(P, Context) -> Result<R, E> + Send + Sync + 'static,
    {
        let erased = move |params: Option<&RawValue>, cx: &Context, id: Option<Id>| {
            Dispatch::Ready(match decode(params) {
                Err(e) => respond::<(), _>(id, Err(e), 0),
                Ok(p) => respond(id, handler(p, cx.clone()), params.map_or(0, |p| p.get().len())),
            })
        };
        Method { handler: Arc::new(erased), info: MethodInfo::default() }
    }

    /// A handler that sees the raw params and the call's id (`None` for a
    /// notification) and produces the [`Dispatch`] itself. For layers that
    /// wrap or route other methods (the client's notification fan-out, a
    /// relay); application code wants [`Method::new`] or [`Method::sync`].
    pub fn raw<F>(handler: F) -> Self
    where
        F: Fn(Option<&RawValue>, &Context, Option<Id>) -> Dispatch + Send + Sync + 'static,
    {
        Method { handler: Arc::new(handler), info: MethodInfo::default() }
    }

    /// Sets the one-line description shown by discovery.
    pub fn describe(&mut self, description: impl Into<String>) -> &mut Self {
        self.info.description = Some(description.into());
        self
    }

    /// [`Method::describe`] for a method being built by value.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.describe(description);
        self
    }

    /// What discovery says of this method.
    pub fn info(&self) -> &MethodInfo {
        &self.info
    }

    /// Mutable access to the discovery info.
    pub fn info_mut(&mut self) -> &mut MethodInfo {
        &mut self.info
    }

    /// Invokes the handler; a panic becomes a -32603 answer.
    pub fn invoke(&self, params: Option<&RawValue>, cx: &Context, id: Option<Id>) -> Dispatch {
        let panic_id = id.clone();
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.handler)(params, cx, id))) {
            Ok(dispatch) => dispatch,
            Err(_) => {
                tracing::error!("handler panicked");
                Dispatch::Ready(panicked(panic_id))
            }
        }
    }
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method").field("info", &self.info).finish_non_exhaustive()
    }
}

type Router = dyn Fn(&str) -> Option<Method> + Send + Sync;

/// A registry of methods, shared by every connection of a server or client,
/// with the application state its handlers share.
#[derive(Clone, Default)]
pub struct Methods {
    // FxHash: every incoming call looks its method up here, and SipHash
    // cost about 150 instructions of it. Flooding is no risk: the table
    // only holds the names the application registered, whatever a peer sends.
    table: IndexMap<Box<str>, Method, rustc_hash::FxBuildHasher>,
    router: Option<Arc<Router>>,
    state: http::Extensions,
}

/// What a handler's `Result` may hold: any error that converts into an
/// [`ErrorObject`] works too; this alias names the common case.
///
/// ```
/// use switchboard_shared::{Context, Methods, RpcResult};
///
/// fn add((a, b): (i64, i64), _cx: Context) -> RpcResult<i64> {
///     Ok(a + b)
/// }
///
/// async fn double((n,): (i64,), _cx: Context) -> RpcResult<i64> {
///     Ok(n * 2)
/// }
///
/// let mut methods = Methods::new();
/// methods.register_sync("add", add);
/// methods.register("double", double);
/// ```
pub type RpcResult<T> = Result<T, ErrorObject>;

impl Methods {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an async handler under `name`, replacing any earlier one.
    /// Returns the method so discovery details can be added.
    pub fn register<P, R, E, F, Fut>(&mut self, name: impl Into<String>, handler: F) -> &mut Method
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        E: Into<ErrorObject> + 'static,
        F: Fn(P, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        self.insert(name, Method::new(handler))
    }

    /// Registers a handler that answers without awaiting (cheapest path).
    pub fn register_sync<P, R, E, F>(&mut self, name: impl Into<String>, handler: F) -> &mut Method
    where
        P: DeserializeOwned + 'static,
        R: Serialize + 'static,
        E: Into<ErrorObject> + 'static,
        F: Fn(P, Context) -> Result<R, E> + Send + Sync + 'static,
    {
        self.insert(name, Method::sync(handler))
    }

    /// Registers a ready-made [`Method`].
    pub fn insert(&mut self, name: impl Into<String>, method: Method) -> &mut Method {
        let name: Box<str> = name.into().into_boxed_str();
        self.table.insert(name.clone(), method);
        self.table.get_mut(&name).expect("just inserted")
    }

    /// Makes `alias` call the method registered as `target` (at the time of this call).
    pub fn alias(&mut self, alias: impl Into<String>, target: &str) -> bool {
        match self.table.get(target).cloned() {
            Some(method) => {
                self.insert(alias, method);
                true
            }
            None => false,
        }
    }

    /// Adds application state every handler can read with
    /// [`Context::state`], registered once (one value per type).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use switchboard_shared::{Context, Methods, RpcResult};
    ///
    /// struct Inventory { items: Vec<String> }
    ///
    /// fn count((): (), cx: Context) -> RpcResult<usize> {
    ///     Ok(cx.state::<Arc<Inventory>>()?.items.len())
    /// }
    ///
    /// let mut methods = Methods::new().with_state(Arc::new(Inventory { items: vec!["a".into()] }));
    /// methods.register_sync("count", count);
    /// ```
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

    /// The state of type `T` added with [`Methods::with_state`].
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<&T> {
        self.state.get::<T>()
    }

    /// Resolves names that are not registered (jayson's router): return a
    /// method to run, or `None` for -32601 Method not found.
    pub fn router(&mut self, router: impl Fn(&str) -> Option<Method> + Send + Sync + 'static) -> &mut Self {
        self.router = Some(Arc::new(router));
        self
    }

    /// Moves every method (and state) of `other` into this registry.
    pub fn merge(&mut self, other: Methods) -> &mut Self {
        self.table.extend(other.table);
        self.state.extend(other.state);
        if other.router.is_some() {
            self.router = other.router;
        }
        self
    }

    /// Whether `name` is registered (the router is not asked).
    pub fn contains(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    /// Removes a method; the methods registered after it move down one
    /// [index](crate::methods).
    pub fn remove(&mut self, name: &str) -> Option<Method> {
        self.table.shift_remove(name)
    }

    /// The registered names and methods in registration order: the `n`th
    /// is the method at [index](crate::methods) `n`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Method)> {
        self.table.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The [index](crate::methods) of the method registered as `name` (the router is not asked).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.table.get_index_of(name)
    }

    /// Runs the method `name`: registered, else routed, else -32601 (calls) or
    /// nothing (notifications to unknown methods are ignored, as the spec says).
    pub fn dispatch(&self, name: &str, params: Option<&RawValue>, cx: &Context, id: Option<Id>) -> Dispatch {
        self.dispatch_indexed(name, params, cx, id).1
    }

    /// [`dispatch`](Self::dispatch), and the [index](crate::methods) of the method
    /// that ran (`None`: routed, or not found).
    pub(crate) fn dispatch_indexed(
        &self,
        name: &str,
        params: Option<&RawValue>,
        cx: &Context,
        id: Option<Id>,
    ) -> (Option<usize>, Dispatch) {
        if let Some((index, _, method)) = self.table.get_full(name) {
            return (Some(index), method.invoke(params, cx, id));
        }
        if let Some(method) = self.router.as_ref().and_then(|route| route(name)) {
            return (None, method.invoke(params, cx, id));
        }
        if id.is_none() {
            tracing::debug!(method = name, "notification for an unknown method ignored");
        }
        (None, Dispatch::Ready(id.map(|id| encode::error(&id, &ErrorObject::method_not_found(name)))))
    }
}

impl std::fmt::Debug for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.table.keys().collect();
        names.sort();
        f.debug_struct("Methods").field("names", &names).field("router", &self.router.is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(methods: &Methods) -> Vec<&str> {
        methods.iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn methods_keep_their_registration_order_which_is_their_index() {
        let mut methods = Methods::new();
        for name in ["c", "a", "b"] {
            methods.register_sync(name, |(): (), _cx: Context| Ok::<_, ErrorObject>(()));
        }
        assert_eq!(names(&methods), ["c", "a", "b"]);
        assert_eq!(methods.index_of("a"), Some(1));
        assert_eq!(methods.index_of("z"), None);
        // Registered again: same place. Removed: the later ones move down.
        methods.register_sync("c", |(): (), _cx: Context| Ok::<_, ErrorObject>(1));
        assert_eq!(methods.index_of("c"), Some(0));
        methods.remove("a");
        assert_eq!(names(&methods), ["c", "b"]);
        assert_eq!(methods.index_of("b"), Some(1));
        let mut more = Methods::new();
        more.register_sync("d", |(): (), _cx: Context| Ok::<_, ErrorObject>(()));
        methods.merge(more);
        assert!(methods.alias("e", "b"));
        assert_eq!(names(&methods), ["c", "b", "d", "e"]);
    }
}
