//! The trait under `#[rpc]`, read and checked: every misuse becomes a
//! `syn::Error` at the span of what is wrong, all of them reported at once.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Ident, ItemTrait, Lit, LitStr, Meta, Pat, Path, PathArguments, ReturnType,
    TraitItem, TraitItemFn, Type, Visibility,
};

/// Which side serves the trait's methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The server serves them; clients call them (the default).
    Server,
    /// Clients serve them; the server calls them.
    Client,
}

/// The attribute's arguments: `#[rpc(namespace = "calc", client, crate = "::switchboard")]`.
pub(crate) struct Args {
    pub(crate) namespace: Option<String>,
    pub(crate) side: Side,
    pub(crate) krate: Path,
}

impl Args {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let mut namespace = None;
        let mut side: Option<(Side, Span)> = None;
        let mut krate = None;
        let parser = syn::meta::parser(|meta| {
            let mut set_side = |wanted: Side| match side {
                Some((earlier, _)) if earlier != wanted => {
                    Err(meta.error("`server` and `client` exclude each other: say which side serves the methods"))
                }
                _ => {
                    side = Some((wanted, meta.path.span()));
                    Ok(())
                }
            };
            if meta.path.is_ident("namespace") {
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                if value.is_empty() || value.ends_with('.') || value.chars().any(char::is_whitespace) {
                    return Err(syn::Error::new(
                        lit.span(),
                        "the namespace is the part of the method names before the dot: a non-empty name without spaces, such as \"calc\"",
                    ));
                }
                if value == "rpc" {
                    return Err(syn::Error::new(
                        lit.span(),
                        "the `rpc.` names are reserved for the protocol's own methods (JSON-RPC 2.0): choose another namespace",
                    ));
                }
                namespace = Some(value);
                Ok(())
            } else if meta.path.is_ident("server") {
                set_side(Side::Server)
            } else if meta.path.is_ident("client") {
                set_side(Side::Client)
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                krate = Some(lit.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown argument: expected `namespace = \"...\"`, `server`, `client` or `crate = \"path::to::switchboard\"`",
                ))
            }
        });
        syn::parse::Parser::parse2(parser, tokens)?;
        Ok(Args {
            namespace,
            side: side.map_or(Side::Server, |(side, _)| side),
            krate: krate.unwrap_or_else(|| syn::parse_quote!(::switchboard)),
        })
    }
}

/// A param of a method.
pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    /// A `Context` param: given by the serving side, not sent.
    pub(crate) context: bool,
}

/// What a method returns.
pub(crate) enum Output {
    /// Nothing (`()`).
    Unit,
    /// A value, always.
    Value(Type),
    /// `Result<T, E>` (or `RpcResult<T>`): `T`, or an error object.
    Fallible { ok: Type },
}

impl Output {
    /// The type a caller gets.
    pub(crate) fn result_type(&self) -> Type {
        match self {
            Output::Unit => syn::parse_quote!(()),
            Output::Value(ty) | Output::Fallible { ok: ty } => ty.clone(),
        }
    }
}

/// How a method's implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Execution {
    /// An `async fn`: its future is awaited (the default).
    Async,
    /// A plain `fn` under `#[rpc(sync)]`: it answers at once, no future allocated.
    Sync,
}

/// How a method's params travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamsShape {
    /// One by one, by position or by name (the default).
    Listed,
    /// `#[rpc(whole_params)]`: the one param is the request's whole `params`.
    Whole,
}

/// One method of the trait.
pub(crate) struct RpcMethod {
    pub(crate) ident: Ident,
    /// The JSON-RPC name: `namespace.name`.
    pub(crate) name: String,
    pub(crate) notification: bool,
    pub(crate) execution: Execution,
    pub(crate) shape: ParamsShape,
    /// The `#[doc]` attributes, copied onto the callers.
    pub(crate) docs: Vec<Attribute>,
    /// The first paragraph of the docs, on one line: discovery's summary.
    pub(crate) summary: Option<String>,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,
}

impl RpcMethod {
    /// The params sent on the wire (all but the `Context`).
    pub(crate) fn wire_params(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| !p.context)
    }

    pub(crate) fn takes_context(&self) -> bool {
        self.params.iter().any(|p| p.context)
    }
}

/// A topic declared in the trait: `#[rpc(topic)] fn prices() -> Topic<Price>;`.
pub(crate) struct TopicDecl {
    pub(crate) ident: Ident,
    /// The topic's name: `namespace.name`.
    pub(crate) name: String,
    /// The `#[doc]` attributes, copied onto the generated accessors.
    pub(crate) docs: Vec<Attribute>,
    /// The first paragraph of the docs, on one line: discovery's summary.
    pub(crate) summary: Option<String>,
    /// The return type as written (`Topic<Price>`).
    pub(crate) declared: Type,
    /// The type of its publications (`Price`).
    pub(crate) ty: Type,
}

/// The whole trait.
pub(crate) struct Api {
    pub(crate) args: Args,
    /// The trait, its topics taken out.
    pub(crate) item: ItemTrait,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    pub(crate) methods: Vec<RpcMethod>,
    pub(crate) topics: Vec<TopicDecl>,
}

/// Collects every error, to report them together.
#[derive(Default)]
struct Errors {
    all: Option<syn::Error>,
    count: usize,
}

impl Errors {
    /// An error at one span.
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    /// An error over the whole of `tokens`.
    fn spanned(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    fn add(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.all {
            Some(all) => all.combine(error),
            None => self.all = Some(error),
        }
    }
}

/// The names of Rust items the expansion adds to the trait.
const INTO_METHODS: &str = "into_methods";

/// The associated functions of the generated `{Trait}Api`, which a topic's
/// accessor (of the same name as the topic) must not shadow.
const API_FUNCTIONS: [&str; 3] = ["infos", "docs", "topics"];

/// The most params a method may take (the runtime decodes tuples up to this size).
const MAX_PARAMS: usize = 16;

impl Api {
    /// Reads the trait; on any error, returns them all with the trait as it
    /// was (its `#[rpc]` attributes taken out), so that the code using it
    /// shows no errors of its own besides.
    pub(crate) fn parse(args: Args, mut item: ItemTrait) -> Result<Api, (syn::Error, Box<ItemTrait>)> {
        let mut errors = Errors::default();
        if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
            errors.spanned(
                &item.generics,
                "a #[switchboard::rpc] trait cannot be generic: its methods' params and results must be concrete types, to be described in discovery",
            );
        }
        let mut methods = Vec::new();
        let mut topics = Vec::new();
        let mut names: HashMap<String, Ident> = HashMap::new();
        let mut topic_names: HashMap<String, Ident> = HashMap::new();
        // Every Rust name the callers get: methods and topics share them.
        let mut idents: HashMap<String, &'static str> = HashMap::new();
        let mut clash = |ident: &Ident, kind: &'static str, errors: &mut Errors| {
            let key = ident.unraw().to_string();
            match idents.get(&key) {
                Some(earlier) => {
                    errors.push(
                        ident.span(),
                        format!(
                            "`{ident}` names both a {earlier} and a {kind}: the methods and topics of a trait share their Rust names (in the generated callers); rename one"
                        ),
                    );
                    true
                }
                None => {
                    idents.insert(key, kind);
                    false
                }
            }
        };
        // Which items leave the trait: its topics, which are declared, not
        // implemented. After an error, only the topics whose names clash
        // leave (the others stay as written, so that what they name is used).
        let mut topic_at = Vec::with_capacity(item.items.len());
        for trait_item in &mut item.items {
            let TraitItem::Fn(function) = trait_item else {
                topic_at.push(None);
                errors.push(
                    trait_item.span(),
                    "a #[switchboard::rpc] trait holds only `async fn` methods and `#[rpc(topic)]` topics (no associated types, constants or macros)",
                );
                continue;
            };
            let attrs = match MethodAttrs::take(&mut function.attrs) {
                Ok(attrs) => attrs,
                Err(e) => {
                    errors.add(e);
                    MethodAttrs::default()
                }
            };
            topic_at.push(attrs.topic.is_some().then_some(false));
            if attrs.topic.is_some() {
                let Some(topic) = read_topic(&args, function, attrs, &mut errors) else { continue };
                if clash(&topic.ident, "topic", &mut errors) {
                    topic_at.pop();
                    topic_at.push(Some(true));
                }
                if let Some(earlier) = topic_names.get(&topic.name) {
                    errors.push(
                        topic.ident.span(),
                        format!(
                            "two topics are named `{}` (`{earlier}` and `{}`): rename one, or give it another name with #[rpc(topic, name = \"...\")]",
                            topic.name, topic.ident
                        ),
                    );
                } else {
                    topic_names.insert(topic.name.clone(), topic.ident.clone());
                }
                topics.push(topic);
                continue;
            }
            let Some(method) = read_method(&args, function, attrs, &mut errors) else { continue };
            clash(&method.ident, "method", &mut errors);
            if let Some(earlier) = names.get(&method.name) {
                errors.push(
                    method.ident.span(),
                    format!(
                        "two methods are named `{}` (`{earlier}` and `{}`): rename one, or give it another name with #[rpc(name = \"...\")]",
                        method.name, method.ident
                    ),
                );
            } else {
                names.insert(method.name.clone(), method.ident.clone());
            }
            methods.push(method);
        }
        if args.side == Side::Client {
            // The hub's caller adds `NAME_many` for each method.
            for method in &methods {
                let many = format!("{}_many", method.ident.unraw());
                if let Some(clash) = methods.iter().find(|m| m.ident.unraw() == many) {
                    errors.push(
                        clash.ident.span(),
                        format!(
                            "`{many}` is the name of the generated caller of `{}` on many connections: rename this method",
                            method.ident
                        ),
                    );
                }
            }
        }
        let failed = errors.all.is_some();
        let mut topics_at = topic_at.into_iter();
        item.items.retain(|_| match topics_at.next().flatten() {
            Some(clashes) => failed && !clashes,
            None => true,
        });
        match errors.all {
            Some(error) => Err((error, Box::new(item))),
            None => {
                let vis = item.vis.clone();
                let ident = item.ident.clone();
                Ok(Api { args, item, vis, ident, methods, topics })
            }
        }
    }
}

/// Takes the `#[rpc(...)]` attributes off the trait's methods (the trait is
/// then given back as written, next to an error).
pub(crate) fn strip_method_attrs(item: &mut ItemTrait) {
    for trait_item in &mut item.items {
        if let TraitItem::Fn(function) = trait_item {
            function.attrs.retain(|attr| !attr.path().is_ident("rpc"));
        }
    }
}

/// What `#[rpc(...)]` says of one method (or topic).
#[derive(Default)]
struct MethodAttrs {
    notification: Option<Span>,
    name: Option<LitStr>,
    sync: Option<Span>,
    whole_params: Option<Span>,
    topic: Option<Span>,
}

impl MethodAttrs {
    /// Reads and removes the `#[rpc(...)]` attributes of a method.
    fn take(attrs: &mut Vec<Attribute>) -> syn::Result<MethodAttrs> {
        let mut out = MethodAttrs::default();
        let mut result = Ok(());
        attrs.retain(|attr| {
            if !attr.path().is_ident("rpc") {
                return true;
            }
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("notification") {
                    out.notification = Some(meta.path.span());
                    Ok(())
                } else if meta.path.is_ident("sync") {
                    out.sync = Some(meta.path.span());
                    Ok(())
                } else if meta.path.is_ident("whole_params") {
                    out.whole_params = Some(meta.path.span());
                    Ok(())
                } else if meta.path.is_ident("topic") {
                    out.topic = Some(meta.path.span());
                    Ok(())
                } else if meta.path.is_ident("name") {
                    let lit: LitStr = meta.value()?.parse()?;
                    let value = lit.value();
                    if value.is_empty() || value.chars().any(char::is_whitespace) {
                        return Err(syn::Error::new(lit.span(), "a method name is a non-empty name without spaces"));
                    }
                    out.name = Some(lit);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown method argument: expected `notification`, `sync`, `whole_params`, `topic` or `name = \"...\"`",
                    ))
                }
            });
            if let Err(e) = parsed {
                match &mut result {
                    Ok(()) => result = Err(e),
                    Err(all) => all.combine(e),
                }
            }
            false
        });
        result.map(|()| out)
    }
}

/// Reads one method, reporting what is wrong with it.
fn read_method(args: &Args, function: &TraitItemFn, attrs: MethodAttrs, errors: &mut Errors) -> Option<RpcMethod> {
    let sig = &function.sig;
    let ident = sig.ident.clone();
    let before = errors.count;
    if ident.unraw() == INTO_METHODS {
        errors.push(
            ident.span(),
            "`into_methods` is the name of the generated registration of an implementation: rename this method (the JSON-RPC name can stay, with #[rpc(name = \"into_methods\")])",
        );
    }
    let execution = match (&sig.asyncness, attrs.sync) {
        (None, None) => {
            let (fn_token, name) = (&sig.fn_token, &sig.ident);
            errors.spanned(
                quote::quote!(#fn_token #name),
                format!(
                    "`{ident}` must be an `async fn`: every method of a #[switchboard::rpc] trait is a call over the network that the caller awaits \
                     (a handler that answers at once, without awaiting, may be a plain `fn` under #[rpc(sync)])"
                ),
            );
            Execution::Async
        }
        (Some(asyncness), Some(_)) => {
            errors.push(
                asyncness.span,
                format!(
                    "`{ident}` is #[rpc(sync)]: a plain `fn` that answers at once; remove `async`, or the `sync` to await in it"
                ),
            );
            Execution::Sync
        }
        (Some(_), None) => Execution::Async,
        (None, Some(_)) => Execution::Sync,
    };
    if let Some(constness) = &sig.constness {
        errors.push(constness.span, "a #[switchboard::rpc] method cannot be `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(unsafety.span, "a #[switchboard::rpc] method cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi.span(), "a #[switchboard::rpc] method cannot have an ABI");
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic.span(), "a #[switchboard::rpc] method cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(
            &sig.generics,
            format!(
                "`{ident}` cannot be generic: its params and result must be concrete types, to be decoded and described in discovery"
            ),
        );
    }

    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) => {
            if receiver.colon_token.is_some() {
                errors.spanned(
                    receiver,
                    format!(
                        "`{ident}` must take `&self`: the implementation is shared by every call, on every connection"
                    ),
                );
            } else if receiver.mutability.is_some() {
                let message = if receiver.reference.is_some() {
                    format!(
                        "`{ident}` takes `&mut self`, but calls run concurrently: take `&self`, and keep mutable state behind a lock or an atomic"
                    )
                } else {
                    format!(
                        "`{ident}` must take `&self`: the implementation is shared by every call, on every connection"
                    )
                };
                errors.spanned(receiver, message);
            } else if receiver.reference.is_none() {
                errors.push(
                    receiver.self_token.span,
                    format!(
                        "`{ident}` takes `self` by value, but the implementation is shared by every call, on every connection: take `&self`"
                    ),
                );
            } else if let Some((_, Some(lifetime))) = &receiver.reference {
                errors.push(lifetime.span(), format!("`{ident}` must take a plain `&self`, without a lifetime"));
            }
        }
        Some(other) => {
            errors.spanned(other, format!("`{ident}` must take `&self` first: it is called on the implementation"));
        }
        None => {
            errors.push(
                sig.paren_token.span.join(),
                format!("`{ident}` must take `&self`: it is called on the implementation"),
            );
        }
    }

    let mut params = Vec::new();
    let mut contexts = 0;
    for input in sig.inputs.iter().skip(1) {
        let FnArg::Typed(typed) = input else { continue };
        let Pat::Ident(pat) = &*typed.pat else {
            errors.spanned(
                &typed.pat,
                "params must be plain names: they are the names of named params and of discovery's params",
            );
            continue;
        };
        if pat.by_ref.is_some() || pat.subpat.is_some() {
            errors.spanned(pat, "params must be plain names");
            continue;
        }
        let context = is_context(&typed.ty);
        let context_by_reference = match &*typed.ty {
            Type::Reference(reference) => is_context(&reference.elem),
            _ => false,
        };
        if context {
            contexts += 1;
            if contexts > 1 {
                errors.spanned(&typed.ty, "a method takes at most one `Context`");
            }
        } else if context_by_reference {
            errors.spanned(
                &typed.ty,
                "take the call's context by value (`cx: Context`): it is one reference count to clone",
            );
            continue;
        } else if let Some((at, what)) = borrowed(&typed.ty) {
            errors.spanned(
                at,
                format!(
                    "param `{}` {what}: params are decoded from JSON into owned values, so use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`)",
                    pat.ident
                ),
            );
            continue;
        }
        params.push(Param { ident: pat.ident.clone(), ty: (*typed.ty).clone(), context });
    }

    let wire = params.iter().filter(|p| !p.context).count();
    let shape = match attrs.whole_params {
        Some(span) if wire != 1 => {
            errors.push(
                span,
                format!(
                    "`{ident}` takes {wire} params, but #[rpc(whole_params)] gives the request's whole `params` to one param: take exactly one (besides a `Context`)"
                ),
            );
            ParamsShape::Whole
        }
        Some(_) => ParamsShape::Whole,
        None => ParamsShape::Listed,
    };
    if wire > MAX_PARAMS {
        errors.spanned(
            &sig.inputs,
            format!("`{ident}` takes {wire} params; at most {MAX_PARAMS} are supported: group some into a struct"),
        );
    }

    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => {
            if let Some((at, what)) = borrowed(ty) {
                errors.spanned(
                    at,
                    format!(
                        "the result of `{ident}` {what}: results are sent as JSON and decoded into owned values, so use an owned type"
                    ),
                );
            }
            read_output(ty)
        }
    };
    if attrs.notification.is_some() && !matches!(output, Output::Unit) {
        errors.spanned(
            &sig.output,
            format!(
                "`{ident}` is a notification, which has no result: remove its return type, or its #[rpc(notification)]"
            ),
        );
    }

    let name = wire_name(args, &ident, attrs.name.as_ref(), errors);

    if errors.count > before {
        return None;
    }
    let docs: Vec<Attribute> = function.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    Some(RpcMethod {
        summary: summary(&docs),
        ident,
        name,
        notification: attrs.notification.is_some(),
        execution,
        shape,
        docs,
        params,
        output,
    })
}

/// The JSON-RPC name of a method or topic: `namespace.name`, the name being
/// `#[rpc(name = "...")]` or the Rust one. The `rpc.` names are reserved.
fn wire_name(args: &Args, ident: &Ident, renamed: Option<&LitStr>, errors: &mut Errors) -> String {
    let base = renamed.map_or_else(|| ident.unraw().to_string(), LitStr::value);
    let name = match &args.namespace {
        Some(namespace) => format!("{namespace}.{base}"),
        None => base,
    };
    if name.starts_with("rpc.") {
        let span = renamed.map_or(ident.span(), LitStr::span);
        errors.push(
            span,
            format!("`{name}`: the `rpc.` names are reserved for the protocol's own methods and topics (JSON-RPC 2.0)"),
        );
    }
    name
}

/// Reads a topic: `#[rpc(topic)] fn prices() -> Topic<Price>;` (a `&self`
/// receiver may be written; nothing else), reporting what is wrong with it.
fn read_topic(args: &Args, function: &TraitItemFn, attrs: MethodAttrs, errors: &mut Errors) -> Option<TopicDecl> {
    let sig = &function.sig;
    let ident = sig.ident.clone();
    let before = errors.count;
    if args.side == Side::Client {
        errors.push(
            attrs.topic.unwrap_or(ident.span()),
            "topics are published by the server: declare them in a trait the server serves (without `client`)",
        );
    }
    for (given, what) in
        [(attrs.notification, "notification"), (attrs.sync, "sync"), (attrs.whole_params, "whole_params")]
    {
        if let Some(span) = given {
            errors.push(span, format!("`{what}` is for methods; a topic takes only `name = \"...\"`"));
        }
    }
    if API_FUNCTIONS.contains(&ident.unraw().to_string().as_str()) {
        errors.push(
            ident.span(),
            format!(
                "`{ident}` is the name of a generated function of the API's struct: rename this topic (its name can stay, with #[rpc(topic, name = \"{ident}\")])"
            ),
        );
    }
    if let Some(asyncness) = &sig.asyncness {
        errors.push(
            asyncness.span,
            format!("topic `{ident}` is declared, not called: write it as a plain `fn {ident}() -> Topic<T>;`"),
        );
    }
    if let Some(body) = &function.default {
        errors
            .spanned(body, format!("topic `{ident}` is declared, not implemented: end it with `;` instead of a body"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(&sig.generics, format!("topic `{ident}` cannot be generic: its publications have one type"));
    }
    for (i, input) in sig.inputs.iter().enumerate() {
        let plain_self = matches!(input, FnArg::Receiver(r) if i == 0 && r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none());
        if !plain_self {
            errors.spanned(
                input,
                format!("topic `{ident}` takes no params: subscribers get every publication; write `fn {ident}() -> Topic<T>;`"),
            );
        }
    }
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => topic_type(ty),
        ReturnType::Default => None,
    };
    let Some(ty) = ty else {
        let at = match &sig.output {
            ReturnType::Type(_, ty) => ty.to_token_stream(),
            ReturnType::Default => sig.ident.to_token_stream(),
        };
        errors.spanned(
            at,
            format!("topic `{ident}` must return `Topic<T>` (`switchboard::topic::Topic`), T being the type of its publications"),
        );
        return None;
    };
    if let Some((at, what)) = borrowed(&ty) {
        errors.spanned(
            at,
            format!("the publication type of topic `{ident}` {what}: publications are sent as JSON and decoded into owned values, so use an owned type"),
        );
    }
    let name = wire_name(args, &ident, attrs.name.as_ref(), errors);
    if errors.count > before {
        return None;
    }
    let ReturnType::Type(_, declared) = &sig.output else { return None };
    let docs: Vec<Attribute> = function.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    Some(TopicDecl { summary: summary(&docs), ident, name, docs, declared: (**declared).clone(), ty })
}

/// `T` of a type written `Topic<T>` (any path ending so).
fn topic_type(ty: &Type) -> Option<Type> {
    match ty {
        Type::Paren(inner) => topic_type(&inner.elem),
        Type::Group(inner) => topic_type(&inner.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident != "Topic" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
            match (args.args.len(), args.args.first()) {
                (1, Some(GenericArgument::Type(ty))) => Some(ty.clone()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether a type is written `Context` (any path ending in it, without generics).
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Context" && matches!(last.arguments, PathArguments::None)),
        Type::Paren(inner) => is_context(&inner.elem),
        Type::Group(inner) => is_context(&inner.elem),
        _ => false,
    }
}

/// What a method's return type means: `Result<T, _>` / `RpcResult<T>` (any
/// path ending so, with `T` first) is fallible, `()` is nothing, anything
/// else is the result itself.
fn read_output(ty: &Type) -> Output {
    match ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => Output::Unit,
        Type::Paren(inner) => read_output(&inner.elem),
        Type::Group(inner) => read_output(&inner.elem),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else { return Output::Value(ty.clone()) };
            if last.ident != "Result" && last.ident != "RpcResult" {
                return Output::Value(ty.clone());
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else { return Output::Value(ty.clone()) };
            match args.args.first() {
                Some(GenericArgument::Type(ok)) => Output::Fallible { ok: ok.clone() },
                _ => Output::Value(ty.clone()),
            }
        }
        _ => Output::Value(ty.clone()),
    }
}

/// Where a type borrows (a reference, a lifetime) or cannot be named
/// (`impl Trait`, `_`, `Self`): the tokens at fault, and what to call them.
fn borrowed(ty: &Type) -> Option<(TokenStream, &'static str)> {
    #[derive(Default)]
    struct Find(Option<(TokenStream, &'static str)>);
    impl Find {
        fn found(&mut self, at: &impl quote::ToTokens, what: &'static str) {
            self.0.get_or_insert_with(|| (at.to_token_stream(), what));
        }
    }
    impl<'ast> Visit<'ast> for Find {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            self.found(reference, "is a reference");
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            self.found(lifetime, "borrows (it has a lifetime)");
        }
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            self.found(ty, "is an `impl Trait`, which cannot be decoded");
        }
        fn visit_type_infer(&mut self, ty: &'ast syn::TypeInfer) {
            self.found(ty, "must name its type");
        }
        fn visit_type_ptr(&mut self, ty: &'ast syn::TypePtr) {
            self.found(ty, "is a raw pointer");
        }
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if path.segments.first().is_some_and(|first| first.ident == "Self") {
                self.found(path, "names `Self`, which means another type in each generated caller");
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut find = Find::default();
    find.visit_type(ty);
    find.0
}

/// The first paragraph of the docs, on one line.
fn summary(docs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in docs {
        let Meta::NameValue(pair) = &attr.meta else { continue };
        let Expr::Lit(expr) = &pair.value else { continue };
        let Lit::Str(text) = &expr.lit else { continue };
        // `///` with nothing after it is an empty string: a paragraph break.
        lines.extend(text.value().split('\n').map(|line| line.trim().to_owned()).collect::<Vec<_>>());
    }
    let paragraph: Vec<String> =
        lines.into_iter().skip_while(String::is_empty).take_while(|line| !line.is_empty()).collect();
    (!paragraph.is_empty()).then(|| paragraph.join(" "))
}
