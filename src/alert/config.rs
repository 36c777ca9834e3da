//! The config's `alerts` section: which rules run (embedded defaults, packs, inline rules,
//! `disable`) and the engine's resource bounds.

use std::sync::Arc;

use super::decode;
use super::lists::{decode_lists, Lists};
use super::pack::{load_pack_entry, load_pack_text, DEFAULT_RULES};
use super::route::{decode_routes, AlertPayload, AlertRoute};
use super::rule::Rule;
use super::sigma;
use crate::files::FileSource;
use crate::query::QueryLimits;
use crate::yaml::{self, Ctx, Diagnostic, Kind, Node};

/// Resource bounds of the alert engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertLimits {
    /// Groups kept per rule; the least recently updated is evicted beyond this.
    pub max_groups: usize,
    /// Distinct values tracked per `distinct()` aggregate and group.
    pub max_distinct: usize,
    /// auditIDs listed in one alert (the most recent in the window).
    pub max_audit_ids: usize,
    /// Compiled size allowed for each regex in the rules' queries (checked at load).
    pub max_regex_bytes: usize,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits {
            max_groups: 10_000,
            max_distinct: 1_000,
            max_audit_ids: 10,
            max_regex_bytes: QueryLimits::default().max_regex_bytes,
        }
    }
}

/// `alerts.role`: where alerts are raised when several kaudit instances share a stream
/// (docs/SCALING.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// One instance sees the whole stream and raises every alert (the default).
    #[default]
    Single,
    /// Sees a share of the stream: stateful rules emit partial records for an aggregator.
    Agent,
    /// Raises the alerts of stateful rules from the partials of any number of agents.
    Aggregator,
}

impl Role {
    /// The names as written in the config.
    pub const NAMES: &'static [&'static str] = &["single", "agent", "aggregator"];

    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Agent => "agent",
            Role::Aggregator => "aggregator",
        }
    }
}

/// `alerts.aggregation`: how agents cut partials and how the aggregator closes windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregationConfig {
    /// `agentId`: the agent's name in its partials (hosts may override it per record, e.g. a
    /// Fluent Bit `kaudit_agent` member). Agents sharing one aggregator need distinct ids.
    pub agent_id: String,
    /// `flushEvery`: event time covered by one partial (per rule and group).
    pub flush_every: i64,
    /// `lateness`: how long (event time) an agent waits after a period ends before flushing it.
    pub lateness: i64,
    /// `perEventRules: aggregator`: rules without state are raised by the aggregator too
    /// (exactly once across agent restarts) instead of by the agent at once.
    pub per_event_to_aggregator: bool,
    /// `idleAfter`: an agent whose watermark is more than this (event time) behind the newest
    /// agent's is not waited for.
    pub idle_after: i64,
    /// `allowedLateness`: the aggregator closes a period this long (event time) after every
    /// live agent's watermark passed it, for partials that a transport delivers out of order
    /// (a retried chunk). What comes later still is merged as late (counted).
    pub allowed_lateness: i64,
    /// `gapTimeout`: how far (event time) an agent run's own watermarks may move past one that
    /// waits for earlier-numbered records before the missing ones are given up (counted
    /// `missing`) and the watermark moves the agent.
    pub gap_timeout: i64,
    /// `partitioned`: this aggregator gets the partials of some group keys only (partitioned
    /// by the transport, with every agent's watermarks): the agents' sequence numbers have gaps
    /// by design and are not waited for; order is the transport's within a partition.
    pub partitioned: bool,
    /// `agents`: how many agents the aggregator expects; one not heard from yet counts as
    /// being at the earliest watermark received (0: wait only for the agents heard from).
    pub agents: usize,
}

impl Default for AggregationConfig {
    fn default() -> Self {
        AggregationConfig {
            agent_id: String::new(),
            flush_every: 10_000_000,
            lateness: 5_000_000,
            per_event_to_aggregator: false,
            idle_after: 15 * 60_000_000,
            allowed_lateness: 30_000_000,
            gap_timeout: 5 * 60_000_000,
            partitioned: false,
            agents: 0,
        }
    }
}

/// The `alerts` section of the config: rules, rule packs, limits.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// `alerts.enabled`: when false no rule runs (hosts that evaluate alerts elsewhere turn it off).
    pub enabled: bool,
    /// Compiled rules, in evaluation order (shared by every engine built from the config).
    pub rules: Vec<Arc<Rule>>,
    /// `alerts.limits`.
    pub limits: AlertLimits,
    /// `alerts.role`.
    pub role: Role,
    /// `alerts.aggregation`.
    pub aggregation: AggregationConfig,
    /// `alerts.routes`: where alerts go and in which format. Empty: the host's one alert
    /// destination gets JSON lines (docs/ALERTS.md, "Routes").
    pub routes: Vec<AlertRoute>,
}

impl Default for AlertConfig {
    /// No rules.
    fn default() -> Self {
        AlertConfig {
            enabled: true,
            rules: Vec::new(),
            limits: AlertLimits::default(),
            role: Role::Single,
            aggregation: AggregationConfig::default(),
            routes: Vec::new(),
        }
    }
}

impl AlertConfig {
    /// The embedded default: the seed's alert examples and important operations.
    pub fn embedded_default() -> AlertConfig {
        let mut cfg = AlertConfig::default();
        // The embedded file is checked by tests; should it ever fail, no rules is the safe state.
        if let Ok(rules) =
            load_pack_text(DEFAULT_RULES, "<embedded default-alerts.yaml>", &Lists::new(), QueryLimits::default())
        {
            cfg.rules = rules.into_iter().map(Arc::new).collect();
        }
        cfg
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().map(|r| r.as_ref()).find(|r| r.name == name)
    }

    /// The route named `name`.
    pub fn route(&self, name: &str) -> Option<&AlertRoute> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The payloads of `alerts` for `route` (see [`AlertRoute::payloads`]), with the rules'
    /// descriptions.
    pub fn payloads(&self, route: &AlertRoute, alerts: &[String]) -> Vec<AlertPayload> {
        route.payloads(alerts, &|name| self.rule(name).map(|r| r.description.clone()))
    }

    /// All of `alerts` for `route` in one payload (see [`AlertRoute::payload`]).
    pub fn payload(&self, route: &AlertRoute, alerts: &[String]) -> Option<AlertPayload> {
        route.payload(alerts, &|name| self.rule(name).map(|r| r.description.clone()))
    }
}

/// Keys of the `alerts` section.
const ALERT_KEYS: &[&str] =
    &["enabled", "role", "aggregation", "defaultRules", "packs", "lists", "disable", "limits", "rules", "routes"];
const AGGREGATION_KEYS: &[&str] = &[
    "agentId",
    "flushEvery",
    "lateness",
    "perEventRules",
    "idleAfter",
    "allowedLateness",
    "gapTimeout",
    "partitioned",
    "agents",
];
const LIMIT_KEYS: &[&str] = &["maxGroups", "maxDistinct", "maxAuditIDs", "maxRegexBytes"];

/// Decodes the config's `alerts` section.
pub fn decode_config(ctx: &mut Ctx, node: &Node, files: &dyn FileSource) -> Result<AlertConfig, Diagnostic> {
    if matches!(node.kind, Kind::Null) {
        return Ok(AlertConfig::embedded_default());
    }
    let entries = ctx.strict_map(node, ALERT_KEYS)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key.name == k).map(|(key, v)| (*key, *v));
    let mut cfg = AlertConfig::default();
    if let Some((_, v)) = get("enabled") {
        cfg.enabled = ctx.at("enabled", |c| c.bool(v))?;
    }
    if let Some((_, v)) = get("role") {
        cfg.role = ctx.at("role", |c| {
            let text = c.string(v)?;
            match text.as_str() {
                "single" => Ok(Role::Single),
                "agent" => Ok(Role::Agent),
                "aggregator" => Ok(Role::Aggregator),
                _ => Err(c.error(v.pos, format!("expected one of {}, found {text:?}", Role::NAMES.join(", ")))),
            }
        })?;
    }
    if let Some((_, v)) = get("aggregation") {
        cfg.aggregation = ctx.at("aggregation", |c| decode_aggregation(c, v))?;
    }
    if let Some((_, v)) = get("limits") {
        ctx.at("limits", |c| -> Result<(), Diagnostic> {
            for (k, n) in c.strict_map(v, LIMIT_KEYS)? {
                let value = c.at(&k.name, |c| {
                    let x = c.u64(n)?;
                    if x == 0 || x > 100_000_000 {
                        return Err(c.error(n.pos, "expected a number from 1 to 100000000"));
                    }
                    Ok(x as usize)
                })?;
                match k.name.as_str() {
                    "maxGroups" => cfg.limits.max_groups = value,
                    "maxDistinct" => cfg.limits.max_distinct = value,
                    "maxRegexBytes" => cfg.limits.max_regex_bytes = value,
                    _ => cfg.limits.max_audit_ids = value,
                }
            }
            Ok(())
        })?;
    }
    if let Some((_, v)) = get("routes") {
        cfg.routes = ctx.at("routes", |c| decode_routes(c, v))?;
    }
    let query_limits = QueryLimits { max_regex_bytes: cfg.limits.max_regex_bytes };
    // Lists first: the config's lists override a pack's lists of the same name.
    let mut config_lists = Lists::new();
    if let Some((_, v)) = get("lists") {
        ctx.at("lists", |c| decode_lists(c, v, &mut config_lists))?;
    }
    let mut rules: Vec<(Rule, String)> = Vec::new();
    let defaults = match get("defaultRules") {
        Some((_, v)) => ctx.at("defaultRules", |c| c.bool(v))?,
        None => true,
    };
    if defaults {
        for r in load_pack_text(DEFAULT_RULES, "<embedded default-alerts.yaml>", &Lists::new(), query_limits)? {
            rules.push((r, "the embedded default rules".into()));
        }
    }
    if let Some((_, v)) = get("packs") {
        ctx.at("packs", |c| -> Result<(), Diagnostic> {
            let entries = c.list(v, |c, n| Ok((c.string(n)?, n.pos)))?;
            for (i, (entry, pos)) in entries.into_iter().enumerate() {
                let loaded = c.at_index(i, |c| load_pack_entry(c, &entry, pos, files, &config_lists, query_limits))?;
                for r in loaded {
                    add_rule(c, &mut rules, r, &entry, pos)?;
                }
            }
            Ok(())
        })?;
    }
    if let Some((_, v)) = get("rules") {
        ctx.at("rules", |c| -> Result<(), Diagnostic> {
            let Kind::Seq(items) = &v.kind else {
                if matches!(v.kind, Kind::Null) {
                    return Ok(());
                }
                return Err(c.error(v.pos, format!("expected a list of rules, found {}", v.type_name())));
            };
            for (i, item) in items.iter().enumerate() {
                c.at_index(i, |c| -> Result<(), Diagnostic> {
                    // A Sigma rule may be written inline (hosts without files cannot read packs).
                    let decoded = if sigma::is_sigma(item) {
                        Some(sigma::compile(c, item, query_limits)?)
                    } else {
                        decode::decode_rule(c, item, "config", &config_lists, query_limits)?
                    };
                    if let Some(r) = decoded {
                        add_rule(c, &mut rules, r, "the config", item.pos)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    if let Some((_, v)) = get("disable") {
        ctx.at("disable", |c| -> Result<(), Diagnostic> {
            let names = c.list(v, |c, n| Ok((c.string(n)?, n.pos)))?;
            for (name, pos) in names {
                let before = rules.len();
                rules.retain(|(r, _)| r.name != name);
                if rules.len() == before {
                    return Err(c.error(pos, format!("no rule named {name:?} to disable")));
                }
            }
            Ok(())
        })?;
    }
    cfg.rules = rules.into_iter().map(|(r, _)| Arc::new(r)).collect();
    Ok(cfg)
}

/// `alerts.aggregation`.
fn decode_aggregation(c: &mut Ctx, node: &Node) -> Result<AggregationConfig, Diagnostic> {
    let mut a = AggregationConfig::default();
    for (k, v) in c.strict_map(node, AGGREGATION_KEYS)? {
        c.at(&k.name, |c| -> Result<(), Diagnostic> {
            let duration = |c: &Ctx| -> Result<i64, Diagnostic> {
                let text = match &v.kind {
                    Kind::Int(0) => "0".to_string(),
                    _ => c.string(v)?,
                };
                crate::event::time::parse_duration(&text).map_err(|e| c.error(v.pos, e.to_string()))
            };
            match k.name.as_str() {
                "agentId" => a.agent_id = c.string(v)?,
                "flushEvery" => {
                    a.flush_every = duration(c)?;
                    if a.flush_every != 0 && a.flush_every < 1_000_000 {
                        return Err(c.error(v.pos, "must be 0 (send every match at once) or at least 1s"));
                    }
                }
                "lateness" => a.lateness = duration(c)?,
                "idleAfter" => a.idle_after = duration(c)?,
                "allowedLateness" => a.allowed_lateness = duration(c)?,
                "gapTimeout" => a.gap_timeout = duration(c)?,
                "partitioned" => a.partitioned = c.bool(v)?,
                "agents" => {
                    a.agents = match c.u64(v)? {
                        n @ 0..=10_000 => n as usize,
                        _ => return Err(c.error(v.pos, "expected a number of agents from 0 to 10000")),
                    }
                }
                _ => {
                    a.per_event_to_aggregator = match c.string(v)?.as_str() {
                        "local" => false,
                        "aggregator" => true,
                        other => return Err(c.error(v.pos, format!("expected local or aggregator, found {other:?}"))),
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(a)
}

/// Adds a rule unless its name is taken.
fn add_rule(c: &Ctx, rules: &mut Vec<(Rule, String)>, r: Rule, origin: &str, pos: yaml::Pos) -> Result<(), Diagnostic> {
    if let Some((_, first)) = rules.iter().find(|(x, _)| x.name == r.name) {
        return Err(c.error(pos, format!("rule {:?} from {origin} is already defined by {first}; rename it, or disable the other one with alerts.disable", r.name)));
    }
    rules.push((r, origin.to_string()));
    Ok(())
}
