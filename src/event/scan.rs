//! The fast path of [`super::raw::parse_object`]: one pass over a JSON object's bytes that
//! validates it and splits it into members, with no per-token dispatch. In an interpreter
//! (Fluent Bit's WAMR) this costs a fraction of serde_json's generic parse.
//!
//! It accepts a subset of what serde_json accepts and answers `None` for everything else
//! (keys with escapes, nesting deeper than [`MAX_DEPTH`], any syntax error), which then goes
//! through serde_json: so errors, and anything unusual, read exactly as before. Within the
//! subset the grammar is serde_json's own for skipped values: strings without raw control
//! characters and with valid escapes (`\u` followed by four hex digits, surrogates not
//! paired, as serde_json's `ignore_str`), JSON numbers, `true`/`false`/`null`, whitespace of
//! space, tab, line feed and carriage return.

use std::borrow::Cow;

use super::raw::{Member, RawObject};

/// Deeper nesting goes to serde_json (whose skipping is not recursive); this bounds the stack.
const MAX_DEPTH: u32 = 48;

const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES << 7;

/// The high bit of each of the 8 bytes that is `"`, `\` or below 0x20; the lowest one set is
/// exact (bytes above a match may be flagged too).
#[inline(always)]
fn special(chunk: u64) -> u64 {
    let ctrl = chunk.wrapping_sub(ONES * 0x20) & !chunk;
    let q = chunk ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let s = chunk ^ (ONES * u64::from(b'\\'));
    let slash = s.wrapping_sub(ONES) & !s;
    (ctrl | quote | slash) & HIGH
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// A line feed or carriage return was seen (they can only be whitespace in valid JSON).
    line_break: bool,
}

impl Scanner<'_> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b' ' | b'\t' => {}
                b'\n' | b'\r' => self.line_break = true,
                _ => return,
            }
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// A string starting at the opening quote; returns whether it has escapes.
    fn string(&mut self) -> Option<bool> {
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            // To the next `"`, `\` or control character: 8 bytes at a time, then byte by byte.
            loop {
                match self.b.get(self.i..self.i + 8).map(<[u8; 8]>::try_from) {
                    Some(Ok(word)) => {
                        let found = special(u64::from_le_bytes(word));
                        if found != 0 {
                            self.i += (found.trailing_zeros() / 8) as usize;
                            break;
                        }
                        self.i += 8;
                    }
                    _ => {
                        while self.b.get(self.i).is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20) {
                            self.i += 1;
                        }
                        break;
                    }
                }
            }
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.b.get(self.i..self.i + word.len())? == word).then(|| self.i += word.len())
    }

    /// Any value starting at the current byte (no leading whitespace).
    fn value(&mut self, depth: u32) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => self.string().map(drop),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => {
                            self.i += 1;
                            self.ws();
                        }
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match *self.b.get(self.i)? {
                        b',' => {
                            self.i += 1;
                            self.ws();
                        }
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }
}

/// The content of `raw` when it is exactly one JSON string without escapes (then it needs no
/// decoding); `None` otherwise.
pub(crate) fn plain_string(raw: &str) -> Option<&str> {
    let mut s = Scanner { b: raw.as_bytes(), i: 0, line_break: false };
    match s.string() {
        Some(false) if s.i == raw.len() => raw.get(1..raw.len() - 1),
        _ => None,
    }
}

/// Splits `text` into members when it is exactly one JSON object (surrounding whitespace
/// allowed) that this scanner handles; `None` otherwise (the caller asks serde_json).
pub(crate) fn scan_object(text: &str) -> Option<RawObject<'_>> {
    let mut s = Scanner { b: text.as_bytes(), i: 0, line_break: false };
    s.ws();
    s.eat(b'{')?;
    let mut members = Vec::with_capacity(24);
    s.ws();
    if s.eat(b'}').is_none() {
        loop {
            let key_start = s.i;
            if s.string()? {
                return None; // an escaped key: serde_json decodes it
            }
            let key = text.get(key_start + 1..s.i - 1)?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            let start = s.i;
            s.value(1)?;
            let end = s.i;
            members.push(Member { key: Cow::Borrowed(key), value: text.get(start..end)?, key_start, start, end });
            s.ws();
            match *s.b.get(s.i)? {
                b',' => {
                    s.i += 1;
                    s.ws();
                }
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(RawObject { text, members, line_break: Some(s.line_break) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::raw::parse_object;

    /// serde_json's split of the same text, for comparison.
    fn serde_split(text: &str) -> Option<Vec<(String, usize, usize, usize)>> {
        let obj = crate::event::raw::parse_object_with_serde(text).ok()?;
        Some(obj.members.iter().map(|m| (m.key.to_string(), m.key_start, m.start, m.end)).collect())
    }

    fn fast_split(text: &str) -> Option<Vec<(String, usize, usize, usize)>> {
        let obj = scan_object(text)?;
        Some(obj.members.iter().map(|m| (m.key.to_string(), m.key_start, m.start, m.end)).collect())
    }

    #[test]
    fn accepts_only_what_serde_json_accepts_and_splits_the_same() {
        let cases = [
            r#"{}"#,
            r#" { } "#,
            "{\"a\" :\t1 ,\r\n\"b\":[1,2,{\"c\":null}],\"d\":{\"e\":\"f\\u00e9\\n\"}}",
            r#"{"a":-0.5e+10,"b":0,"c":1E5,"d":true,"e":false,"f":"\"\\\/\b\f\n\r\t"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"ключ":"значение","a":"日本語 text longer than eight bytes"}"#,
            r#"{"a":1}x"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12G4"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"nl\nhere inside a long string\"}",
            r#"{"a":{"b":1}"#,
            r#"{"a":"unterminated}"#,
            r#"[1]"#,
            r#""s""#,
            "\u{feff}{}",
            r#"{"a":1}{"b":2}"#,
            r#"{"a\u0062":1}"#,
            r#"{"a":1,"a":2}"#,
            "{\"a\":\u{a0}1}",
        ];
        for text in cases {
            let fast = fast_split(text);
            if fast.is_some() {
                assert_eq!(fast, serde_split(text), "{text}");
            }
            // Whatever the fast path declines, parse_object still answers as serde_json does.
            assert_eq!(
                parse_object(text).map(|o| o.members.len()).map_err(|e| e.message),
                crate::event::raw::parse_object_with_serde(text).map(|o| o.members.len()).map_err(|e| e.message),
                "{text}"
            );
        }
        assert!(fast_split(r#"{"a":1}x"#).is_none());
        assert!(fast_split(r#"{"a":"\ud800","b":[{"c":[]}]}"#).is_some());
    }

    #[test]
    fn plain_strings_are_sliced_and_the_rest_decoded() {
        assert_eq!(plain_string(r#""abc""#), Some("abc"));
        assert_eq!(plain_string(r#""""#), Some(""));
        for raw in [
            r#""a\"b""#,
            r#""a\u0062""#,
            r#""a"b""#,
            r#""a" "#,
            "\"a\nb\"",
            "\"a\u{1}\"",
            r#""a"#,
            "1",
            "null",
            "\"tab\t\"",
        ] {
            assert_eq!(plain_string(raw), None, "{raw}");
        }
        assert_eq!(plain_string("\"raw\ttab\""), None);
    }

    #[test]
    fn line_breaks_are_noticed_on_the_way() {
        assert_eq!(scan_object("{\"a\":[1,\n2]}").unwrap().line_break, Some(true));
        assert_eq!(scan_object("{\r\"a\":1}").unwrap().line_break, Some(true));
        assert_eq!(scan_object(" {\"a\":\"x\\ny\"}\t").unwrap().line_break, Some(false));
    }

    #[test]
    fn deep_nesting_goes_to_serde_json() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(scan_object(&deep).is_none());
        assert!(parse_object(&deep).is_ok());
    }

    #[test]
    fn agrees_with_serde_json_on_generated_events() {
        let corpus = String::from_utf8(kaudit_testkit::corpus::generate(300, 5)).unwrap();
        for line in corpus.lines() {
            assert!(fast_split(line).is_some());
            assert_eq!(fast_split(line), serde_split(line));
            // Every prefix is rejected by both (truncated records).
            for cut in [1, line.len() / 3, line.len() / 2, line.len() - 1] {
                let prefix = &line[..line.floor_char_boundary(cut)];
                assert!(fast_split(prefix).is_none() && serde_split(prefix).is_none());
            }
        }
    }
}
