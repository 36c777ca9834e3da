//! Cutting a byte stream that arrives in arbitrary chunks (a file read piece by piece in a
//! browser, stdin of a CLI in a pipe) into whole records, so that feeding chunks gives exactly
//! the records [`Records`] finds in the whole input, with the same line numbers.
//!
//! Bytes up to the last line break are framed with [`Records`]; a record that is a single line
//! opening a JSON value without closing it may be the start of a pretty-printed event whose
//! end has not arrived yet, so it and everything after it wait for the next chunk (up to
//! [`MAX_PENDING`] bytes, or the host's `limits.maxEventBytes` when that is larger: after it
//! they are framed as they are, exactly as `Records` would frame a truncated document).

use crate::event::framing::{Record, Records};

/// Most bytes held back waiting for the end of a record, by default.
pub const MAX_PENDING: usize = 64 << 20;

/// Holds the incomplete tail between chunks.
#[derive(Debug)]
pub struct Feed {
    pending: Vec<u8>,
    /// Lines handed over before `pending` starts.
    lines_before: usize,
    max_pending: usize,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    /// An empty feed.
    pub fn new() -> Self {
        Feed { pending: Vec::new(), lines_before: 0, max_pending: MAX_PENDING }
    }

    /// A feed for a pipeline whose `limits.maxEventBytes` is `max_event_bytes`: it holds up to
    /// that much (and the line break after it) for one record when that is more than
    /// `MAX_PENDING` (64 MiB), so that an event up to that size reaches the pipeline whole.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Feed { max_pending: max_event_bytes.saturating_add(1).max(MAX_PENDING), ..Feed::new() }
    }

    /// Bytes waiting for the rest of their record.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds a chunk and calls `f` with every record that is now complete.
    pub fn push(&mut self, chunk: &[u8], f: &mut dyn FnMut(Record)) {
        let chunk_start = self.pending.len();
        self.pending.extend_from_slice(chunk);
        // Only the chunk is searched: the last push framed up to the last line break before it,
        // so a long line takes linear, not quadratic, time to assemble.
        let Some(nl) = memchr::memrchr(b'\n', chunk) else {
            // Nothing new can be complete.
            if self.pending.len() > self.max_pending {
                self.finish(f);
            }
            return;
        };
        let last_nl = chunk_start + nl;
        let complete = &self.pending[..=last_nl];
        let base = complete.as_ptr() as usize;
        let mut consumed = complete.len();
        for record in Records::new(complete) {
            let b = record.bytes;
            let opens = matches!(b.first(), Some(b'{' | b'['));
            let closes = matches!(b.last(), Some(b'}' | b']'));
            let single_line = memchr::memchr(b'\n', b).is_none();
            if opens && !closes && single_line && self.pending.len() <= self.max_pending {
                // Possibly the first line of a document that continues in a later chunk.
                consumed = b.as_ptr() as usize - base;
                break;
            }
            f(Record { bytes: b, line: self.lines_before + record.line });
        }
        self.lines_before += memchr::memchr_iter(b'\n', &self.pending[..consumed]).count();
        self.pending.drain(..consumed);
    }

    /// Frames and hands over whatever is left (the end of the input).
    pub fn finish(&mut self, f: &mut dyn FnMut(Record)) {
        for record in Records::new(&self.pending) {
            f(Record { bytes: record.bytes, line: self.lines_before + record.line });
        }
        self.lines_before += memchr::memchr_iter(b'\n', &self.pending).count();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Vec<(Vec<u8>, usize)> {
        Records::new(input).map(|r| (r.bytes.to_vec(), r.line)).collect()
    }

    fn chunked(input: &[u8], size: usize) -> Vec<(Vec<u8>, usize)> {
        let mut feed = Feed::new();
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            feed.push(chunk, &mut |r| out.push((r.bytes.to_vec(), r.line)));
        }
        feed.finish(&mut |r| out.push((r.bytes.to_vec(), r.line)));
        out
    }

    #[test]
    fn a_record_up_to_the_configured_bound_arrives_whole() {
        // One line over the default bound, fed in 1 MiB chunks like the CLI reads.
        let mut line = br#"{"kind":"Event","x":""#.to_vec();
        line.resize(MAX_PENDING + (1 << 20), b'a');
        line.extend_from_slice(b"\"}\n");
        let records = |mut feed: Feed| {
            let mut got = Vec::new();
            for chunk in line.chunks(1 << 20) {
                feed.push(chunk, &mut |r| got.push(r.bytes.len()));
            }
            feed.finish(&mut |r| got.push(r.bytes.len()));
            got
        };
        assert_eq!(records(Feed::with_max_event_bytes(line.len() - 1)), [line.len() - 1]);
        // Past the default bound the line is framed in pieces (passed through, never lost).
        let pieces = records(Feed::new());
        assert!(pieces.len() > 1 && pieces.iter().sum::<usize>() == line.len() - 1, "{pieces:?}");
    }

    #[test]
    fn every_chunk_size_gives_the_whole_input_records() {
        let input = b"{\"a\":1}\n\n{\n  \"b\": [\n 1,\n 2]\n}\n{\"kind\":\"EventList\",\"items\":[{\"c\":3}]}\r\n{\"broken\":\n{\"d\":4}\nnot json\n{\"e\":5}";
        let want = whole(input);
        assert!(want.len() >= 6, "{want:?}");
        assert_eq!(want.last().map(|r| r.1), Some(12), "line numbers are part of the comparison");
        for size in 1..input.len() + 1 {
            assert_eq!(chunked(input, size), want, "chunk size {size}");
        }
    }
}
