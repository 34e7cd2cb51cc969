//! Service discovery: an OpenRPC 1.3 document of the registered methods,
//! answered by the built-in `rpc.discover`.
//!
//! Schemas come from the handlers' Rust types through `schemars` (opt in per
//! method with [`Method::schema`]) or are given by hand. What OpenRPC cannot
//! express — methods the server calls on its clients, and topics it
//! publishes — is described in the `x-client-methods` and `x-topics`
//! extension fields. A method whose params are one value as a whole (a list
//! of any length, any JSON) rather than a list of params says so with
//! `"x-params": "whole"` (see [`ParamsForm`]).
//!
//! ```
//! use switchboard_shared::{Context, ErrorObject, Methods, discover::{Document, ServiceInfo}};
//! let mut methods = Methods::new();
//! methods
//!     .register_sync("add", |(a, b): (i64, i64), _: Context| Ok::<_, ErrorObject>(a + b))
//!     .describe("Adds two integers")
//!     .schema::<(i64, i64), i64>()
//!     .param_names(["a", "b"]);
//! let doc = Document::build(&ServiceInfo::new("demo", "1.0"), &methods);
//! assert_eq!(doc.methods[0].name, "add");
//! assert_eq!(doc.methods[0].params[1].name, "b");
//! assert_eq!(doc.methods[0].param_structure, "by-position");
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::methods::{Method, MethodInfo, Methods};

/// The OpenRPC version the documents follow.
pub const OPENRPC_VERSION: &str = "1.3.2";

/// An OpenRPC document (the subset Switchboard produces), plus Switchboard's
/// extension fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Always [`OPENRPC_VERSION`].
    pub openrpc: String,
    /// Title and version of the service.
    pub info: Info,
    /// Methods the other side may call, sorted by name.
    pub methods: Vec<MethodDoc>,
    /// Methods this side may call on its clients.
    #[serde(rename = "x-client-methods", default, skip_serializing_if = "Vec::is_empty")]
    pub client_methods: Vec<MethodDoc>,
    /// Topics this side publishes to (join with `rpc.subscribe`).
    #[serde(rename = "x-topics", default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<TopicDoc>,
}

/// OpenRPC's info object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// The service's name.
    pub title: String,
    /// The service's version.
    pub version: String,
    /// A longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodDoc {
    /// The method name.
    pub name: String,
    /// A one-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The params, in positional order.
    #[serde(default)]
    pub params: Vec<ParamDoc>,
    /// The result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultDoc>,
    /// `by-position`, `by-name` or `either`.
    #[serde(rename = "paramStructure", default = "either")]
    pub param_structure: String,
    /// Errors the method is documented to return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDoc>,
    /// How the params are sent (`x-params`; absent: as OpenRPC lists them).
    #[serde(rename = "x-params", default, skip_serializing_if = "ParamsForm::is_listed")]
    pub params_form: ParamsForm,
}

/// How a method takes its params: OpenRPC lists params one by one, but a
/// JSON-RPC method may also take its `params` as one value (`sum [1, 2, 3]`
/// takes any count of numbers, `echo` any JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamsForm {
    /// The params listed, sent by position or by name as `paramStructure`
    /// says (OpenRPC's own meaning; the default).
    #[default]
    Listed,
    /// The one param listed is the whole `params` value of the request (an
    /// array or an object as it is, or absent): `"x-params": "whole"`.
    Whole,
}

impl ParamsForm {
    fn is_listed(&self) -> bool {
        *self == ParamsForm::Listed
    }
}

fn either() -> String {
    "either".into()
}

/// One param (OpenRPC "content descriptor").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamDoc {
    /// Its name (positional params are named `arg0`, `arg1`... unless named by hand).
    pub name: String,
    /// Its JSON Schema.
    #[serde(default)]
    pub schema: Value,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
}

/// The result's description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultDoc {
    /// Always `result`.
    pub name: String,
    /// Its JSON Schema.
    #[serde(default)]
    pub schema: Value,
}

/// A documented error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDoc {
    /// The error code.
    pub code: i64,
    /// Its message.
    pub message: String,
}

/// A topic the service publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicDoc {
    /// The topic name (what `rpc.subscribe` takes).
    pub name: String,
    /// What it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The notification method its pushes use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Schema of the pushed params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// Title, version and the extension descriptions a server adds to its document.
#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    /// The service's name.
    pub title: String,
    /// The service's version.
    pub version: String,
    /// A longer description.
    pub description: Option<String>,
    /// Methods the service calls on its clients (`x-client-methods`).
    pub client_methods: Vec<MethodDoc>,
    /// Topics it publishes (`x-topics`).
    pub topics: Vec<TopicDoc>,
}

impl ServiceInfo {
    /// A service with a title and version.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        ServiceInfo { title: title.into(), version: version.into(), ..Default::default() }
    }

    /// Describes a method the service may call on its clients.
    pub fn client_method(mut self, name: impl Into<String>, method: &Method) -> Self {
        self.client_methods.push(MethodDoc::of(name.into(), method));
        self
    }

    /// Describes every method of an API the service calls on its clients:
    /// the documents a `#[switchboard::rpc(client)]` trait's generated
    /// `...Api::docs()` returns.
    pub fn client_api(mut self, docs: impl IntoIterator<Item = MethodDoc>) -> Self {
        self.client_methods.extend(docs);
        self
    }

    /// Describes a topic the service publishes.
    pub fn topic(mut self, topic: TopicDoc) -> Self {
        self.topics.push(topic);
        self
    }

    /// Describes every topic of an API: the documents a
    /// `#[switchboard::rpc]` trait's generated `...Api::topics()` returns.
    pub fn topics(mut self, topics: impl IntoIterator<Item = TopicDoc>) -> Self {
        self.topics.extend(topics);
        self
    }
}

impl Document {
    /// The document describing `methods` (built-in `rpc.*` methods included).
    pub fn build(service: &ServiceInfo, methods: &Methods) -> Document {
        let mut docs: Vec<MethodDoc> = methods.iter().map(|(name, m)| MethodDoc::of(name.to_owned(), m)).collect();
        docs.sort_by(|a, b| a.name.cmp(&b.name));
        Document {
            openrpc: OPENRPC_VERSION.into(),
            info: Info {
                title: service.title.clone(),
                version: service.version.clone(),
                description: service.description.clone(),
            },
            methods: docs,
            client_methods: service.client_methods.clone(),
            topics: service.topics.clone(),
        }
    }

    /// The method named `name`.
    pub fn method(&self, name: &str) -> Option<&MethodDoc> {
        self.methods.iter().find(|m| m.name == name)
    }
}

impl MethodDoc {
    /// Describes one registered method.
    pub fn of(name: String, method: &Method) -> MethodDoc {
        MethodDoc::from_info(name, method.info())
    }

    /// Describes a method from what is known of it, without a handler (a
    /// method the other side serves, such as a typed client API's).
    pub fn from_info(name: String, info: &MethodInfo) -> MethodDoc {
        let (params, param_structure, params_form) = match &info.params_schema {
            Some(schema) => params_from_schema(schema, &info.param_names),
            None => (Vec::new(), either(), ParamsForm::Listed),
        };
        MethodDoc {
            name,
            summary: info.description.clone(),
            params,
            result: info.result_schema.clone().map(|schema| ResultDoc { name: "result".into(), schema }),
            param_structure,
            errors: info
                .errors
                .iter()
                .map(|(code, message)| ErrorDoc { code: *code, message: message.clone() })
                .collect(),
            params_form,
        }
    }

    /// One line: `name(a: integer, b: integer) -> integer  summary`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| format!("{}{}: {}", p.name, if p.required { "" } else { "?" }, type_name(&p.schema)))
            .collect();
        let result = self.result.as_ref().map(|r| format!(" -> {}", type_name(&r.schema))).unwrap_or_default();
        format!("{}({}){}", self.name, params.join(", "), result)
    }
}

/// A short name for a schema's type (`integer`, `string[]`, `object`...).
pub fn type_name(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => match schema.get("items") {
            Some(items) => format!("{}[]", type_name(items)),
            None => "array".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"),
        _ if schema.get("anyOf").is_some() || schema.get("oneOf").is_some() => "union".into(),
        _ if schema.as_bool() == Some(true) || schema.as_object().is_some_and(|o| o.is_empty()) => "any".into(),
        _ => "value".into(),
    }
}

/// Splits a params schema into OpenRPC params: a tuple (array with
/// `prefixItems`) is by-position, a struct (object with `properties`) is
/// by-name (structs also accept positional arrays, so: `either`). An
/// object's properties are listed in the order of `names` when given (their
/// positional order: the schema's own map is sorted by name), else by name.
/// Anything else is the whole params as one value ([`ParamsForm::Whole`]).
fn params_from_schema(schema: &Value, names: &[String]) -> (Vec<ParamDoc>, String, ParamsForm) {
    if let Some(items) = schema.get("prefixItems").and_then(Value::as_array) {
        let params = items
            .iter()
            .enumerate()
            .map(|(i, s)| ParamDoc {
                name: names.get(i).cloned().unwrap_or_else(|| format!("arg{i}")),
                schema: s.clone(),
                required: true,
            })
            .collect();
        return (params, "by-position".into(), ParamsForm::Listed);
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut ordered: Vec<(&String, &Value)> = props.iter().collect();
        let position = |name: &str| names.iter().position(|n| n == name).unwrap_or(names.len());
        ordered.sort_by_key(|(name, _)| position(name));
        let params = ordered
            .into_iter()
            .map(|(name, s)| ParamDoc {
                name: name.clone(),
                schema: s.clone(),
                required: required.contains(&name.as_str()),
            })
            .collect();
        return (params, "either".into(), ParamsForm::Listed);
    }
    if schema.get("type").and_then(Value::as_str) == Some("null") {
        return (Vec::new(), "either".into(), ParamsForm::Listed);
    }
    // Anything else (a Vec, any JSON): one param holding the params whole.
    let name = names.first().cloned().unwrap_or_else(|| "params".into());
    (vec![ParamDoc { name, schema: schema.clone(), required: false }], "either".into(), ParamsForm::Whole)
}

/// The JSON Schema of `T`, with every subschema inlined (no `$ref`s).
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator =
        schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
    }
    schema
}

impl Method {
    /// Derives the params and result schemas from Rust types.
    pub fn schema<P: JsonSchema, R: JsonSchema>(&mut self) -> &mut Self {
        let info = self.info_mut();
        info.params_schema = Some(schema_of::<P>());
        info.result_schema = Some(schema_of::<R>());
        self
    }

    /// Names positional params (for a tuple of params), or gives the
    /// positional order of a struct's fields (listed by name otherwise).
    pub fn param_names<S: Into<String>>(&mut self, names: impl IntoIterator<Item = S>) -> &mut Self {
        self.info_mut().param_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Documents an error the method may return.
    pub fn error(&mut self, code: i64, message: impl Into<String>) -> &mut Self {
        self.info_mut().errors.push((code, message.into()));
        self
    }

    /// Gives the params and result schemas by hand.
    pub fn schema_json(&mut self, params: Value, result: Value) -> &mut Self {
        let info = self.info_mut();
        info.params_schema = Some(params);
        info.result_schema = Some(result);
        self
    }
}

/// A schema that accepts anything (for methods that take any JSON).
pub fn any_schema() -> Value {
    json!({})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, ErrorObject};

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Subtract {
        /// What to subtract from.
        minuend: f64,
        subtrahend: f64,
        note: Option<String>,
    }

    #[test]
    fn struct_params_are_named_with_their_required_flags() {
        let mut methods = Methods::new();
        methods
            .register_sync("subtract", |p: Subtract, _: Context| Ok::<_, ErrorObject>(p.minuend - p.subtrahend))
            .schema::<Subtract, f64>();
        let doc = Document::build(&ServiceInfo::new("t", "1"), &methods);
        let m = doc.method("subtract").unwrap();
        let names: Vec<(&str, bool)> = m.params.iter().map(|p| (p.name.as_str(), p.required)).collect();
        assert_eq!(names, vec![("minuend", true), ("note", false), ("subtrahend", true)]);
        assert_eq!(m.result.as_ref().unwrap().schema["type"], "number");
        assert_eq!(m.signature(), "subtract(minuend: number, note?: string|null, subtrahend: number) -> number");
    }

    #[test]
    fn object_params_are_listed_in_the_order_of_their_names() {
        let info = MethodInfo {
            params_schema: Some(json!({
                "type": "object",
                "properties": {"b": {"type": "integer"}, "a": {"type": "string"}, "z": {}},
                "required": ["b"],
            })),
            param_names: vec!["b".into(), "a".into()],
            ..MethodInfo::default()
        };
        let doc = MethodDoc::from_info("m".into(), &info);
        let names: Vec<(&str, bool)> = doc.params.iter().map(|p| (p.name.as_str(), p.required)).collect();
        assert_eq!(names, vec![("b", true), ("a", false), ("z", false)]);
        assert_eq!(doc.param_structure, "either");
        assert_eq!(doc.signature(), "m(b: integer, a?: string, z?: any)");
    }

    #[test]
    fn methods_without_schemas_are_listed_with_their_summary() {
        let mut methods = Methods::new();
        methods.register_sync("echo", |v: Value, _: Context| Ok::<_, ErrorObject>(v)).describe("Echoes");
        let doc = Document::build(&ServiceInfo::new("t", "1"), &methods);
        assert_eq!(doc.methods[0].summary.as_deref(), Some("Echoes"));
        assert!(doc.methods[0].params.is_empty());
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<Document>(&text).unwrap(), doc);
    }
}
