//! Lexer for the query language. The parser pulls tokens from a byte position, in one of
//! two modes:
//!
//! * [`next_token`]: operators, parentheses, quoted strings and *words*. A word is a run of
//!   text and quoted strings with no whitespace between them, so a field path such as
//!   `annotations."authorization.k8s.io/decision"` arrives as one word; the parser decides
//!   from the following token whether a word is a field path or a bare search term.
//! * [`next_value`]: the right-hand side of `:`, `=`, `<`... In SLS a value runs to the
//!   next whitespace or parenthesis, so `user.groups: system:masters` reads `system:masters`
//!   as the value even though `:` is an operator elsewhere.
//!
//! Positions are byte offsets; [`QueryError::at`] turns them into char columns.

use std::fmt;

use super::QueryError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Text (possibly with quoted parts) in `src[start..end]`.
    Word,
    /// A word that is exactly one quoted string, unescaped.
    Str(String),
    LParen,
    RParen,
    Comma,
    Colon,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~`
    Match,
    /// `!~`
    NotMatch,
    Eof,
}

impl Tok {
    /// Whether this is a comparison operator (`:`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `~`, `!~`):
    /// what follows a field name.
    pub fn is_comparison(&self) -> bool {
        matches!(
            self,
            Tok::Colon | Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::Match | Tok::NotMatch
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// How the token is shown in error messages.
    pub fn describe(&self, src: &str) -> String {
        match self.tok {
            Tok::Eof => "end of query".to_owned(),
            _ => format!("'{}'", src.get(self.start..self.end).unwrap_or_default()),
        }
    }
}

/// A value read by [`next_value`].
#[derive(Clone, Debug)]
pub(crate) enum ValueKind {
    /// Unquoted: `src[start..end]` verbatim.
    Raw,
    /// Quoted and unescaped.
    Quoted(String),
}

#[derive(Clone, Debug)]
pub(crate) struct ValueTok {
    pub kind: ValueKind,
    pub start: usize,
    pub end: usize,
}

/// The char starting at byte `i`, if any. Never panics, unlike indexing.
pub(crate) fn char_at(src: &str, i: usize) -> Option<char> {
    src.get(i..)?.chars().next()
}

fn skip_ws(src: &str, mut i: usize) -> usize {
    while let Some(c) = char_at(src, i) {
        if !c.is_whitespace() {
            break;
        }
        i += c.len_utf8();
    }
    i
}

/// Characters that end a word in operator mode (besides whitespace and `"`, which starts a
/// quoted part of the same word).
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | ',' | ':' | '=' | '!' | '<' | '>' | '~' | '"')
}

/// Reads the token starting at or after `pos`.
pub(crate) fn next_token(src: &str, pos: usize) -> Result<Token, QueryError> {
    let start = skip_ws(src, pos);
    let Some(c) = char_at(src, start) else {
        return Ok(Token { tok: Tok::Eof, start, end: start });
    };
    let next = char_at(src, start + c.len_utf8());
    let (tok, len) = match (c, next) {
        ('(', _) => (Tok::LParen, 1),
        (')', _) => (Tok::RParen, 1),
        (',', _) => (Tok::Comma, 1),
        (':', _) => (Tok::Colon, 1),
        ('=', Some('=')) => (Tok::Eq, 2),
        ('=', _) => (Tok::Eq, 1),
        ('!', Some('=')) => (Tok::Ne, 2),
        ('!', Some('~')) => (Tok::NotMatch, 2),
        ('!', _) => return Err(QueryError::at(src, start, "expected '=' or '~' after '!'")),
        ('<', Some('=')) => (Tok::Le, 2),
        ('<', _) => (Tok::Lt, 1),
        ('>', Some('=')) => (Tok::Ge, 2),
        ('>', _) => (Tok::Gt, 1),
        ('~', _) => (Tok::Match, 1),
        _ => return scan_word(src, start),
    };
    Ok(Token { tok, start, end: start + len })
}

/// A word: bare runs and quoted strings glued together (`a."b.c".d`).
fn scan_word(src: &str, start: usize) -> Result<Token, QueryError> {
    let mut i = start;
    let mut pieces = 0usize;
    let mut only_string = None;
    loop {
        match char_at(src, i) {
            Some('"') => {
                let (s, next) = read_string(src, i)?;
                only_string = Some(s);
                i = next;
            }
            Some(c) if is_word_char(c) => {
                while let Some(c) = char_at(src, i).filter(|&c| is_word_char(c)) {
                    i += c.len_utf8();
                }
                only_string = None;
            }
            _ => break,
        }
        pieces += 1;
    }
    let tok = match only_string {
        Some(s) if pieces == 1 => Tok::Str(s),
        _ => Tok::Word,
    };
    Ok(Token { tok, start, end: i })
}

/// Reads the value starting at or after `pos`: a quoted string, or raw text up to the next
/// whitespace or parenthesis (and comma, inside `in (..)` lists). `None` if no value
/// starts there.
pub(crate) fn next_value(src: &str, pos: usize, in_list: bool) -> Result<Option<ValueTok>, QueryError> {
    let start = skip_ws(src, pos);
    match char_at(src, start) {
        None | Some('(' | ')') => Ok(None),
        Some(',') if in_list => Ok(None),
        Some('"') => {
            let (s, end) = read_string(src, start)?;
            if let Some(c) = char_at(src, end) {
                if !c.is_whitespace() && !matches!(c, '(' | ')' | ',') {
                    return Err(QueryError::at(
                        src,
                        end,
                        "unexpected text right after a closing quote; put the whole value inside the quotes",
                    ));
                }
            }
            Ok(Some(ValueTok { kind: ValueKind::Quoted(s), start, end }))
        }
        Some(_) => {
            let mut end = start;
            while let Some(c) = char_at(src, end) {
                if c.is_whitespace() || matches!(c, '(' | ')') || (in_list && c == ',') {
                    break;
                }
                if c == '"' {
                    return Err(QueryError::at(
                        src,
                        end,
                        "unexpected '\"' inside a value; put the whole value inside the quotes",
                    ));
                }
                end += c.len_utf8();
            }
            Ok(Some(ValueTok { kind: ValueKind::Raw, start, end }))
        }
    }
}

/// Reads the quoted string whose opening `"` is at byte `open`. Returns the unescaped text
/// and the byte offset just past the closing quote.
///
/// Escapes: `\"`, `\\`, `\n`, `\t`, `\r`. Any other backslash pair is kept verbatim, so
/// regular expressions can be written naturally (`"\d+"` is the regex `\d+`).
pub(crate) fn read_string(src: &str, open: usize) -> Result<(String, usize), QueryError> {
    let mut out = String::new();
    let mut i = open + 1;
    loop {
        let Some(c) = char_at(src, i) else {
            return Err(QueryError::at(src, open, "unterminated string: missing closing '\"'"));
        };
        i += c.len_utf8();
        match c {
            '"' => return Ok((out, i)),
            '\\' => {
                let Some(e) = char_at(src, i) else {
                    return Err(QueryError::at(src, open, "unterminated string: missing closing '\"'"));
                };
                i += e.len_utf8();
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            other => out.push(other),
        }
    }
}

/// Writes `s` as a quoted string that [`read_string`] reads back unchanged.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
