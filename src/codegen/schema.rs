//! JSON Schema to TypeScript types.
//!
//! A schema becomes a type expression (`number`, `string[]`, `'buy' |
//! 'sell'`, `{ a: number; b?: string }`...). Schemas worth a name become
//! named types, declared once: those a `$ref` points at (named after the
//! definition) and titled objects, enums and unions (named after the title,
//! as `schemars` titles a Rust struct or enum). Terms:
//!
//! - a schema's **root** is the schema its local `$ref`s (`#/$defs/X`,
//!   `#/definitions/X`) are read against: the param's or result's own
//!   schema; a pointer not found there is read against the whole document
//!   (`#/components/schemas/X`);
//! - two schemas that are the same JSON but for their `title` and
//!   `description` get the same name, also where one is not titled
//!   (`schemars` titles only the root of each schema it makes, so a struct
//!   inside another is untitled there); two different ones that want the
//!   same name get `2`, `3`... after it;
//! - a named type's body is made once every schema has been read (see
//!   [`Types::declarations`]), so that it may use every name.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::names;

/// Names the generated module declares itself, which no schema's type may take.
const TAKEN: &[&str] = &[
    "Json",
    "Client",
    "CallOptions",
    "NotifyOptions",
    "MethodContext",
    "MethodHandler",
    "Publication",
    "PositionedSubscribeOptions",
    "Subscription",
    "Unsubscribe",
    "Topic",
    "Methods",
    "Topics",
    "ClientMethods",
    "Promise",
    "Record",
    "Array",
    "Object",
    "String",
    "Number",
    "Boolean",
];

/// A type expression, and whether it is a union or an intersection (which
/// needs parentheses inside an array type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ty {
    pub(crate) text: String,
    compound: bool,
}

impl Ty {
    fn atom(text: impl Into<String>) -> Ty {
        Ty { text: text.into(), compound: false }
    }

    /// `A | B | ...` of the distinct members (just the member when one).
    fn union(members: Vec<Ty>) -> Ty {
        Ty::joined(members, " | ")
    }

    fn intersection(members: Vec<Ty>) -> Ty {
        Ty::joined(members, " & ")
    }

    fn joined(members: Vec<Ty>, separator: &str) -> Ty {
        let mut texts: Vec<String> = Vec::new();
        for member in members {
            let text = if member.compound { format!("({})", member.text) } else { member.text };
            if !texts.contains(&text) {
                texts.push(text);
            }
        }
        match texts.len() {
            0 => Ty::atom("never"),
            1 => Ty::atom(texts.remove(0)),
            _ => Ty { text: texts.join(separator), compound: true },
        }
    }

    /// `T[]`.
    fn array_of(item: Ty) -> Ty {
        if item.compound { Ty::atom(format!("({})[]", item.text)) } else { Ty::atom(format!("{}[]", item.text)) }
    }

    /// This type or `null`.
    pub(crate) fn nullable(self) -> Ty {
        Ty::union(vec![self, Ty::atom("null")])
    }
}

/// What a named type is.
#[derive(Debug, Clone)]
enum Body {
    /// Being made (a recursive type refers to its name meanwhile).
    Pending,
    /// `export interface Name { members }`.
    Interface(Vec<Member>),
    /// `export type Name = expression;`.
    Alias(Ty),
}

/// A property of an interface (or an index signature, `key` `None`).
#[derive(Debug, Clone)]
struct Member {
    key: Option<String>,
    ty: Ty,
    optional: bool,
    description: Option<String>,
}

#[derive(Debug, Clone)]
struct Named {
    description: Option<String>,
    body: Body,
    /// The schema and its root, until the body is made.
    source: Option<(Value, Value)>,
}

/// The named types made so far, and how to make more.
pub(crate) struct Types<'d> {
    document: &'d Value,
    named: BTreeMap<String, Named>,
    /// Each named schema's [`identity`]: its name.
    by_schema: HashMap<String, String>,
}

impl<'d> Types<'d> {
    /// Types for the schemas of `document` (what non-local `$ref`s are read against).
    pub(crate) fn new(document: &'d Value) -> Self {
        Types { document, named: BTreeMap::new(), by_schema: HashMap::new() }
    }

    /// The type of `schema`, its own root.
    pub(crate) fn of(&mut self, schema: &Value) -> Ty {
        self.ty(schema, schema)
    }

    fn ty(&mut self, schema: &Value, root: &Value) -> Ty {
        let map = match schema {
            Value::Bool(true) => return Ty::atom("Json"),
            Value::Bool(false) => return Ty::atom("never"),
            Value::Object(map) => map,
            _ => return Ty::atom("Json"),
        };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            return self.reference(reference, root);
        }
        if worth_a_name(map) {
            if let Some(title) = map.get("title").and_then(Value::as_str) {
                return Ty::atom(self.named(title, schema, root));
            }
            if let Some(name) = self.by_schema.get(&identity(schema)) {
                return Ty::atom(name.clone());
            }
            // `schemars` writes an `Option` of a struct as the struct whose type may also be null.
            if let Some(name) = without_null(map).and_then(|other| self.by_schema.get(&identity(&other))) {
                return Ty::atom(name.clone()).nullable();
            }
        }
        self.anonymous(map, root)
    }

    /// The type of a schema, not named even when it is worth a name.
    fn anonymous(&mut self, map: &Map<String, Value>, root: &Value) -> Ty {
        let ty = if let Some(value) = map.get("const") {
            literal(value)
        } else if let Some(values) = map.get("enum").and_then(Value::as_array) {
            Ty::union(values.iter().map(literal).collect())
        } else if let Some(branches) = map.get("oneOf").or_else(|| map.get("anyOf")).and_then(Value::as_array) {
            Ty::union(branches.iter().map(|b| self.ty(b, root)).collect())
        } else if let Some(parts) = map.get("allOf").and_then(Value::as_array) {
            Ty::intersection(parts.iter().map(|p| self.ty(p, root)).collect())
        } else {
            match map.get("type") {
                Some(Value::String(kind)) => self.of_kind(kind, map, root),
                Some(Value::Array(kinds)) => {
                    Ty::union(kinds.iter().filter_map(Value::as_str).map(|k| self.of_kind(k, map, root)).collect())
                }
                _ if map.contains_key("properties") || map.contains_key("additionalProperties") => {
                    self.of_kind("object", map, root)
                }
                _ if map.contains_key("items") || map.contains_key("prefixItems") => self.of_kind("array", map, root),
                _ => Ty::atom("Json"),
            }
        };
        // OpenAPI's way of saying null is allowed.
        if map.get("nullable") == Some(&Value::Bool(true)) { ty.nullable() } else { ty }
    }

    fn of_kind(&mut self, kind: &str, map: &Map<String, Value>, root: &Value) -> Ty {
        match kind {
            "string" => Ty::atom("string"),
            "integer" | "number" => Ty::atom("number"),
            "boolean" => Ty::atom("boolean"),
            "null" => Ty::atom("null"),
            "array" => self.array(map, root),
            "object" => {
                let members = self.members(map, root);
                Ty::atom(inline_object(&members))
            }
            _ => Ty::atom("Json"),
        }
    }

    /// `T[]`, or a tuple `[A, B]` (`prefixItems`, or the older array-valued `items`).
    fn array(&mut self, map: &Map<String, Value>, root: &Value) -> Ty {
        let (prefix, rest) = match (map.get("prefixItems"), map.get("items")) {
            (Some(Value::Array(prefix)), rest) => (Some(prefix), rest),
            (None, Some(Value::Array(prefix))) => (Some(prefix), map.get("additionalItems")),
            (_, items) => (None, items),
        };
        let Some(prefix) = prefix else {
            return Ty::array_of(rest.map_or_else(|| Ty::atom("Json"), |items| self.ty(items, root)));
        };
        let mut elements: Vec<String> = prefix.iter().map(|item| self.ty(item, root).text).collect();
        // More elements may follow unless the schema says none may.
        let closed = map.get("maxItems").and_then(Value::as_u64).is_some_and(|max| max <= prefix.len() as u64);
        match rest {
            _ if closed => {}
            Some(Value::Bool(false)) => {}
            Some(items) => elements.push(format!("...{}", Ty::array_of(self.ty(items, root)).text)),
            None => elements.push("...Json[]".to_owned()),
        }
        Ty::atom(format!("[{}]", elements.join(", ")))
    }

    /// An object's properties (required first as listed), and an index
    /// signature for the others when their type is given.
    fn members(&mut self, map: &Map<String, Value>, root: &Value) -> Vec<Member> {
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut members = Vec::new();
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            for (name, schema) in properties {
                members.push(Member {
                    key: Some(name.clone()),
                    ty: self.ty(schema, root),
                    optional: !required.contains(&name.as_str()),
                    description: schema.get("description").and_then(Value::as_str).map(str::to_owned),
                });
            }
        }
        let others = match map.get("additionalProperties") {
            None | Some(Value::Bool(true)) if members.is_empty() => Some(Ty::atom("Json")),
            None | Some(Value::Bool(_)) => None,
            Some(schema) => Some(self.ty(schema, root)),
        };
        if let Some(others) = others {
            // Every property must fit the index signature's type.
            let mut all: Vec<Ty> = members.iter().map(|m| m.ty.clone()).collect();
            if members.iter().any(|m| m.optional) {
                all.push(Ty::atom("undefined"));
            }
            all.insert(0, others);
            members.push(Member { key: None, ty: Ty::union(all), optional: false, description: None });
        }
        members
    }

    /// The type a `$ref` points at, named after its last segment.
    fn reference(&mut self, reference: &str, root: &Value) -> Ty {
        let Some(pointer) = reference.strip_prefix('#') else { return Ty::atom("Json") };
        let (target, target_root) = match root.pointer(pointer) {
            Some(target) => (target, root),
            None => match self.document.pointer(pointer) {
                Some(target) => (target, self.document),
                None => return Ty::atom("Json"),
            },
        };
        if pointer.is_empty() {
            // The root itself: a recursive type at the top.
            let title = target.get("title").and_then(Value::as_str).unwrap_or("Root");
            return Ty::atom(self.named(title, target, target_root));
        }
        let segment = pointer.rsplit('/').next().unwrap_or("Type").replace("~1", "/").replace("~0", "~");
        Ty::atom(self.named(&segment, target, target_root))
    }

    /// The name of a named type for `schema`, registered if new (its body
    /// is made later, by [`finish`](Self::finish)).
    fn named(&mut self, wanted: &str, schema: &Value, root: &Value) -> String {
        let identity = identity(schema);
        if let Some(name) = self.by_schema.get(&identity) {
            return name.clone();
        }
        let base = names::type_name(wanted);
        let mut name = base.clone();
        let mut n = 1;
        while self.named.contains_key(&name) || TAKEN.contains(&name.as_str()) {
            n += 1;
            name = format!("{base}{n}");
        }
        self.by_schema.insert(identity, name.clone());
        let description = schema.get("description").and_then(Value::as_str).map(str::to_owned);
        let source = Some((schema.clone(), root.clone()));
        self.named.insert(name.clone(), Named { description, body: Body::Pending, source });
        name
    }

    /// Makes the body of every named type registered, and of those their
    /// bodies name in turn.
    fn finish(&mut self) {
        loop {
            let next = self.named.iter_mut().find_map(|(name, named)| named.source.take().map(|s| (name.clone(), s)));
            let Some((name, (schema, root))) = next else { return };
            let body = match &schema {
                Value::Object(map) if is_plain_object(map) => Body::Interface(self.members(map, &root)),
                Value::Object(map) => match map.get("$ref").and_then(Value::as_str) {
                    Some(target) => Body::Alias(self.reference(target, &root)),
                    None => Body::Alias(self.anonymous(map, &root)),
                },
                other => Body::Alias(self.ty(other, &root)),
            };
            if let Some(named) = self.named.get_mut(&name) {
                named.body = body;
            }
        }
    }

    /// The declarations of every named type, sorted by name.
    pub(crate) fn declarations(&mut self) -> String {
        self.finish();
        let mut out = String::new();
        for (name, named) in &self.named {
            out.push_str(&names::doc(named.description.as_deref(), ""));
            match &named.body {
                Body::Interface(members) => {
                    out.push_str(&format!("export interface {name} {{\n"));
                    for member in members {
                        out.push_str(&names::doc(member.description.as_deref(), "  "));
                        out.push_str(&format!("  {};\n", member_text(member)));
                    }
                    out.push_str("}\n\n");
                }
                Body::Alias(ty) => out.push_str(&format!("export type {name} = {};\n\n", ty.text)),
                Body::Pending => out.push_str(&format!("export type {name} = Json;\n\n")),
            }
        }
        out
    }
}

/// What two schemas of one named type share: their JSON without the
/// `title` and `description` at the top.
fn identity(schema: &Value) -> String {
    match schema {
        Value::Object(map) => {
            let mut map = map.clone();
            map.remove("title");
            map.remove("description");
            Value::Object(map).to_string()
        }
        other => other.to_string(),
    }
}

/// A schema whose type is `[T, "null"]`, as the same schema of type `T`.
fn without_null(map: &Map<String, Value>) -> Option<Value> {
    let kinds = map.get("type")?.as_array()?;
    let [one, other] = kinds.as_slice() else { return None };
    let kind = match (one.as_str()?, other.as_str()?) {
        ("null", kind) | (kind, "null") if kind != "null" => kind,
        _ => return None,
    };
    let mut map = map.clone();
    map.insert("type".into(), Value::from(kind));
    Some(Value::Object(map))
}

/// An object schema with nothing but properties: an interface.
fn is_plain_object(map: &Map<String, Value>) -> bool {
    let is_object = map.get("type").and_then(Value::as_str) == Some("object")
        || (!map.contains_key("type") && map.contains_key("properties"));
    is_object
        && !["oneOf", "anyOf", "allOf", "enum", "const", "$ref"].iter().any(|k| map.contains_key(*k))
        && map.get("nullable") != Some(&Value::Bool(true))
}

/// Whether a titled schema becomes a named type: an object with properties,
/// an enum of several values, or a union that is not just "this or null"
/// (`schemars` titles `Option<T>` `Nullable_T`, and `Vec<T>` `Array_of_T`).
fn worth_a_name(map: &Map<String, Value>) -> bool {
    let is_null = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
    map.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty())
        || map.get("enum").and_then(Value::as_array).is_some_and(|e| e.len() > 1)
        || map
            .get("oneOf")
            .or_else(|| map.get("anyOf"))
            .and_then(Value::as_array)
            .is_some_and(|branches| branches.len() > 1 && !branches.iter().any(is_null))
}

fn member_text(member: &Member) -> String {
    match &member.key {
        Some(key) => format!("{}{}: {}", names::key(key), if member.optional { "?" } else { "" }, member.ty.text),
        None => format!("[key: string]: {}", member.ty.text),
    }
}

/// `{ a: number; b?: string }` on one line.
fn inline_object(members: &[Member]) -> String {
    if members.is_empty() {
        return "{}".to_owned();
    }
    let texts: Vec<String> = members.iter().map(member_text).collect();
    format!("{{ {} }}", texts.join("; "))
}

/// The literal type of a JSON value (`Json` for arrays and objects).
fn literal(value: &Value) -> Ty {
    match value {
        Value::String(text) => Ty::atom(names::literal(text)),
        Value::Number(n) => Ty::atom(n.to_string()),
        Value::Bool(b) => Ty::atom(b.to_string()),
        Value::Null => Ty::atom("null"),
        _ => Ty::atom("Json"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ty(schema: Value) -> String {
        let document = json!({});
        Types::new(&document).of(&schema).text
    }

    #[test]
    fn scalars_arrays_and_tuples() {
        assert_eq!(ty(json!({"type": "integer", "format": "int64"})), "number");
        assert_eq!(ty(json!({"type": "string"})), "string");
        assert_eq!(ty(json!({"type": "boolean"})), "boolean");
        assert_eq!(ty(json!({})), "Json");
        assert_eq!(ty(json!(true)), "Json");
        assert_eq!(ty(json!(false)), "never");
        assert_eq!(ty(json!({"type": "array", "items": {"type": "number"}})), "number[]");
        assert_eq!(ty(json!({"type": "array"})), "Json[]");
        assert_eq!(ty(json!({"type": "array", "items": {"type": ["string", "null"]}})), "(string | null)[]");
        let tuple = json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false});
        assert_eq!(ty(tuple), "[string, number]");
        let open = json!({"type": "array", "prefixItems": [{"type": "string"}]});
        assert_eq!(ty(open), "[string, ...Json[]]");
        let counted = json!({"type": "array", "prefixItems": [{"type": "string"}], "maxItems": 1});
        assert_eq!(ty(counted), "[string]");
        let rest = json!({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}});
        assert_eq!(ty(rest), "[string, ...number[]]");
        let draft4 = json!({"type": "array", "items": [{"type": "string"}, {}]});
        assert_eq!(ty(draft4), "[string, Json, ...Json[]]");
    }

    #[test]
    fn enums_consts_unions_and_nullable() {
        assert_eq!(ty(json!({"type": "string", "enum": ["buy", "sell"]})), "'buy' | 'sell'");
        assert_eq!(ty(json!({"const": 3})), "3");
        assert_eq!(ty(json!({"type": ["string", "null"]})), "string | null");
        assert_eq!(ty(json!({"type": "integer", "nullable": true})), "number | null");
        assert_eq!(ty(json!({"anyOf": [{"type": "string"}, {"type": "null"}]})), "string | null");
        assert_eq!(
            ty(json!({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}]})),
            "{ a?: number }"
        );
    }

    #[test]
    fn objects_say_which_properties_may_be_left_out() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "content-type": {"type": "string"}},
            "required": ["a"],
        });
        assert_eq!(ty(schema), "{ a: number; 'content-type'?: string }");
        assert_eq!(ty(json!({"type": "object"})), "{ [key: string]: Json }");
        let map = json!({"type": "object", "additionalProperties": {"type": "integer"}});
        assert_eq!(ty(map), "{ [key: string]: number }");
        let both = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                          "additionalProperties": {"type": "integer"}});
        assert_eq!(ty(both), "{ a: string; [key: string]: number | string }");
        let closed = json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false});
        assert_eq!(ty(closed), "{ a?: string }");
    }

    #[test]
    fn titled_objects_and_refs_are_named_once() {
        let document = json!({"components": {"schemas": {"Side": {"type": "string", "enum": ["buy", "sell"]}}}});
        let mut types = Types::new(&document);
        let order = json!({
            "title": "Order",
            "description": "One order.",
            "type": "object",
            "properties": {
                "side": {"$ref": "#/components/schemas/Side"},
                "legs": {"type": "array", "items": {"$ref": "#/$defs/Leg"}},
                "note": {"description": "Why.", "type": ["string", "null"]},
            },
            "required": ["side", "legs"],
            "$defs": {"Leg": {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]}},
        });
        assert_eq!(types.of(&order).text, "Order");
        assert_eq!(types.of(&order).text, "Order", "the same schema, the same name");
        let other = json!({"title": "Order", "type": "object", "properties": {"id": {"type": "string"}}});
        assert_eq!(types.of(&other).text, "Order2", "another schema of the same title");
        assert_eq!(
            types.declarations(),
            "export interface Leg {\n  qty: number;\n}\n\n\
             /** One order. */\nexport interface Order {\n  legs: Leg[];\n  /** Why. */\n  note?: string | null;\n  side: Side;\n}\n\n\
             export interface Order2 {\n  id?: string;\n}\n\n\
             export type Side = 'buy' | 'sell';\n\n"
        );
    }

    #[test]
    fn an_untitled_copy_of_a_titled_schema_takes_its_name() {
        let document = json!({});
        let mut types = Types::new(&document);
        let info = json!({"type": "object", "properties": {"agent": {"type": "string"}}, "required": ["agent"]});
        // As `schemars` writes a struct inside another: untitled, described by the field's docs.
        let report = json!({"title": "Report", "type": "object", "properties": {
            "info": {"anyOf": [info, {"type": "null"}], "description": "What it answered."}}});
        let mut titled = info.clone();
        titled["title"] = json!("BrowserInfo");
        titled["description"] = json!("A page.");
        assert_eq!(types.of(&report).text, "Report");
        assert_eq!(types.of(&titled).text, "BrowserInfo");
        assert_eq!(types.of(&info).text, "BrowserInfo");
        let mut optional = info.clone();
        optional["type"] = json!(["object", "null"]);
        assert_eq!(types.of(&optional).text, "BrowserInfo | null");
        assert_eq!(
            types.declarations(),
            "/** A page. */\nexport interface BrowserInfo {\n  agent: string;\n}\n\n\
             export interface Report {\n  /** What it answered. */\n  info?: BrowserInfo | null;\n}\n\n"
        );
    }

    #[test]
    fn a_recursive_type_refers_to_itself_by_name() {
        let document = json!({});
        let mut types = Types::new(&document);
        let tree = json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}, "required": ["children"]}},
        });
        assert_eq!(types.of(&tree).text, "Node");
        assert_eq!(types.declarations(), "export interface Node {\n  children: Node[];\n}\n\n");
    }

    #[test]
    fn names_the_module_uses_are_not_taken() {
        let document = json!({});
        let mut types = Types::new(&document);
        let topic = json!({"title": "Topic", "type": "object", "properties": {"name": {"type": "string"}}});
        assert_eq!(types.of(&topic).text, "Topic2");
        let unknown = json!({"$ref": "https://example.com/schema.json"});
        assert_eq!(types.of(&unknown).text, "Json");
        let missing = json!({"$ref": "#/$defs/Gone"});
        assert_eq!(types.of(&missing).text, "Json");
    }
}
