//! Splitting an input stream into records: JSON lines (the log backend), pretty-printed JSON
//! documents spanning lines, and bytes that are neither (reported, never lost).
//!
//! A record is normally one line. A line that opens a JSON value without closing it is joined
//! with the following lines until the brackets balance; if they never do, the line alone is the
//! record (and will fail to parse, so it is reported and passed through).

use super::EventError;

/// One record of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's bytes, without the line terminator(s).
    pub bytes: &'a [u8],
    /// 1-based line where the record starts.
    pub line: usize,
}

/// Iterator over the records of an input buffer; blank lines are skipped.
pub struct Records<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
    /// The record being consumed spans lines (single lines have no '\n' to count).
    multi_line: bool,
}

impl<'a> Records<'a> {
    /// The documents of `input`, in order.
    pub fn new(input: &'a [u8]) -> Self {
        Records { input, pos: 0, line: 1, multi_line: false }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        loop {
            if self.pos >= self.input.len() {
                return None;
            }
            let rest = &self.input[self.pos..];
            let line_len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = trim(&rest[..line_len]);
            let start_line = self.line;
            if line.is_empty() {
                self.advance(line_len);
                continue;
            }
            let last = *line.last().unwrap_or(&b'}');
            let opens = matches!(line[0], b'{' | b'[');
            if opens && last != b'}' && last != b']' {
                if let Some(end) = balanced_end(rest) {
                    if end > line_len {
                        let bytes = trim(&rest[..end]);
                        let consumed = end + memchr::memchr(b'\n', &rest[end..]).unwrap_or(rest.len() - end);
                        self.multi_line = true;
                        self.advance(consumed);
                        return Some(Record { bytes, line: start_line });
                    }
                }
            }
            self.advance(line_len);
            return Some(Record { bytes: line, line: start_line });
        }
    }
}

impl Records<'_> {
    /// Moves past `len` bytes and the newline after them, counting lines.
    fn advance(&mut self, len: usize) {
        let end = (self.pos + len).min(self.input.len());
        if self.multi_line {
            self.line += memchr::memchr_iter(b'\n', &self.input[self.pos..end]).count();
            self.multi_line = false;
        }
        self.pos = end;
        if self.pos < self.input.len() {
            self.pos += 1; // the '\n'
            self.line += 1;
        }
    }
}

/// Offset just past the bracket that closes the value opening at `b[0]`, tracking strings.
/// `None` if the input ends first or a string contains a raw line break (not JSON).
fn balanced_end(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                loop {
                    // `get`: a backslash as the last byte leaves `i` past the end (found by fuzzing).
                    let j = memchr::memchr3(b'"', b'\\', b'\n', b.get(i..)?)? + i;
                    match b[j] {
                        b'\\' => i = j + 2,
                        b'\n' => return None,
                        _ => {
                            i = j;
                            break;
                        }
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One framed record, parsed just enough to know what it is.
pub enum Framed<'a> {
    /// A JSON object that is not an EventList: an event candidate.
    Object(super::RawObject<'a>),
    /// The raw items of an `EventList` (with its envelope) or a JSON array (no envelope).
    List(Vec<&'a str>, Option<super::RawObject<'a>>),
    /// Valid JSON that is neither an object nor a container of events (`[]`, `[[…]]`, `[1]`):
    /// one record, passed through unchanged.
    NotContainer(&'static str),
    Invalid(super::JsonError),
}

/// Why a JSON array is one record rather than a list of events.
pub const NOT_A_CONTAINER: &str =
    "not an audit event: a JSON array is read as a list of events only when it holds one or more objects";

/// Whether `items` can be a list of events: an array is unwrapped only when every item is a
/// JSON object (anything else would lose its brackets, and `[]` would vanish).
fn is_event_list(items: &[(usize, &str)]) -> bool {
    !items.is_empty() && items.iter().all(|(_, v)| v.starts_with('{'))
}

/// Classifies a record with a single parse of its top level.
pub fn frame(text: &str) -> Framed<'_> {
    frame_with(text, super::raw::parse_object)
}

/// [`frame`] with the given [`super::raw::parse_object`] (the pipeline's lends its buffers,
/// see [`super::buffers`]).
pub(crate) fn frame_with<'a>(
    text: &'a str,
    parse_object: impl FnOnce(&'a str) -> Result<super::RawObject<'a>, super::JsonError>,
) -> Framed<'a> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match super::raw::parse_array(text) {
            Ok(items) if is_event_list(&items) => Framed::List(items.into_iter().map(|(_, v)| v).collect(), None),
            Ok(_) => Framed::NotContainer(NOT_A_CONTAINER),
            Err(e) => Framed::Invalid(e),
        };
    }
    let obj = match parse_object(text) {
        Ok(obj) => obj,
        Err(e) => return Framed::Invalid(e),
    };
    if obj.raw("kind") == Some("\"EventList\"") {
        if let Some(items) = obj.raw("items") {
            if items == "null" {
                return Framed::List(Vec::new(), Some(obj));
            }
            if let Ok(items) = super::raw::parse_array(items) {
                // An empty EventList is a list of no events; items that are not objects make it one record.
                if items.is_empty() || is_event_list(&items) {
                    return Framed::List(items.into_iter().map(|(_, v)| v).collect(), Some(obj));
                }
            }
        }
    }
    Framed::Object(obj)
}

/// The raw items of an `EventList` object or a JSON array; `None` for anything else.
pub fn list_items(bytes: &[u8]) -> Option<Vec<&str>> {
    match frame(std::str::from_utf8(bytes).ok()?) {
        Framed::List(items, _) => Some(items),
        _ => None,
    }
}

/// Where a record is in an input: the line it starts on and, for an event inside an EventList,
/// a JSON array or a managed-cluster wrapper on that line, its index. What [`for_each_event`],
/// the pipeline's per-record reports and `explain` use to point at a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    /// 1-based line where the record starts in the input.
    pub line: usize,
    /// 0-based index of the event inside a list on that line; `None` for a record of its own.
    pub item: Option<usize>,
}

impl std::fmt::Display for RecordPos {
    /// `12` or `12 item 3` (after the input's name: `audit.log:12 item 3`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.line)?;
        match self.item {
            Some(i) => write!(f, " item {i}"),
            None => Ok(()),
        }
    }
}

/// What [`for_each_event`] calls: where the record is, and the event or why it is not one.
pub type EventSink<'f> = dyn FnMut(RecordPos, Result<super::Event<'_>, EventError>) + 'f;

/// Frames `input` and parses every event in it, calling `f(position, event or error)`.
/// Managed-cluster wrappers (EKS, GKE, AKS; see [`super::managed`]) are unwrapped: their events
/// are the items of their line. For read-only commands (explain, query, report); the pipeline
/// has its own loop.
pub fn for_each_event(input: &[u8], f: &mut EventSink) {
    use super::managed;
    if managed::compress::is_gzip(input) {
        managed_events(1, f, |l, g| {
            managed::decode_gzip_input(input, l, g);
            true
        });
        return;
    }
    for record in Records::new(input) {
        let line = record.line;
        let text = match std::str::from_utf8(record.bytes) {
            Ok(t) => t,
            Err(e) => {
                if !managed_events(line, f, |l, g| managed::decode_loose(record.bytes, l, g)) {
                    f(RecordPos { line, item: None }, Err(not_utf8(e)));
                }
                continue;
            }
        };
        let object = |obj: super::RawObject<'_>, item: Option<usize>, f: &mut EventSink| match managed::wrapper_of(&obj)
        {
            Some(w) => {
                managed_events(line, f, |l, g| {
                    managed::decode_wrapper(w, &obj, l, g);
                    true
                });
            }
            None => f(RecordPos { line, item }, super::Event::from_object(obj)),
        };
        match frame(text) {
            Framed::List(items, _) => {
                for (i, item) in items.into_iter().enumerate() {
                    match super::raw::parse_object(item) {
                        Ok(obj) => object(obj, Some(i), f),
                        Err(e) => f(RecordPos { line, item: Some(i) }, Err(EventError::from(e))),
                    }
                }
            }
            Framed::Object(obj) => object(obj, None, f),
            Framed::NotContainer(why) => f(RecordPos { line, item: None }, Err(EventError::from(why))),
            Framed::Invalid(e) => {
                if !managed_events(line, f, |l, g| managed::decode_loose(record.bytes, l, g)) {
                    f(RecordPos { line, item: None }, Err(EventError::from(e)));
                }
            }
        }
    }
}

/// A record whose bytes are not UTF-8.
fn not_utf8(e: std::str::Utf8Error) -> EventError {
    EventError::from(format!("not UTF-8: invalid byte at offset {}", e.valid_up_to()))
}

/// The events of a managed-cluster record, each an item of `line`. Returns `decode`'s answer.
fn managed_events(
    line: usize,
    f: &mut EventSink,
    decode: impl FnOnce(super::managed::DecodeLimits, &mut dyn FnMut(super::managed::Piece<'_>)) -> bool,
) -> bool {
    use super::managed::Piece;
    let limits = super::managed::DecodeLimits { max_decoded_bytes: crate::config::Limits::default().max_batch_bytes };
    let mut item = 0;
    decode(limits, &mut |piece| {
        let parsed = match piece {
            Piece::Event { text, .. } => match std::str::from_utf8(text) {
                Ok(t) => super::Event::parse(t),
                Err(e) => Err(not_utf8(e)),
            },
            Piece::Bad { reason, .. } => Err(EventError::from(reason)),
            Piece::NotAudit { what, .. } => Err(EventError::from(what)),
            Piece::Control => return,
        };
        f(RecordPos { line, item: Some(item) }, parsed);
        item += 1;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<(String, usize)> {
        Records::new(input.as_bytes()).map(|r| (String::from_utf8_lossy(r.bytes).into_owned(), r.line)).collect()
    }

    #[test]
    fn json_lines_and_blank_lines() {
        assert_eq!(texts("{\"a\":1}\n\n  \n{\"b\":2}\r\n"), [("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 4)]);
    }

    #[test]
    fn pretty_printed_documents_span_lines() {
        let input = "{\n  \"a\": [\n    1\n  ]\n}\n{\"b\":2}\n";
        assert_eq!(texts(input), [("{\n  \"a\": [\n    1\n  ]\n}".into(), 1), ("{\"b\":2}".into(), 6)]);
    }

    #[test]
    fn truncated_line_does_not_swallow_the_next() {
        let input = "{\"a\":{\"b\":1\n{\"c\":2}\n{\"d\":\"x\n{\"e\":3}";
        let got = texts(input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1], ("{\"c\":2}".into(), 2));
        assert_eq!(got[3], ("{\"e\":3}".into(), 4));
    }

    #[test]
    fn only_arrays_of_objects_are_lists() {
        for text in
            ["[]", "[[{\"kind\":\"Event\"}]]", "[1,2]", "[{\"a\":1},2]", "{\"kind\":\"EventList\",\"items\":[1]}"]
        {
            assert!(matches!(frame(text), Framed::NotContainer(_) | Framed::Object(_)), "{text}");
            assert!(list_items(text.as_bytes()).is_none(), "{text}");
        }
        assert!(matches!(frame("[{\"a\":1},{}]"), Framed::List(items, None) if items.len() == 2));
        assert!(
            matches!(frame("{\"kind\":\"EventList\",\"items\":[]}"), Framed::List(items, Some(_)) if items.is_empty())
        );
    }
}
