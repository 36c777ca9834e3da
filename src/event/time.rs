//! Audit timestamps (RFC 3339, `MicroTime` with 6 fractional digits, or seconds for v1beta1),
//! and the durations of alert windows, throttles and report ranges.

use super::Event;

/// Parses an RFC 3339 timestamp into microseconds since the Unix epoch.
pub fn parse_micros(text: &str) -> Option<i64> {
    if let Some(t) = parse_micro_time(text.as_bytes()) {
        return Some(t);
    }
    if let Some(t) = parse_utc_micros(text.as_bytes()) {
        return Some(t);
    }
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_microsecond())
}

/// An event's stage time ([`Event::stage_time_micros`]) and request-received time
/// ([`Event::received_time_micros`]), read once per record and handed to the enrichment and the
/// alert rules. A text both read (a `RequestReceived` stage has one time) is parsed once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTimes {
    /// Microseconds since the epoch of the stage (or of the legacy fields standing for it).
    pub stage: Option<i64>,
    /// Microseconds since the epoch of the request's arrival (`None` when not read).
    pub received: Option<i64>,
}

impl EventTimes {
    /// The stage time of `ev` and, with `received`, its request-received time.
    pub fn read(ev: &Event, received: bool) -> EventTimes {
        EventTimes::read_with(ev, received, &mut MinuteMemo::default())
    }

    /// [`EventTimes::read`] with the minute of the last `MicroTime` read (the pipeline keeps
    /// one across records: the events of a stream mostly share their minute).
    pub fn read_with(ev: &Event, received: bool, memo: &mut MinuteMemo) -> EventTimes {
        let stage = ev.stage_time_texts().find_map(|t| memo.micros(t).map(|m| (t, m)));
        let received = if received {
            ev.received_time_texts().find_map(|t| match stage {
                Some((text, m)) if crate::dict::same(text.as_bytes(), t.as_bytes()) => Some(m),
                _ => memo.micros(t),
            })
        } else {
            None
        };
        EventTimes { stage: stage.map(|(_, m)| m), received }
    }
}

/// The minute (`YYYY-MM-DDTHH:MM`, the first 16 bytes) of the last `MicroTime` read in full,
/// and its start: a `MicroTime` of the same minute is read from its last eleven bytes
/// (`:SS.ffffffZ`), without the date arithmetic, a third of the cost in an interpreter. The
/// minute's bytes were those of a valid time, so the answer is [`parse_micros`]'s
/// (`the_minute_memo_reads_as_parse_micros_does`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteMemo {
    minute: [u64; 2],
    /// Microseconds since the epoch at the start of `minute`; `None` before the first.
    start: Option<i64>,
}

impl MinuteMemo {
    /// [`parse_micros`] of `text`.
    pub fn micros(&mut self, text: &str) -> Option<i64> {
        let Ok(b) = <&[u8; 27]>::try_from(text.as_bytes()) else { return parse_micros(text) };
        let minute = [word(b, 0), word(b, 8)];
        if let (Some(start), true) = (self.start, minute == self.minute) {
            if let Some(within) = within_minute(b) {
                return Some(start + within);
            }
        }
        match parse_micro_time(b) {
            Some(m) => {
                if let Some(within) = within_minute(b) {
                    *self = MinuteMemo { minute, start: Some(m - within) };
                }
                Some(m)
            }
            None => parse_micros(text),
        }
    }
}

/// Eight bytes of a `MicroTime` at `at`, as one number.
fn word(b: &[u8; 27], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The microseconds within its minute of a `MicroTime` whose last eleven bytes are
/// `:SS.ffffffZ` with a second up to 59 (what [`parse_micro_time`] accepts there); `None`
/// otherwise.
fn within_minute(b: &[u8; 27]) -> Option<i64> {
    let digit = |c: u8| -> Option<i64> {
        let v = c.wrapping_sub(b'0');
        (v < 10).then_some(i64::from(v))
    };
    if b[16] != b':' {
        return None;
    }
    let second = digit(b[17])? * 10 + digit(b[18])?;
    if second > 59 {
        return None;
    }
    Some(second * 1_000_000 + fraction_micros(word(b, 19))?)
}

/// The microseconds of a `MicroTime`'s last eight bytes, `.ffffffZ` (`None` for anything else).
#[inline]
fn fraction_micros(w: u64) -> Option<i64> {
    // See `parse_micro_time`: the lanes minus their pattern, checked, then combined.
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let d3 = w.wrapping_sub(0x5a30_3030_3030_302e);
    if (d3 | d3.wrapping_add(0x7f76_7676_7676_767f)) & HIGH != 0 {
        return None;
    }
    // The eight lanes of `d3` are the digits of `0ffffff0`: ten times the microseconds
    // (the classic eight-digit combine, Lemire, "Fast numeric parsing").
    let v = (d3.wrapping_mul(10).wrapping_add(d3 >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul((100 << 16) + 1) >> 16) & 0x0000_ffff_0000_ffff;
    let v = v.wrapping_mul((10_000 << 32) + 1) >> 32;
    Some((v / 10) as i64)
}

/// `MicroTime` as audit events write it (`2024-05-01T10:00:00.123456Z`, 27 bytes), read eight
/// bytes at a time: every kept event's times are read, and an interpreter pays per
/// instruction (a fifth of [`parse_utc_micros`]). `None` for anything else, which takes the
/// general paths (`micro_time_agrees_with_jiff`).
fn parse_micro_time(b: &[u8]) -> Option<i64> {
    let b: &[u8; 27] = b.try_into().ok()?;
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    // Each word minus its pattern (`0` under a digit, the separator itself elsewhere) leaves
    // digit values and zeros (the last word, `.ffffffZ`, in `fraction_micros`); `check` then has a high bit set in a lane that is neither (a
    // lane below its pattern borrows and is caught itself: the lowest such lane is never
    // borrowed from). Lanes, first byte lowest: `YYYY-MM-`, `DDTHH:MM`, `H:MM:SS.`, `.ffffffZ`.
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let lanes = |at: usize, pattern: u64, check: u64| -> Option<u64> {
        let x = word(at).wrapping_sub(pattern);
        ((x | x.wrapping_add(check)) & HIGH == 0).then_some(x)
    };
    // `check` adds 0x76 to a digit lane (above 9 sets the high bit) and 0x7f to a separator
    // lane (above 0 does).
    let d0 = lanes(0, 0x2d30_302d_3030_3030, 0x7f76_767f_7676_7676)?;
    let d1 = lanes(8, 0x3030_3a30_3054_3030, 0x7676_7f76_767f_7676)?;
    let d2 = lanes(12, 0x2e30_303a_3030_3a30, 0x7f76_767f_7676_7f76)?;
    let micros = fraction_micros(word(19))?;
    // Pairs of digits: lane i becomes 10 * lane i + lane i+1.
    let pairs = |x: u64| x.wrapping_mul(10).wrapping_add(x >> 8);
    let (p0, p1, p2) = (pairs(d0), pairs(d1), pairs(d2));
    let lane = |x: u64, i: u32| ((x >> (8 * i)) & 0xff) as i64;
    let year = lane(p0, 0) * 100 + lane(p0, 2);
    let (month, day) = (lane(p0, 5), lane(p1, 0));
    let (hour, minute, second) = (lane(p1, 3), lane(p1, 6), lane(p2, 5));
    civil_micros(year, month, day, hour, minute, second, micros)
}

/// Microseconds since the epoch of a UTC date and time whose fields are in range for RFC 3339
/// and the years 1970-9998 (see [`parse_utc_micros`]); `None` otherwise.
fn civil_micros(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64, micros: i64) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9998).contains(&year) || day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

/// The form audit events use (`2024-05-01T10:00:00.123456Z`: UTC, 0-9 fractional digits,
/// years 1970-9998) read directly: a general RFC 3339 parse costs over a thousand instructions
/// in an interpreter, and every kept event's times are read. `None` for anything else (other
/// offsets, leap seconds, lower-case `t`/`z`, invalid dates, the year 9999, whose end jiff
/// does not represent), which takes the general parse,
/// so the answer is always the general parse's (`utc_fast_path_agrees_with_jiff`).
fn parse_utc_micros(b: &[u8]) -> Option<i64> {
    // Fixed positions, read from an array so the compiler drops every bounds check: about a
    // hundred instructions in an interpreter.
    let h: &[u8; 19] = b.first_chunk()?;
    if b.len() < 20 || b.len() > 30 || h[4] != b'-' || h[7] != b'-' || h[10] != b'T' || h[13] != b':' || h[16] != b':' {
        return None;
    }
    let digit = |c: u8| -> Option<i64> {
        let v = c.wrapping_sub(b'0');
        (v < 10).then_some(i64::from(v))
    };
    let two = |i: usize| -> Option<i64> { Some(digit(h[i])? * 10 + digit(h[i + 1])?) };
    let (year, month, day) = (two(0)? * 100 + two(2)?, two(5)?, two(8)?);
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    let mut micros = 0i64;
    match (b[19], b.len()) {
        (b'Z', 20) => {}
        (b'.', len) if len >= 22 && b[len - 1] == b'Z' => {
            let digits = b.get(20..len - 1)?;
            // 10^(9 - digits): nanoseconds from the digits given.
            const SCALE: [i64; 10] = [0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
            let scale = *SCALE.get(digits.len())?;
            let mut frac = 0i64;
            for &c in digits {
                frac = frac * 10 + digit(c)?;
            }
            // Nanoseconds truncated to microseconds, as `Timestamp::as_microsecond` does
            // (years from 1970 only: no negative rounding).
            micros = frac * scale / 1000;
        }
        _ => return None,
    }
    civil_micros(year, month, day, hour, minute, second, micros)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant, "chrono-Compatible
/// Low-Level Date Algorithms", `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
/// Low-Level Date Algorithms", `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats microseconds since the epoch as RFC 3339 UTC with 6 fractional digits, like `MicroTime`.
pub fn format_micros(micros: i64) -> String {
    // 1970 to 9998 with integer arithmetic (every alert writes its time; `strftime` costs
    // thousands of instructions in an interpreter); the same text as jiff's
    // (`micro_time_formats_as_jiff_does`).
    if (0..253_370_764_800_000_000).contains(&micros) {
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        let (days, day_secs) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, day_secs / 3600);
        put(14, 2, day_secs / 60 % 60);
        put(17, 2, day_secs % 60);
        put(20, 6, frac);
        return String::from_utf8_lossy(&b).into_owned();
    }
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
    fn micro_time_formats_as_jiff_does() {
        let jiff = |m: i64| match jiff::Timestamp::from_microsecond(m) {
            Ok(ts) => format!("{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")),
            Err(_) => String::new(),
        };
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut samples: Vec<i64> = vec![0, 1, 999_999, 1_000_000, 86_399_999_999, 86_400_000_000, 951_782_400_000_000];
        samples.extend([253_370_764_799_999_999, 253_370_764_800_000_000, -1, i64::MIN, i64::MAX]);
        for _ in 0..200_000 {
            samples.push(rng.below(260_000_000_000_000_000) as i64 - 1_000_000_000_000_000);
        }
        for m in samples {
            let ours = format_micros(m);
            assert_eq!(ours, jiff(m), "{m}");
            if !ours.is_empty() {
                assert_eq!(parse_micros(&ours), Some(m), "{ours}");
            }
        }
    }

    #[test]
    fn utc_fast_path_agrees_with_jiff() {
        let jiff = |t: &str| t.parse::<jiff::Timestamp>().ok().map(|ts| ts.as_microsecond());
        let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut next = |m: u64| rng.below(m);
        let mut fast = 0;
        for i in 0..200_000 {
            let (y, mo, d) = (1960 + next(100), 1 + next(13), 1 + next(32));
            let (h, mi, s) = (next(25), next(61), next(61));
            let digits = next(11) as usize;
            let frac: String = (0..digits).map(|_| char::from(b'0' + next(10) as u8)).collect();
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if digits > 0 {
                t.push('.');
                t.push_str(&frac);
            }
            t.push(match i % 50 {
                0 => 'z',
                1 => '+',
                _ => 'Z',
            });
            if i % 50 == 1 {
                t.push_str("02:00");
            }
            fast += usize::from(parse_utc_micros(t.as_bytes()).is_some());
            assert_eq!(parse_micros(&t), jiff(&t), "{t}");
        }
        assert!(fast > 50_000, "the fast path took {fast}");
        for t in [
            "2024-02-29T23:59:59.999999999Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01t10:00:00Z",
            "2024-05-01T10:00:60Z",
            "1969-12-31T23:59:59.5Z",
            "9999-12-31T23:59:59.999999Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00,5Z",
            "2024-05-01 10:00:00Z",
            "+2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.1234567890Z",
        ] {
            assert_eq!(parse_micros(t), jiff(t), "{t}");
        }
    }

    #[test]
    fn micro_time_agrees_with_the_byte_path() {
        // Valid MicroTimes, then each with one byte replaced (digits, separators, anything).
        let mut rng = crate::test_rng::XorShift::new(0x5851_f42d_4c95_7f2d);
        let mut fast = 0;
        for i in 0..300_000 {
            let m = rng.below(253_370_764_800_000_000) as i64;
            let mut t = format_micros(m).into_bytes();
            if t.len() != 27 {
                continue;
            }
            if i % 3 != 0 {
                let at = rng.below(27) as usize;
                t[at] = match rng.below(4) {
                    0 => b'0' + rng.below(10) as u8,
                    1 => b"-:.TZtz+ /"[rng.below(10) as usize],
                    _ => rng.below(256) as u8,
                };
            }
            let ours = parse_micro_time(&t);
            fast += usize::from(ours.is_some());
            assert_eq!(ours, parse_utc_micros(&t), "{:?}", String::from_utf8_lossy(&t));
            if i % 3 == 0 {
                assert_eq!(ours, Some(m), "{m}");
            }
        }
        assert!(fast > 100_000, "the fast path took {fast}");
        for t in ["2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00.000000Z", "2024-05-01T24:00:00.000000Z"] {
            assert_eq!(parse_micro_time(t.as_bytes()), parse_utc_micros(t.as_bytes()), "{t}");
        }
        assert_eq!(parse_micro_time(b"2018-10-26T13:38:34.867116Z"), Some(1_540_561_114_867_116));
    }

    #[test]
    fn event_times_are_the_events_own() {
        let times = ["2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:01Z", "yesterday", "2024-05-01T12:00:00+02:00"];
        let field = |i: usize| -> String {
            match i {
                0 => String::new(),
                i => format!("\"{}\"", times[i - 1]),
            }
        };
        // Every combination of the four fields absent, the same text or different texts.
        for n in 0..5usize.pow(4) {
            let (a, b, c, d) = (n % 5, n / 5 % 5, n / 25 % 5, n / 125 % 5);
            let mut text = String::from("{\"stage\":\"ResponseComplete\",\"verb\":\"get\"");
            for (key, i) in [("stageTimestamp", a), ("requestReceivedTimestamp", b), ("timestamp", c)] {
                if i > 0 {
                    text.push_str(&format!(",\"{key}\":{}", field(i)));
                }
            }
            if d > 0 {
                text.push_str(&format!(",\"metadata\":{{\"creationTimestamp\":{}}}", field(d)));
            }
            text.push('}');
            let ev = Event::parse(&text).unwrap();
            let both = EventTimes::read(&ev, true);
            assert_eq!(
                both,
                EventTimes { stage: ev.stage_time_micros(), received: ev.received_time_micros() },
                "{text}"
            );
            assert_eq!(EventTimes::read(&ev, false), EventTimes { stage: ev.stage_time_micros(), received: None });
        }
    }

    #[test]
    fn the_minute_memo_reads_as_parse_micros_does() {
        // Runs of times in the same minute, the next minute, another day; each time also with
        // one byte replaced (a digit, a separator, anything), and other forms. One memo
        // carried through all of them, as the pipeline carries it across records.
        let mut rng = crate::test_rng::XorShift::new(0x1b87_3593_cc9e_2d51);
        let mut memo = MinuteMemo::default();
        let (mut via_memo, mut m) = (0, 1_714_557_600_000_000i64);
        for i in 0..400_000 {
            m += match rng.below(10) {
                0 => rng.below(120_000_000) as i64,
                1 => rng.below(1 << 45) as i64,
                2 => -(rng.below(90_000_000) as i64),
                _ => rng.below(3_000_000) as i64,
            };
            m = m.clamp(0, 253_370_764_799_999_999);
            let mut t = format_micros(m).into_bytes();
            if i % 4 == 0 {
                let at = rng.below(27) as usize;
                t[at] = match rng.below(4) {
                    0 => b'0' + rng.below(10) as u8,
                    1 => b"-:.TZtz+ /"[rng.below(10) as usize],
                    _ => rng.below(128) as u8,
                };
            }
            if i % 97 == 0 {
                t.truncate(19);
                t.push(b'Z');
            }
            let Ok(t) = String::from_utf8(t) else { continue };
            let before = memo;
            let ours = memo.micros(&t);
            via_memo += usize::from(before.start.is_some() && before == memo && ours.is_some());
            assert_eq!(ours, parse_micros(&t), "{t:?} after {before:?}");
        }
        assert!(via_memo > 150_000, "{via_memo} read within the memo's minute");
    }

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
