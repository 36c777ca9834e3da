//! Text for people to read, made safe for a terminal. Audit events are partly written by
//! whoever calls the API server (user names, user agents, object names, URIs; even a rejected,
//! unauthenticated request is logged), and configs are files anyone with write access shaped,
//! so nothing from them may reach a terminal or a log viewer as a control sequence: an ESC or a
//! C1 control can recolour, move the cursor, retitle the window or hide lines, a carriage return
//! or backspace can overwrite what was printed, a bidirectional control reorders it
//! (CVE-2021-42574). Every such character is written as a JSON-style `\uXXXX` escape, which
//! keeps a JSON line valid and its value unchanged.
//!
//! Every host's messages (errors, warnings, summaries in the CLI; the Fluent Bit module's and
//! the Envoy filter's log lines) go through [`field`] or [`lines`]; the CLI's data on a
//! terminal through [`stream`].

use std::borrow::Cow;

/// Characters a terminal acts on instead of showing: C0 controls, DEL, C1 controls, the line
/// and paragraph separators, and the bidirectional formatting controls (Unicode UAX #9).
fn acts_on_terminal(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| acts_on_terminal(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if acts_on_terminal(c) && !keep(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One value inside a line of text: every control character escaped, line breaks and tabs too,
/// so a value can neither act on the terminal nor start a line of its own.
pub fn field(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// A message whose line breaks are kaudit's own (a query error with its caret line): line
/// breaks kept, every other control character escaped.
pub fn lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n')
}

/// Output bytes for a terminal: line breaks and tabs kept, other control characters escaped,
/// bytes that are not UTF-8 written as `\xNN`.
pub fn stream(bytes: &[u8]) -> Cow<'_, [u8]> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return match escape(s, |c| c == '\n' || c == '\t') {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        };
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid(), |c| c == '\n' || c == '\t'));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        let hostile = "a\x1b[31mred\x1b]0;title\x07\r\x08\u{9b}2J\u{202e}txt\u{2028}\t\nz";
        assert_eq!(
            field(hostile),
            "a\\u001b[31mred\\u001b]0;title\\u0007\\u000d\\u0008\\u009b2J\\u202etxt\\u2028\\u0009\\u000az"
        );
        assert_eq!(
            lines(hostile),
            "a\\u001b[31mred\\u001b]0;title\\u0007\\u000d\\u0008\\u009b2J\\u202etxt\\u2028\\u0009\nz"
        );
        assert!(matches!(field("plain ünïcode"), Cow::Borrowed(_)));
        let bytes = b"{\"a\":\"\xe2\x80\xae\"}\n\x1b[2J\xff\t";
        assert_eq!(&*stream(bytes), b"{\"a\":\"\\u202e\"}\n\\u001b[2J\\xff\t");
        // A JSON line stays JSON with the same value.
        let json = "{\"user\":\"\u{9b}31m\u{202e}\"}";
        let escaped = stream(json.as_bytes());
        let a: serde_json::Value = serde_json::from_str(json).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&escaped).unwrap();
        assert_eq!(a, b);
    }
}
