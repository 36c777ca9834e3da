//! Named lists (`lists:` in the config and in packs) and their `${name}` references in queries
//! and in list-valued rule fields.

use std::collections::HashMap;
use std::fmt;

use crate::yaml::{Ctx, Diagnostic, Kind, Node};

/// Named lists that queries and checks refer to as `${name}` (Falco-style lists).
pub type Lists = HashMap<String, Vec<String>>;

/// Why a `${name}` reference cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// `${` without its `}`.
    Unterminated,
    /// No list of that name (defined earlier in the config or pack).
    Unknown(String),
    /// The list has no items: an empty `in (...)` cannot match.
    Empty(String),
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Unterminated => f.write_str("unterminated ${...} list reference"),
            ListError::Unknown(name) => write!(f, "unknown list ${{{name}}}"),
            ListError::Empty(name) => {
                write!(f, "list ${{{name}}} is empty; an empty in (...) cannot match, remove it from the query")
            }
        }
    }
}

impl std::error::Error for ListError {}

/// Expands `${name}` references in a query: each becomes the list's items, quoted and
/// separated by `, ` (for use inside `in (...)`).
pub fn expand_query(text: &str, lists: &Lists) -> Result<String, ListError> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or(ListError::Unterminated)?;
        let name = &after[..end];
        let items = lists.get(name).ok_or_else(|| ListError::Unknown(name.to_string()))?;
        if items.is_empty() {
            return Err(ListError::Empty(name.to_string()));
        }
        for (k, item) in items.iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            out.push('"');
            for c in item.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands list items: an item that is exactly `${name}` splices that list.
pub fn expand_items(items: &[String], lists: &Lists) -> Result<Vec<String>, ListError> {
    let mut out = Vec::new();
    for item in items {
        match item.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                out.extend(lists.get(name).ok_or_else(|| ListError::Unknown(name.to_string()))?.iter().cloned())
            }
            None => out.push(item.clone()),
        }
    }
    Ok(out)
}

/// Decodes a `lists:` mapping (name -> list of strings; an item `${other}` splices an earlier
/// list) into `lists`, overriding lists of the same name.
pub fn decode_lists(c: &mut Ctx, node: &Node, lists: &mut Lists) -> Result<(), Diagnostic> {
    let Kind::Map(items) = &node.kind else {
        return Err(c.error(node.pos, format!("expected a mapping of list name to items, found {}", node.type_name())));
    };
    for (k, v) in items {
        c.at(&k.name, |c| -> Result<(), Diagnostic> {
            if k.name.is_empty() || k.name.contains(['{', '}', '$']) {
                return Err(c.error(k.pos, "invalid list name"));
            }
            let raw = c.strings(v)?;
            let items = expand_items(&raw, lists).map_err(|e| c.error(v.pos, e.to_string()))?;
            lists.insert(k.name.clone(), items);
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_expansion() {
        let mut lists = Lists::new();
        lists.insert("users".into(), vec!["admin".into(), "we\"ird".into()]);
        assert_eq!(
            expand_query("user.username in (${users})", &lists).unwrap(),
            r#"user.username in ("admin", "we\"ird")"#
        );
        assert_eq!(expand_query("x in (${nope})", &lists), Err(ListError::Unknown("nope".into())));
        assert_eq!(expand_query("x in (${users)", &lists), Err(ListError::Unterminated));
        lists.insert("none".into(), vec![]);
        assert_eq!(expand_query("x in (${none})", &lists), Err(ListError::Empty("none".into())));
        assert_eq!(ListError::Unknown("nope".into()).to_string(), "unknown list ${nope}");
        assert_eq!(expand_items(&["a".into(), "${users}".into()], &lists).unwrap(), ["a", "admin", "we\"ird"]);
    }
}
