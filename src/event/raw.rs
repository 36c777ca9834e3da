//! Raw JSON access without building a tree: the members of an object as byte offsets into the
//! input (keys and values read through the [`RawObject`]), the items of an array as slices with
//! their offsets, so edits can be spliced into the original bytes. serde_json validates
//! everything it skips, so a value that scans here is valid JSON.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Where output bytes go: a `String` (text only; bytes that are not UTF-8 are written lossily)
/// or a `Vec<u8>` (exact, so a record that is not UTF-8 passes through untouched). Everything
/// the pipeline writes (events, the enrichment, JSON strings) is written through it, the same
/// way into either: no output is special-cased.
pub trait OutBuf {
    /// Appends text.
    fn put(&mut self, s: &str);
    /// Appends bytes (a `String` writes bytes that are not UTF-8 lossily).
    fn put_raw(&mut self, b: &[u8]);
    /// Bytes written so far.
    fn out_len(&self) -> usize;
    /// Appends one character.
    fn put_char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.put(c.encode_utf8(&mut buf));
    }
    /// Makes room for at least `additional` more bytes (a hint; nothing by default).
    fn reserve_out(&mut self, additional: usize) {
        let _ = additional;
    }
}

// `put` and `put_char` are the buffer's own push, inlined as the buffer's is (called out of
// line, the enrichment's ~20 pushes cost Fluent Bit's interpreter ~480 instructions a record).
impl OutBuf for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
    fn put_raw(&mut self, b: &[u8]) {
        self.push_str(&String::from_utf8_lossy(b));
    }
    fn out_len(&self) -> usize {
        self.len()
    }
    #[inline]
    fn put_char(&mut self, c: char) {
        self.push(c);
    }
    #[inline]
    fn reserve_out(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

impl OutBuf for Vec<u8> {
    #[inline]
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    fn put_raw(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn out_len(&self) -> usize {
        self.len()
    }
    #[inline]
    fn put_char(&mut self, c: char) {
        if c.is_ascii() {
            self.push(c as u8);
        } else {
            self.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
        }
    }
    #[inline]
    fn reserve_out(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

/// A string decoded from JSON, borrowed from the input unless it contained escapes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CowStr<'a>(pub Cow<'a, str>);

impl<'a> From<Cow<'a, str>> for CowStr<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        CowStr(s)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A JSON string whose simple escapes (`\"`, `\\`, `\n`, ...) are decoded when first read, not
/// when the event is split: long escaped values (`authorization.k8s.io/reason`,
/// `responseStatus.message`) are rarely read, and decoding one costs an allocation and a walk.
/// Reads go through [`JsonStr::as_str`] (or `Deref`); it is never invalid (the split validated
/// it, and strings with `\u` escapes, which can be invalid, are decoded at once).
#[derive(Clone)]
pub struct JsonStr<'a>(Repr<'a>);

/// The two kinds of [`JsonStr`]. The cache is a thin pointer (`Box<Box<str>>`: two allocations
/// when an escaped value is first read), so a `JsonStr` is three words and `Option<JsonStr>`
/// four, as small as before the kinds were explicit: a `responseStatus` is moved with plain
/// loads and stores, not a per-byte `memory.copy`. (With a `Box<str>`, which the cell hides the
/// niche of, the kind takes the `&str`'s niche and `Option<JsonStr>` grows a word: 69 more fuel
/// per record on the sample log.)
#[derive(Clone)]
enum Repr<'a> {
    /// The value.
    Plain(&'a str),
    /// A valid string's JSON text, quotes included, decoded into `decoded` on the first read.
    Escaped { json: &'a str, decoded: std::cell::OnceCell<Box<Box<str>>> },
}
const _: () = assert!(std::mem::size_of::<Option<JsonStr<'static>>>() == 4 * std::mem::size_of::<usize>());

// The cache holds nothing or the whole decoded value (`OnceCell` sets it at once, after the
// decoding), so a `JsonStr` seen after a panic is never half-updated: unwind-safe, as the
// `&str` it stands for. Hosts that catch panics around a `Pipeline` (the npm package's
// wasm-bindgen exports need `RefUnwindSafe`) keep working.
impl std::panic::RefUnwindSafe for JsonStr<'_> {}
impl std::panic::UnwindSafe for JsonStr<'_> {}

impl<'a> JsonStr<'a> {
    /// A value, borrowed as it is.
    #[inline(always)]
    pub fn plain(text: &'a str) -> JsonStr<'a> {
        JsonStr(Repr::Plain(text))
    }

    /// The JSON text of a valid string whose escapes are all simple ones (not `\u`), quotes
    /// included; decoded when read.
    #[inline(always)]
    pub(crate) fn escaped(json: &'a str) -> JsonStr<'a> {
        JsonStr(Repr::Escaped { json, decoded: std::cell::OnceCell::new() })
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Plain(text) => text,
            // The text was validated by the split: the fallback is never taken.
            Repr::Escaped { json, decoded } => decoded.get_or_init(|| {
                Box::new(decode_str(json).map(|s| s.into_owned().into_boxed_str()).unwrap_or_default())
            }),
        }
    }
}

impl Default for JsonStr<'_> {
    fn default() -> Self {
        JsonStr::plain("")
    }
}

impl<'a> From<Cow<'a, str>> for JsonStr<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        match s {
            Cow::Borrowed(text) => JsonStr::plain(text),
            // Decoded already (`\u` escapes, serde's path): the JSON text (`""`) is never read.
            Cow::Owned(s) => JsonStr(Repr::Escaped {
                json: "\"\"",
                decoded: std::cell::OnceCell::from(Box::new(s.into_boxed_str())),
            }),
        }
    }
}

impl<'a> From<&'a str> for JsonStr<'a> {
    fn from(text: &'a str) -> Self {
        JsonStr::plain(text)
    }
}

impl std::ops::Deref for JsonStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for JsonStr<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for JsonStr<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for JsonStr<'_> {}

impl PartialEq<str> for JsonStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JsonStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CowStr::deserialize(d).map(|s| JsonStr::from(s.0))
    }
}

/// One member of a JSON object, located in the object's text by offsets: read its key and value
/// through the object ([`RawObject::key`], [`RawObject::value`]). Offsets only, no slices and
/// nothing to drop: the scanner stores five numbers per member (an interpreter pays per
/// instruction, and a slice costs character-boundary checks), and a list of members is
/// emptied for the next record without a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Offset of the key's opening quote.
    pub key_start: usize,
    /// The decoded key's length in bytes (compared before any byte is): without escapes the key
    /// is `text[key_start + 1..key_start + 1 + key_len]`.
    key_len: usize,
    /// Offset of the raw value.
    pub start: usize,
    /// Byte offset just after the value in the object's text.
    pub end: usize,
    /// [`PLAIN`] and [`ESCAPED_KEY`]: one byte, so that the scanner stores it at once.
    flags: u8,
}

/// [`Member::plain`].
const PLAIN: u8 = 1;

/// The key has escapes: decoded in [`RawObject::escaped_keys`] (only serde's split makes those).
const ESCAPED_KEY: u8 = 2;

impl Member {
    /// The member whose key, without escapes, is `text[key_start + 1..key_end]`, its value
    /// `text[start..end]`.
    #[inline(always)]
    pub(crate) fn new(key_start: usize, key_end: usize, start: usize, end: usize, plain: bool) -> Member {
        Member { key_start, key_len: key_end.wrapping_sub(key_start + 1), start, end, flags: u8::from(plain) * PLAIN }
    }

    /// The value is a JSON string without escapes (its content is `value[1..value.len() - 1]`),
    /// as the scanner found on its way; `false` also when nobody looked (decode it).
    #[inline(always)]
    pub fn plain(&self) -> bool {
        self.flags & PLAIN != 0
    }

    #[inline(always)]
    fn escaped_key(&self) -> bool {
        self.flags & ESCAPED_KEY != 0
    }

    /// `text[key_start + 1..]` up to the key's closing quote (for a key without escapes).
    #[inline(always)]
    fn key_range(&self) -> (usize, usize) {
        let from = self.key_start + 1;
        (from, from.wrapping_add(self.key_len))
    }
}

/// The members holding an event's request and response bodies (the last of duplicates, as
/// [`RawObject::get`] reads them), as the split found them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bodies {
    pub request: Option<BodyAt>,
    pub response: Option<BodyAt>,
}

/// A body member: its index, and whether the split found no `managedFields` key in it (so
/// omitting managedFields cannot change it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyAt {
    pub index: usize,
    pub clean: bool,
}

/// A JSON object split into its members.
#[derive(Debug, Clone)]
pub struct RawObject<'a> {
    /// The object's text, exactly as in the input.
    pub text: &'a str,
    /// The members, in input order.
    pub members: Vec<Member>,
    /// Whether `text` holds a raw line break (a pretty-printed event), when the split already
    /// found out; `None`: ask [`has_line_break`].
    pub line_break: Option<bool>,
    /// The members are joined by bare commas (`text[end]` is `,` and the next key's quote
    /// follows it), as the scanner saw on its way: the writer copies them as one slice without
    /// checking. `false` also when nobody looked.
    pub(crate) joined: bool,
    /// The members an event's decisions read, decoded by the scanner while it validated them
    /// (read by [`super::Event::from_object`]): at most one, empty when the scanner did not
    /// run. A `Vec` rather than a `Box` so that its allocation can serve the next record
    /// ([`super::buffers`]).
    pub(crate) decoded: Vec<super::decode::Decoded<'a>>,
    /// The keys with escapes, decoded, by their member's `key_start` (serde's split only:
    /// rare, and kept out of [`Member`] so that members need no dropping).
    pub(crate) escaped_keys: Vec<(usize, String)>,
    /// Where the split found the request and response bodies; `None` when it did not look
    /// (the serde path: ask the members).
    pub(crate) bodies: Option<Bodies>,
}

impl<'a> RawObject<'a> {
    /// An object of `text` without members (`{}`).
    pub fn empty(text: &'a str) -> RawObject<'a> {
        RawObject {
            text,
            members: Vec::new(),
            line_break: None,
            joined: false,
            decoded: Vec::new(),
            escaped_keys: Vec::new(),
            bodies: None,
        }
    }

    /// The key of member `m`, decoded.
    #[inline]
    pub fn key(&self, m: &Member) -> &str {
        if m.escaped_key() {
            return self.escaped_key(m);
        }
        let (from, to) = m.key_range();
        super::scan::slice(self.text, from, to).unwrap_or_default()
    }

    /// The key of member `m`, decoded: borrowed from the text unless it had escapes.
    pub fn key_cow(&self, m: &Member) -> Cow<'a, str> {
        if m.escaped_key() {
            return Cow::Owned(self.escaped_key(m).to_string());
        }
        let (from, to) = m.key_range();
        Cow::Borrowed(super::scan::slice(self.text, from, to).unwrap_or_default())
    }

    /// The bytes of [`RawObject::key`], without the character-boundary checks of a `str` slice
    /// (for comparing).
    #[inline(always)]
    pub fn key_bytes(&self, m: &Member) -> &[u8] {
        if m.escaped_key() {
            return self.escaped_key(m).as_bytes();
        }
        let (from, to) = m.key_range();
        self.text.as_bytes().get(from..to).unwrap_or_default()
    }

    /// Whether member `m` is named `key` (lengths first, bytes compared only when as long).
    #[inline(always)]
    pub fn key_is(&self, m: &Member, key: &str) -> bool {
        if m.key_len != key.len() {
            return false;
        }
        if m.escaped_key() {
            return self.escaped_key(m) == key;
        }
        let (from, to) = m.key_range();
        self.text.as_bytes().get(from..to) == Some(key.as_bytes())
    }

    /// Whether the raw value of member `m` is exactly `raw` (compared as bytes).
    #[inline(always)]
    pub fn value_is(&self, m: &Member, raw: &str) -> bool {
        m.end.wrapping_sub(m.start) == raw.len() && self.text.as_bytes().get(m.start..m.end) == Some(raw.as_bytes())
    }

    #[cold]
    fn escaped_key(&self, m: &Member) -> &str {
        self.escaped_keys.iter().find(|(at, _)| *at == m.key_start).map_or("", |(_, k)| k.as_str())
    }

    /// The raw value text of member `m`.
    #[inline]
    pub fn value(&self, m: &Member) -> &'a str {
        super::scan::slice(self.text, m.start, m.end).unwrap_or_default()
    }

    /// The last member named `key` (Go's decoders let the last duplicate win).
    pub fn get(&self, key: &str) -> Option<&Member> {
        self.members.iter().rev().find(|m| self.key_is(m, key))
    }

    /// The raw value of the last member named `key` (see [`RawObject::get`]).
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.get(key).map(|m| self.value(m))
    }

    /// The index of the last member named `key` (the one JSON decoders use).
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.members.iter().rposition(|m| self.key_is(m, key))
    }

    /// Rebuilds the object: members for which `edit(index, key, raw value)` returns `Keep`
    /// are copied as they are, `Replace` swaps the value text, `Remove` leaves the member out;
    /// `append` members follow.
    pub fn rebuild<O: OutBuf + ?Sized>(
        &self,
        out: &mut O,
        mut edit: impl FnMut(usize, &str, &'a str) -> Edit,
        append: &[(&str, &str)],
    ) {
        out.put("{");
        let mut first = true;
        for (i, m) in self.members.iter().enumerate() {
            let value = self.value(m);
            let replacement = match edit(i, self.key(m), value) {
                Edit::Remove => continue,
                Edit::Keep => None,
                Edit::Replace(v) => Some(v),
            };
            if !first {
                out.put(",");
            }
            first = false;
            out.put(self.text.get(m.key_start..m.start).unwrap_or_default());
            match replacement {
                Some(v) => out.put(&v),
                None => out.put(value),
            }
        }
        for (key, value) in append {
            if !first {
                out.put(",");
            }
            first = false;
            let mut k = String::with_capacity(key.len() + 2);
            write_json_str(&mut k, key);
            out.put(&k);
            out.put(":");
            out.put(value);
        }
        out.put("}");
    }
}

/// What [`RawObject::rebuild`] does with a member.
pub enum Edit {
    /// Written as it is.
    Keep,
    /// Left out.
    Remove,
    /// Written with this JSON text as its value.
    Replace(String),
}

/// Why a text is not the JSON object expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What is wrong.
    pub message: String,
    /// 1-based line within the record; 0 when unknown.
    pub line: usize,
    /// 1-based column within the line; 0 when unknown.
    pub column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{} at line {} column {}", self.message, self.line, self.column)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        let full = e.to_string();
        // serde_json appends " at line L column C"; keep the message without it.
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        JsonError { message, line: e.line(), column: e.column() }
    }
}

fn offset_in(outer: &str, inner: &str) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

/// Splits a JSON object into members. Fails on anything that is not exactly one valid JSON object
/// (surrounding whitespace allowed).
pub fn parse_object(text: &str) -> Result<RawObject<'_>, JsonError> {
    match super::scan::scan_object(text) {
        Some(obj) => Ok(obj),
        None => parse_object_with_serde(text),
    }
}

/// [`parse_object`] by serde_json alone: what the fast scanner declines (and every error).
pub(crate) fn parse_object_with_serde(text: &str) -> Result<RawObject<'_>, JsonError> {
    struct Members<'a>(&'a str);
    impl<'de> Visitor<'de> for Members<'de> {
        type Value = (Vec<Member>, Vec<(usize, String)>);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(24);
            let mut escaped_keys = Vec::new();
            let mut prev_end = None;
            while let Some(key) = map.next_key::<CowStr<'de>>()? {
                let value: &'de RawValue = map.next_value()?;
                let raw = value.get();
                let start = offset_in(self.0, raw);
                let end = start + raw.len();
                // The key's opening quote is the first '"' after the previous value (or the '{').
                let from = prev_end.unwrap_or(0);
                let key_start = memchr::memchr(b'"', &self.0.as_bytes()[from..start]).map_or(start, |i| from + i);
                prev_end = Some(end);
                let key_len = key.0.len();
                // Without escapes serde_json lends the key's own text, just after `key_start`.
                let escaped_key = !matches!(key.0, Cow::Borrowed(k) if offset_in(self.0, k) == key_start + 1);
                if escaped_key {
                    escaped_keys.push((key_start, key.0.into_owned()));
                }
                let flags = if escaped_key { ESCAPED_KEY } else { 0 };
                out.push(Member { key_start, key_len, start, end, flags });
            }
            Ok((out, escaped_keys))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let (members, escaped_keys) = de.deserialize_map(Members(text))?;
    de.end()?;
    Ok(RawObject { text, members, line_break: None, joined: false, decoded: Vec::new(), escaped_keys, bodies: None })
}

/// Splits a JSON array into its raw items with their offsets.
pub fn parse_array(text: &str) -> Result<Vec<(usize, &str)>, JsonError> {
    struct Items<'a>(&'a str);
    impl<'de> Visitor<'de> for Items<'de> {
        type Value = Vec<(usize, &'de str)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<&'de RawValue>()? {
                out.push((offset_in(self.0, v.get()), v.get()));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let items = de.deserialize_seq(Items(text))?;
    de.end()?;
    Ok(items)
}

/// Decodes a raw JSON value into `T`, borrowing strings from it where possible.
pub fn decode<'a, T: serde::Deserialize<'a>>(raw: &'a str) -> Result<T, JsonError> {
    Ok(serde_json::from_str(raw)?)
}

/// Decodes a raw JSON string value.
pub fn decode_str(raw: &str) -> Result<Cow<'_, str>, JsonError> {
    if let Some(decoded) = unescape(raw) {
        return Ok(decoded);
    }
    let s: CowStr<'_> = decode(raw)?;
    Ok(s.0)
}

/// `raw` decoded when it is exactly one valid JSON string: borrowed without escapes, else in
/// one pass and one allocation, where serde_json allocates twice and costs several times the
/// instructions in an interpreter (messages such as `User \"bob\" cannot list pods`, and Go's
/// `\u003c` for `<`, are common). `None` for anything else (a lone surrogate, a raw control
/// character, a stray quote, whitespace around it), which serde_json then decodes or rejects.
fn unescape(raw: &str) -> Option<Cow<'_, str>> {
    use super::scan::slice;
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    let mut out = String::new();
    let (mut from, mut i) = (0, 0);
    loop {
        // Plain text: eight bytes at a time to the next special byte (then exactly on it).
        while let Some(word) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            let special = escapes_in_word(u64::from_le_bytes(*word));
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else { break };
        if !ESCAPED[usize::from(c)] {
            i += 1; // the last bytes, fewer than eight
            continue;
        }
        if c != b'\\' {
            return None; // a control character or a quote: invalid, serde_json says why
        }
        let (unescaped, len) = match *b.get(i + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => unicode_escape(b.get(i..)?)?,
            _ => return None,
        };
        if out.capacity() == 0 {
            out.reserve(inner.len());
        }
        // `i` and `from` sit on ASCII bytes, so on character boundaries.
        out.push_str(slice(inner, from, i)?);
        out.push(unescaped);
        i += len;
        from = i;
    }
    if from == 0 {
        return Some(Cow::Borrowed(inner));
    }
    out.push_str(slice(inner, from, b.len())?);
    Some(Cow::Owned(out))
}

/// The character of the `\uXXXX` escape at the start of `b` (two of them for a surrogate pair)
/// and the bytes it takes; `None` for a lone surrogate, which serde_json rejects.
fn unicode_escape(b: &[u8]) -> Option<(char, usize)> {
    let hex = |at: usize| -> Option<u32> {
        let digits = b.get(at..at + 4)?;
        digits.iter().try_fold(0, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
    };
    let first = hex(2)?;
    if !(0xD800..0xE000).contains(&first) {
        return Some((char::from_u32(first)?, 6));
    }
    if first >= 0xDC00 || b.get(6..8)? != b"\\u" {
        return None;
    }
    let second = hex(8)?;
    if !(0xDC00..0xE000).contains(&second) {
        return None;
    }
    Some((char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))?, 12))
}

/// Appends `s` as a JSON string literal: in one copy when nothing needs escaping (the common
/// case: an interpreter pays per byte examined, and this looks at eight at a time).
pub fn write_json_str<O: OutBuf + ?Sized>(out: &mut O, s: &str) {
    if needs_escape(s) {
        return escape_each(out, s);
    }
    out.reserve_out(s.len() + 2);
    out.put_char('"');
    out.put(s);
    out.put_char('"');
}

/// Appends `items` as a JSON array of strings.
pub fn write_json_str_array<S: AsRef<str>>(out: &mut String, items: impl IntoIterator<Item = S>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, item.as_ref());
    }
    out.push(']');
}

/// Whether `s` holds a byte that a JSON string escapes (a control character, `"` or `\`).
/// Eight bytes at a time with one test per word (the last word overlaps the one before it),
/// a table below eight bytes: an interpreter pays per instruction
/// (`needs_escape_agrees_with_the_byte_loop`).
pub(crate) fn needs_escape(s: &str) -> bool {
    let escaped = |x: u64| escapes_in_word(x) != 0;
    let b = s.as_bytes();
    let word = |at: usize| -> u64 {
        let mut w = [0u8; 8];
        if let Some(bytes) = b.get(at..at + 8) {
            w.copy_from_slice(bytes);
        }
        u64::from_le_bytes(w)
    };
    if b.len() < 8 {
        return b.iter().any(|&c| ESCAPED[usize::from(c)]);
    }
    let mut at = 0;
    while at + 8 < b.len() {
        if escaped(word(at)) {
            return true;
        }
        at += 8;
    }
    escaped(word(b.len() - 8))
}

/// The high bit of each of the eight bytes of `x` (little-endian) that is below 0x20, `"` or
/// `\\`: the lowest one set is exact, and the mask is 0 exactly when there is none (the borrows
/// these can make only ever follow a byte that is one, and flag only bytes above it).
#[inline(always)]
fn escapes_in_word(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(ONES * 0x20);
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    (below_space | quote.wrapping_sub(ONES) | backslash.wrapping_sub(ONES)) & !x & HIGH
}

/// The bytes a JSON string escapes.
static ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// [`write_json_str`] byte by byte.
fn escape_each<O: OutBuf + ?Sized>(out: &mut O, s: &str) {
    out.put_char('"');
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.put(&s[last..i]);
        match esc {
            Some(e) => out.put(e),
            None => {
                out.put("\\u00");
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.put_char(HEX[(b >> 4) as usize] as char);
                out.put_char(HEX[(b & 15) as usize] as char);
            }
        }
        last = i + 1;
    }
    out.put(&s[last..]);
    out.put_char('"');
}

/// Copies valid JSON text without insignificant whitespace (for multi-line input written as JSON lines).
pub fn compact_into<O: OutBuf + ?Sized>(text: &str, out: &mut O) {
    let mut run_start = 0;
    for (i, b) in outside_strings(text) {
        if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.put(text.get(run_start..i).unwrap_or_default());
            run_start = i + 1;
        }
    }
    out.put(text.get(run_start..).unwrap_or_default());
}

/// Each byte of JSON `text` after which the text is outside every string (not a string's
/// opening quote or content; its closing quote is), with its offset.
pub(crate) fn outside_strings(text: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_str, mut escaped) = (false, false);
    text.bytes().enumerate().filter(move |&(_, b)| {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
                return true;
            }
            false
        } else {
            in_str = b == b'"';
            !in_str
        }
    })
}

/// Whether a JSON text contains a raw line break (outside strings it's whitespace; inside, JSON forbids it).
pub fn has_line_break(text: &str) -> bool {
    memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some()
}

impl RawObject<'_> {
    /// Whether the object's text holds a raw line break (see [`RawObject::line_break`]).
    pub fn has_line_break(&self) -> bool {
        self.line_break.unwrap_or_else(|| has_line_break(self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_are_borrowed_escaped_ones_decoded_and_the_rest_left_to_serde() {
        assert_eq!(unescape(r#""abc""#), Some(Cow::Borrowed("abc")));
        assert_eq!(unescape(r#""""#), Some(Cow::Borrowed("")));
        assert_eq!(unescape(r#"" a ! b !! c  ""#), Some(Cow::Borrowed(" a ! b !! c  ")));
        assert!(matches!(unescape(r#""a\"b""#), Some(Cow::Owned(s)) if s == "a\"b"));
        assert!(matches!(unescape(r#""a\u0062\u00e9\ud83d\ude00""#), Some(Cow::Owned(s)) if s == "abé😀"));
        for raw in [r#""a"b""#, r#""a" "#, "\"a\nb\"", "\"a\u{1}\"", r#""a"#, "1", "null", "\"tab\t\"", r#""\ud800""#] {
            assert_eq!(unescape(raw), None, "{raw}");
        }
    }

    /// Random fragments of JSON string syntax, valid and not: every escape, `\u` escapes
    /// (paired, lone and mismatched surrogates, short or bad hex), raw control characters,
    /// stray quotes and backslashes.
    const STRING_PIECES: &[&str] = &[
        "a",
        "bob",
        " ",
        "é",
        "0123456789 abcdefghijklm",
        "kubectl.kubernetes.io/",
        "\u{2028}",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\ud800",
        "\\udc00",
        "\\ud83d\\u0041",
        "\\u00E9",
        "\\u003c",
        "\\u12",
        "\\uzzzz",
        "\\x",
        "\\",
        "\"",
        "\n",
        "\u{0}",
        "\u{1f}",
        "\u{7f}",
    ];

    /// An opening quote and up to 11 of [`STRING_PIECES`] (the caller ends the string).
    fn random_string_start(rng: &mut crate::test_rng::XorShift) -> String {
        let mut raw = String::from("\"");
        for _ in 0..rng.below(12) {
            raw.push_str(STRING_PIECES[rng.below(STRING_PIECES.len() as u64) as usize]);
        }
        raw
    }

    #[test]
    fn decode_str_agrees_with_serde_json_on_every_string_and_error() {
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut errors) = (0, 0);
        for _ in 0..100_000 {
            let mut raw = random_string_start(&mut rng);
            match rng.below(10) {
                0 => {}                   // unterminated
                1 => raw.push_str("\" "), // trailing whitespace
                _ => raw.push('"'),
            }
            let ours = decode_str(&raw).map_err(|e| e.to_string());
            let serde = decode::<CowStr<'_>>(&raw).map(|s| s.0).map_err(|e| e.to_string());
            assert_eq!(ours, serde, "{raw:?}");
            fast += usize::from(matches!(unescape(&raw), Some(Cow::Owned(_))));
            errors += usize::from(serde.is_err());
        }
        // Both paths and the errors were exercised.
        assert!(fast > 10_000 && errors > 10_000, "{fast} fast, {errors} errors");
    }

    #[test]
    fn json_strs_read_as_serde_json_decodes_them() {
        let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
        let (mut lazy, mut valid) = (0, 0);
        for _ in 0..100_000 {
            let mut raw = random_string_start(&mut rng);
            raw.push('"');
            let serde = decode::<CowStr<'_>>(&raw).ok().map(|s| s.0);
            let ours = super::super::scan::json_str_at(&raw, 0).filter(|&(_, end)| end == raw.len());
            // Accepted exactly when valid; read (also a clone made before the first read, and
            // through Debug and Deref), the value serde_json decodes.
            let Some((s, _)) = ours else {
                assert!(serde.is_none(), "{raw:?}");
                continue;
            };
            let serde = serde.unwrap_or_default();
            lazy += usize::from(matches!(&s.0, Repr::Escaped { decoded, .. } if decoded.get().is_none()));
            valid += 1;
            let copy = s.clone();
            assert_eq!(format!("{s:?}"), format!("{serde:?}"), "{raw:?}");
            assert_eq!((s.as_str(), &*copy, s.as_ref()), (&*serde, &*serde, &*serde), "{raw:?}");
            assert_eq!(s, JsonStr::from(Cow::Owned(serde.to_string())));
        }
        // A value that looks like JSON text is still the value, borrowed (not copied).
        for v in ["\"x\"", "\"", "\"\"", "\"a\\nb\"", "", "a\"b"] {
            for s in [JsonStr::plain(v), JsonStr::from(v), JsonStr::from(Cow::Borrowed(v))] {
                assert!(matches!(s.0, Repr::Plain(_)), "{v:?}");
                assert_eq!((s.as_str(), s.clone().as_str(), s.as_str().as_ptr()), (v, v, v.as_ptr()));
            }
        }
        // Both kinds (and decoded ones) were exercised.
        assert!(lazy > 5_000 && valid > lazy + 5_000, "{lazy} lazy of {valid}");
    }

    #[test]
    fn needs_escape_agrees_with_the_byte_loop() {
        let slow = |s: &str| s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        // Bytes around every boundary the word trick tests, in every position of a word.
        let alphabet =
            ['a', ' ', '!', '"', '#', '\\', ']', '\u{1f}', '\u{0}', '\n', '\u{7f}', 'é', '\u{2028}', '0', '~'];
        let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut escaped = 0;
        for _ in 0..200_000 {
            let len = rng.below(40) as usize;
            let mut s: String =
                "abcdefghij-:/.0123456789".chars().cycle().skip(rng.below(24) as usize).take(len).collect();
            // Mostly plain text with at most a couple of other characters somewhere.
            for _ in 0..rng.below(3) {
                if s.is_empty() {
                    break;
                }
                let at = s.char_indices().nth(rng.below(s.chars().count() as u64) as usize).map_or(0, |(i, _)| i);
                s.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]);
            }
            escaped += usize::from(slow(&s));
            assert_eq!(needs_escape(&s), slow(&s), "{s:?}");
            let mut fast = String::new();
            write_json_str(&mut fast, &s);
            let mut each = String::new();
            escape_each(&mut each, &s);
            assert_eq!(fast, each);
        }
        assert!(escaped > 20_000, "{escaped}");
        for b in 0..=255u8 {
            let s = String::from_utf8_lossy(&[b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b]).into_owned();
            assert_eq!(needs_escape(&s), slow(&s), "{b}");
            let s = String::from_utf8_lossy(&[b, b'x', b'x', b'x', b'x', b'x', b'x', b'x']).into_owned();
            assert_eq!(needs_escape(&s), slow(&s), "{b}");
            for len in 0..20 {
                for at in 0..len {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = b;
                    let s = String::from_utf8_lossy(&bytes).into_owned();
                    assert_eq!(needs_escape(&s), slow(&s), "{b} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn members_have_offsets() {
        let text = r#" { "a" : 1, "b\u0041":[1,2] ,"c":{"d":"e"} } "#;
        let obj = parse_object(text).unwrap();
        let keys: Vec<&str> = obj.members.iter().map(|m| obj.key(m)).collect();
        assert_eq!(keys, ["a", "bA", "c"]);
        assert!(matches!(obj.key_cow(&obj.members[0]), Cow::Borrowed(_)));
        assert!(matches!(obj.key_cow(&obj.members[1]), Cow::Owned(_)));
        assert_eq!(obj.key_bytes(&obj.members[1]), b"bA");
        assert_eq!(
            (obj.get("bA"), obj.index_of("bA"), obj.raw("c")),
            (Some(&obj.members[1]), Some(1), Some(r#"{"d":"e"}"#))
        );
        assert_eq!(&text[obj.members[1].start..obj.members[1].end], "[1,2]");
        assert_eq!(&text[obj.members[2].key_start..obj.members[2].start], "\"c\":");
    }

    /// serde_json's members of `text`, in order: (key, raw value).
    fn reference_members(text: &str) -> Vec<(String, String)> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v.get().to_string()));
                }
                Ok(out)
            }
        }
        serde_json::Deserializer::from_str(text).deserialize_map(V).unwrap()
    }

    #[test]
    fn members_read_through_the_object_are_serde_json_members() {
        // Generated events (the scanner's split) and keys only serde's split takes (escapes),
        // empty keys, duplicates, whitespace: every accessor answers as serde_json's members.
        let corpus = String::from_utf8(kaudit_testkit::corpus::generate(200, 17)).unwrap();
        let odd = [
            r#"{"a\u0062":1,"":"x","é":[1],"k\"q":{"z":null} , "a\u0062" : 2,"ab":3}"#,
            "{ \"a\" :\n \"b\" , \"\\n\":null,\"long key with spaces\":\"v\"}",
            r#"{"kind":"Event","kind":"x","\u006bind":"y"}"#,
            "{}",
        ];
        for text in corpus.lines().chain(odd) {
            let reference = reference_members(text);
            for obj in [parse_object(text).unwrap(), parse_object_with_serde(text).unwrap()] {
                let ours: Vec<(String, String)> =
                    obj.members.iter().map(|m| (obj.key(m).to_string(), obj.value(m).to_string())).collect();
                assert_eq!(ours, reference, "{text}");
                for (i, m) in obj.members.iter().enumerate() {
                    let key = obj.key(m);
                    assert_eq!(obj.key_bytes(m), key.as_bytes());
                    assert_eq!(obj.key_cow(m), key);
                    assert_eq!(obj.value(m), &text[m.start..m.end]);
                    assert!(obj.key_is(m, key) && !obj.key_is(m, &format!("{key}x")));
                    assert!(obj.value_is(m, obj.value(m)));
                    let last = reference.iter().rposition(|(k, _)| k == key);
                    assert_eq!(obj.index_of(key), last);
                    assert_eq!(obj.get(key), last.and_then(|l| obj.members.get(l)));
                    assert_eq!(obj.raw(key), last.map(|l| reference[l].1.as_str()));
                    assert!(last >= Some(i));
                }
            }
        }
    }

    #[test]
    fn rebuild_removes_and_appends() {
        let text = r#"{"a":1,"b":2,"c":3}"#;
        let obj = parse_object(text).unwrap();
        let mut out = String::new();
        obj.rebuild(&mut out, |i, _, _| if i < 2 { Edit::Remove } else { Edit::Keep }, &[("k", "{}")]);
        assert_eq!(out, r#"{"c":3,"k":{}}"#);
        out.clear();
        obj.rebuild(&mut out, |_, k, _| if k == "b" { Edit::Replace("\"x\"".into()) } else { Edit::Keep }, &[]);
        assert_eq!(out, r#"{"a":1,"b":"x","c":3}"#);
    }

    #[test]
    fn rejects_non_objects_and_trailing_text() {
        assert!(parse_object("[1]").is_err());
        assert!(parse_object("{\"a\":1} x").is_err());
        assert!(parse_object("{\"a\":tru}").is_err());
        let e = parse_object("{\"a\":\n  tru}").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn compaction_keeps_strings() {
        let mut out = String::new();
        compact_into("{\n  \"a b\": [1, 2],\n  \"c\": \"x \\\" y\"\n}", &mut out);
        assert_eq!(out, r#"{"a b":[1,2],"c":"x \" y"}"#);
        // An escaped backslash ends right before a closing quote; whitespace after it is cut.
        let mut out = String::new();
        compact_into("{\"a\" : \"b\\\\\" ,\t\"c\":[ \"d\\\" e\" ]\r\n}", &mut out);
        assert_eq!(out, r#"{"a":"b\\","c":["d\" e"]}"#);
    }

    #[test]
    fn escapes_strings() {
        let mut out = String::new();
        write_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
