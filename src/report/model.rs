//! The report as serialized (schema `kaudit.report/v1`, documented field by field in
//! `docs/REPORTS.md`). Field order is fixed and every list is sorted deterministically, so the
//! same input and filter give byte-identical JSON in every host.

use serde::Serialize;

/// One report: the three tabs for one filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema: &'static str,
    pub input: InputSummary,
    pub range: TimeRange,
    pub filter: AppliedFilter,
    pub facets: Facets,
    pub overview: Overview,
    pub operations: Operations,
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
    pub oldest: Option<String>,
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
    pub to: Option<String>,
    /// Events read whose time falls in the range (before the other filters): the report covers
    /// `events` of `input.events`.
    pub events: u64,
    /// Timeline bucket length.
    pub step: String,
    pub step_seconds: i64,
}

/// The non-time filters as applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedFilter {
    pub namespace: Vec<String>,
    pub account: Vec<String>,
    pub code: Vec<i64>,
    pub query: Option<String>,
    pub limit: usize,
    pub top: usize,
}

/// Every value seen in the whole input, for filter controls.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    pub namespaces: Vec<String>,
    pub accounts: Vec<String>,
    pub codes: Vec<i64>,
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
    pub timeline: Vec<Bucket>,
    pub important: Important,
    pub by_namespace: Distribution,
    pub by_account: Distribution,
    pub by_status_code: Distribution,
    pub by_source_ip: IpDistribution,
    pub by_region: Distribution,
    pub by_ip_scope: Distribution,
}

/// One timeline bucket: events starting at `start` for `range.stepSeconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub start: String,
    pub count: u64,
    pub failed: u64,
}

/// The seed's important operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Important {
    pub internet_access: EventList,
    pub command_execution: EventList,
    pub resource_deletion: EventList,
    pub secret_access: EventList,
}

/// A count and the newest `limit` of those events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    pub count: u64,
    pub events: Vec<EventDetail>,
}

/// Counts by key, largest first (ties by key); the entries past `top` are summed in `others`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    pub entries: Vec<Entry>,
    pub others: u64,
    /// Number of distinct keys.
    pub distinct: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub key: String,
    pub count: u64,
}

/// Source IPs with their scope and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpDistribution {
    pub entries: Vec<IpEntry>,
    pub others: u64,
    pub distinct: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpEntry {
    pub key: String,
    pub count: u64,
    pub failed: u64,
    pub scope: String,
    pub region: String,
}

/// create / update / delete / access counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpCounts {
    pub total: u64,
    pub create: u64,
    pub update: u64,
    pub delete: u64,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub category: String,
    pub totals: OpCounts,
    pub resources: Vec<ResourceOps>,
    /// Types past `top` (category `other` only), summed.
    pub others: OpCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOps {
    pub resource_type: String,
    pub ops: OpCounts,
}

/// The "Operation Details" tab for one resource type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    /// The type shown (`null` when no event has a resource).
    pub resource_type: Option<String>,
    pub ops: OpCounts,
    pub success: u64,
    pub failure: u64,
    pub success_rate: Option<f64>,
    pub by_namespace: Distribution,
    pub by_account: Distribution,
    pub timeline: Vec<OpBucket>,
    pub events: EventList,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpBucket {
    pub start: String,
    pub create: u64,
    pub update: u64,
    pub delete: u64,
    pub access: u64,
}

/// One event as listed in a table. Empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(rename = "auditID", skip_serializing_if = "String::is_empty")]
    pub audit_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stage: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operation: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(rename = "sourceIP", skip_serializing_if = "String::is_empty")]
    pub source_ip: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_scope: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    #[serde(rename = "requestURI", skip_serializing_if = "String::is_empty")]
    pub request_uri: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container: String,
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
