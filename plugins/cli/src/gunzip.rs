//! A gzip input decompressed as it is read (`kaudit run audit.log.gz`, a rotated log of any size),
//! member after member like `zcat`, in bounded memory. flate2's `bufread::GzDecoder` decodes one
//! member and stops at its end (`MultiGzDecoder` loops over it the same way but hides the end).
//!
//! A member boundary is nothing in the decompressed stream (a line may go on in the next member,
//! as `cat a.gz b.gz` or a block compressor writes it), except after a member that is one JSON
//! object or array starting a line: a Firehose→S3 object is CloudWatch Logs envelopes, one per
//! member, back to back with no delimiter (`{…}{…}`). A line break goes there (unless one follows
//! anyway), so each envelope is a record, as the core reads each member of a gzip record.

use std::io::{self, BufRead, Read};

/// The decompressed bytes of the gzip stream `R`.
pub struct Gunzip<R: BufRead> {
    state: State<R>,
    /// What the current member's bytes are so far.
    shape: Shape,
    /// A line break to put before the next decompressed byte, unless that byte is one.
    break_pending: bool,
    /// A byte pushed back by a read that had no room for it and the line break before it.
    held: Option<u8>,
    /// The last decompressed byte (`\n` before the first).
    last: u8,
    /// Lines handed out (the breaks put in included), members started: for the error message.
    lines: u64,
    members: u64,
}

enum State<R> {
    Member(flate2::bufread::GzDecoder<R>),
    Between(R),
    Done,
}

impl<R: BufRead> Gunzip<R> {
    /// `input` starts with a gzip member.
    pub fn new(input: R) -> Self {
        Gunzip {
            state: State::Between(input),
            shape: Shape::Other,
            break_pending: false,
            held: None,
            last: b'\n',
            lines: 0,
            members: 0,
        }
    }

    /// `what` went wrong: the error names the place in both streams.
    fn fail(&self, kind: io::ErrorKind, what: String) -> io::Error {
        let line = self.lines + 1;
        let message =
            format!("gzip: {what} (line {line} of the decompressed stream; the records before it were processed)");
        io::Error::new(kind, message)
    }

    /// Hands out `n` decompressed bytes read into `buf`, with the pending line break before them.
    fn hand_out(&mut self, buf: &mut [u8], n: usize) -> usize {
        self.shape.scan(&buf[..n]);
        self.last = buf[n - 1];
        let mut len = n;
        if std::mem::take(&mut self.break_pending) && !matches!(buf[0], b'\n' | b'\r') {
            if n == buf.len() {
                self.held = Some(buf[n - 1]);
                len -= 1;
            }
            buf.copy_within(..len, 1);
            buf[0] = b'\n';
            len += 1;
        }
        self.lines += memchr::memchr_iter(b'\n', &buf[..len]).count() as u64;
        len
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.held.take() {
            buf[0] = b;
            self.lines += u64::from(b == b'\n');
            return Ok(1);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Between(mut input) => {
                    let head = match input.fill_buf() {
                        Ok(head) => head,
                        Err(e) => {
                            let retry = e.kind() == io::ErrorKind::Interrupted;
                            self.state = State::Between(input);
                            if retry {
                                continue;
                            }
                            return Err(e);
                        }
                    };
                    match head.first() {
                        None => return Ok(0),
                        Some(&b) if b != kaudit::GZIP_MAGIC[0] => {
                            let what = format!("bytes after member {} are not gzip", self.members);
                            return Err(self.fail(io::ErrorKind::InvalidData, what));
                        }
                        Some(_) => {}
                    }
                    self.state = State::Member(flate2::bufread::GzDecoder::new(input));
                    self.members += 1;
                    let line_start = self.last == b'\n' || self.break_pending;
                    self.shape = if line_start { Shape::Start } else { Shape::Other };
                }
                State::Member(mut decoder) => {
                    let n = match decoder.read(buf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            self.state = State::Member(decoder);
                            continue;
                        }
                        Err(e) => return Err(self.fail(e.kind(), format!("member {}: {e}", self.members))),
                    };
                    if n > 0 {
                        self.state = State::Member(decoder);
                        return Ok(self.hand_out(buf, n));
                    }
                    // The member ended: a whole JSON value not followed by a line break gets one.
                    if self.shape == Shape::Closed && self.last != b'\n' {
                        self.break_pending = true;
                    }
                    self.state = State::Between(decoder.into_inner());
                }
            }
        }
    }
}

/// What a member's decompressed bytes are, scanned as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Whitespace so far, and the member began at a line start.
    Start,
    /// Inside one JSON object (`close` is `}`) or array (`]`): the depth of that bracket (the
    /// other kind nests inside it in valid JSON), in a string, after a backslash in one.
    Value { close: u8, depth: u32, string: bool, escape: bool },
    /// The value closed; whitespace since.
    Closed,
    /// Anything else (its end is no line break).
    Other,
}

impl Shape {
    /// Jumps from one byte that matters to the next (memchr): an envelope is scanned whole.
    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (next, rest) = match *self {
                Shape::Other => return,
                Shape::Start | Shape::Closed => {
                    let Some(i) = bytes.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')) else {
                        return;
                    };
                    let next = match (*self, bytes[i]) {
                        (Shape::Start, b'{') => Shape::Value { close: b'}', depth: 1, string: false, escape: false },
                        (Shape::Start, b'[') => Shape::Value { close: b']', depth: 1, string: false, escape: false },
                        _ => Shape::Other,
                    };
                    (next, &bytes[i + 1..])
                }
                Shape::Value { close, depth, string: true, escape: true } => {
                    (Shape::Value { close, depth, string: true, escape: false }, &bytes[1..])
                }
                Shape::Value { close, depth, string: true, escape: false } => {
                    let Some(i) = memchr::memchr3(b'"', b'\\', b'\n', bytes) else { return };
                    let next = match bytes[i] {
                        b'"' => Shape::Value { close, depth, string: false, escape: false },
                        b'\\' => Shape::Value { close, depth, string: true, escape: true },
                        _ => Shape::Other, // a line break in a string: not JSON
                    };
                    (next, &bytes[i + 1..])
                }
                Shape::Value { close, depth, string: false, .. } => {
                    let open = if close == b'}' { b'{' } else { b'[' };
                    let Some(i) = memchr::memchr3(b'"', open, close, bytes) else { return };
                    let next = match (bytes[i], depth) {
                        (b'"', _) => Shape::Value { close, depth, string: true, escape: false },
                        (b, 1) if b == close => Shape::Closed,
                        (b, _) if b == close => Shape::Value { close, depth: depth - 1, string: false, escape: false },
                        // A gzip bomb of brackets must not overflow the depth.
                        _ => match depth.checked_add(1) {
                            Some(depth) => Shape::Value { close, depth, string: false, escape: false },
                            None => Shape::Other,
                        },
                    };
                    (next, &bytes[i + 1..])
                }
            };
            *self = next;
            bytes = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaudit_testkit::gzip;

    /// The decompressed stream read `size` bytes at a time.
    fn read(data: &[u8], size: usize) -> io::Result<Vec<u8>> {
        let mut r = Gunzip::new(data);
        let mut out = Vec::new();
        let mut buf = vec![0u8; size];
        loop {
            match r.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn members(parts: &[&[u8]]) -> Vec<u8> {
        parts.iter().flat_map(|p| gzip(p)).collect()
    }

    #[test]
    fn members_join_like_zcat() {
        // A line cut across members, as a block compressor writes it.
        let data = members(&[b"{\"a\":1}\n{\"b\":", b"2}\n{\"c\"", b":3}\n"]);
        for size in [1, 2, 3, 1 << 20] {
            assert_eq!(read(&data, size).unwrap(), b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", "read size {size}");
        }
    }

    #[test]
    fn a_member_that_is_one_json_value_ends_its_line() {
        // Firehose→S3: envelopes back to back; strings with brackets and escapes do not count.
        let data = members(&[b"{\"m\":\"}{\\\"\"}", b"  [{\"x\":[1]}]", b"", b"{\"y\":2}", b"\n{\"z\":3}", b"tail"]);
        let want = b"{\"m\":\"}{\\\"\"}\n  [{\"x\":[1]}]\n{\"y\":2}\n{\"z\":3}\ntail";
        for size in [1, 2, 5, 1 << 20] {
            assert_eq!(read(&data, size).unwrap(), want, "read size {size}");
        }
        // Not a whole value, or not at a line start: no break.
        let data = members(&[b"x{\"a\":1}", b"{\"b\":{\"c\":1}", b"}{\"d\":1}"]);
        assert_eq!(read(&data, 1 << 20).unwrap(), b"x{\"a\":1}{\"b\":{\"c\":1}}{\"d\":1}");
    }

    #[test]
    fn the_shape_does_not_depend_on_where_reads_end() {
        // Whole values, then not: text after it, a raw line break in a string, text before it,
        // a string left open by an escaped quote.
        let closed = [&br#"{"m":"}{\\\"]"}"#[..], br#" [{"x":"]"},[1]] "#, b"\n{\"a\":{\"b\":[1,\"}\"]}}\r\n", b"{}"];
        let not = [&br#"{"a":1} x"#[..], b"{\"a\":\"\n\"}", b"x{}", br#"{"a":"\"}"#];
        for (bytes, whole) in closed.iter().map(|b| (b, true)).chain(not.iter().map(|b| (b, false))) {
            for split in 0..=bytes.len() {
                let mut shape = Shape::Start;
                shape.scan(&bytes[..split]);
                shape.scan(&bytes[split..]);
                assert_eq!(shape == Shape::Closed, whole, "{:?} split at {split}", String::from_utf8_lossy(bytes));
            }
        }
    }

    #[test]
    fn a_truncated_member_fails_after_what_decoded() {
        let whole = gzip(b"{\"a\":1}\n{\"b\":2}\n");
        let mut data = gzip(b"{\"first\":0}\n");
        data.extend_from_slice(&whole[..whole.len() - 4]);
        let mut r = Gunzip::new(&data[..]);
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(out, b"{\"first\":0}\n{\"a\":1}\n{\"b\":2}\n", "the deflate data is whole, the trailer is not");
        assert!(e.to_string().starts_with("gzip: member 2: ") && e.to_string().contains("(line 4 of"), "{e}");
        let e = read(&[gzip(b"x\n"), b"junk".to_vec()].concat(), 64).unwrap_err();
        assert!(e.to_string().starts_with("gzip: bytes after member 1 are not gzip (line 2 of"), "{e}");
    }
}
