//! SLS-style text matching, used by `field: value` and by bare full-text terms.
//!
//! SLS indexes a text field by splitting it on a delimiter set and matches a query value
//! against the resulting tokens, case-insensitively. ACK's audit logstore uses the SLS
//! default delimiters, reproduced in [`DELIMITERS`]. A query value is split the same way;
//! one query token must equal one field token, several must appear as consecutive field
//! tokens (a phrase). Unquoted query tokens may contain the wildcards `*` (any run of
//! chars) and `?` (one char).
//!
//! Everything here scans the field text in place: no allocation per match.

use std::fmt::{self, Write as _};

use super::document::Value;

/// The SLS default token delimiters (ACK audit logstore): `, ' " ; = ( ) [ ] { } ? @ & < > / :`,
/// newline, tab, carriage return and space. All ASCII, so splitting on bytes is UTF-8 safe.
pub(crate) const DELIMITERS: &str = ",'\";=()[]{}?@&<>/:\n\t\r ";

const fn delimiter_table(question_mark: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let d = DELIMITERS.as_bytes();
    let mut i = 0;
    while i < d.len() {
        table[d[i] as usize] = true;
        i += 1;
    }
    table[b'?' as usize] = question_mark;
    table
}

/// Delimiters for field text and quoted query values.
static FIELD_DELIMS: [bool; 256] = delimiter_table(true);
/// Delimiters for unquoted query values: `?` is a wildcard there, not a separator (field
/// tokens never contain `?`, so this loses nothing).
static PATTERN_DELIMS: [bool; 256] = delimiter_table(false);

/// Iterator over the tokens of a text. Cloning it is how phrase matching looks ahead.
#[derive(Clone)]
pub(crate) struct Tokens<'a> {
    text: &'a str,
    pos: usize,
    delims: &'static [bool; 256],
}

impl<'a> Tokens<'a> {
    pub(crate) fn field(text: &'a str) -> Self {
        Tokens { text, pos: 0, delims: &FIELD_DELIMS }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.pos).is_some_and(|&b| self.delims[b as usize]) {
            self.pos += 1;
        }
        let start = self.pos;
        while bytes.get(self.pos).is_some_and(|&b| !self.delims[b as usize]) {
            self.pos += 1;
        }
        if start == self.pos {
            None
        } else {
            self.text.get(start..self.pos)
        }
    }
}

/// Case folding used on both sides of a token comparison: ASCII lowercase, and for other
/// chars the Unicode lowercase when it is a single char (a per-char fold keeps matching
/// allocation-free).
#[inline]
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GlobItem {
    /// `*`: any run of chars, possibly empty.
    Any,
    /// `?`: exactly one char.
    One,
    /// A char, already folded.
    Char(char),
}

/// One query token.
#[derive(Clone, Debug)]
enum TokenPattern {
    /// Must equal a field token; stored folded.
    Literal { folded: String, ascii: bool },
    /// Contains `*` or `?`.
    Glob(Vec<GlobItem>),
}

impl TokenPattern {
    fn literal(token: &str) -> TokenPattern {
        let folded: String = token.chars().map(fold).collect();
        let ascii = folded.is_ascii();
        TokenPattern::Literal { folded, ascii }
    }

    fn glob(token: &str) -> TokenPattern {
        let mut items: Vec<GlobItem> = Vec::with_capacity(token.len());
        for c in token.chars() {
            let item = match c {
                '*' => GlobItem::Any,
                '?' => GlobItem::One,
                c => GlobItem::Char(fold(c)),
            };
            // `**` is `*`; collapsing keeps the matcher's backtracking linear per star.
            if !(item == GlobItem::Any && items.last() == Some(&GlobItem::Any)) {
                items.push(item);
            }
        }
        TokenPattern::Glob(items)
    }

    fn matches(&self, token: &str) -> bool {
        match self {
            TokenPattern::Literal { folded, ascii } => {
                if *ascii && token.is_ascii() {
                    token.eq_ignore_ascii_case(folded)
                } else {
                    token.chars().map(fold).eq(folded.chars())
                }
            }
            TokenPattern::Glob(items) => glob_match(items, token),
        }
    }
}

/// Wildcard match of a whole token, iterative with single-star backtracking: O(len(pattern)
/// * len(token)) worst case, no allocation, no recursion.
fn glob_match(pattern: &[GlobItem], token: &str) -> bool {
    let mut p = 0;
    let mut t = 0;
    // After a `*`: the pattern index following it, and the token offset it currently absorbs to.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = token.get(t..).and_then(|s| s.chars().next()) {
        match pattern.get(p) {
            Some(GlobItem::Any) => {
                p += 1;
                star = Some((p, t));
                continue;
            }
            Some(GlobItem::One) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            Some(&GlobItem::Char(pc)) if pc == fold(c) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` absorb one more char and retry after it.
        let Some((after_star, absorbed)) = star else {
            return false;
        };
        let Some(skipped) = token.get(absorbed..).and_then(|s| s.chars().next()) else {
            return false;
        };
        let absorbed = absorbed + skipped.len_utf8();
        star = Some((after_star, absorbed));
        p = after_star;
        t = absorbed;
    }
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|g| *g == GlobItem::Any))
}

/// The compiled right-hand side of `field: value` or a bare term: a non-empty sequence of
/// token patterns that must match consecutive field tokens.
#[derive(Clone, Debug)]
pub(crate) struct TextQuery {
    tokens: Vec<TokenPattern>,
    /// Set when the value is a single plain number: numeric field values then compare as
    /// numbers (`code: 403` matches 403 however the number was written).
    number: Option<f64>,
}

impl TextQuery {
    /// Compiles a value. Quoted values are literal (wildcards are ordinary chars);
    /// unquoted ones may use `*` and `?`. `None` if the value holds no token at all (only
    /// delimiters).
    pub(crate) fn new(value: &str, quoted: bool) -> Option<TextQuery> {
        let tokens: Vec<TokenPattern> = if quoted {
            Tokens::field(value).map(TokenPattern::literal).collect()
        } else {
            Tokens { text: value, pos: 0, delims: &PATTERN_DELIMS }
                .map(|t| if t.contains(['*', '?']) { TokenPattern::glob(t) } else { TokenPattern::literal(t) })
                .collect()
        };
        let number = match tokens.as_slice() {
            [TokenPattern::Literal { folded, .. }] => parse_number(folded),
            _ => None,
        };
        if tokens.is_empty() {
            None
        } else {
            Some(TextQuery { tokens, number })
        }
    }

    /// Whether the tokens of `text` contain the query's tokens consecutively.
    pub(crate) fn matches_text(&self, text: &str) -> bool {
        let Some((first, rest)) = self.tokens.split_first() else {
            return false;
        };
        if let (TokenPattern::Literal { folded, ascii: true }, []) = (first, rest) {
            return matches_ascii_word(folded.as_bytes(), text);
        }
        let mut field = Tokens::field(text);
        while let Some(token) = field.next() {
            if first.matches(token) {
                let mut ahead = field.clone();
                if rest.iter().all(|p| ahead.next().is_some_and(|t| p.matches(t))) {
                    return true;
                }
            }
        }
        false
    }

    /// Token match against one value: strings as text, numbers and booleans by their JSON
    /// text. Null, objects and arrays never match.
    pub(crate) fn matches_value(&self, value: Value<'_>) -> bool {
        match value {
            Value::Str(s) => self.matches_text(s),
            Value::Num(n) => match self.number {
                Some(q) => n == q,
                None => with_number_text(n, |s| self.matches_text(s)).unwrap_or(false),
            },
            Value::Bool(b) => self.matches_text(if b { "true" } else { "false" }),
            Value::Null | Value::Object | Value::Array => false,
        }
    }
}

/// [`TextQuery::matches_text`] for the common query of one ASCII word (`ipScope: internet`),
/// `word` already folded: compares bytes, no chars decoded. The same answer as the general
/// path: a token of another length than `word` can only match when it is longer and not ASCII
/// (a char that folds to an ASCII one, such as the Kelvin sign), which that path decides.
fn matches_ascii_word(word: &[u8], text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() <= word.len() {
        // Every token but the whole text is shorter than `word`; the whole text, as long,
        // matches exactly when it equals `word` (which holds no delimiter).
        return bytes.len() == word.len() && bytes.iter().zip(word).all(|(t, w)| t.to_ascii_lowercase() == *w);
    }
    let mut i = 0;
    while i < bytes.len() {
        if FIELD_DELIMS[bytes[i] as usize] {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !FIELD_DELIMS[bytes[i] as usize] {
            i += 1;
        }
        let token = &bytes[start..i];
        let hit = if token.len() == word.len() {
            token.iter().zip(word).all(|(t, w)| t.to_ascii_lowercase() == *w)
        } else {
            token.len() > word.len()
                && !token.is_ascii()
                && text.get(start..i).is_some_and(|t| t.chars().map(fold).eq(word.iter().map(|&b| char::from(b))))
        };
        if hit {
            return true;
        }
    }
    false
}

/// Parses a plain decimal number: `-?digits[.digits][e[+-]digits]`. Stricter than
/// `f64::from_str`, which would also take `inf`, `NaN` or `+1`.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse().ok()
}

/// A fixed stack buffer for rendering numbers without allocating.
struct NumberBuf {
    buf: [u8; 32],
    len: usize,
}

impl fmt::Write for NumberBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Calls `f` with the JSON-like text of `n` (`403`, `0.5`, `1e21`). `None` if it does not
/// fit the buffer (cannot happen for finite f64s in these formats, but never panic).
pub(crate) fn with_number_text<R>(n: f64, f: impl FnOnce(&str) -> R) -> Option<R> {
    let mut buf = NumberBuf { buf: [0; 32], len: 0 };
    let written = if n.fract() == 0.0 && n.abs() < 1e15 {
        // Integral values print without ".0", as in the JSON they came from.
        write!(buf, "{}", n as i64)
    } else {
        write!(buf, "{n:?}")
    };
    written.ok()?;
    let text = std::str::from_utf8(buf.buf.get(..buf.len)?).ok()?;
    Some(f(text))
}
