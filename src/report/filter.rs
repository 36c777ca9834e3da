//! What a dashboard asks for: time range, namespace, account, status code, a search-language
//! query, the resource type of the "Operation Details" tab, and list sizes.
//!
//! The same JSON object is accepted from every host (the CLI builds it from flags, the npm
//! package from a JS object), so parsing it lives here.

use serde::{Deserialize, Deserializer};

use crate::event::time::{parse_duration, parse_micros};

/// Report filters. Every field is optional; see `docs/REPORTS.md`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// Start of the time range (RFC 3339, inclusive).
    pub from: Option<String>,
    /// End of the time range (RFC 3339, inclusive). Default: the newest event time in the data.
    pub to: Option<String>,
    /// Length of the range when `from` is absent: `30s`, `15m`, `24h`, `7d`, `2w`, or `all`.
    /// Default `all`: a report over recorded data covers everything read. (The console's "by
    /// week" up to now is what a live dashboard asks for: `last: "7d"` with `to` = now.)
    pub last: Option<String>,
    /// Namespaces to keep (`""` = cluster-scoped and non-resource requests). Empty: all.
    #[serde(deserialize_with = "one_or_many")]
    pub namespace: Vec<String>,
    /// Acting accounts to keep (`kaudit.account`, the console's "RAM user"). Empty: all.
    #[serde(alias = "user", deserialize_with = "one_or_many")]
    pub account: Vec<String>,
    /// Response status codes to keep (`0` = events without one). Empty: all.
    #[serde(deserialize_with = "codes")]
    pub code: Vec<i64>,
    /// A search-language query (docs/QUERY.md); empty or absent: every event.
    pub query: Option<String>,
    /// Resource type (plural, case-insensitive, CRDs included) for "Operation Details".
    /// Default: the most operated type in the filtered events.
    pub resource_type: Option<String>,
    /// Events listed per table (important events, operation details). Default 100, max 10000.
    pub limit: Option<usize>,
    /// Entries per distribution (the rest is summed as `others`). Default 20, max 10000.
    pub top: Option<usize>,
}

pub const DEFAULT_LAST: &str = "all";
pub const DEFAULT_LIMIT: usize = 100;
pub const DEFAULT_TOP: usize = 20;
pub const MAX_LIST: usize = 10_000;

/// A filter that cannot be applied (bad time, duration or query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportError {
    /// The filter field at fault.
    pub field: &'static str,
    /// What is wrong with the filter.
    pub message: String,
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ReportError {}

impl Filter {
    /// Parses the filter object from JSON text (`{}` is the default filter).
    pub fn from_json(text: &str) -> Result<Filter, ReportError> {
        let text = text.trim();
        if text.is_empty() || text == "null" {
            return Ok(Filter::default());
        }
        serde_json::from_str(text).map_err(|e| ReportError { field: "filter", message: e.to_string() })
    }

    pub(crate) fn time(&self, field: &'static str) -> Result<Option<i64>, ReportError> {
        let v = if field == "from" { &self.from } else { &self.to };
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => parse_micros(t).map(Some).ok_or_else(|| ReportError {
                field,
                message: format!("not an RFC 3339 time: {t:?} (e.g. 2020-04-21T17:58:49Z)"),
            }),
        }
    }

    /// The range length in microseconds; `None` for `all`.
    pub(crate) fn last_micros(&self) -> Result<Option<i64>, ReportError> {
        let last = self.last.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_LAST);
        if last.eq_ignore_ascii_case("all") {
            return Ok(None);
        }
        // The alerts' grammar (`event::time`); a range must be positive.
        parse_duration(last).ok().filter(|m| *m > 0).map(Some).ok_or_else(|| ReportError {
            field: "last",
            message: format!("expected a duration like 15m, 24h, 7d, 2w or \"all\", found {last:?}"),
        })
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIST)
    }

    pub(crate) fn top(&self) -> usize {
        self.top.unwrap_or(DEFAULT_TOP).clamp(1, MAX_LIST)
    }

    pub(crate) fn query_text(&self) -> Option<&str> {
        self.query.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
    Nothing(()),
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::<String>::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
        OneOrMany::Nothing(()) => Vec::new(),
    })
}

/// Codes as numbers or numeric strings (HTML form values), one or many.
fn codes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Num(i64),
        Text(String),
    }
    let list = match OneOrMany::<Code>::deserialize(d)? {
        OneOrMany::One(c) => vec![c],
        OneOrMany::Many(v) => v,
        OneOrMany::Nothing(()) => Vec::new(),
    };
    list.into_iter()
        .map(|c| match c {
            Code::Num(n) => Ok(n),
            Code::Text(s) => {
                s.trim().parse().map_err(|_| serde::de::Error::custom(format!("code: not a status code: {s:?}")))
            }
        })
        .collect()
}
