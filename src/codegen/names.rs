//! Names in the generated TypeScript: identifiers made from any string,
//! property keys, string literals and doc comments.

/// Words that cannot name a variable or a parameter in a JavaScript module
/// (strict mode), plus the names the generated code uses itself.
const RESERVED: &[&str] = &[
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "undefined",
    "var",
    "void",
    "while",
    "with",
    "yield",
    // The params the generated functions and handlers have besides the method's.
    "client",
    "options",
    "context",
];

/// Whether `name` is an identifier as written (ASCII letters, digits, `_`
/// and `$`, not starting with a digit).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A parameter name made from `name`: anything but letters, digits and `_`
/// becomes `_`; a leading digit, a reserved word or a name already `taken`
/// gets a `_` more.
pub(crate) fn param_name(name: &str, taken: &[String]) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    while RESERVED.contains(&out.as_str()) || taken.contains(&out) {
        out.push('_');
    }
    out
}

/// A type name made from a schema's title or a definition's name: its
/// words in PascalCase (`browser_info` → `BrowserInfo`), `Type` when none is left.
pub(crate) fn type_name(name: &str) -> String {
    let mut out = String::new();
    for word in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Type");
    }
    out
}

/// A property key: bare when it is an identifier, else a string literal.
pub(crate) fn key(name: &str) -> String {
    if is_identifier(name) { name.to_owned() } else { literal(name) }
}

/// Reading property `name` of `object`: `object.name` or `object['na-me']`.
pub(crate) fn access(object: &str, name: &str) -> String {
    if is_identifier(name) { format!("{object}.{name}") } else { format!("{object}[{}]", literal(name)) }
}

/// A single-quoted string literal.
pub(crate) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A doc comment of `text` (nothing for none), each line indented by `indent`.
pub(crate) fn doc(text: Option<&str>, indent: &str) -> String {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return String::new() };
    // `*/` would end the comment early.
    let text = text.replace("*/", "*\\/");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", lines[0]);
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        if line.is_empty() {
            out.push_str(&format!("{indent} *\n"));
        } else {
            out.push_str(&format!("{indent} * {line}\n"));
        }
    }
    out.push_str(&format!("{indent} */\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_identifiers_that_clash_with_nothing() {
        assert_eq!(param_name("asked_at", &[]), "asked_at");
        assert_eq!(param_name("max-count", &[]), "max_count");
        assert_eq!(param_name("2fa", &[]), "_2fa");
        assert_eq!(param_name("default", &[]), "default_");
        assert_eq!(param_name("options", &[]), "options_");
        assert_eq!(param_name("a-b", &["a_b".into()]), "a_b_");
        assert_eq!(param_name("", &[]), "_");
    }

    #[test]
    fn type_names_are_pascal_case() {
        assert_eq!(type_name("browser_info"), "BrowserInfo");
        assert_eq!(type_name("Report"), "Report");
        assert_eq!(type_name("Nullable_Report"), "NullableReport");
        assert_eq!(type_name("2d point"), "Type2dPoint");
        assert_eq!(type_name("--"), "Type");
    }

    #[test]
    fn keys_and_literals_are_quoted_when_needed() {
        assert_eq!(key("calls_total"), "calls_total");
        assert_eq!(key("content-type"), "'content-type'");
        assert_eq!(access("handlers", "browser"), "handlers.browser");
        assert_eq!(access("handlers", "my-page"), "handlers['my-page']");
        assert_eq!(literal("it's \\ new\nline"), "'it\\'s \\\\ new\\nline'");
    }

    #[test]
    fn doc_comments_cannot_end_early() {
        assert_eq!(doc(Some("Adds."), "  "), "  /** Adds. */\n");
        assert_eq!(doc(Some("a */ b"), ""), "/** a *\\/ b */\n");
        assert_eq!(doc(Some("One.\n\nTwo."), ""), "/**\n * One.\n *\n * Two.\n */\n");
        assert_eq!(doc(None, ""), "");
        assert_eq!(doc(Some("  "), ""), "");
    }
}
