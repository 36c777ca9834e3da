//! Field paths: the dotted names a query uses to address parts of an audit event, such as
//! `objectRef.subresource` or `annotations."authorization.k8s.io/decision"`.
//!
//! A segment is either bare (letters, digits, `_`, `-`, `/`) or a double-quoted string for
//! keys that contain dots or other characters. The unquoted SLS spelling
//! `annotations.authorization.k8s.io/decision` parses into several segments; lookups then
//! also try runs of consecutive segments re-joined with `.` as a single key (see
//! [`FieldPath::dotted`] and [`crate::query::lookup_json`]), which is why the segments are
//! stored pre-joined.

use std::fmt::{self, Write as _};

use super::known::KnownPath;
use super::lexer;
use super::QueryError;

/// A parsed field path. `Display` renders the text form, which [`FieldPath::parse`] reads
/// back to an equal path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    /// All segments joined with `.`: every run of consecutive segments is then a substring,
    /// so dotted-key lookups need no allocation.
    joined: String,
    /// Byte range of each segment within `joined`; never empty.
    bounds: Vec<(usize, usize)>,
    /// The event or enrichment field the path names, recognised once here.
    known: KnownPath,
}

impl FieldPath {
    /// Parses the text form of a path (the same syntax as in a query, without surrounding
    /// whitespace). Error columns are relative to `text`.
    pub fn parse(text: &str) -> Result<FieldPath, QueryError> {
        FieldPath::parse_span(text, 0, text.len())
    }

    /// Builds a path from raw segment names (no quoting needed). `None` if there are no
    /// segments or one of them is empty.
    pub fn from_segments<I, S>(segments: I) -> Option<FieldPath>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut joined = String::new();
        let mut bounds = Vec::new();
        for seg in segments {
            let seg = seg.as_ref();
            if seg.is_empty() {
                return None;
            }
            if !bounds.is_empty() {
                joined.push('.');
            }
            let start = joined.len();
            joined.push_str(seg);
            bounds.push((start, joined.len()));
        }
        if bounds.is_empty() {
            return None;
        }
        let known = match bounds.len() {
            n @ 1..=3 => {
                let mut segments = [""; 3];
                for (slot, &(s, e)) in segments.iter_mut().zip(&bounds) {
                    *slot = joined.get(s..e).unwrap_or_default();
                }
                KnownPath::of(&segments[..n])
            }
            _ => KnownPath::Other,
        };
        Some(FieldPath { joined, bounds, known })
    }

    /// Parses `src[start..end]` as a path; errors carry columns within the whole of `src`.
    pub(crate) fn parse_span(src: &str, start: usize, end: usize) -> Result<FieldPath, QueryError> {
        let err = |at: usize, msg: String| Err(QueryError::at(src, at, msg));
        let mut segments: Vec<String> = Vec::new();
        let mut i = start;
        loop {
            match lexer::char_at(src, i).filter(|_| i < end) {
                Some('"') => {
                    let (seg, next) = lexer::read_string(src, i)?;
                    if seg.is_empty() {
                        return err(i, "empty field name segment \"\"".into());
                    }
                    segments.push(seg);
                    i = next;
                }
                Some('.') | None => {
                    return err(i, "empty segment in field path".into());
                }
                Some(_) => {
                    let seg_start = i;
                    while let Some(c) = lexer::char_at(src, i).filter(|_| i < end) {
                        if c == '.' || c == '"' {
                            break;
                        }
                        if !is_bare_char(c) {
                            return err(
                                i,
                                format!(
                                    "'{c}' cannot appear in an unquoted field name; quote the segment, e.g. a.\"b{c}c\""
                                ),
                            );
                        }
                        i += c.len_utf8();
                    }
                    segments.push(src.get(seg_start..i).unwrap_or_default().to_owned());
                }
            }
            match lexer::char_at(src, i).filter(|_| i < end) {
                None => break,
                Some('.') => {
                    i += 1;
                    if i >= end {
                        return err(i, "field path ends with '.'".into());
                    }
                }
                Some(_) => return err(i, "expected '.' between field path segments".into()),
            }
        }
        FieldPath::from_segments(segments).map_or_else(|| err(start, "empty field path".into()), Ok)
    }

    /// Number of segments (at least one).
    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    /// Always false: a path has at least one segment. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// The audit-event or enrichment field this path names ([`KnownPath::Other`] for the rest),
    /// so a document can answer it without comparing names.
    pub fn known(&self) -> KnownPath {
        self.known
    }

    /// The same path without its [`KnownPath`], so a document looks it up by name: for tests
    /// that compare both ways of answering it. Not equal to `self` when `self` names a field.
    #[doc(hidden)]
    #[must_use]
    pub fn by_name(&self) -> FieldPath {
        FieldPath { known: KnownPath::Other, ..self.clone() }
    }

    /// Segment `i`, unquoted.
    pub fn segment(&self, i: usize) -> Option<&str> {
        let &(s, e) = self.bounds.get(i)?;
        self.joined.get(s..e)
    }

    /// All segments, unquoted.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.bounds.iter().map(|&(s, e)| self.joined.get(s..e).unwrap_or_default())
    }

    /// Segments `from..to` joined with `.`, without allocating: the key to try when a
    /// document stores a dotted name as one key (`"authorization.k8s.io/decision"`).
    /// `None` if the range is empty or out of bounds.
    pub fn dotted(&self, from: usize, to: usize) -> Option<&str> {
        if from >= to {
            return None;
        }
        let &(s, _) = self.bounds.get(from)?;
        let &(_, e) = self.bounds.get(to.checked_sub(1)?)?;
        self.joined.get(s..e)
    }

    /// The whole path joined with `.` (the flattened field name SLS would index it under).
    pub fn flattened(&self) -> &str {
        &self.joined
    }
}

/// Characters allowed in an unquoted segment. `/` is allowed so the SLS spelling of
/// annotation keys (`authorization.k8s.io/decision`) needs no quotes.
pub(crate) fn is_bare_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/')
}

/// Whether a segment can be written without quotes and read back unchanged. The keywords
/// `and`/`or`/`not` are quoted so a one-segment path never reads as an operator.
fn is_bare_segment(seg: &str) -> bool {
    !seg.is_empty()
        && seg.chars().all(is_bare_char)
        && !["and", "or", "not"].iter().any(|k| seg.eq_ignore_ascii_case(k))
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            if is_bare_segment(seg) {
                f.write_str(seg)?;
            } else {
                lexer::write_quoted(f, seg)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({self})")
    }
}

impl std::str::FromStr for FieldPath {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<FieldPath, QueryError> {
        FieldPath::parse(s)
    }
}
