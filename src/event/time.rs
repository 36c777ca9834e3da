//! Audit timestamps (RFC 3339, `MicroTime` with 6 fractional digits, or seconds for v1beta1),
//! and the durations of alert windows, throttles and report ranges.

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

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub problem: DurationProblem,
}

/// What is wrong with a duration ([`DurationError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationProblem {
    /// Nothing but blanks.
    Empty,
    /// A unit or other text where a number is needed (`m`, `-5m`).
    ExpectedNumber,
    /// A number without its unit (`5`).
    MissingUnit,
    /// A unit that is none of `ms`, `s`, `m`, `h`, `d`, `w`.
    UnknownUnit(String),
    /// More microseconds than an `i64` holds.
    TooLong,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = &self.text;
        match &self.problem {
            DurationProblem::Empty => f.write_str("empty duration"),
            DurationProblem::ExpectedNumber => {
                write!(f, "invalid duration {text:?}: expected a number, e.g. 30s, 5m, 1h")
            }
            DurationProblem::MissingUnit => write!(f, "invalid duration {text:?}: missing unit ({UNITS})"),
            DurationProblem::UnknownUnit(u) => write!(f, "invalid duration {text:?}: unknown unit {u:?} ({UNITS})"),
            DurationProblem::TooLong => write!(f, "invalid duration {text:?}: too long"),
        }
    }
}

impl std::error::Error for DurationError {}

/// The message, for a config diagnostic (`Ctx::error` takes `impl Into<String>`).
impl From<DurationError> for String {
    fn from(e: DurationError) -> String {
        e.to_string()
    }
}

const UNITS: &str = "ms, s, m, h, d or w";

/// Parses a duration into microseconds. One grammar for alert windows and throttles and for
/// report ranges: one or more `<integer><unit>` parts (`90s`, `5m`, `1h30m`, `250ms`, `2w`), units
/// `ms`, `s`, `m`, `h`, `d`, `w`, surrounding blanks ignored; a bare `0` is zero. It accepts the
/// union of what the two grammars it replaced did (alerts: compound, `ms`, `0`; reports: `w`).
/// Callers that need a positive duration (report ranges) check it.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let err = |problem| DurationError { text: text.to_string(), problem };
    let t = text.trim();
    if t == "0" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err(err(DurationProblem::Empty));
    }
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err(DurationProblem::ExpectedNumber));
        }
        // All digits: only a number too large for i64 fails here.
        let n: i64 = rest[..digits].parse().map_err(|_| err(DurationProblem::TooLong))?;
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
            "w" => 604_800_000_000,
            "" => return Err(err(DurationProblem::MissingUnit)),
            u => return Err(err(DurationProblem::UnknownUnit(u.to_string()))),
        };
        total = n.checked_mul(scale).and_then(|x| total.checked_add(x)).ok_or_else(|| err(DurationProblem::TooLong))?;
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
    fn durations_accept_the_union_of_the_alert_and_report_grammars() {
        // What alert windows and throttles accepted: compound, ms, a bare 0.
        assert_eq!(parse_duration("5m"), Ok(300_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("250ms"), Ok(250_000));
        assert_eq!(parse_duration("1d2h3m4s5ms"), Ok(93_784_005_000));
        // What report ranges accepted: one unit of s, m, h, d or w, blanks around it.
        assert_eq!(parse_duration("15m"), Ok(900_000_000));
        assert_eq!(parse_duration(" 24h "), Ok(86_400_000_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000_000));
        assert_eq!(parse_duration("2w"), Ok(1_209_600_000_000));
        assert_eq!(parse_duration("30s"), Ok(30_000_000));
        // Now both: weeks in compounds.
        assert_eq!(parse_duration("1w1d"), Ok(691_200_000_000));
    }

    #[test]
    fn durations_reject_with_a_typed_problem() {
        let problem = |t: &str| parse_duration(t).unwrap_err().problem;
        assert_eq!(problem("5"), DurationProblem::MissingUnit);
        assert_eq!(problem("5y"), DurationProblem::UnknownUnit("y".into()));
        assert_eq!(problem("5 m"), DurationProblem::MissingUnit);
        assert_eq!(problem("m"), DurationProblem::ExpectedNumber);
        assert_eq!(problem("-5m"), DurationProblem::ExpectedNumber);
        assert_eq!(problem("1.5h"), DurationProblem::MissingUnit);
        assert_eq!(problem("5minutes"), DurationProblem::UnknownUnit("minutes".into()));
        assert_eq!(problem("  "), DurationProblem::Empty);
        assert_eq!(problem("99999999999999999999s"), DurationProblem::TooLong);
        assert_eq!(problem("9223372036854775807w"), DurationProblem::TooLong);
        assert_eq!(
            parse_duration("5").unwrap_err().to_string(),
            "invalid duration \"5\": missing unit (ms, s, m, h, d or w)"
        );
    }
}
