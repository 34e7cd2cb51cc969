//! The layers of `server/src` (ARCHITECTURE.md, "Inside the server"): the
//! `crate::` references between top-level modules form no circle, and the
//! three lower layers only point down: api → serve → state → config.
//!
//! It reads the sources: every `crate::name` (and `use crate::{a, b}`) in
//! code, comments left out, gives an arrow from the top-level module of the
//! file (a folder or a file under `src/`) to `name`. A reference through a
//! re-export at the crate root (`crate::ServerHandle`) hides the real
//! arrow, so it is refused too: name the defining module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of a top-level module; everything else is the API (3).
fn rank(module: &str) -> usize {
    match module {
        "config" => 0,
        "state" => 1,
        "serve" => 2,
        _ => 3,
    }
}

const LAYERS: [&str; 4] = ["config", "state", "serve", "api"];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The code of a Rust file without its comments (line and block); string
/// literals are kept as they are (a `//` inside one cuts the rest of that
/// line, which never hides a reference in this crate's style).
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    loop {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |end| &rest[l + end..]);
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = rest[b + 2..].find("*/").map_or("", |end| &rest[b + 2 + end + 2..]);
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
            (Some(_), None) => unreachable!(),
        }
    }
}

fn ident(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of every `crate::` reference in `code`.
fn references(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        // `switchboard_crate::` and the like are not ours.
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b::{Y, Z}}`: the first segment of each top-level item.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        names.push(ident(&group[i..]).to_owned());
                    }
                    _ => {}
                }
            }
        } else {
            names.push(ident(rest).to_owned());
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read server/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The arrows between the top-level modules of `src`, and every problem
/// found on the way (root re-exports, `super::super`).
fn graph(src: &Path) -> (Graph, Vec<String>) {
    let modules: BTreeSet<String> = std::fs::read_dir(src)
        .expect("read server/src")
        .map(|e| e.expect("a directory entry").path())
        .filter_map(|p| {
            let stem = if p.is_dir() { p.file_name() } else { p.file_stem() };
            stem.map(|s| s.to_string_lossy().into_owned())
        })
        .filter(|m| m != "lib")
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let (mut graph, mut problems) = (Graph::new(), Vec::new());
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a path").as_os_str().to_string_lossy();
        let from = first.trim_end_matches(".rs").to_owned();
        if from == "lib" {
            continue;
        }
        let code = strip_comments(&std::fs::read_to_string(&file).expect("read a source file"));
        if code.contains("super::super") {
            problems.push(format!("{}: `super::super` leaves its module; use `crate::`", relative.display()));
        }
        graph.entry(from.clone()).or_default();
        for name in references(&code) {
            if modules.contains(&name) {
                if name != from {
                    graph.entry(from.clone()).or_default().insert(name);
                }
            } else {
                problems.push(format!(
                    "{}: `crate::{name}` goes through the crate root; name the module that defines it",
                    relative.display()
                ));
            }
        }
    }
    (graph, problems)
}

/// A circle of arrows, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Arrows from a lower layer to a higher one.
fn upward(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (from, tos) in graph {
        for to in tos {
            if rank(to) > rank(from) {
                found.push(format!("{from} ({}) imports {to} ({})", LAYERS[rank(from)], LAYERS[rank(to)]));
            }
        }
    }
    found
}

#[test]
fn server_modules_form_layers_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (graph, problems) = graph(&src);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the modules of server/src import each other in a circle: {}", cycle.join(" -> "));
    }
    let upward = upward(&graph);
    assert!(upward.is_empty(), "arrows pointing up a layer:\n{}", upward.join("\n"));
    for layer in ["config", "state", "serve"] {
        assert!(graph.contains_key(layer), "the layer {layer}/ is missing");
    }
}

#[test]
fn the_check_finds_circles_and_upward_arrows() {
    fn arrow(graph: &mut Graph, a: &str, b: &str) {
        graph.entry(a.to_owned()).or_default().insert(b.to_owned());
    }
    let mut graph = Graph::new();
    arrow(&mut graph, "handle", "serve");
    arrow(&mut graph, "serve", "state");
    arrow(&mut graph, "context", "handle");
    assert_eq!(find_cycle(&graph), None);
    assert!(upward(&graph).is_empty());
    arrow(&mut graph, "state", "context");
    assert_eq!(find_cycle(&graph).unwrap().join(" "), "context handle serve state context");
    assert_eq!(upward(&graph), ["state (state) imports context (api)"]);
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let code = strip_comments(
        "use crate::a::X; // crate::ignored\nuse crate::{\n  b::{c, d},\n  e,\n};\n/* crate::gone */ let x = crate::f::g();\nswitchboard_crate::no;",
    );
    assert_eq!(references(&code), ["a", "b", "e", "f"]);
}
