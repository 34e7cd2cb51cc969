//! What an OpenRPC document offers a browser client, read into the shape
//! the generated module takes: the methods it calls, the topics it
//! subscribes to and the methods it serves, each with TypeScript types, and
//! grouped by the dots of their names (`dashboard.ask_browsers` is
//! `ask_browsers` in the group `dashboard`).

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_shared::discover::{Document, MethodDoc, ParamsForm};

use super::CodegenError;
use super::names;
use super::schema::{Ty, Types};

/// How a call's params are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// An array in the params' order (`by-position`).
    Positional,
    /// An object keyed by the params' names (`by-name`, or `either`: every
    /// Switchboard method takes names, and a param left out is then left out).
    Named,
    /// The one param is the params (`"x-params": "whole"`).
    Whole,
}

/// One param of a call.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    /// Its name on the wire.
    pub(crate) wire: String,
    /// Its name in the generated function.
    pub(crate) ident: String,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
}

/// A method: one the browser calls, or one the server calls on it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) summary: Option<String>,
    pub(crate) params: Vec<Param>,
    pub(crate) form: Form,
    /// The result's type; `None` for a notification (OpenRPC: a method
    /// without a result is only ever a notification).
    pub(crate) result: Option<Ty>,
}

/// A topic.
#[derive(Debug, Clone)]
pub(crate) struct TopicEntry {
    pub(crate) name: String,
    pub(crate) summary: Option<String>,
    /// The method of its plain notifications.
    pub(crate) method: String,
    /// The type of its publications.
    pub(crate) ty: Ty,
}

/// Entries grouped by the dots of their names, each level sorted by name.
#[derive(Debug, Clone)]
pub(crate) struct Tree<T> {
    pub(crate) nodes: BTreeMap<String, Node<T>>,
}

/// A name in a [`Tree`]: an entry, or a group of them.
#[derive(Debug, Clone)]
pub(crate) enum Node<T> {
    Leaf(T),
    Group(Tree<T>),
}

impl<T> Tree<T> {
    fn new() -> Self {
        Tree { nodes: BTreeMap::new() }
    }

    /// Puts `entry` under `name` (split at its dots).
    fn insert(&mut self, name: &str, entry: T) -> Result<(), CodegenError> {
        let clash = || CodegenError::NameClash(name.to_owned());
        let segments: Vec<&str> = name.split('.').collect();
        if segments.contains(&"__proto__") {
            return Err(CodegenError::UnsafeName(name.to_owned()));
        }
        let (last, groups) = segments.split_last().ok_or_else(clash)?;
        let mut tree = self;
        for group in groups {
            let node = tree.nodes.entry((*group).to_owned()).or_insert_with(|| Node::Group(Tree::new()));
            tree = match node {
                Node::Group(inner) => inner,
                Node::Leaf(_) => return Err(clash()),
            };
        }
        if tree.nodes.contains_key(*last) {
            return Err(clash());
        }
        tree.nodes.insert((*last).to_owned(), Node::Leaf(entry));
        Ok(())
    }
}

/// Everything the module is made of.
pub(crate) struct Api {
    pub(crate) title: String,
    pub(crate) version: String,
    pub(crate) methods: Tree<Call>,
    pub(crate) topics: Tree<TopicEntry>,
    pub(crate) client_methods: Tree<Call>,
    /// The named types' declarations.
    pub(crate) declarations: String,
}

impl Api {
    /// Reads `document`. The protocol's own `rpc.` methods are left out:
    /// the JavaScript client has them.
    pub(crate) fn read(document: &Value) -> Result<Api, CodegenError> {
        let parsed: Document =
            serde_json::from_value(document.clone()).map_err(|e| CodegenError::NotOpenRpc(e.to_string()))?;
        let mut types = Types::new(document);
        let mut sorted_methods: Vec<&MethodDoc> =
            parsed.methods.iter().filter(|m| !m.name.starts_with("rpc.")).collect();
        sorted_methods.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sorted_topics: Vec<_> = parsed.topics.iter().collect();
        sorted_topics.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sorted_client_methods: Vec<&MethodDoc> = parsed.client_methods.iter().collect();
        sorted_client_methods.sort_by(|a, b| a.name.cmp(&b.name));
        // Every titled schema first, so that the same type untitled inside
        // another one (read earlier) is called by its name too.
        for method in sorted_methods.iter().chain(&sorted_client_methods) {
            for schema in method.params.iter().map(|p| &p.schema).chain(method.result.iter().map(|r| &r.schema)) {
                types.of(schema);
            }
        }
        for topic in &sorted_topics {
            types.of(topic.schema.as_ref().unwrap_or(&Value::Bool(true)));
        }

        let mut methods = Tree::new();
        for method in sorted_methods {
            methods.insert(&method.name, call(method, &mut types))?;
        }
        let mut topics = Tree::new();
        for topic in sorted_topics {
            let entry = TopicEntry {
                name: topic.name.clone(),
                summary: topic.summary.clone(),
                method: topic.method.clone().unwrap_or_else(|| topic.name.clone()),
                ty: types.of(topic.schema.as_ref().unwrap_or(&Value::Bool(true))),
            };
            topics.insert(&topic.name, entry)?;
        }
        let mut client_methods = Tree::new();
        for method in sorted_client_methods {
            client_methods.insert(&method.name, call(method, &mut types))?;
        }
        Ok(Api {
            title: parsed.info.title,
            version: parsed.info.version,
            methods,
            topics,
            client_methods,
            declarations: types.declarations(),
        })
    }
}

fn call(method: &MethodDoc, types: &mut Types<'_>) -> Call {
    let form = match (method.params_form, method.param_structure.as_str()) {
        (ParamsForm::Whole, _) if method.params.len() == 1 => Form::Whole,
        (_, "by-position") => Form::Positional,
        _ => Form::Named,
    };
    let mut taken = Vec::new();
    let params = method
        .params
        .iter()
        .map(|p| {
            let ident = names::param_name(&p.name, &taken);
            taken.push(ident.clone());
            Param { wire: p.name.clone(), ident, ty: types.of(&p.schema), required: p.required || form == Form::Whole }
        })
        .collect();
    Call {
        name: method.name.clone(),
        summary: method.summary.clone(),
        params,
        form,
        result: method.result.as_ref().map(|r| types.of(&r.schema)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(methods: Value) -> Value {
        json!({"openrpc": "1.3.2", "info": {"title": "t", "version": "1"}, "methods": methods})
    }

    #[test]
    fn methods_are_grouped_by_their_dots_and_sorted() {
        let doc = document(json!([
            {"name": "b.z", "params": []}, {"name": "a", "params": []}, {"name": "b.y", "params": []},
            {"name": "rpc.discover", "params": []},
        ]));
        let api = Api::read(&doc).unwrap();
        let top: Vec<&str> = api.methods.nodes.keys().map(String::as_str).collect();
        assert_eq!(top, ["a", "b"]);
        let Node::Group(b) = &api.methods.nodes["b"] else { panic!("b is a group") };
        assert_eq!(b.nodes.keys().map(String::as_str).collect::<Vec<_>>(), ["y", "z"]);
    }

    #[test]
    fn a_method_and_a_group_of_one_name_clash() {
        let doc = document(json!([{"name": "a", "params": []}, {"name": "a.b", "params": []}]));
        assert!(matches!(Api::read(&doc), Err(CodegenError::NameClash(name)) if name == "a.b"));
        let doc = document(json!([{"name": "x.__proto__", "params": []}]));
        assert!(matches!(Api::read(&doc), Err(CodegenError::UnsafeName(_))));
        assert!(matches!(Api::read(&json!({"methods": 3})), Err(CodegenError::NotOpenRpc(_))));
    }

    #[test]
    fn the_params_form_follows_the_document() {
        let doc = document(json!([
            {"name": "pos", "paramStructure": "by-position", "params": [{"name": "a", "schema": {}, "required": true}]},
            {"name": "named", "params": [{"name": "default", "schema": {"type": "string"}}]},
            {"name": "whole", "x-params": "whole", "params": [{"name": "numbers", "schema": {"type": "array"}}]},
        ]));
        let api = Api::read(&doc).unwrap();
        let form = |name: &str| match &api.methods.nodes[name] {
            Node::Leaf(call) => (call.form, call.params.iter().map(|p| p.ident.clone()).collect::<Vec<_>>()),
            Node::Group(_) => panic!("a leaf"),
        };
        assert_eq!(form("pos"), (Form::Positional, vec!["a".to_owned()]));
        assert_eq!(form("named"), (Form::Named, vec!["default_".to_owned()]));
        assert_eq!(form("whole"), (Form::Whole, vec!["numbers".to_owned()]));
    }
}
