//! DingTalk custom robots with the "signature" security setting: the webhook URL must carry
//! `timestamp` (milliseconds) and `sign`, the URL-encoded base64 of HMAC-SHA256 with the robot's
//! secret as key over `"{timestamp}\n{secret}"` (DingTalk open platform, custom robot security
//! settings). DingTalk refuses a timestamp more than an hour away from its clock, so the path is
//! signed when the request is sent, with the host's clock: Envoy can, Fluent Bit's `http` output
//! (a fixed URI) cannot.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `path` with `timestamp` and `sign` appended for `secret` at `now_ms`.
pub fn signed_path(path: &str, secret: &str, now_ms: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{now_ms}\n{secret}").as_bytes());
    let sign = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sep = if path.contains('?') { '&' } else { '?' };
    format!(
        "{path}{sep}timestamp={now_ms}&sign={}",
        form_urlencoded::byte_serialize(sign.as_bytes()).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_dingtalks() {
        // Expected value from Python's hmac/hashlib/base64/urllib.parse.quote_plus, as DingTalk's
        // own example computes it, for this secret and timestamp.
        let secret = "SEC000000000000000000000000000000000000000000000000000000000000a";
        assert_eq!(
            signed_path("/robot/send?access_token=t", secret, 1_733_486_400_000),
            "/robot/send?access_token=t&timestamp=1733486400000&sign=loDjGsArvtuC%2FN3zDKqRgDR65u1e4qwFwEoEd2aHCDc%3D"
        );
        assert!(signed_path("/hook", "k", 1).starts_with("/hook?timestamp=1&sign="));
    }
}
