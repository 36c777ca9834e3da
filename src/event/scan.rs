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
//!
//! Written for an interpreter, where every WASM instruction counts: the common case (compact
//! JSON, short strings) is tested first at each step, whitespace is skipped only when the next
//! byte is not already the expected one, and the byte that ends a string's 8-byte word scan is
//! taken from the word rather than loaded again.

use std::borrow::Cow;

use super::decode::{Decoded, Spare};
use super::raw::{Bodies, BodyAt, JsonStr, Member, RawObject};

/// Deeper nesting goes to serde_json (whose skipping is not recursive); this bounds the stack.
const MAX_DEPTH: u32 = 48;

/// The bytes of a string [`string_tail`] looks at first, with one range test.
const FIRST: usize = 32;

const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES << 7;

/// The high bit of each of the 8 bytes that is `\`, below `#` (0x23: control characters,
/// space, `!` and `"`) or above 0x7f; the lowest one set is exact (bytes above a match may be
/// flagged too). Space, `!` and non-ASCII bytes are false alarms the caller steps over: fewer
/// instructions per word than testing `"` on its own or leaving non-ASCII bytes out, and
/// strings in audit events have few spaces and fewer non-ASCII characters.
#[inline(always)]
fn special(chunk: u64) -> u64 {
    let below = chunk.wrapping_sub(ONES * 0x23);
    let slash = (chunk ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (below | slash | chunk) & HIGH
}

/// What whitespace the scanner skipped (passed along as `line_break`): [`SPACED`] any,
/// [`LINE_BREAK`] a line feed or carriage return (they can only be whitespace in valid JSON).
pub(super) type Ws = u8;

/// Some whitespace was skipped ([`Ws`]).
const SPACED: Ws = 1;

/// A line feed or carriage return was skipped ([`Ws`]).
const LINE_BREAK: Ws = 2;

/// Whitespace from `i`: the offset of the next other byte, noted in `line_break` ([`Ws`]).
/// Called only when the byte at `i` is not the one expected (compact JSON has no whitespace),
/// so compact JSON pays nothing for the notes.
#[inline(never)]
fn ws(b: &[u8], mut i: usize, line_break: &mut Ws) -> usize {
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\t' => *line_break |= SPACED,
            b'\n' | b'\r' => *line_break |= SPACED | LINE_BREAK,
            _ => break,
        }
        i += 1;
    }
    i
}

/// The offset and value of the first byte from `i` that is not whitespace.
#[inline(always)]
fn next(b: &[u8], i: usize, line_break: &mut Ws) -> Option<(usize, u8)> {
    match b.get(i) {
        Some(&c) if c > b' ' => Some((i, c)),
        _ => {
            let i = ws(b, i, line_break);
            Some((i, *b.get(i)?))
        }
    }
}

/// The byte at `*i`, after whitespace (`*i` moves past it): compact JSON (what Fluent Bit
/// hands over) pays one load and one test.
#[inline(always)]
fn byte_after_ws(b: &[u8], i: &mut usize, line_break: &mut Ws) -> Option<u8> {
    let c = *b.get(*i)?;
    if c > b' ' {
        return Some(c);
    }
    *i = ws(b, *i, line_break);
    b.get(*i).copied()
}

/// A string has escapes ([`string_tail`]'s flags).
pub(super) const ESCAPES: u8 = 1;
/// A string has `\u` escapes, which may pair surrogates wrongly (the other escapes are valid
/// once the string is).
pub(super) const U_ESCAPES: u8 = 2;

/// The rest of a string whose opening quote is at `b[i - 1]`: the offset after its closing
/// quote, and its escapes ([`ESCAPES`], [`U_ESCAPES`]; 0 for none).
///
/// Most strings in an event are short (keys, names: one or two words), so the cost per string
/// matters as much as the cost per word: the byte found is loaded once its offset is known.
#[inline(always)]
fn string_tail(b: &[u8], mut i: usize) -> Option<(usize, u8)> {
    // The first words on their own, with one range test: most strings (keys, names, values
    // of a few words) end in them.
    if let Some(words) = b.get(i..).and_then(<[u8]>::first_chunk::<FIRST>) {
        let mut skip = FIRST;
        for (k, word) in words.chunks_exact(8).enumerate() {
            let flags = special(u64::from_le_bytes(word.try_into().ok()?));
            if flags != 0 {
                skip = k * 8 + (flags.trailing_zeros() / 8) as usize;
                break;
            }
        }
        i += skip;
        if skip < FIRST && b.get(i) == Some(&b'"') {
            return Some((i + 1, 0));
        }
    }
    let mut escaped = 0;
    loop {
        // To the next `"`, `\`, control character (or space, `!`, non-ASCII): 8 bytes at a time, then
        // byte by byte for the input's last bytes.
        let mut words = b.get(i..)?.chunks_exact(8);
        for word in &mut words {
            let flags = special(u64::from_le_bytes(word.try_into().ok()?));
            if flags != 0 {
                i += (flags.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => {
                escaped |= ESCAPES;
                match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let hex = b.get(i + 2..i + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        escaped |= U_ESCAPES;
                        i += 6;
                    }
                    _ => return None,
                }
            }
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The string opening at `b[i]` (which must be `"`): the offset after its closing quote, and
/// its escapes ([`string_tail`]).
#[inline(always)]
fn string(b: &[u8], i: usize) -> Option<(usize, u8)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    string_tail(b, i + 1)
}

/// The rest of an object member from its key's opening quote at `b[i - 1]`: the key, the
/// colon and the whitespace after it. Answers the offset of the key's closing quote + 1, whether
/// the key has escapes, and the offset of the value (its first byte is there, not whitespace).
#[inline(always)]
fn key_tail(b: &[u8], i: usize, line_break: &mut Ws) -> Option<(usize, bool, usize)> {
    let (key_end, escapes) = string_tail(b, i)?;
    let escaped = escapes != 0;
    // Compact JSON: the colon, then the value's first byte.
    if let Some(&[b':', c]) = b.get(key_end..).and_then(<[u8]>::first_chunk::<2>) {
        if c > b' ' {
            return Some((key_end, escaped, key_end + 1));
        }
    }
    let mut at = key_end;
    if byte_after_ws(b, &mut at, line_break)? != b':' {
        return None;
    }
    at += 1;
    byte_after_ws(b, &mut at, line_break)?;
    Some((key_end, escaped, at))
}

/// An object member's key from `b[i]` (whitespace allowed before its opening quote), the colon
/// and the whitespace after it: the offset of the value.
#[inline(always)]
fn key(b: &[u8], mut i: usize, line_break: &mut Ws) -> Option<usize> {
    if byte_after_ws(b, &mut i, line_break)? != b'"' {
        return None;
    }
    let (_, _, start) = key_tail(b, i + 1, line_break)?;
    Some(start)
}

/// A JSON number at `b[i]` (for the decoders): the offset after it.
pub(super) fn number_at(b: &[u8], i: usize) -> Option<usize> {
    number(b, i)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` from `b[i]`: the offset after it.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    fn digits(b: &[u8], mut i: usize) -> Option<usize> {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    }
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i)?,
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// The literal `word` at `b[i]`: the offset after it.
#[inline(always)]
fn literal<const N: usize>(b: &[u8], i: usize, word: &[u8; N]) -> Option<usize> {
    (b.get(i..)?.first_chunk::<N>()? == word).then_some(i + N)
}

/// Validates the value starting at `b[i]` (no leading whitespace) and returns the offset after
/// it and, for a string, whether it has escapes. One loop with the open containers on a bit
/// stack, no recursion: in an interpreter the position stays in a local. Compact JSON takes
/// the shortest path: after a value one byte decides (`,`, or the container's end), after a
/// `,` in an object the key's opening quote is expected at once, after the key its colon.
fn value(b: &[u8], i: usize, line_break: &mut Ws) -> Option<(usize, bool)> {
    walk::<false>(b, i, line_break, &mut false)
}

/// [`value`] for a request or response body: also sets `managed` when the body may hold an
/// object member named `managedFields` (one is found, or whitespace before a key kept it from
/// looking), so that a policy omitting them need not search the body again when it holds none.
// Inlined only where the module is interpreted: Fluent Bit's, the one WASM build without
// `simd128` (WAMR has no SIMD), where a call costs more than it saves (189 instructions per
// record fewer inlined, sample log). Compiled code pays for it instead: natively, inlined into
// `scan_object_in`, it made the split cost 12% more instructions (callgrind, the throughput
// bench's `filter`: the loop's registers spilled), and in wasmtime the component's per-event
// path ran 4-7% slower inlined (plugins/component/README.md).
#[cfg_attr(any(not(target_family = "wasm"), target_feature = "simd128"), inline(never))]
fn body_value(b: &[u8], i: usize, line_break: &mut Ws, managed: &mut bool) -> Option<(usize, bool)> {
    walk::<true>(b, i, line_break, managed)
}

/// Whether the key whose opening quote is at `b[open]` and whose closing quote is at
/// `b[end - 1]` is `managedFields` (the length is tested first: most keys stop there).
#[inline(always)]
fn is_managed_fields(b: &[u8], open: usize, end: usize) -> bool {
    end.wrapping_sub(open) == 15 && b.get(open + 1..end - 1) == Some(b"managedFields")
}

/// [`value`], and with `NOTE` the keys looked at for [`body_value`].
#[inline(always)]
fn walk<const NOTE: bool>(b: &[u8], mut i: usize, line_break: &mut Ws, managed: &mut bool) -> Option<(usize, bool)> {
    // Bit d set: the container at depth d + 1 is an object (else an array).
    let mut objects: u64 = 0;
    let mut depth: u32 = 0;
    // The innermost open container is an object (its bit in `objects`, kept at hand).
    let mut in_object = false;
    'value: loop {
        let c = *b.get(i)?;
        if c == b'"' {
            let (end, escapes) = string_tail(b, i + 1)?;
            if depth == 0 {
                return Some((end, escapes != 0));
            }
            i = end;
        } else if c == b'{' || c == b'[' {
            if depth + 1 >= MAX_DEPTH {
                return None;
            }
            i += 1;
            let first = byte_after_ws(b, &mut i, line_break)?;
            if first == c + 2 {
                // `{}` or `[]` (`}` and `]` follow their openers by two)
                i += 1;
            } else {
                in_object = c == b'{';
                if in_object {
                    objects |= 1 << depth;
                    if first != b'"' {
                        return None;
                    }
                    let (key_end, _, next) = key_tail(b, i + 1, line_break)?;
                    if NOTE && is_managed_fields(b, i, key_end) {
                        *managed = true;
                    }
                    i = next;
                } else {
                    objects &= !(1 << depth);
                }
                depth += 1;
                continue 'value;
            }
        } else {
            i = match c {
                b't' => literal(b, i, b"true")?,
                b'f' => literal(b, i, b"false")?,
                b'n' => literal(b, i, b"null")?,
                _ => number(b, i)?,
            };
        }
        // After a value: close containers until a `,` leads to the next value.
        while depth > 0 {
            // Compact JSON in an object: `,"` starts the next member.
            if in_object && b.get(i..).and_then(<[u8]>::first_chunk::<2>) == Some(b",\"") {
                let (key_end, _, next) = key_tail(b, i + 2, line_break)?;
                if NOTE && is_managed_fields(b, i + 1, key_end) {
                    *managed = true;
                }
                i = next;
                continue 'value;
            }
            let c = byte_after_ws(b, &mut i, line_break)?;
            i += 1;
            if c == b',' {
                if in_object {
                    // Not compact: the key is not looked at (the caller searches the body).
                    *managed |= NOTE;
                    i = key(b, i, line_break)?;
                } else {
                    byte_after_ws(b, &mut i, line_break)?;
                }
                continue 'value;
            }
            if c != if in_object { b'}' } else { b']' } {
                return None;
            }
            depth -= 1;
            in_object = depth > 0 && objects & (1 << (depth - 1)) != 0;
        }
        return Some((i, false));
    }
}

/// Walks the members of the object opening at `b[i]`: for each, `f(key offset, offset of the
/// key's closing quote, value offset, line_break)` consumes the value (no whitespace before it)
/// and returns the offset after it. Returns the offset after the object. Keys with escapes
/// answer `None`.
#[inline(always)]
fn members(
    b: &[u8],
    i: usize,
    line_break: &mut Ws,
    mut f: impl FnMut(usize, usize, usize, &mut Ws) -> Option<usize>,
) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = i + 1;
    let mut c = byte_after_ws(b, &mut i, line_break)?;
    if c == b'}' {
        return Some(i + 1);
    }
    loop {
        if c != b'"' {
            return None;
        }
        let key_start = i;
        let (key_end, escaped_key, start) = key_tail(b, i + 1, line_break)?;
        if escaped_key {
            return None; // serde_json decodes it
        }
        let mut at = f(key_start, key_end - 1, start, line_break)?;
        match byte_after_ws(b, &mut at, line_break)? {
            b',' => {
                i = at + 1;
                c = byte_after_ws(b, &mut i, line_break)?;
            }
            b'}' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// Walks the items of the array opening at `text[i]`: `f(item offset, line_break)` consumes each
/// item and returns the offset after it. Returns the offset after the array.
#[inline(always)]
fn items(
    text: &str,
    i: usize,
    line_break: &mut Ws,
    mut f: impl FnMut(usize, &mut Ws) -> Option<usize>,
) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let (mut i, c) = next(b, i + 1, line_break)?;
    if c == b']' {
        return Some(i + 1);
    }
    loop {
        let end = f(i, line_break)?;
        let (at, sep) = next(b, end, line_break)?;
        match sep {
            b',' => (i, _) = next(b, at + 1, line_break)?,
            b']' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// Splits `text` into members when it is exactly one JSON object (surrounding whitespace
/// allowed) that this scanner handles; `None` otherwise (the caller asks serde_json).
///
/// The members an event's decisions read (`user`, `objectRef`, ...; see [`super::decode`]) are
/// decoded on the way, each while it is validated, so their bytes are walked once; what that
/// declines is validated as any other value and decoded later (by serde when need be).
///
/// Allocates the member list and the [`Decoded`]; see [`scan_object_in`] for reusing them.
pub(crate) fn scan_object(text: &str) -> Option<RawObject<'_>> {
    scan_object_in(text, Vec::with_capacity(24), vec![Decoded::default()], &mut Spare::default())
}

/// [`scan_object`] in the caller's allocations (see [`super::buffers`]): `list` (empty)
/// receives the members, `slot` holds the one [`Decoded`] to fill (on the heap, filled in
/// place: moving it into a box at the end would copy it), `spare` lends the decoded members
/// their lists.
pub(crate) fn scan_object_in<'a>(
    text: &'a str,
    mut list: Vec<Member>,
    mut slot: Vec<Decoded<'a>>,
    spare: &mut Spare,
) -> Option<RawObject<'a>> {
    let b = text.as_bytes();
    let mut line_break: Ws = 0;
    let decoded = slot.last_mut()?;
    let start = ws(b, 0, &mut line_break);
    // Whitespace inside the object, not around it.
    line_break &= !SPACED;
    let mut bodies = Bodies::default();
    let end = members(b, start, &mut line_break, |key_start, key_end, start, line_break| {
        let key = b.get(key_start + 1..key_end)?;
        let (end, plain) = match decoded.decode(list.len(), key, text, start, line_break, spare) {
            Some(decoded) => decoded,
            None => match body_kind(key) {
                Some(response) => {
                    let mut managed = false;
                    let (end, _) = body_value(b, start, line_break, &mut managed)?;
                    let at = Some(BodyAt { index: list.len(), clean: !managed });
                    if response {
                        bodies.response = at;
                    } else {
                        bodies.request = at;
                    }
                    (end, false)
                }
                None => {
                    let (end, escaped) = value(b, start, line_break)?;
                    (end, !escaped && b.get(start) == Some(&b'"'))
                }
            },
        };
        list.push(Member::new(key_start, key_end, start, end, plain));
        Some(end)
    })?;
    // No whitespace between the braces: the members are joined by bare commas.
    let joined = line_break & SPACED == 0;
    (ws(b, end, &mut line_break) == b.len()).then_some(RawObject {
        text,
        members: list,
        line_break: Some(line_break & LINE_BREAK != 0),
        joined,
        decoded: slot,
        escaped_keys: Vec::new(),
        bodies: Some(bodies),
    })
}

/// For `requestObject` `Some(false)`, for `responseObject` `Some(true)` (by length first: most
/// keys are neither).
#[inline(always)]
fn body_kind(key: &[u8]) -> Option<bool> {
    match key.len() {
        13 if key == b"requestObject" => Some(false),
        14 if key == b"responseObject" => Some(true),
        _ => None,
    }
}

/// Calls `f(key, raw value, escaped)` for each member of `text`, which must be exactly one JSON
/// object starting at its first byte (a member's raw value, as the top-level split gives it);
/// `escaped` says a string value has escapes. Nothing is allocated. `None` when the object is
/// not one this scanner handles (escaped keys, deep nesting, any syntax error) or when `f`
/// answers `None`: the caller then decodes the object with serde_json, for its exact result
/// or error.
#[cfg(test)]
pub(crate) fn for_each_member<'a>(
    text: &'a str,
    mut f: impl FnMut(&'a str, &'a str, bool) -> Option<()>,
) -> Option<()> {
    let b = text.as_bytes();
    let end = members(b, 0, &mut 0, |key_start, key_end, start, line_break| {
        let (end, escaped) = value(b, start, line_break)?;
        f(text.get(key_start + 1..key_end)?, text.get(start..end)?, escaped)?;
        Some(end)
    })?;
    (end == text.len()).then_some(())
}

/// Calls `f(raw item, escaped)` for each item of `text`, exactly one JSON array starting at its
/// first byte; otherwise as [`for_each_member`].
#[cfg(test)]
pub(crate) fn for_each_item<'a>(text: &'a str, mut f: impl FnMut(&'a str, bool) -> Option<()>) -> Option<()> {
    let b = text.as_bytes();
    let end = items(text, 0, &mut 0, |start, line_break| {
        let (end, escaped) = value(b, start, line_break)?;
        f(text.get(start..end)?, escaped)?;
        Some(end)
    })?;
    (end == text.len()).then_some(())
}

/// The members of the object opening at `text[i]`, for the decoders: `f(key, value offset,
/// line_break)` consumes each value (see [`members`]). Returns the offset after the object.
#[inline(always)]
pub(super) fn object_at<'a>(
    text: &'a str,
    i: usize,
    line_break: &mut Ws,
    mut f: impl FnMut(&'a str, usize, &mut Ws) -> Option<usize>,
) -> Option<usize> {
    members(text.as_bytes(), i, line_break, |key_start, key_end, start, line_break| {
        f(slice(text, key_start + 1, key_end)?, start, line_break)
    })
}

/// The items of the array opening at `text[i]`, for the decoders (see [`items`]).
#[inline(always)]
pub(super) fn array_at(
    text: &str,
    i: usize,
    line_break: &mut Ws,
    f: impl FnMut(usize, &mut Ws) -> Option<usize>,
) -> Option<usize> {
    items(text, i, line_break, f)
}

/// `text[start..end]`, `None` when that is out of range or not on character boundaries: what
/// `str::get` answers, in two splits that inline (WASM builds call `str::get` out of line, at
/// several times the cost).
#[inline(always)]
pub(crate) fn slice(text: &str, start: usize, end: usize) -> Option<&str> {
    let (_, rest) = text.split_at_checked(start)?;
    let (s, _) = rest.split_at_checked(end.checked_sub(start)?)?;
    Some(s)
}

/// Any JSON value at `b[i]` (validated, not decoded): the offset after it.
#[inline(always)]
pub(super) fn skip_value(b: &[u8], i: usize, line_break: &mut Ws) -> Option<usize> {
    value(b, i, line_break).map(|(end, _)| end)
}

/// The string at `b[i]`: its content (borrowed when it has no escapes, else decoded) and the
/// offset after it. `None` when there is no string there, or an escape serde_json rejects (a
/// lone surrogate).
#[inline(always)]
pub(super) fn string_at(text: &str, i: usize) -> Option<(Cow<'_, str>, usize)> {
    let (end, escapes) = string(text.as_bytes(), i)?;
    let s = if escapes != 0 {
        super::raw::decode_str(slice(text, i, end)?).ok()?
    } else {
        Cow::Borrowed(slice(text, i + 1, end - 1)?)
    };
    Some((s, end))
}

/// The string opening at `b[i]`: the offset after it and whether it has escapes.
#[inline(always)]
pub(super) fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    string(b, i).map(|(end, escapes)| (end, escapes != 0))
}

/// The string opening at `text[i]` as a [`JsonStr`]: borrowed, with its simple escapes left
/// for the first read; one with `\u` escapes is decoded now (`None` for a lone surrogate,
/// which serde_json then reports). The offset after it.
#[inline(always)]
pub(super) fn json_str_at(text: &str, i: usize) -> Option<(JsonStr<'_>, usize)> {
    let (end, escapes) = string(text.as_bytes(), i)?;
    let s = if escapes == 0 {
        JsonStr::plain(slice(text, i + 1, end - 1)?)
    } else if escapes & U_ESCAPES == 0 {
        JsonStr::escaped(slice(text, i, end)?)
    } else {
        JsonStr::from(super::raw::decode_str(slice(text, i, end)?).ok()?)
    };
    Some((s, end))
}

/// `null` at `b[i]`: the offset after it.
#[inline(always)]
pub(super) fn null_at(b: &[u8], i: usize) -> Option<usize> {
    literal(b, i, b"null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::raw::parse_object;

    /// serde_json's split of the same text, for comparison.
    fn serde_split(text: &str) -> Option<Vec<(String, usize, usize, usize)>> {
        let obj = crate::event::raw::parse_object_with_serde(text).ok()?;
        Some(obj.members.iter().map(|m| (obj.key(m).to_string(), m.key_start, m.start, m.end)).collect())
    }

    fn fast_split(text: &str) -> Option<Vec<(String, usize, usize, usize)>> {
        let obj = scan_object(text)?;
        Some(obj.members.iter().map(|m| (obj.key(m).to_string(), m.key_start, m.start, m.end)).collect())
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
            r#"{"a":"x ! y!  \"z\" !!!!!!!!!! ","b !":"!","c":" "}"#,
            "{\"a\":\"        !!!!!!!!        \u{1f}\"}",
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
    fn slices_answer_as_str_get() {
        let text = "a\"é日本\\x😀";
        for start in 0..text.len() + 3 {
            for end in 0..text.len() + 3 {
                assert_eq!(slice(text, start, end), text.get(start..end), "{start}..{end}");
            }
        }
        assert_eq!(slice(text, usize::MAX, 1), None);
        assert_eq!(slice(text, 1, usize::MAX), None);
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
    fn nested_values_escapes_and_truncations_split_as_serde_json_does() {
        let text = concat!(
            r#"{"a":[{"b":[[],{},[{"c":"x\"y"}],-1.5e-3,"\u00e9\ud83d\ude00"]},[true,false,null]],"#,
            r#""long":"0123456789abcdef\\0123456789\/abcdef\u20ac","lone":"\udc00","#,
            "\"ws\" : [ 1 , { \"d\" : [ ] } ] ,\"e\":{\"f\":{\"g\":{\"h\":\"日本\"}}}}"
        );
        assert!(fast_split(text).is_some());
        assert_eq!(fast_split(text), serde_split(text));
        // Every prefix (truncated input) and every one-byte corruption is rejected or split
        // exactly as serde_json splits it.
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                assert!(fast_split(&text[..cut]).is_none(), "{cut}");
            }
        }
        for (i, c) in text.char_indices() {
            for bad in ['"', '\\', ']', '}', ',', ':', '\u{1}', 'x'] {
                if bad == c {
                    continue;
                }
                let mut t = String::from(&text[..i]);
                t.push(bad);
                t.push_str(&text[i + c.len_utf8()..]);
                if let Some(fast) = fast_split(&t) {
                    assert_eq!(Some(fast), serde_split(&t), "{t}");
                }
            }
        }
    }

    /// Whether every member of `obj` is followed by a bare comma and then the next key, found
    /// by walking them (what the scanner's `joined` says).
    fn joined_by_walk(obj: &RawObject) -> bool {
        obj.members.windows(2).all(|w| w[1].key_start == w[0].end + 1 && obj.text.as_bytes()[w[0].end] == b',')
    }

    /// Whatever the scanner answers for `text` is serde_json's split, and `parse_object`
    /// answers exactly as serde_json does (members or error message).
    fn check_against_serde(text: &str) {
        if let Some(fast) = fast_split(text) {
            assert_eq!(Some(fast), serde_split(text), "{text:?}");
            // `joined` (no whitespace inside the object) says what a walk finds, or nothing.
            let obj = scan_object(text).unwrap();
            assert!(!obj.joined || joined_by_walk(&obj), "{text:?}");
            let inner = text.trim_matches([' ', '\t', '\n', '\r']);
            let mut compact = String::new();
            crate::event::raw::compact_into(inner, &mut compact);
            assert_eq!(obj.joined, compact == inner, "{text:?}");
        }
        assert_eq!(
            parse_object(text).map(|o| o.members.len()).map_err(|e| e.message),
            crate::event::raw::parse_object_with_serde(text).map(|o| o.members.len()).map_err(|e| e.message),
            "{text:?}"
        );
    }

    #[test]
    fn compact_paths_and_whitespace_between_tokens_split_as_serde_json_does() {
        // Compact JSON (the fast paths: `:` and `,"` tested as pairs) with strings of every
        // length around the 8-byte word and escapes near the end of the input.
        let text = concat!(
            r#"{"a":"","bb":"x","ccc":"0123456","d":"01234567","e":"012345678","f":"0123456789abcdef","#,
            r#""g":{"h":"i","j":[],"k":{},"l":[{"m":"n","o":[1,"p",{"q":"\\"}]}],"r":-1.5e3,"s":null},"#,
            r#""t":[true,false,null,"u\"v",{"w":{"x":[[],[{}]]}}],"y":"z\u00e9\"","zz":{"a":"b"}}"#
        );
        assert!(fast_split(text).is_some());
        check_against_serde(text);
        // Whitespace (and what serde_json does not take as whitespace) after every byte
        // outside strings: the compact paths fall back to the general one.
        let bytes = text.as_bytes();
        for (i, _) in crate::event::raw::outside_strings(text) {
            for ws in [" ", "\n", "\r\n\t ", "\u{b}", "\u{c}", "\u{a0}"] {
                let spaced = format!("{}{ws}{}", &text[..=i], &text[i + 1..]);
                check_against_serde(&spaced);
                if ws == " " || ws == "\n" {
                    // (not inside numbers or literals)
                    assert_eq!(fast_split(&spaced).is_some(), serde_split(&spaced).is_some(), "{spaced:?}");
                }
            }
        }
        // Every prefix, and every byte replaced by one of the bytes the compact paths test.
        for cut in 0..text.len() {
            assert!(fast_split(&text[..cut]).is_none(), "{cut}");
            check_against_serde(&text[..cut]);
        }
        for i in 0..text.len() {
            for bad in [b'"', b'\\', b':', b',', b'}', b']', b'{', b'[', b' ', b'\n', 1, b'x', b'0', b'-'] {
                if bad == bytes[i] {
                    continue;
                }
                let mut t = bytes.to_vec();
                t[i] = bad;
                check_against_serde(std::str::from_utf8(&t).unwrap());
                // ... and a byte inserted there.
                let mut t = bytes.to_vec();
                t.insert(i, bad);
                check_against_serde(std::str::from_utf8(&t).unwrap());
            }
        }
    }

    #[test]
    fn strings_of_every_length_with_any_byte_anywhere_split_as_serde_json_does() {
        // The first FIRST bytes of a string are tested word by word with one range test, the
        // rest (and the input's last bytes) in the general loop: every length around those
        // bounds, one unusual character (non-ASCII ones of 2, 3 and 4 bytes among them) at
        // every offset, near the input's end and far from it.
        let odd = [
            " ", "!", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud800", "\\x", "\u{1}", "\t", "é", "\u{7f}", "\u{80}", "日",
            "😀", "\"",
        ];
        for len in 0..FIRST + 20 {
            for at in 0..=len {
                for c in odd {
                    let content = format!("{}{c}{}", "a".repeat(at), "b".repeat(len - at));
                    for tail in ["", r#","z":"0123456789abcdef0123456789abcdef0123456789""#] {
                        let text = format!(r#"{{"k{content}":"{content}"{tail}}}"#);
                        check_against_serde(&text);
                        // A whole string: accepted exactly when serde_json skips it as valid
                        // (lone surrogates included), and without escapes exactly when its
                        // decoded value is the content itself.
                        let raw = format!(r#""{content}""#);
                        let valid = serde_json::from_str::<serde::de::IgnoredAny>(&raw).is_ok();
                        let fast = string_end(raw.as_bytes(), 0).filter(|&(end, _)| end == raw.len());
                        assert_eq!(fast.is_some(), valid, "{raw:?}");
                        if let Some((_, escaped)) = fast {
                            let decoded = serde_json::from_str::<String>(&raw).ok();
                            assert_eq!(!escaped, decoded.as_deref() == Some(content.as_str()), "{raw:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_body_is_noted_clean_only_when_it_has_no_managed_fields_key() {
        // Bodies built from pieces: managedFields as a key at any depth, in a string, as a
        // longer or shorter key, with whitespace before keys; each inside an event. Top-level
        // keys differ between pieces but for managedFields itself, so that duplicates (the last
        // wins) cannot hide one from serde_json's reading.
        let pieces = [
            r#""managedFields":[{"manager":"kubectl"}]"#,
            r#""managedFields":{}"#,
            r#""managedFieldsX":1"#,
            r#""managedField":1"#,
            r#""a":"\"managedFields\":1""#,
            r#""b":"managedFields""#,
            r#""metadata":{"name":"x","managedFields":[]}"#,
            r#""spec":{"name":"x"}"#,
            r#""items":[{"metadata":{"managedFields":[]}},{"b":[1,{"managedFields":null}]}]"#,
            r#""list":[{"metadata":{"c":2}}]"#,
            r#" "managedFields" :1"#,
            r#""x": {"managedFields":1}"#,
            r#""y":[ {"z":1} , {"managedFields":2} ]"#,
        ];
        fn has_key(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(m) => m.iter().any(|(k, v)| k == "managedFields" || has_key(v)),
                serde_json::Value::Array(a) => a.iter().any(has_key),
                _ => false,
            }
        }
        let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
        let (mut clean, mut noted) = (0, 0);
        for _ in 0..20_000 {
            let n = rng.below(4) as usize;
            let mut body: Vec<&str> = Vec::new();
            while body.len() < n {
                let piece = pieces[rng.below(pieces.len() as u64) as usize];
                if !body.contains(&piece) {
                    body.push(piece);
                }
            }
            let body = format!("{{{}}}", body.join(","));
            let key = ["requestObject", "responseObject", "otherObject"][rng.below(3) as usize];
            let text = format!(r#"{{"kind":"Event","{key}":{body},"verb":"get"}}"#);
            let obj = scan_object(&text).unwrap_or_else(|| panic!("{text}"));
            let index = obj.members.iter().position(|m| obj.key_is(m, key)).unwrap();
            let bodies = obj.bodies.unwrap();
            let found = [bodies.request, bodies.response].into_iter().flatten().find(|b| b.index == index);
            assert_eq!(found.is_some(), key != "otherObject", "{text}");
            let bit = found.is_some_and(|b| b.clean);
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            if key == "otherObject" {
                assert!(!bit, "{text}");
                continue;
            }
            // Sound: a body noted clean has no such key, and stripping changes nothing.
            if bit {
                clean += 1;
                assert!(!has_key(&value), "{text}");
                assert_eq!(crate::event::edit::strip_managed_fields(&body), None, "{text}");
            } else if has_key(&value) {
                noted += 1;
            }
            // Exact for compact bodies: not clean only when the key is there.
            if !body.contains(' ') {
                assert_eq!(bit, !has_key(&value), "{text}");
            }
        }
        assert!(clean > 1_000 && noted > 1_000, "{clean} {noted}");
    }

    #[test]
    fn nesting_up_to_the_bound_is_scanned() {
        let nested = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        let objects = |n: usize| format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(n), "}".repeat(n));
        for n in [1, MAX_DEPTH as usize - 2, MAX_DEPTH as usize - 1] {
            assert_eq!(fast_split(&nested(n)), serde_split(&nested(n)), "{n}");
            assert_eq!(fast_split(&objects(n)), serde_split(&objects(n)), "{n}");
        }
        assert!(fast_split(&nested(MAX_DEPTH as usize)).is_none());
        assert!(parse_object(&nested(MAX_DEPTH as usize)).is_ok());
        // Mixed objects and arrays close in the right order only.
        assert!(fast_split(r#"{"a":[{"b":1]}"#).is_none());
        assert!(fast_split(r#"{"a":{"b":[1}]}"#).is_none());
        assert!(fast_split(r#"{"a":[{"b":[1]},{"c":{}}]}"#).is_some());
    }

    #[test]
    fn members_and_items_are_visited_in_order() {
        let mut seen = Vec::new();
        let r = for_each_member(r#"{"a":"x\ny","b" : [1,{"c":2}],"c":"plain"}"#, |k, v, e| {
            seen.push((k.to_string(), v.to_string(), e));
            Some(())
        });
        assert_eq!(r, Some(()));
        assert_eq!(
            seen,
            [
                ("a".into(), r#""x\ny""#.into(), true),
                ("b".into(), r#"[1,{"c":2}]"#.into(), false),
                ("c".into(), r#""plain""#.into(), false)
            ]
        );
        let mut items = Vec::new();
        let walked = for_each_item(r#"[ "a" ,"b\u0063",null]"#, |v, e| {
            items.push((v.to_string(), e));
            Some(())
        });
        assert_eq!(walked, Some(()));
        assert_eq!(items, [(r#""a""#.into(), false), (r#""b\u0063""#.into(), true), ("null".into(), false)]);
        assert_eq!(for_each_item("[]", |_, _| None), Some(()));
        assert_eq!(for_each_member("{}", |_, _, _| None), Some(()));
        for bad in ["[1,]", "[1", "[1] ", " [1]", "{\"a\":1} ", "{\"a\"}", "{\"\\u0061\":1}"] {
            assert!(
                for_each_item(bad, |_, _| Some(())).is_none() && for_each_member(bad, |_, _, _| Some(())).is_none()
            );
        }
        // The visitor's `None` stops the walk.
        assert!(for_each_item("[1,2]", |_, _| None).is_none());
    }

    #[test]
    fn agrees_with_serde_json_on_generated_events() {
        let corpus = String::from_utf8(kaudit_testkit::corpus::generate(300, 5)).unwrap();
        for line in corpus.lines() {
            assert!(fast_split(line).is_some());
            // The scanner's `plain` is exactly "a string that needs no decoding".
            let obj = scan_object(line).unwrap();
            assert!(obj.joined && joined_by_walk(&obj));
            let spaced = line.replacen(",\"", ", \"", 1);
            assert!(!scan_object(&spaced).unwrap().joined, "{spaced}");
            for m in &obj.members {
                let value = obj.value(m);
                let plain = matches!(crate::event::raw::decode_str(value), Ok(Cow::Borrowed(_)));
                assert_eq!(m.plain(), plain && value.starts_with('"'), "{value}");
            }
            assert_eq!(fast_split(line), serde_split(line));
            // Every prefix is rejected by both (truncated records).
            for cut in [1, line.len() / 3, line.len() / 2, line.len() - 1] {
                let prefix = &line[..line.floor_char_boundary(cut)];
                assert!(fast_split(prefix).is_none() && serde_split(prefix).is_none());
            }
        }
    }
}
