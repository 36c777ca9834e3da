//! Audit timestamps (RFC 3339, `MicroTime` with 6 fractional digits, or seconds for v1beta1),
//! and the durations of alert windows and throttles.

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

/// Parses a duration: `90s`, `5m`, `1h30m`, `2d`, `0`; at least one unit, integer amounts.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid duration {text:?}: expected a number, e.g. 30s, 5m, 1h"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: i64 = match unit {
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            "" => return Err(format!("invalid duration {text:?}: missing unit (ms, s, m, h or d)")),
            u => return Err(format!("invalid duration {text:?}: unknown unit {u:?} (ms, s, m, h or d)")),
        };
        total = n
            .checked_mul(scale)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("invalid duration {text:?}: too long"))?;
    }
    Ok(total)
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(300_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("250ms"), Ok(250_000));
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }
}
