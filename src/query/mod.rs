//! The kaudit search language: one query syntax for pipeline filters, alert-rule conditions
//! (`countIf(query)`), dashboard filters, and as the compile target of the Sigma and Falco
//! rule loaders.
//!
//! The syntax is a superset of Alibaba Cloud Log Service (SLS) search syntax, so queries
//! written against an ACK audit logstore run verbatim:
//!
//! ```text
//! verb : create and objectRef.subresource:exec and stage:  ResponseStarted
//! NOT user.username: node NOT user.username: serviceaccount
//! ```
//!
//! `field: value` is an SLS *token match* (case-insensitive, on the index delimiters);
//! `=`, `!=`, `<`, `<=`, `>`, `>=`, `in (..)`, `~ "regex"` and `exists(..)` are exact
//! extensions. The full grammar and semantics are in `docs/QUERY.md`.
//!
//! Pipeline: `lexer` turns text into tokens, `parser` builds the compiled tree
//! (`eval::Node`) in one pass (regexes and token patterns are compiled there), and
//! [`Query::matches`] walks that tree against a [`Document`]. Nothing is re-parsed per event
//! and the common match paths do not allocate.
//!
//! ```
//! use kaudit::query::Query;
//! let q = Query::parse("verb: create and objectRef.subresource: exec").unwrap();
//! let event = serde_json::json!({"verb": "create", "objectRef": {"subresource": "exec"}});
//! assert!(q.matches(&event));
//! ```

mod document;
mod eval;
mod gate;
mod known;
mod lexer;
mod parser;
mod path;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use document::{lookup_json, lookup_json_from, visit_all_json, Document, Lookup, Value};
pub use gate::{Gate, GATED};
pub use known::{EnrichmentField, GeoField, KnownPath, ObjectRefField, StatusField, UserField, ENRICHMENT_KEY};
pub use path::FieldPath;

/// Deepest nesting of parentheses and `not` a query may use. Parsing and evaluation recurse
/// once per level, so this bounds stack use against hostile queries.
pub const MAX_DEPTH: usize = 64;

/// Bounds on compiling one query, from the config (`alerts.limits.maxRegexBytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Compiled-program size allowed for each regex (its lazy-DFA cache may use twice this). A
    /// pattern that needs more is refused when the query is compiled, never at match time.
    pub max_regex_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits { max_regex_bytes: 1 << 20 }
    }
}

/// A compiled query: parsed once (regexes compiled, token patterns case-folded), then
/// matched against any number of events.
#[derive(Clone, Debug)]
pub struct Query {
    source: String,
    root: eval::Node,
    /// Precomputed answer for [`Query::field_paths`].
    paths: Option<Vec<FieldPath>>,
}

impl Query {
    /// Parses and compiles `text`. An empty (or all-whitespace) query matches every event,
    /// as in SLS.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        Query::parse_with(text, QueryLimits::default())
    }

    /// [`Query::parse`] with the config's bounds.
    pub fn parse_with(text: &str, limits: QueryLimits) -> Result<Query, QueryError> {
        let root = parser::parse(text, limits)?;
        let mut paths = Some(Vec::new());
        root.collect_paths(&mut paths);
        Ok(Query { source: text.to_owned(), root, paths })
    }

    /// Whether `doc` satisfies the query.
    #[must_use]
    pub fn matches(&self, doc: &dyn Document) -> bool {
        self.root.eval(doc)
    }

    /// Whether the two compiled queries are the same (so they answer alike on every
    /// document), whatever their source text: alert rules that share a query evaluate it once.
    #[must_use]
    pub fn same_tree(&self, other: &Query) -> bool {
        format!("{:?}", self.root) == format!("{:?}", other.root)
    }

    /// Every field path the query reads, deduplicated, in order of first use, so the caller
    /// knows which parts of an event to decode. `None` when the query contains a bare
    /// full-text term, which reads every value in the document.
    #[must_use]
    pub fn field_paths(&self) -> Option<Vec<FieldPath>> {
        self.paths.clone()
    }

    /// The query text as given to [`Query::parse`].
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl FromStr for Query {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Query, QueryError> {
        Query::parse(s)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A query (or field path) that failed to parse or compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// 1-based column, counted in chars, of the offending text. One past the last char
    /// when the query ended too early.
    pub column: usize,
    /// What is wrong, in words (no column, no trailing period).
    pub message: String,
}

impl QueryError {
    /// Error at byte offset `byte` of `src`; the column is converted to chars.
    pub(crate) fn at(src: &str, byte: usize, message: impl Into<String>) -> QueryError {
        let column = src.get(..byte).map_or(byte, |s| s.chars().count()) + 1;
        QueryError { column, message: message.into() }
    }

    /// Renders the query on one line and a caret under the error column on the next:
    ///
    /// ```text
    /// verb: create and
    ///                 ^ column 17: expected a search term after 'and', found end of query
    /// ```
    ///
    /// Tabs and line breaks in the query are shown as spaces so the caret stays aligned.
    #[must_use]
    pub fn render(&self, source: &str) -> String {
        let line: String = source.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
        let pad = " ".repeat(self.column.saturating_sub(1));
        format!("{line}\n{pad}^ {self}")
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for QueryError {}
