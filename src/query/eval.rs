//! The compiled query tree and its evaluation against a [`Document`].
//!
//! Every field test is existential over the values the path visits (arrays are flattened by
//! the document): it holds if *some* visited value passes. Negated forms (`!=`, `not in`,
//! `!~`) are compiled as `not` around the positive test, so they hold when *no* visited
//! value passes, including when the field is absent.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use regex::Regex;

use super::document::{Document, Lookup, Value};
use super::text::{parse_number, with_number_text, TextQuery};
use super::FieldPath;

#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// All children hold (`and`, juxtaposition). Never empty.
    All(Vec<Node>),
    /// Some child holds (`or`). Never empty.
    Any(Vec<Node>),
    Not(Box<Node>),
    /// The empty query and a bare `*`.
    Const(bool),
    Field(FieldPath, Test),
    /// A bare term: token match over every leaf of the document.
    FullText(TextQuery),
}

/// A test on the values found at one path.
#[derive(Clone, Debug)]
pub(crate) enum Test {
    /// `field: value`: SLS token match.
    Text(TextQuery),
    /// `field: *`, `exists(field)`: some non-null value is present.
    Exists,
    /// `field = lit` (`!=` is `not` around it). `= null` means "no non-null value".
    Eq(Literal),
    /// `field < bound` etc.
    Cmp(CmpOp, Bound),
    /// `field in (..)` (`not in` is `not` around it). `null_listed`: the list holds `null`,
    /// which matches a field with no non-null value.
    In { literals: Vec<Literal>, null_listed: bool },
    /// `field ~ "re"` (`!~` is `not` around it): unanchored search.
    Regex(Regex),
}

/// A literal on the right of `=`, `!=` or inside `in (..)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    /// Quoted text, or an unquoted word that is not a number/true/false/null. `num` is set
    /// when the text is a number, so it also equals numeric field values.
    Str { text: String, num: Option<f64> },
    /// An unquoted number: equals numeric values and strings holding that number.
    Num(f64),
    /// `true` / `false` (unquoted): equals booleans and the strings "true"/"false".
    Bool(bool),
    /// `null`.
    Null,
}

impl Literal {
    /// Equality with one visited value (`Null` is handled by the callers).
    #[inline]
    fn equals(&self, v: Value<'_>) -> bool {
        match (self, v) {
            // First and apart: the common case, a length check before any byte compared.
            (Literal::Str { text, .. }, Value::Str(s)) => s.len() == text.len() && s == text,
            (Literal::Str { num: Some(x), .. }, Value::Num(n)) => n == *x,
            (Literal::Str { text, .. }, Value::Bool(b)) => text == bool_text(b),
            (Literal::Num(x), Value::Num(n)) => n == *x,
            (Literal::Num(x), Value::Str(s)) => parse_number(s) == Some(*x),
            (Literal::Bool(x), Value::Bool(b)) => b == *x,
            (Literal::Bool(x), Value::Str(s)) => s == bool_text(*x),
            _ => false,
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn accepts(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }
}

/// The right-hand side of an ordering comparison.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bound {
    /// Compared with numbers and with strings that parse as numbers.
    Num(f64),
    /// Compared with strings, by code point (RFC 3339 timestamps order correctly).
    Str(String),
}

impl Bound {
    fn compare(&self, v: Value<'_>) -> Option<Ordering> {
        match (self, v) {
            (Bound::Num(x), Value::Num(n)) => n.partial_cmp(x),
            (Bound::Num(x), Value::Str(s)) => parse_number(s)?.partial_cmp(x),
            (Bound::Str(b), Value::Str(s)) => Some(s.cmp(b.as_str())),
            _ => None,
        }
    }
}

/// Whether some value visited at `path` satisfies `pred`; stops at the first.
fn any_value(doc: &dyn Document, path: &FieldPath, mut pred: impl FnMut(Value<'_>) -> bool) -> bool {
    match doc.lookup(path) {
        Lookup::One(v) => return pred(v),
        Lookup::Absent => return false,
        Lookup::Visit => {}
    }
    let mut hit = false;
    doc.visit(path, &mut |v| {
        if pred(v) {
            hit = true;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    hit
}

fn regex_matches(re: &Regex, v: Value<'_>) -> bool {
    match v {
        Value::Str(s) => re.is_match(s),
        Value::Num(n) => with_number_text(n, |s| re.is_match(s)).unwrap_or(false),
        Value::Bool(b) => re.is_match(bool_text(b)),
        Value::Null | Value::Object | Value::Array => false,
    }
}

impl Test {
    fn eval(&self, path: &FieldPath, doc: &dyn Document) -> bool {
        let present = |v: Value<'_>| !matches!(v, Value::Null);
        match self {
            Test::Text(q) => any_value(doc, path, |v| q.matches_value(v)),
            Test::Exists => any_value(doc, path, present),
            Test::Eq(Literal::Null) => !any_value(doc, path, present),
            Test::Eq(lit) => any_value(doc, path, |v| lit.equals(v)),
            Test::Cmp(op, bound) => any_value(doc, path, |v| bound.compare(v).is_some_and(|o| op.accepts(o))),
            Test::In { literals, null_listed } => {
                let mut exists = false;
                let hit = any_value(doc, path, |v| {
                    exists |= present(v);
                    literals.iter().any(|l| l.equals(v))
                });
                hit || (*null_listed && !exists)
            }
            Test::Regex(re) => any_value(doc, path, |v| regex_matches(re, v)),
        }
    }
}

impl Node {
    pub(crate) fn eval(&self, doc: &dyn Document) -> bool {
        match self {
            Node::All(children) => children.iter().all(|c| c.eval(doc)),
            Node::Any(children) => children.iter().any(|c| c.eval(doc)),
            Node::Not(inner) => !inner.eval(doc),
            Node::Const(b) => *b,
            Node::Field(path, test) => test.eval(path, doc),
            Node::FullText(q) => {
                let mut hit = false;
                doc.visit_all(&mut |v| {
                    if q.matches_value(v) {
                        hit = true;
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
                hit
            }
        }
    }

    /// `and` of `items`, flattening nested `and`s.
    pub(crate) fn all(items: Vec<Node>) -> Node {
        Node::flatten(items, true)
    }

    /// `or` of `items`, flattening nested `or`s.
    pub(crate) fn any(items: Vec<Node>) -> Node {
        Node::flatten(items, false)
    }

    fn flatten(items: Vec<Node>, conjunction: bool) -> Node {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Node::All(children) if conjunction => out.extend(children),
                Node::Any(children) if !conjunction => out.extend(children),
                other => out.push(other),
            }
        }
        if out.len() == 1 {
            if let Some(only) = out.pop() {
                return only;
            }
        }
        if conjunction {
            Node::All(out)
        } else {
            Node::Any(out)
        }
    }

    pub(crate) fn not(inner: Node) -> Node {
        match inner {
            Node::Not(x) => *x,
            other => Node::Not(Box::new(other)),
        }
    }

    /// Calls `f` with every field test of this subtree.
    pub(crate) fn visit_tests(&self, f: &mut dyn FnMut(&Test)) {
        match self {
            Node::All(children) | Node::Any(children) => children.iter().for_each(|c| c.visit_tests(f)),
            Node::Not(inner) => inner.visit_tests(f),
            Node::Const(_) | Node::FullText(_) => {}
            Node::Field(_, test) => f(test),
        }
    }

    /// Whether every test of this subtree compares a value with whole strings only (`=` and
    /// `in` with quoted or word literals, `exists`), no bare term among them: two strings
    /// that equal none of its literals then get the same answer.
    pub(crate) fn compares_whole_strings(&self) -> bool {
        let mut whole = !self.has_full_text();
        self.visit_tests(&mut |test| {
            whole &= match test {
                Test::Exists | Test::Eq(Literal::Str { .. } | Literal::Null) => true,
                Test::In { literals, .. } => literals.iter().all(|l| matches!(l, Literal::Str { .. } | Literal::Null)),
                _ => false,
            }
        });
        whole
    }

    fn has_full_text(&self) -> bool {
        match self {
            Node::All(children) | Node::Any(children) => children.iter().any(Node::has_full_text),
            Node::Not(inner) => inner.has_full_text(),
            Node::FullText(_) => true,
            Node::Const(_) | Node::Field(..) => false,
        }
    }

    /// Adds the paths read by this subtree to `paths` (deduplicated), or sets it to `None`
    /// when a full-text term reads everything.
    pub(crate) fn collect_paths(&self, paths: &mut Option<Vec<FieldPath>>) {
        match self {
            Node::All(children) | Node::Any(children) => {
                children.iter().for_each(|c| c.collect_paths(paths));
            }
            Node::Not(inner) => inner.collect_paths(paths),
            Node::Const(_) => {}
            Node::FullText(_) => *paths = None,
            Node::Field(path, _) => {
                if let Some(list) = paths {
                    if !list.contains(path) {
                        list.push(path.clone());
                    }
                }
            }
        }
    }
}
