//! gzip and base64 as the providers use them, bounded so a small input cannot expand without end.
//!
//! A Kinesis record or a Firehose record's `data` is one gzip member; a Firehose→S3 object is
//! several members back to back (Firehose "concatenates data without any delimiters"), each one
//! CloudWatch Logs envelope. Members are decoded one at a time (`flate2::bufread::GzDecoder`
//! stops at the end of its member and leaves the rest of the slice unread) so that each
//! member's envelope reaches the caller on its own.

use std::io::Read;

use base64::Engine as _;

/// The two bytes every gzip member starts with (RFC 1952, ID1 ID2).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `base64(gzip(…))` always starts with these four characters (gzip magic plus deflate method 8).
pub const BASE64_GZIP_PREFIX: &[u8] = b"H4sI";

/// Whether `bytes` start like a gzip stream (the magic bytes `1f 8b`).
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Why a compressed or encoded input could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub message: String,
    /// Offset in the input of the member that failed (the bytes from there on are not decoded).
    pub at: usize,
}

/// The gzip members of `data`, decoded one at a time, each bounded by `limit` bytes (more is a
/// gzip bomb). A truncated or corrupt member, one over the limit, or bytes after the last
/// member that are not gzip end the iteration with an error; members before it were good.
pub struct GzMembers<'a> {
    data: &'a [u8],
    rest: &'a [u8],
    limit: usize,
    done: bool,
}

impl<'a> GzMembers<'a> {
    pub fn new(data: &'a [u8], limit: usize) -> Self {
        GzMembers { data, rest: data, limit, done: false }
    }
}

impl Iterator for GzMembers<'_> {
    type Item = Result<Vec<u8>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let at = self.data.len() - self.rest.len();
        let fail = |this: &mut Self, message: String| {
            this.done = true;
            Some(Err(DecodeError { message, at }))
        };
        if !is_gzip(self.rest) {
            return fail(self, "bytes after the last gzip member are not gzip".into());
        }
        let mut decoder = flate2::bufread::GzDecoder::new(self.rest);
        let mut buf = Vec::new();
        if let Err(e) = (&mut decoder).take(self.limit as u64 + 1).read_to_end(&mut buf) {
            return fail(self, format!("gzip: {e}"));
        }
        if buf.len() > self.limit {
            let limit = self.limit;
            return fail(
                self,
                format!("gzip: a member decompresses to more than {limit} bytes (limits.maxBatchBytes)"),
            );
        }
        self.rest = decoder.into_inner();
        Some(Ok(buf))
    }
}

/// The decoded bytes of `data` when it is exactly one gzip member that decodes within `limit`
/// (what an HTTP client's `Content-Encoding: gzip` sends); `None` otherwise.
pub fn single_member(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut members = GzMembers::new(data, limit);
    let first = members.next()?.ok()?;
    members.next().is_none().then_some(first)
}

/// Decodes every member of `data` (see [`GzMembers`]), calling `member` with each; the first
/// error is returned after the members before it were handed over.
#[cfg(test)]
pub fn gunzip_members(data: &[u8], limit: usize, member: &mut dyn FnMut(&[u8])) -> Result<(), DecodeError> {
    for m in GzMembers::new(data, limit) {
        member(&m?);
    }
    Ok(())
}

/// Decodes standard base64 (RFC 4648 §4, padded), what Firehose, Lambda and Pub/Sub use.
pub fn base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaudit_testkit::gzip;

    fn members(data: &[u8], limit: usize) -> (Vec<Vec<u8>>, Result<(), DecodeError>) {
        let mut got = Vec::new();
        let r = gunzip_members(data, limit, &mut |m| got.push(m.to_vec()));
        (got, r)
    }

    #[test]
    fn back_to_back_members_come_out_one_by_one() {
        let mut data = gzip(b"{\"a\":1}");
        data.extend(gzip(b"{\"b\":2}"));
        let (got, r) = members(&data, 1 << 20);
        assert_eq!(r, Ok(()));
        assert_eq!(got, [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
    }

    #[test]
    fn a_truncated_member_fails_after_the_good_ones() {
        let first = gzip(b"first");
        let mut data = first.clone();
        let second = gzip(b"second member, cut short");
        data.extend_from_slice(&second[..second.len() - 6]);
        let (got, r) = members(&data, 1 << 20);
        assert_eq!(got, [b"first".to_vec()]);
        let e = r.unwrap_err();
        assert_eq!(e.at, first.len(), "{e:?}");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b'a'; 10 << 20]);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let (got, r) = members(&bomb, 1 << 20);
        assert!(got.is_empty());
        assert!(r.unwrap_err().message.contains("limits.maxBatchBytes"));
        // The bound is per member: each of two members just under it decodes.
        let mut two = gzip(&[b'a'; 1000]);
        two.extend(gzip(&[b'b'; 1000]));
        assert_eq!(members(&two, 1000).0.len(), 2);
        // Exactly at the limit is fine.
        let (got, r) = members(&gzip(&[b'b'; 1000]), 1000);
        assert_eq!((got[0].len(), r), (1000, Ok(())));
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let mut data = gzip(b"x");
        data.extend_from_slice(b"junk");
        let (got, r) = members(&data, 100);
        assert_eq!(got.len(), 1);
        assert_eq!(r.unwrap_err().at, data.len() - 4);
    }

    #[test]
    fn base64_of_gzip_starts_with_the_prefix() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(gzip(b"hello"));
        assert!(encoded.as_bytes().starts_with(BASE64_GZIP_PREFIX));
        assert!(base64("not base64!").is_err());
    }
}
