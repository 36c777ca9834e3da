//! YAML/JSON documents with line numbers, for configuration and policy files.
//!
//! Config errors must name the file, line and field, which serde's derive cannot do for
//! semantic errors found after decoding. So documents are parsed into a small [`Node`] tree
//! that keeps every node's position, and decoders walk it with a [`Ctx`] that knows the
//! file name and the field path. JSON is parsed by the same YAML 1.2 parser.

use std::borrow::Cow;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Upper bound on nodes built from one document, aliases included (stops "billion laughs").
const MAX_NODES: usize = 1_000_000;
/// Upper bound on nesting (the tree is built iteratively, but decoders recurse).
const MAX_DEPTH: usize = 128;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

/// The YAML 1.2 core-schema value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys keep their order and their own positions; duplicates are kept (decoders warn).
    Map(Vec<(Key, Node)>),
}

/// A mapping key (always a string here: config keys are strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
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

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// An error or warning located in a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    /// Dotted field path, e.g. `rules[3].resources[0].group`; empty for the document itself.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.col)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Parses one YAML (or JSON) document. An empty document yields a `Null` node.
pub fn parse(text: &str, file: &str) -> Result<Node, Diagnostic> {
    let err = |pos: Pos, message: String| Diagnostic { file: file.to_string(), pos, field: String::new(), message };
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
        return Err(Diagnostic {
            file: file.to_string(),
            pos: node.pos,
            field: String::new(),
            message: format!("nesting deeper than {MAX_DEPTH} levels"),
        });
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
fn resolve_scalar(value: &Cow<'_, str>, style: ScalarStyle, tag: Option<&str>) -> Kind {
    if style != ScalarStyle::Plain || tag == Some("str") {
        return Kind::Str(value.to_string());
    }
    let v = value.as_ref();
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
    pub file: &'w str,
    path: Vec<String>,
    pub warnings: &'w mut Vec<Diagnostic>,
}

impl<'w> Ctx<'w> {
    pub fn new(file: &'w str, warnings: &'w mut Vec<Diagnostic>) -> Self {
        Ctx { file, path: Vec::new(), warnings }
    }

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

    pub fn error(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: self.file.to_string(), pos, field: self.field(), message: message.into() }
    }

    pub fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        let d = self.error(pos, message);
        self.warnings.push(d);
    }

    /// Runs `f` with `name` appended to the field path.
    pub fn at<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(name.to_string());
        let out = f(self);
        self.path.pop();
        out
    }

    pub fn at_index<T>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(format!("[{index}]"));
        let out = f(self);
        self.path.pop();
        out
    }

    /// The entries of a mapping; warns about keys not in `known` and about duplicates.
    pub fn map<'n>(&mut self, node: &'n Node, known: &[&str]) -> Result<Vec<(&'n Key, &'n Node)>, Diagnostic> {
        let Kind::Map(entries) = &node.kind else {
            return Err(self.error(node.pos, format!("expected a mapping, found {}", node.type_name())));
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if !known.contains(&key.name.as_str()) {
                let name = key.name.clone();
                self.at(&name, |c| c.warn(key.pos, "unknown field, ignored"));
                continue;
            }
            if seen.contains(&key.name.as_str()) {
                let name = key.name.clone();
                self.at(&name, |c| c.warn(key.pos, "duplicate field, the last value is used"));
                out.retain(|(k, _): &(&Key, &Node)| k.name != key.name);
            }
            seen.push(&key.name);
            out.push((key, value));
        }
        Ok(out)
    }

    pub fn string(&self, node: &Node) -> Result<String, Diagnostic> {
        match &node.kind {
            Kind::Str(s) => Ok(s.clone()),
            // Unquoted numbers and booleans used as strings (e.g. `group: 1`) are a common slip; YAML
            // decoders for Kubernetes reject them, and so do we, naming the type.
            _ => Err(self.error(node.pos, format!("expected a string, found {}", node.type_name()))),
        }
    }

    /// A string, or null (an empty string), as Go's decoders accept for string fields.
    pub fn string_or_null(&self, node: &Node) -> Result<String, Diagnostic> {
        match &node.kind {
            Kind::Null => Ok(String::new()),
            _ => self.string(node),
        }
    }

    pub fn bool(&self, node: &Node) -> Result<bool, Diagnostic> {
        match node.kind {
            Kind::Bool(b) => Ok(b),
            _ => Err(self.error(node.pos, format!("expected true or false, found {}", node.type_name()))),
        }
    }

    pub fn u64(&self, node: &Node) -> Result<u64, Diagnostic> {
        match node.kind {
            Kind::Int(i) if i >= 0 => Ok(i as u64),
            _ => Err(self.error(node.pos, format!("expected a non-negative integer, found {}", node.type_name()))),
        }
    }

    pub fn f64(&self, node: &Node) -> Result<f64, Diagnostic> {
        match node.kind {
            Kind::Int(i) => Ok(i as f64),
            Kind::Float(f) if f.is_finite() => Ok(f),
            _ => Err(self.error(node.pos, format!("expected a number, found {}", node.type_name()))),
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
            _ => Err(self.error(node.pos, format!("expected a list, found {}", node.type_name()))),
        }
    }

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
}
