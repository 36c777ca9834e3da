//! Recursive-descent parser: tokens in, compiled [`Node`] tree out.
//!
//! Precedence, loosest first: `or` < `and` / juxtaposition < `not` < atom. So
//! `a or b and c` is `a or (b and c)` and `not a b` is `(not a) and b`, matching SLS where
//! adjacent terms are ANDed and `NOT` binds to the next term.
//!
//! The grammar is in `docs/QUERY.md`. Regexes and token patterns are compiled here, so
//! every error (including a bad regex) carries the column of the text that caused it.
//! Nesting of parentheses and `not` is capped at [`MAX_DEPTH`].

use regex::RegexBuilder;

use super::eval::{Bound, CmpOp, Literal, Node, Test};
use super::lexer::{self, Tok, Token, ValueKind, ValueTok};
use super::text::{parse_number, TextQuery};
use super::{FieldPath, QueryError, QueryLimits, MAX_DEPTH};

pub(crate) fn parse(src: &str, limits: QueryLimits) -> Result<Node, QueryError> {
    let mut p = Parser { src, pos: 0, depth: 0, limits };
    if p.peek()?.tok == Tok::Eof {
        // SLS: an empty query returns everything.
        return Ok(Node::Const(true));
    }
    let node = p.parse_or()?;
    let t = p.peek()?;
    if t.tok != Tok::Eof {
        return Err(p.error(t.start, format!("unexpected {}", t.describe(src))));
    }
    Ok(node)
}

struct Parser<'s> {
    src: &'s str,
    /// Byte offset of the next unread char.
    pos: usize,
    /// Current nesting of `(` and `not`.
    depth: usize,
    limits: QueryLimits,
}

/// Which operator introduced a term, for error messages.
#[derive(Clone, Copy)]
enum After {
    Start,
    Op(&'static str),
}

impl<'s> Parser<'s> {
    fn error(&self, at: usize, message: impl Into<String>) -> QueryError {
        QueryError::at(self.src, at, message)
    }

    fn peek(&self) -> Result<Token, QueryError> {
        lexer::next_token(self.src, self.pos)
    }

    fn bump(&mut self, t: &Token) {
        self.pos = t.end;
    }

    /// Consumes the next token if it is `want`; otherwise an error at it, "expected {what},
    /// found <it>{hint}".
    fn expect(&mut self, want: Tok, what: &str, hint: &str) -> Result<Token, QueryError> {
        let t = self.peek()?;
        if t.tok != want {
            return Err(self.error(t.start, format!("expected {what}, found {}{hint}", t.describe(self.src))));
        }
        self.bump(&t);
        Ok(t)
    }

    fn text(&self, t: &Token) -> &'s str {
        self.src.get(t.start..t.end).unwrap_or_default()
    }

    /// Whether `t` is the (case-insensitive) keyword `kw`.
    fn is_keyword(&self, t: &Token, kw: &str) -> bool {
        t.tok == Tok::Word && self.text(t).eq_ignore_ascii_case(kw)
    }

    fn enter(&mut self, at: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(at, format!("query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Node, QueryError> {
        let mut items = vec![self.parse_and(After::Start)?];
        loop {
            let t = self.peek()?;
            if !self.is_keyword(&t, "or") {
                break;
            }
            self.bump(&t);
            items.push(self.parse_and(After::Op("or"))?);
        }
        Ok(Node::any(items))
    }

    fn parse_and(&mut self, after: After) -> Result<Node, QueryError> {
        let mut items = vec![self.parse_unary(after)?];
        loop {
            let t = self.peek()?;
            if self.is_keyword(&t, "and") {
                self.bump(&t);
                items.push(self.parse_unary(After::Op("and"))?);
            } else if self.starts_term(&t) {
                // Juxtaposition: adjacent terms are ANDed (SLS).
                items.push(self.parse_unary(after)?);
            } else {
                break;
            }
        }
        Ok(Node::all(items))
    }

    fn starts_term(&self, t: &Token) -> bool {
        match t.tok {
            Tok::Word => !self.is_keyword(t, "and") && !self.is_keyword(t, "or"),
            Tok::Str(_) | Tok::LParen => true,
            _ => false,
        }
    }

    fn parse_unary(&mut self, after: After) -> Result<Node, QueryError> {
        let t = self.peek()?;
        if self.is_keyword(&t, "not") {
            self.bump(&t);
            self.enter(t.start)?;
            let inner = self.parse_unary(After::Op("not"))?;
            self.depth -= 1;
            return Ok(Node::not(inner));
        }
        self.parse_primary(after)
    }

    fn parse_primary(&mut self, after: After) -> Result<Node, QueryError> {
        let t = self.peek()?;
        match &t.tok {
            Tok::LParen => {
                self.bump(&t);
                self.enter(t.start)?;
                let inner = self.parse_or_in_group(&t)?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Word if self.is_keyword(&t, "exists") && self.next_is_lparen(&t)? => self.parse_exists(&t),
            Tok::Word | Tok::Str(_) if self.starts_term(&t) => {
                self.bump(&t);
                if self.comparison_follows()? {
                    let path = FieldPath::parse_span(self.src, t.start, t.end)?;
                    self.parse_comparison(path)
                } else {
                    self.bare_term(&t)
                }
            }
            _ => {
                let found = t.describe(self.src);
                let message = match (after, &t.tok) {
                    (_, tok) if tok.is_comparison() => format!("expected a field name before {found}"),
                    (After::Start, _) => format!("expected a search term, found {found}"),
                    (After::Op(op), _) => {
                        format!("expected a search term after '{op}', found {found}")
                    }
                };
                Err(self.error(t.start, message))
            }
        }
    }

    /// The inside of `( .. )`, up to and including the `)`.
    fn parse_or_in_group(&mut self, open: &Token) -> Result<Node, QueryError> {
        let t = self.peek()?;
        if t.tok == Tok::RParen {
            return Err(self.error(t.start, "empty parentheses: expected a search term"));
        }
        let inner = self.parse_or()?;
        let column = QueryError::at(self.src, open.start, "").column;
        self.expect(Tok::RParen, &format!("')' to close the '(' at column {column}"), "")?;
        Ok(inner)
    }

    fn next_is_lparen(&self, t: &Token) -> Result<bool, QueryError> {
        Ok(lexer::next_token(self.src, t.end)?.tok == Tok::LParen)
    }

    /// `exists ( path )`.
    fn parse_exists(&mut self, kw: &Token) -> Result<Node, QueryError> {
        self.bump(kw);
        let open = self.peek()?;
        self.bump(&open);
        let name = self.peek()?;
        if !matches!(name.tok, Tok::Word | Tok::Str(_)) {
            return Err(self.error(
                name.start,
                format!("expected a field name inside exists(..), found {}", name.describe(self.src)),
            ));
        }
        self.bump(&name);
        let path = FieldPath::parse_span(self.src, name.start, name.end)?;
        self.expect(Tok::RParen, "')' after the field name in exists(..)", "")?;
        Ok(Node::Field(path, Test::Exists))
    }

    /// After a word: is it a field name, i.e. followed by an operator, `in` or `not in`?
    fn comparison_follows(&self) -> Result<bool, QueryError> {
        let t = self.peek()?;
        Ok(match t.tok {
            ref tok if tok.is_comparison() => true,
            Tok::Word if self.is_keyword(&t, "in") => true,
            Tok::Word if self.is_keyword(&t, "not") => {
                let next = lexer::next_token(self.src, t.end)?;
                self.is_keyword(&next, "in")
            }
            _ => false,
        })
    }

    /// A bare full-text term (word or quoted phrase), or `*` for "everything".
    fn bare_term(&self, t: &Token) -> Result<Node, QueryError> {
        let (text, quoted) = match &t.tok {
            Tok::Str(s) => (s.as_str(), true),
            _ => {
                let raw = self.text(t);
                if let Some(q) = raw.find('"') {
                    return Err(self.error(
                        t.start + q,
                        "a quoted string must stand alone as a search term; quote the whole term",
                    ));
                }
                (raw, false)
            }
        };
        if !quoted && text == "*" {
            return Ok(Node::Const(true));
        }
        TextQuery::new(text, quoted)
            .map(Node::FullText)
            .ok_or_else(|| self.error(t.start, "search term has no searchable text (it consists only of delimiters)"))
    }

    fn parse_comparison(&mut self, path: FieldPath) -> Result<Node, QueryError> {
        let op = self.peek()?;
        self.bump(&op);
        let op_text = self.text(&op).to_owned();
        match op.tok {
            Tok::Colon => {
                let v = self.value(&op_text, op.end)?;
                let (text, quoted) = match &v.kind {
                    ValueKind::Raw => {
                        let raw = self.src.get(v.start..v.end).unwrap_or_default();
                        if raw == "*" {
                            return Ok(Node::Field(path, Test::Exists));
                        }
                        if ["and", "or", "not"].iter().any(|k| raw.eq_ignore_ascii_case(k)) {
                            return Err(self.error(
                                v.start,
                                format!("expected a value after ':', found the keyword '{raw}' (quote it to search for the word)"),
                            ));
                        }
                        (raw, false)
                    }
                    ValueKind::Quoted(s) => (s.as_str(), true),
                };
                let q = TextQuery::new(text, quoted).ok_or_else(|| {
                    self.error(
                        v.start,
                        "value after ':' has no searchable text (it consists only of delimiters); use '=' for an exact comparison",
                    )
                })?;
                Ok(Node::Field(path, Test::Text(q)))
            }
            Tok::Eq | Tok::Ne => {
                let v = self.value(&op_text, op.end)?;
                let node = Node::Field(path, Test::Eq(self.literal(&v)));
                Ok(if op.tok == Tok::Ne { Node::not(node) } else { node })
            }
            Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => {
                let cmp = match op.tok {
                    Tok::Lt => CmpOp::Lt,
                    Tok::Le => CmpOp::Le,
                    Tok::Gt => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let v = self.value(&op_text, op.end)?;
                let bound = match self.literal(&v) {
                    Literal::Num(n) | Literal::Str { num: Some(n), .. } => Bound::Num(n),
                    Literal::Str { text, num: None } => Bound::Str(text),
                    Literal::Bool(_) | Literal::Null => {
                        return Err(self.error(
                            v.start,
                            format!(
                                "'{op_text}' needs a number or a string, not '{}'",
                                self.src.get(v.start..v.end).unwrap_or_default()
                            ),
                        ))
                    }
                };
                Ok(Node::Field(path, Test::Cmp(cmp, bound)))
            }
            Tok::Match | Tok::NotMatch => {
                let v = self.value(&op_text, op.end)?;
                let ValueKind::Quoted(pattern) = &v.kind else {
                    return Err(self.error(v.start, format!("expected a quoted regular expression after '{op_text}'")));
                };
                let re = RegexBuilder::new(pattern)
                    // A rule's regex that needs more is almost certainly a mistake, and must
                    // not exhaust memory.
                    .size_limit(self.limits.max_regex_bytes)
                    .dfa_size_limit(self.limits.max_regex_bytes.saturating_mul(2))
                    .nest_limit(MAX_DEPTH as u32)
                    .build()
                    .map_err(|e| {
                        self.error(v.start, format!("invalid regular expression: {}", regex_error_summary(&e)))
                    })?;
                let node = Node::Field(path, Test::Regex(re));
                Ok(if op.tok == Tok::NotMatch { Node::not(node) } else { node })
            }
            Tok::Word => {
                // `in` or `not in` (comparison_follows checked which).
                let negated = self.is_keyword(&op, "not");
                if negated {
                    let kw = self.peek()?;
                    self.bump(&kw);
                }
                let literals = self.in_list()?;
                let null_listed = literals.contains(&Literal::Null);
                let node = Node::Field(path, Test::In { literals, null_listed });
                Ok(if negated { Node::not(node) } else { node })
            }
            _ => Err(self.error(op.start, format!("expected an operator, found {}", op.describe(self.src)))),
        }
    }

    /// `( lit {, lit} [,] )` after `in`.
    fn in_list(&mut self) -> Result<Vec<Literal>, QueryError> {
        self.expect(Tok::LParen, "'(' after 'in'", " (SLS range syntax 'in [a b]' is not supported; use >= and <=)")?;
        let mut items = Vec::new();
        loop {
            let Some(v) = lexer::next_value(self.src, self.pos, true)? else {
                let t = self.peek()?;
                return Err(
                    self.error(t.start, format!("expected a value in the 'in' list, found {}", t.describe(self.src)))
                );
            };
            self.pos = v.end;
            items.push(self.literal(&v));
            let t = self.peek()?;
            self.bump(&t);
            match t.tok {
                Tok::RParen => break,
                Tok::Comma => {
                    // Allow a trailing comma.
                    let close = self.peek()?;
                    if close.tok == Tok::RParen {
                        self.bump(&close);
                        break;
                    }
                }
                _ => {
                    return Err(self.error(
                        t.start,
                        format!(
                            "expected ',' or ')' in the 'in' list, found {} (SLS range syntax 'in [a b]' is not supported; use >= and <=)",
                            t.describe(self.src)
                        ),
                    ))
                }
            }
        }
        Ok(items)
    }

    /// The value after operator `op` (which ends at byte `op_end`).
    fn value(&mut self, op: &str, op_end: usize) -> Result<ValueTok, QueryError> {
        match lexer::next_value(self.src, self.pos, false)? {
            Some(v) => {
                self.pos = v.end;
                Ok(v)
            }
            None => {
                let t = lexer::next_token(self.src, op_end)?;
                Err(self.error(t.start, format!("expected a value after '{op}', found {}", t.describe(self.src))))
            }
        }
    }

    /// Interprets a value as a literal for `=`, `in` and ordering comparisons.
    fn literal(&self, v: &ValueTok) -> Literal {
        match &v.kind {
            ValueKind::Quoted(s) => Literal::Str { text: s.clone(), num: parse_number(s) },
            ValueKind::Raw => {
                let raw = self.src.get(v.start..v.end).unwrap_or_default();
                if let Some(n) = parse_number(raw) {
                    Literal::Num(n)
                } else if raw.eq_ignore_ascii_case("true") {
                    Literal::Bool(true)
                } else if raw.eq_ignore_ascii_case("false") {
                    Literal::Bool(false)
                } else if raw.eq_ignore_ascii_case("null") {
                    Literal::Null
                } else {
                    Literal::Str { text: raw.to_owned(), num: None }
                }
            }
        }
    }
}

/// One line out of the regex crate's multi-line error text (which draws its own caret).
fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("unknown error")
        .to_owned()
}
