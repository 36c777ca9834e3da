//! Sigma rules (`logsource: product: kubernetes, service: audit`) compiled to kaudit rules.
//!
//! A rule's `detection` becomes one kaudit query:
//!
//! * a selection map is an `and` of its fields; a field's value list is an `or` (`and` with
//!   `|all`); a list of maps is an `or`; a list of plain strings is a keyword search;
//! * values match as Sigma says: case-insensitive, whole value, `*`/`?` wildcards (`\` escapes
//!   them); `|contains`, `|startswith`, `|endswith` anchor accordingly, `|re` is a regex
//!   (case-sensitive), `|exists` tests presence, `|cased` makes a match case-sensitive;
//!   a lone `*` means "present", `null` means "absent"; numbers and booleans compare exactly;
//! * the condition (`and`, `or`, `not`, parentheses, `1 of`/`all of` a name, a `prefix*`
//!   pattern or `them`) combines the selections.
//!
//! Fields that raw audit events do not have are mapped (docs/ALERTS.md, [`FIELD_MAP`]).
//! Each compiled rule raises at most one alert per request (grouped by auditID), since a
//! request is logged once per stage.

use std::fmt;

use crate::query::{FieldPath, Query, QueryLimits};
use crate::yaml::{Ctx, Diagnostic, Kind, Node};

use super::rule::{Rule, Severity};

/// Sigma field -> kaudit paths (any of them may match) for fields raw events do not have.
pub const FIELD_MAP: &[(&str, &[&str])] = &[
    ("apiGroup", &["objectRef.apiGroup"]),
    ("hostPath", &["requestObject.spec.volumes.hostPath"]),
    (
        "capabilities",
        &[
            "requestObject.spec.containers.securityContext.capabilities",
            "requestObject.spec.initContainers.securityContext.capabilities",
            "requestObject.spec.ephemeralContainers.securityContext.capabilities",
        ],
    ),
];

/// Output fields every compiled Sigma rule reports (plus the rule's own `fields`).
const DEFAULT_FIELDS: &[(&str, &str)] = &[
    ("user", "user.username"),
    ("verb", "verb"),
    ("resource", "objectRef.resource"),
    ("subresource", "objectRef.subresource"),
    ("namespace", "objectRef.namespace"),
    ("name", "objectRef.name"),
    ("requestURI", "requestURI"),
    ("sourceIP", "kaudit.sourceIP"),
    ("code", "responseStatus.code"),
    ("userAgent", "userAgent"),
];

/// How long a request's later stages stay deduplicated.
const DEDUP_THROTTLE: i64 = 3_600_000_000;

/// Whether a YAML document is a Sigma rule (rather than a kaudit rule pack).
pub fn is_sigma(node: &Node) -> bool {
    node.get("detection").is_some() && node.get("rules").is_none()
}

/// Compiles one Sigma rule document.
pub fn compile(c: &mut Ctx, node: &Node, limits: QueryLimits) -> Result<Rule, Diagnostic> {
    let Kind::Map(_) = &node.kind else {
        return Err(c.error(node.pos, "a Sigma rule is a mapping"));
    };
    let title = match node.get("title") {
        Some(t) => c.at("title", |c| c.string(t))?,
        None => return Err(c.error(node.pos, "a Sigma rule needs a title")),
    };
    if let Some(ls) = node.get("logsource") {
        c.at("logsource", |c| -> Result<(), Diagnostic> {
            for (key, want) in [("product", "kubernetes"), ("service", "audit")] {
                if let Some(v) = ls.get(key) {
                    let got = c.at(key, |c| c.string(v))?;
                    if !got.eq_ignore_ascii_case(want) {
                        return Err(c.at(key, |c| {
                            c.error(
                                v.pos,
                                format!("kaudit reads Kubernetes audit events (logsource {key}: {want}), not {got:?}"),
                            )
                        }));
                    }
                }
            }
            Ok(())
        })?;
    }
    let severity = match node.get("level") {
        Some(l) => c.at("level", |c| {
            let text = c.string(l)?;
            match text.as_str() {
                "informational" => Ok(Severity::Info),
                other => Severity::parse(other).ok_or_else(|| {
                    c.error(
                        l.pos,
                        format!("unknown Sigma level {other:?} (informational, low, medium, high, critical)"),
                    )
                }),
            }
        })?,
        None => Severity::Medium,
    };
    let description = match node.get("description") {
        Some(d) => c.at("description", |c| c.string_or_null(d))?,
        None => String::new(),
    };
    let mut tags = match node.get("tags") {
        Some(t) => c.at("tags", |c| c.strings(t))?,
        None => Vec::new(),
    };
    if let Some(id) = node.get("id").and_then(Node::as_str) {
        tags.push(format!("sigma:{id}"));
    }
    let detection = node.get("detection").ok_or_else(|| c.error(node.pos, "a Sigma rule needs a detection"))?;
    let text = c.at("detection", |c| detection_query(c, detection))?;
    let query = Query::parse_with(&text, limits).map_err(|e| {
        c.at("detection", |c| c.error(detection.pos, format!("compiled to an invalid query ({e}): {text}")))
    })?;
    let mut fields: Vec<(String, FieldPath)> = Vec::new();
    for (name, path) in DEFAULT_FIELDS {
        if let Ok(p) = FieldPath::parse(path) {
            fields.push((name.to_string(), p));
        }
    }
    if let Some(f) = node.get("fields") {
        let names = c.at("fields", |c| c.strings(f))?;
        for name in names {
            let Some(path) = mapped_paths(&name).into_iter().next().and_then(|p| FieldPath::parse(&p).ok()) else {
                return Err(c.at("fields", |c| c.error(f.pos, format!("invalid field name {name:?}"))));
            };
            if !fields.iter().any(|(n, _)| *n == name) {
                fields.push((name, path));
            }
        }
    }
    let audit_id = FieldPath::parse("auditID").map_err(|e| c.error(node.pos, e.to_string()))?;
    Ok(Rule {
        name: title,
        severity,
        source: "sigma".into(),
        description,
        tags,
        query,
        unless_all: Vec::new(),
        json_contains: None,
        fields,
        group_by: vec![audit_id],
        aggregation: None,
        throttle: DEDUP_THROTTLE,
        repeat: None,
    })
}

/// The kaudit paths (as query text) a Sigma field name stands for.
fn mapped_paths(name: &str) -> Vec<String> {
    let raw: Vec<String> = match FIELD_MAP.iter().find(|(f, _)| *f == name) {
        Some((_, paths)) => paths.iter().map(|p| p.to_string()).collect(),
        None => vec![name.to_string()],
    };
    raw.iter().filter_map(|p| FieldPath::from_segments(p.split('.')).map(|fp| fp.to_string())).collect()
}

/// The whole detection as query text.
fn detection_query(c: &mut Ctx, detection: &Node) -> Result<String, Diagnostic> {
    let Kind::Map(entries) = &detection.kind else {
        return Err(c.error(detection.pos, format!("expected a mapping, found {}", detection.type_name())));
    };
    let mut selections: Vec<(String, String)> = Vec::new();
    let mut condition: Option<&Node> = None;
    for (k, v) in entries {
        match k.name.as_str() {
            "condition" => condition = Some(v),
            "timeframe" => {
                return Err(c.at("timeframe", |c| {
                    c.error(k.pos, "Sigma correlation (timeframe) is not supported; use a kaudit rule with a window")
                }))
            }
            name => {
                let q = c.at(name, |c| selection_query(c, v))?;
                selections.push((name.to_string(), q));
            }
        }
    }
    let Some(cond) = condition else {
        return Err(c.error(detection.pos, "the detection needs a condition"));
    };
    c.at("condition", |c| match &cond.kind {
        Kind::Str(s) => condition_query(s, &selections).map_err(|e| c.error(cond.pos, e.to_string())),
        Kind::Seq(items) => {
            let mut parts = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let s = c.at_index(i, |c| c.string(item))?;
                parts.push(
                    condition_query(&s, &selections)
                        .map_err(|e| c.at_index(i, |c| c.error(item.pos, e.to_string())))?,
                );
            }
            Ok(format!("({})", parts.join(") or (")))
        }
        _ => Err(c.error(cond.pos, format!("expected a condition string, found {}", cond.type_name()))),
    })
}

/// One selection (search identifier) as query text.
fn selection_query(c: &mut Ctx, node: &Node) -> Result<String, Diagnostic> {
    match &node.kind {
        Kind::Map(fields) => {
            if fields.is_empty() {
                return Err(c.error(node.pos, "an empty selection"));
            }
            let mut parts = Vec::new();
            for (k, v) in fields {
                parts.push(c.at(&k.name, |c| field_query(c, &k.name, v))?);
            }
            Ok(format!("({})", parts.join(" and ")))
        }
        Kind::Seq(items) if items.iter().all(|i| matches!(i.kind, Kind::Map(_))) && !items.is_empty() => {
            let mut parts = Vec::new();
            for (i, item) in items.iter().enumerate() {
                parts.push(c.at_index(i, |c| selection_query(c, item))?);
            }
            Ok(format!("({})", parts.join(" or ")))
        }
        Kind::Seq(items) if !items.is_empty() => {
            // Keywords: full-text search over the event.
            let mut parts = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let s = c.at_index(i, |c| scalar_text(c, item))?;
                parts.push(quote(&s));
            }
            Ok(format!("({})", parts.join(" or ")))
        }
        Kind::Str(s) => Ok(quote(s)),
        _ => Err(c.error(
            node.pos,
            format!("expected a selection (mapping, list of mappings or keywords), found {}", node.type_name()),
        )),
    }
}

fn scalar_text(c: &Ctx, node: &Node) -> Result<String, Diagnostic> {
    match &node.kind {
        Kind::Str(s) => Ok(s.clone()),
        Kind::Int(i) => Ok(i.to_string()),
        Kind::Float(f) => Ok(f.to_string()),
        Kind::Bool(b) => Ok(b.to_string()),
        _ => Err(c.error(node.pos, format!("expected a value, found {}", node.type_name()))),
    }
}

/// A string as a query string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

#[derive(Default)]
struct Modifiers {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    re: bool,
    exists: bool,
    cased: bool,
}

/// `field|mod|mod: value(s)` as query text.
fn field_query(c: &mut Ctx, key: &str, value: &Node) -> Result<String, Diagnostic> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default();
    let mut m = Modifiers::default();
    for modifier in parts {
        match modifier {
            "contains" => m.contains = true,
            "startswith" => m.startswith = true,
            "endswith" => m.endswith = true,
            "all" => m.all = true,
            "re" => m.re = true,
            "exists" => m.exists = true,
            "cased" => m.cased = true,
            other => return Err(c.error(value.pos, format!("the Sigma modifier {other:?} is not supported (contains, startswith, endswith, all, re, exists, cased)"))),
        }
    }
    if [m.contains, m.startswith, m.endswith, m.re].iter().filter(|x| **x).count() > 1 {
        return Err(c.error(value.pos, "combine at most one of contains, startswith, endswith and re"));
    }
    let paths = mapped_paths(field);
    if field.is_empty() || paths.is_empty() {
        return Err(c.error(value.pos, format!("invalid field name {field:?}")));
    }
    let values: Vec<&Node> = match &value.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![value],
    };
    if values.is_empty() {
        return Err(c.error(value.pos, "an empty value list never matches"));
    }
    let mut tests = Vec::new();
    for v in values {
        tests.push(value_test(c, field, &paths, &m, v)?);
    }
    let joiner = if m.all { " and " } else { " or " };
    Ok(format!("({})", tests.join(joiner)))
}

/// One value's test against every mapped path (any path may match).
fn value_test(c: &Ctx, field: &str, paths: &[String], m: &Modifiers, v: &Node) -> Result<String, Diagnostic> {
    let per_path = |f: &dyn Fn(&str) -> String| -> String {
        let tests: Vec<String> = paths.iter().map(|p| f(p)).collect();
        if tests.len() == 1 {
            tests.into_iter().next().unwrap_or_default()
        } else {
            format!("({})", tests.join(" or "))
        }
    };
    if m.exists {
        return match v.kind {
            Kind::Bool(true) => Ok(per_path(&|p| format!("exists({p})"))),
            Kind::Bool(false) => Ok(format!("not {}", per_path(&|p| format!("exists({p})")))),
            _ => Err(c.error(v.pos, "|exists takes true or false")),
        };
    }
    let plain = !(m.contains || m.startswith || m.endswith || m.re);
    let text = match &v.kind {
        Kind::Null => return Ok(format!("not {}", per_path(&|p| format!("exists({p})")))),
        Kind::Int(i) if plain => return Ok(per_path(&|p| format!("{p} = {i}"))),
        Kind::Float(f) if plain => return Ok(per_path(&|p| format!("{p} = {f}"))),
        Kind::Bool(b) if plain => return Ok(per_path(&|p| format!("{p} = {b}"))),
        Kind::Seq(_) | Kind::Map(_) => return Err(c.error(v.pos, format!("expected a value, found {}", v.type_name()))),
        _ => scalar_text(c, v)?,
    };
    // Documented value mapping: Sigma's `responseStatus.code: ALLOW` means "authorized".
    if field == "responseStatus.code" && plain && text.eq_ignore_ascii_case("ALLOW") {
        return Ok("annotations.\"authorization.k8s.io/decision\" = allow".into());
    }
    if plain && text == "*" {
        return Ok(per_path(&|p| format!("exists({p})")));
    }
    let pattern = if m.re {
        regex::Regex::new(&text).map_err(|e| c.error(v.pos, format!("invalid regular expression: {e}")))?;
        text
    } else {
        let body = wildcard_regex(&text);
        let (start, end) = match (m.contains, m.startswith, m.endswith) {
            (true, _, _) => ("", ""),
            (_, true, _) => ("^", ""),
            (_, _, true) => ("", "$"),
            _ => ("^", "$"),
        };
        let flags = if m.cased { "" } else { "(?i)" };
        format!("{flags}{start}{body}{end}")
    };
    let lit = quote(&pattern);
    Ok(per_path(&|p| format!("{p} ~ {lit}")))
}

/// A Sigma value with wildcards as a regex body: `*` any run, `?` one character, `\*`, `\?`
/// and `\\` literal; everything else literal.
fn wildcard_regex(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars().peekable();
    let mut lit = String::new();
    let flush = |lit: &mut String, out: &mut String| {
        out.push_str(&regex::escape(lit));
        lit.clear();
    };
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if matches!(chars.peek(), Some('*') | Some('?') | Some('\\')) => {
                if let Some(next) = chars.next() {
                    lit.push(next);
                }
            }
            '*' => {
                flush(&mut lit, &mut out);
                out.push_str(".*");
            }
            '?' => {
                flush(&mut lit, &mut out);
                out.push('.');
            }
            _ => lit.push(ch),
        }
    }
    flush(&mut lit, &mut out);
    out
}

/// Why a Sigma `condition` does not compile. The rule's [`Diagnostic`] carries it as its message
/// (kind `Value`, at the condition's node).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ConditionError {
    /// `| count() ...`: Sigma aggregations are kaudit windows.
    Aggregation,
    /// A token where none fits (`and and`, a stray `)`).
    Unexpected(String),
    /// More than 32 nested `not`/parentheses.
    TooDeep,
    /// The text stops where an operand is needed.
    EndedEarly,
    /// `(` without its `)`.
    MissingParen,
    /// `1`/`all`/`any` not followed by `of`.
    ExpectedOf(String),
    /// `1 of` with nothing after it.
    ExpectedTarget(String),
    /// `N of` with N other than 1.
    Quantifier(String),
    /// `1 of x*` where no selection name matches.
    NoMatch(String),
    /// A name that is not a selection.
    UnknownSelection(String),
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionError::Aggregation => f.write_str(
                "Sigma aggregation conditions (`| count() ...`) are not supported; use a kaudit rule with a window",
            ),
            ConditionError::Unexpected(tok) => write!(f, "unexpected {tok:?} in the condition"),
            ConditionError::TooDeep => f.write_str("the condition nests too deeply"),
            ConditionError::EndedEarly => f.write_str("the condition ended too early"),
            ConditionError::MissingParen => f.write_str("missing ')' in the condition"),
            ConditionError::ExpectedOf(tok) => write!(f, "expected 'of' after {tok:?}"),
            ConditionError::ExpectedTarget(tok) => write!(f, "expected a selection name or 'them' after '{tok} of'"),
            ConditionError::Quantifier(tok) => write!(f, "'{tok} of' is not supported; use '1 of' or 'all of'"),
            ConditionError::NoMatch(target) => write!(f, "no selection matches {target:?}"),
            ConditionError::UnknownSelection(tok) => write!(f, "unknown selection {tok:?} in the condition"),
        }
    }
}

/// The condition expression over the selections, as query text.
fn condition_query(text: &str, selections: &[(String, String)]) -> Result<String, ConditionError> {
    if text.contains('|') {
        return Err(ConditionError::Aggregation);
    }
    let tokens = tokenize(text);
    let mut p = CondParser { tokens: &tokens, pos: 0, selections, depth: 0 };
    let q = p.or()?;
    if p.pos < tokens.len() {
        return Err(ConditionError::Unexpected(tokens[p.pos].clone()));
    }
    Ok(q)
}

fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        match ch {
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(ch.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct CondParser<'a> {
    tokens: &'a [String],
    pos: usize,
    selections: &'a [(String, String)],
    depth: usize,
}

impl CondParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn keyword(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.eq_ignore_ascii_case(kw))
    }

    fn or(&mut self) -> Result<String, ConditionError> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { format!("({})", parts.join(" or ")) })
    }

    fn and(&mut self) -> Result<String, ConditionError> {
        let mut parts = vec![self.unary()?];
        while self.keyword("and") {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { format!("({})", parts.join(" and ")) })
    }

    fn unary(&mut self) -> Result<String, ConditionError> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(ConditionError::TooDeep);
        }
        let out = if self.keyword("not") {
            self.pos += 1;
            Ok(format!("(not {})", self.unary()?))
        } else {
            self.atom()
        };
        self.depth -= 1;
        out
    }

    fn atom(&mut self) -> Result<String, ConditionError> {
        let Some(tok) = self.peek().map(str::to_string) else {
            return Err(ConditionError::EndedEarly);
        };
        self.pos += 1;
        if tok == "(" {
            let inner = self.or()?;
            if self.peek() != Some(")") {
                return Err(ConditionError::MissingParen);
            }
            self.pos += 1;
            return Ok(inner);
        }
        if tok == "1" || tok.eq_ignore_ascii_case("all") || tok.eq_ignore_ascii_case("any") {
            if !self.keyword("of") {
                return Err(ConditionError::ExpectedOf(tok));
            }
            self.pos += 1;
            let Some(target) = self.peek().map(str::to_string) else {
                return Err(ConditionError::ExpectedTarget(tok));
            };
            self.pos += 1;
            let matched: Vec<&String> = self
                .selections
                .iter()
                .filter(|(name, _)| if target == "them" { !name.starts_with('_') } else { glob(&target, name) })
                .map(|(_, q)| q)
                .collect();
            if matched.is_empty() {
                return Err(ConditionError::NoMatch(target));
            }
            let joiner = if tok == "1" || tok.eq_ignore_ascii_case("any") { " or " } else { " and " };
            let parts: Vec<&str> = matched.iter().map(|s| s.as_str()).collect();
            return Ok(format!("({})", parts.join(joiner)));
        }
        if tok.chars().all(|ch| ch.is_ascii_digit()) {
            return Err(ConditionError::Quantifier(tok));
        }
        if tok == ")" || ["and", "or"].iter().any(|k| tok.eq_ignore_ascii_case(k)) {
            return Err(ConditionError::Unexpected(tok));
        }
        self.selections
            .iter()
            .find(|(name, _)| *name == tok)
            .map(|(_, q)| q.clone())
            .ok_or(ConditionError::UnknownSelection(tok))
    }
}

/// Sigma's identifier patterns: `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else { return false };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_regexes() {
        assert_eq!(wildcard_regex("a*b?c"), "a.*b.c");
        assert_eq!(wildcard_regex(r"a\*b.c"), r"a\*b\.c");
        assert_eq!(wildcard_regex(r"C:\Windows"), r"C:\\Windows");
    }

    #[test]
    fn globs() {
        assert!(glob("selection_*", "selection_request_uri"));
        assert!(!glob("selection_*", "filter"));
        assert!(glob("*_uri", "selection_request_uri"));
        assert!(glob("sel", "sel"));
    }

    #[test]
    fn conditions() {
        let sels = vec![
            ("selection_a".to_string(), "A".to_string()),
            ("selection_b".to_string(), "B".to_string()),
            ("filter".to_string(), "F".to_string()),
        ];
        assert_eq!(condition_query("selection_a and not filter", &sels).unwrap(), "(A and (not F))");
        assert_eq!(condition_query("1 of selection_* and not filter", &sels).unwrap(), "((A or B) and (not F))");
        assert_eq!(condition_query("all of them", &sels).unwrap(), "(A and B and F)");
        let err = |text: &str| condition_query(text, &sels).unwrap_err();
        assert_eq!(err("selection_c"), ConditionError::UnknownSelection("selection_c".into()));
        assert_eq!(err("selection_c").to_string(), "unknown selection \"selection_c\" in the condition");
        assert_eq!(err("selection_a | count() > 5"), ConditionError::Aggregation);
        assert_eq!(err("(selection_a"), ConditionError::MissingParen);
        assert_eq!(err("selection_a and"), ConditionError::EndedEarly);
        assert_eq!(err("selection_a )"), ConditionError::Unexpected(")".into()));
        assert_eq!(err("all filter"), ConditionError::ExpectedOf("all".into()));
        assert_eq!(err("2 of them"), ConditionError::Quantifier("2".into()));
        assert_eq!(err("1 of nope_*"), ConditionError::NoMatch("nope_*".into()));
        assert_eq!(err(&"not ".repeat(40)), ConditionError::TooDeep);
    }
}
