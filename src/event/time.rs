//! Audit timestamps (RFC 3339, `MicroTime` with 6 fractional digits, or seconds for v1beta1).

/// Parses an RFC 3339 timestamp into microseconds since the Unix epoch.
pub fn parse_micros(text: &str) -> Option<i64> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_microsecond())
}

/// Formats microseconds since the epoch as RFC 3339 UTC with 6 fractional digits, like `MicroTime`.
pub fn format_micros(micros: i64) -> String {
    match jiff::Timestamp::from_microsecond(micros) {
        Ok(ts) => format!("{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = parse_micros("2018-10-26T13:38:34.867116Z").unwrap();
        assert_eq!(format_micros(m), "2018-10-26T13:38:34.867116Z");
        assert_eq!(parse_micros("2017-09-11T19:55:05Z"), Some(1_505_159_705_000_000));
        assert_eq!(parse_micros("2017-09-11T21:55:05+02:00"), Some(1_505_159_705_000_000));
        assert_eq!(parse_micros("yesterday"), None);
    }
}
