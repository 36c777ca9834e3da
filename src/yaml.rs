//! YAML/JSON documents with line numbers, for configuration and policy files.
//!
//! Config errors must name the file, line and field, which serde's derive cannot do for
//! semantic errors found after decoding. So documents are parsed into a small [`Node`] tree
//! that keeps every node's position, and decoders walk it with a [`Ctx`] that knows the
//! file name and the field path. JSON is parsed by the same YAML 1.2 parser.

use saphyr_parser::{Event, Parser, ScalarStyle};

pub use crate::diagnostic::{Diagnostic, DiagnosticKind, Pos, Severity};

/// Upper bound on nodes built from one document, aliases included (stops "billion laughs").
const MAX_NODES: usize = 1_000_000;
/// Upper bound on nesting (the tree is built iteratively, but decoders recurse).
const MAX_DEPTH: usize = 128;

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// Its value.
    pub kind: Kind,
}

/// The YAML 1.2 core-schema value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `null`, `~` or empty.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer (decimal, `0x` hex, `0o` octal).
    Int(i64),
    /// A float (also `.inf`, `.nan`).
    Float(f64),
    /// A string (quoted, or plain and not another type).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// Keys keep their order and their own positions; duplicates are kept (decoders warn).
    Map(Vec<(Key, Node)>),
}

/// A mapping key (always a string here: config keys are strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key is.
    pub pos: Pos,
}

impl Node {
    /// The node's type, as messages name it (`a string`, `a list`).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The value of key `name` in a mapping (the last one wins, as in Go's decoders).
    pub fn get(&self, name: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().rev().find(|(k, _)| k.name == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if the node is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses one YAML (or JSON) document. An empty document yields a `Null` node.
pub fn parse(text: &str, file: &str) -> Result<Node, Diagnostic> {
    let err = |pos: Pos, message: String| Diagnostic::error(file, pos, DiagnosticKind::Syntax, message);
    let mut anchors: Vec<Option<Node>> = Vec::new();
    // Open containers: (node under construction, pending key for maps, anchor id).
    let mut stack: Vec<(Node, Option<Key>, usize)> = Vec::new();
    let mut root: Option<Node> = None;
    let mut built = 0usize;
    let mut docs = 0usize;

    for item in Parser::new_from_str(text) {
        let (event, span) =
            item.map_err(|e| err(Pos { line: e.marker().line(), col: e.marker().col() + 1 }, e.info().to_string()))?;
        let pos = Pos { line: span.start.line(), col: span.start.col() + 1 };
        let finished: Option<(Node, usize)> = match event {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(err(pos, "only one YAML document is allowed here".into()));
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => {
                let kind = resolve_scalar(&value, style, tag.as_deref().map(|t| t.suffix.as_str()));
                Some((Node { pos, kind }, anchor))
            }
            Event::SequenceStart(anchor, _) => {
                push_container(&mut stack, Node { pos, kind: Kind::Seq(Vec::new()) }, anchor, file)?;
                None
            }
            Event::MappingStart(anchor, _) => {
                push_container(&mut stack, Node { pos, kind: Kind::Map(Vec::new()) }, anchor, file)?;
                None
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().map(|(node, _, anchor)| (node, anchor)),
            Event::Alias(id) => match anchors.get(id).cloned().flatten() {
                Some(node) => {
                    built += count_nodes(&node);
                    Some((node, 0))
                }
                None => return Err(err(pos, "alias to an unknown anchor".into())),
            },
            _ => None,
        };
        let Some((node, anchor)) = finished else { continue };
        built += 1;
        if built > MAX_NODES {
            return Err(err(pos, format!("document too large (more than {MAX_NODES} nodes)")));
        }
        if anchor > 0 {
            if anchors.len() <= anchor {
                anchors.resize(anchor + 1, None);
            }
            anchors[anchor] = Some(node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some((parent, pending, _)) => match &mut parent.kind {
                Kind::Seq(items) => items.push(node),
                Kind::Map(entries) => match pending.take() {
                    None => {
                        let name = match &node.kind {
                            Kind::Str(s) => s.clone(),
                            Kind::Int(i) => i.to_string(),
                            Kind::Float(f) => f.to_string(),
                            Kind::Bool(b) => b.to_string(),
                            Kind::Null => "null".to_string(),
                            _ => return Err(err(node.pos, "mapping keys must be scalars".into())),
                        };
                        *pending = Some(Key { name, pos: node.pos });
                    }
                    Some(key) => entries.push((key, node)),
                },
                _ => {}
            },
        }
    }
    Ok(root.unwrap_or(Node { pos: Pos { line: 1, col: 1 }, kind: Kind::Null }))
}

fn push_container(
    stack: &mut Vec<(Node, Option<Key>, usize)>,
    node: Node,
    anchor: usize,
    file: &str,
) -> Result<(), Diagnostic> {
    if stack.len() >= MAX_DEPTH {
        let message = format!("nesting deeper than {MAX_DEPTH} levels");
        return Err(Diagnostic::error(file, node.pos, DiagnosticKind::Syntax, message));
    }
    stack.push((node, None, anchor));
    Ok(())
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// YAML 1.2 core schema resolution of a scalar.
fn resolve_scalar(v: &str, style: ScalarStyle, tag: Option<&str>) -> Kind {
    if style != ScalarStyle::Plain || tag == Some("str") {
        return Kind::Str(v.to_string());
    }
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    let looks_numeric = v.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.');
    if looks_numeric {
        if let Ok(i) = v.parse::<i64>() {
            return Kind::Int(i);
        }
        if let Some(hex) = v.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Kind::Int(i);
            }
        }
        if let Some(oct) = v.strip_prefix("0o") {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return Kind::Int(i);
            }
        }
        if v.bytes().any(|b| b.is_ascii_digit()) && v.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) {
            if let Ok(f) = v.parse::<f64>() {
                return Kind::Float(f);
            }
        }
    }
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Kind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Kind::Float(f64::NAN),
        _ => Kind::Str(v.to_string()),
    }
}

/// Decoding context: the file, the field path so far, and the warnings collected.
pub struct Ctx<'w> {
    /// The file named in diagnostics.
    pub file: &'w str,
    path: Vec<String>,
    /// Where warnings go.
    pub warnings: &'w mut Vec<Diagnostic>,
}

impl<'w> Ctx<'w> {
    /// A context at the top of `file`.
    pub fn new(file: &'w str, warnings: &'w mut Vec<Diagnostic>) -> Self {
        Ctx { file, path: Vec::new(), warnings }
    }

    /// The current field path, dotted (`rules[3].level`).
    pub fn field(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            if !seg.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }

    /// An error at `pos` in the current field: a value that is not allowed.
    pub fn error(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        self.problem(DiagnosticKind::Value, pos, message)
    }

    /// An error of `kind` at `pos` in the current field.
    pub fn problem(&self, kind: DiagnosticKind, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic { field: self.field(), ..Diagnostic::error(self.file, pos, kind, message) }
    }

    /// A value of the wrong type: `expected {what}, found` the node's type.
    pub fn type_error(&self, node: &Node, what: &str) -> Diagnostic {
        self.problem(DiagnosticKind::Type, node.pos, format!("expected {what}, found {}", node.type_name()))
    }

    /// Records a warning of `kind` at `pos` in the current field.
    pub fn warn(&mut self, kind: DiagnosticKind, pos: Pos, message: impl Into<String>) {
        let d = Diagnostic { severity: Severity::Warning, ..self.problem(kind, pos, message) };
        self.warnings.push(d);
    }

    /// Runs `f` with `name` appended to the field path.
    pub fn at<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(name.to_string());
        let out = f(self);
        self.path.pop();
        out
    }

    /// Runs `f` with `[index]` appended to the field path.
    pub fn at_index<T>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(format!("[{index}]"));
        let out = f(self);
        self.path.pop();
        out
    }

    /// The entries of a mapping, leniently (for Kubernetes documents such as an audit policy):
    /// a key not in `known` is dropped with a warning, a duplicate key warns and the last value is used.
    pub fn map<'n>(&mut self, node: &'n Node, known: &[&str]) -> Result<Vec<(&'n Key, &'n Node)>, Diagnostic> {
        let (entries, problems) = self.entries(node, known)?;
        for (kind, key, _) in problems {
            let message = match kind {
                DiagnosticKind::UnknownKey => "unknown field, ignored",
                _ => "duplicate field, the last value is used",
            };
            self.at(&key.name, |c| c.warn(kind, key.pos, message));
        }
        Ok(entries)
    }

    /// The entries of a mapping, strictly (kaudit's own files, where a misspelt or repeated key
    /// is a mistake that would silently change behaviour): the first key not in `known`, or
    /// given twice, is an error.
    pub fn strict_map<'n>(&mut self, node: &'n Node, known: &[&str]) -> Result<Vec<(&'n Key, &'n Node)>, Diagnostic> {
        let (entries, problems) = self.entries(node, known)?;
        match problems.into_iter().next() {
            None => Ok(entries),
            Some((kind, key, first)) => Err(self.at(&key.name, |c| c.key_error(kind, key, first, known))),
        }
    }

    /// Like [`Ctx::strict_map`], but every unknown or duplicate key is pushed to `errors` and the
    /// known entries are returned (a top-level section reports all its misspelt keys at once).
    pub fn strict_map_all<'n>(
        &mut self,
        node: &'n Node,
        known: &[&str],
        errors: &mut Vec<Diagnostic>,
    ) -> Result<Vec<(&'n Key, &'n Node)>, Diagnostic> {
        let (entries, problems) = self.entries(node, known)?;
        for (kind, key, first) in problems {
            errors.push(self.at(&key.name, |c| c.key_error(kind, key, first, known)));
        }
        Ok(entries)
    }

    fn key_error(&self, kind: DiagnosticKind, key: &Key, first: Option<Pos>, known: &[&str]) -> Diagnostic {
        let message = match first {
            Some(p) => format!("duplicate key (first given at line {})", p.line),
            None => format!("unknown key (expected one of: {})", known.join(", ")),
        };
        self.problem(kind, key.pos, message)
    }

    /// The entries of a mapping with keys in `known`, the last of duplicates kept; and the
    /// problems in document order: (kind, key, where a duplicate was first given).
    #[allow(clippy::type_complexity)]
    fn entries<'n>(
        &self,
        node: &'n Node,
        known: &[&str],
    ) -> Result<(Vec<(&'n Key, &'n Node)>, Vec<(DiagnosticKind, &'n Key, Option<Pos>)>), Diagnostic> {
        let Kind::Map(entries) = &node.kind else {
            return Err(self.type_error(node, "a mapping"));
        };
        let mut problems = Vec::new();
        let mut out: Vec<(&Key, &Node)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if !known.contains(&key.name.as_str()) {
                problems.push((DiagnosticKind::UnknownKey, key, None));
                continue;
            }
            if let Some(i) = out.iter().position(|(k, _)| k.name == key.name) {
                problems.push((DiagnosticKind::DuplicateKey, key, Some(out[i].0.pos)));
                out.remove(i);
            }
            out.push((key, value));
        }
        Ok((out, problems))
    }

    /// A string (numbers and booleans are type errors: Kubernetes decoders reject them too).
    pub fn string(&self, node: &Node) -> Result<String, Diagnostic> {
        match &node.kind {
            Kind::Str(s) => Ok(s.clone()),
            // Unquoted numbers and booleans used as strings (e.g. `group: 1`) are a common slip; YAML
            // decoders for Kubernetes reject them, and so do we, naming the type.
            _ => Err(self.type_error(node, "a string")),
        }
    }

    /// A string, or null (an empty string), as Go's decoders accept for string fields.
    pub fn string_or_null(&self, node: &Node) -> Result<String, Diagnostic> {
        match &node.kind {
            Kind::Null => Ok(String::new()),
            _ => self.string(node),
        }
    }

    /// A boolean.
    pub fn bool(&self, node: &Node) -> Result<bool, Diagnostic> {
        match node.kind {
            Kind::Bool(b) => Ok(b),
            _ => Err(self.type_error(node, "true or false")),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, node: &Node) -> Result<u64, Diagnostic> {
        match node.kind {
            Kind::Int(i) if i >= 0 => Ok(i as u64),
            _ => Err(self.type_error(node, "a non-negative integer")),
        }
    }

    /// A finite number.
    pub fn f64(&self, node: &Node) -> Result<f64, Diagnostic> {
        match node.kind {
            Kind::Int(i) => Ok(i as f64),
            Kind::Float(f) if f.is_finite() => Ok(f),
            _ => Err(self.type_error(node, "a number")),
        }
    }

    /// A list (null counts as empty), each item decoded by `f` with its index in the path.
    pub fn list<T>(
        &mut self,
        node: &Node,
        mut f: impl FnMut(&mut Self, &Node) -> Result<T, Diagnostic>,
    ) -> Result<Vec<T>, Diagnostic> {
        match &node.kind {
            Kind::Null => Ok(Vec::new()),
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.at_index(i, |c| f(c, item))?);
                }
                Ok(out)
            }
            _ => Err(self.type_error(node, "a list")),
        }
    }

    /// A list of strings (null counts as empty, a null item as `""`).
    pub fn strings(&mut self, node: &Node) -> Result<Vec<String>, Diagnostic> {
        self.list(node, |c, n| c.string_or_null(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let doc = parse("a: 1\nb:\n  - x\n  - 'y'\nc: true\nd: ~\ne: 1.5\n", "t.yaml").unwrap();
        assert_eq!(doc.get("a").unwrap().kind, Kind::Int(1));
        let b = doc.get("b").unwrap();
        assert_eq!(b.pos.line, 3);
        let Kind::Seq(items) = &b.kind else { panic!() };
        assert_eq!(items[1].kind, Kind::Str("y".into()));
        assert_eq!(items[1].pos, Pos { line: 4, col: 5 });
        assert_eq!(doc.get("c").unwrap().kind, Kind::Bool(true));
        assert_eq!(doc.get("d").unwrap().kind, Kind::Null);
        assert_eq!(doc.get("e").unwrap().kind, Kind::Float(1.5));
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse("{\"rules\": [{\"level\": \"None\"}], \"x\": \"1\"}", "p.json").unwrap();
        assert_eq!(doc.get("x").unwrap().kind, Kind::Str("1".into()));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: c\n", "bad.yaml").unwrap_err();
        assert_eq!(e.file, "bad.yaml");
        assert!(e.pos.line >= 2, "{e}");
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&text, "bomb.yaml").unwrap_err().message.contains("too large"));
    }

    #[test]
    fn unknown_and_duplicate_fields_warn() {
        let doc = parse("level: None\nlevel: Metadata\nverbz: [get]\n", "p.yaml").unwrap();
        let mut w = Vec::new();
        let mut ctx = Ctx::new("p.yaml", &mut w);
        let entries = ctx.map(&doc, &["level"]).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1.kind, Kind::Str("Metadata".into()));
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].to_string(), "p.yaml:2:1: level: duplicate field, the last value is used");
        assert_eq!(w[1].field, "verbz");
    }

    #[test]
    fn strict_maps_reject_unknown_and_duplicate_keys_alike() {
        let doc = parse("a: 1\nb: 2\na: 3\nc: 4\n", "k.yaml").unwrap();
        let mut w = Vec::new();
        let mut ctx = Ctx::new("k.yaml", &mut w);
        let e = ctx.at("alerts", |c| c.strict_map(&doc, &["a", "b", "c"])).unwrap_err();
        assert_eq!((e.kind, e.severity), (DiagnosticKind::DuplicateKey, Severity::Error));
        assert_eq!(e.to_string(), "k.yaml:3:1: alerts.a: duplicate key (first given at line 1)");
        let e = ctx.strict_map(&doc, &["a", "b"]).unwrap_err();
        assert_eq!(e.kind, DiagnosticKind::DuplicateKey, "the first problem in document order");
        let mut errors = Vec::new();
        let entries = ctx.strict_map_all(&doc, &["a", "b"], &mut errors).unwrap();
        assert_eq!(entries.len(), 2);
        let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [DiagnosticKind::DuplicateKey, DiagnosticKind::UnknownKey]);
        assert_eq!(errors[1].to_string(), "k.yaml:4:1: c: unknown key (expected one of: a, b)");
        assert!(w.is_empty(), "strict maps do not warn");
    }
}
