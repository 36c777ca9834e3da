//! The report as serialized (schema `kaudit.report/v1`, documented field by field in
//! `docs/REPORTS.md`). Field order is fixed and every list is sorted deterministically, so the
//! same input and filter give byte-identical JSON in every host.

use serde::Serialize;

/// One report: the three tabs for one filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `kaudit.report/v1`.
    pub schema: &'static str,
    /// What was read.
    pub input: InputSummary,
    /// The time range covered.
    pub range: TimeRange,
    /// The filter applied.
    pub filter: AppliedFilter,
    /// The values the filter can choose from.
    pub facets: Facets,
    /// The Overview tab.
    pub overview: Overview,
    /// The Operations Overview tab.
    pub operations: Operations,
    /// The Operation Details tab.
    pub details: Details,
}

/// What the builder has seen, independent of the filter. (How a host stores events, e.g.
/// whether it keeps raw text, is left out: the report depends only on input and filter.)
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputSummary {
    /// Audit events pushed.
    pub events: u64,
    /// Records that were not audit events (not counted anywhere else).
    pub bad: u64,
    /// Events without a usable timestamp: only in reports with no time bound at all.
    pub untimed: u64,
    /// Time of the oldest event.
    pub oldest: Option<String>,
    /// Time of the newest event.
    pub newest: Option<String>,
    /// Events whose detail strings were evicted to stay within the memory cap (oldest first).
    pub details_dropped: u64,
}

/// The time range the report covers and the timeline's bucket size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    /// Inclusive bounds; `null` = unbounded.
    pub from: Option<String>,
    /// Inclusive upper bound; `null` = unbounded.
    pub to: Option<String>,
    /// Events read whose time falls in the range (before the other filters): the report covers
    /// `events` of `input.events`.
    pub events: u64,
    /// Timeline bucket length.
    pub step: String,
    /// Timeline bucket length in seconds.
    pub step_seconds: i64,
}

/// The non-time filters as applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedFilter {
    /// Namespaces kept (empty: all).
    pub namespace: Vec<String>,
    /// Accounts kept (empty: all).
    pub account: Vec<String>,
    /// Response codes kept (empty: all).
    pub code: Vec<i64>,
    /// The search-language query events must match.
    pub query: Option<String>,
    /// Events listed per table.
    pub limit: usize,
    /// Entries per distribution.
    pub top: usize,
}

/// Every value seen in the whole input, for filter controls.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    /// Namespaces seen.
    pub namespaces: Vec<String>,
    /// Accounts seen.
    pub accounts: Vec<String>,
    /// Response codes seen.
    pub codes: Vec<i64>,
    /// Resource types seen.
    pub resource_types: Vec<String>,
}

/// The "Overview" tab.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// Events in range that pass the filters.
    pub total: u64,
    /// Status code < 400.
    pub success: u64,
    /// Status code >= 400.
    pub failure: u64,
    /// `success / (success + failure)` in percent, one decimal; `null` when both are 0.
    pub success_rate: Option<f64>,
    /// Events per time bucket.
    pub timeline: Vec<Bucket>,
    /// The important operations.
    pub important: Important,
    /// Events per namespace.
    pub by_namespace: Distribution,
    /// Events per account.
    pub by_account: Distribution,
    /// Events per response code.
    pub by_status_code: Distribution,
    /// Events per source address.
    pub by_source_ip: IpDistribution,
    /// Events per region (GeoIP).
    pub by_region: Distribution,
    /// Events per address scope (internet, intranet).
    pub by_ip_scope: Distribution,
}

/// One timeline bucket: events starting at `start` for `range.stepSeconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// Bucket start time.
    pub start: String,
    /// Events in the bucket.
    pub count: u64,
    /// Of `count`: failed requests.
    pub failed: u64,
}

/// The seed's important operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Important {
    /// Requests from Internet addresses.
    pub internet_access: EventList,
    /// Commands run in containers.
    pub command_execution: EventList,
    /// Deletions.
    pub resource_deletion: EventList,
    /// Secret reads.
    pub secret_access: EventList,
}

/// A count and the newest `limit` of those events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// Matching events (more than listed when over the limit).
    pub count: u64,
    /// The most recent, up to the limit.
    pub events: Vec<EventDetail>,
}

/// Counts by key, largest first (ties by key); the entries past `top` are summed in `others`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// The top entries.
    pub entries: Vec<Entry>,
    /// Events in the entries not listed.
    pub others: u64,
    /// Number of distinct keys.
    pub distinct: u64,
}

/// One value of a distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The value.
    pub key: String,
    /// Events with it.
    pub count: u64,
}

/// Source IPs with their scope and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpDistribution {
    /// The top addresses.
    pub entries: Vec<IpEntry>,
    /// Events from addresses not listed.
    pub others: u64,
    /// Distinct addresses.
    pub distinct: u64,
}

/// One source address of a distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpEntry {
    /// The address.
    pub key: String,
    /// Events from it.
    pub count: u64,
    /// Of `count`: failed requests.
    pub failed: u64,
    /// `internet` or `intranet`.
    pub scope: String,
    /// Where it is (GeoIP).
    pub region: String,
}

/// create / update / delete / access counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpCounts {
    /// All operations.
    pub total: u64,
    /// Creations.
    pub create: u64,
    /// Updates and patches.
    pub update: u64,
    /// Deletions.
    pub delete: u64,
    /// Reads (get, list, watch).
    pub access: u64,
}

/// The "Operations Overview" tab.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operations {
    /// Every event with a resource.
    pub totals: OpCounts,
    /// compute, network, storage (the console's types, always listed), then other.
    pub categories: Vec<Category>,
}

/// The operations on one resource category.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    /// The category.
    pub category: String,
    /// Its operations.
    pub totals: OpCounts,
    /// Per resource type.
    pub resources: Vec<ResourceOps>,
    /// Types past `top` (category `other` only), summed.
    pub others: OpCounts,
}

/// The operations on one resource type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOps {
    /// The resource type.
    pub resource_type: String,
    /// Its operations.
    pub ops: OpCounts,
}

/// The "Operation Details" tab for one resource type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    /// The type shown (`null` when no event has a resource).
    pub resource_type: Option<String>,
    /// Operations of the selected kind.
    pub ops: OpCounts,
    /// Of `ops`: succeeded.
    pub success: u64,
    /// Of `ops`: failed.
    pub failure: u64,
    /// `success / (success + failure)`; `null` when neither is known.
    pub success_rate: Option<f64>,
    /// Per namespace.
    pub by_namespace: Distribution,
    /// Per account.
    pub by_account: Distribution,
    /// Per time bucket.
    pub timeline: Vec<OpBucket>,
    /// The most recent.
    pub events: EventList,
}

/// Operations in one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpBucket {
    /// Bucket start time.
    pub start: String,
    /// Creations.
    pub create: u64,
    /// Updates.
    pub update: u64,
    /// Deletions.
    pub delete: u64,
    /// Reads.
    pub access: u64,
}

/// One event as listed in a table. Empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// Stage time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `auditID`.
    #[serde(rename = "auditID", skip_serializing_if = "String::is_empty")]
    pub audit_id: String,
    /// `stage`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stage: String,
    /// `verb`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub verb: String,
    /// create, update, delete or access.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// The username.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Who really acted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// The namespace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The resource type.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_type: String,
    /// The subresource.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    /// The object name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The response code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Whether it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// The source address.
    #[serde(rename = "sourceIP", skip_serializing_if = "String::is_empty")]
    pub source_ip: String,
    /// `internet` or `intranet`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_scope: String,
    /// Where the source address is (GeoIP).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// `userAgent`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// `requestURI`.
    #[serde(rename = "requestURI", skip_serializing_if = "String::is_empty")]
    pub request_uri: String,
    /// The command run by `kubectl exec`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// Its container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// The enrichment's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<&'static str>,
    /// The detail strings (auditID, name, requestURI, command, container) were evicted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub details_dropped: bool,
}

impl Report {
    /// The report as compact JSON (what `kaudit report --json` prints and the npm package returns).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
