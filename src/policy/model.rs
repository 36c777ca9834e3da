//! The audit `Policy` (audit.k8s.io/v1 and v1beta1), loaded and validated as kube-apiserver does
//! (k8s.io/apiserver pkg/audit/policy/reader.go and pkg/apis/audit/validation), with errors that
//! name the file, line and field.

use crate::event::{Level, STAGES};
use crate::yaml::{self, Ctx, Diagnostic, Kind, Node};

/// `GroupResources`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupResources {
    /// `""` is the core group, `"*"` any group.
    pub group: String,
    /// Resources (and `resource/subresource`, `*/subresource`, `resource/*`) matched in the group.
    pub resources: Vec<String>,
    /// Object names matched.
    pub resource_names: Vec<String>,
}

/// `PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// The level of matching requests.
    pub level: Level,
    /// Users matched (empty: any).
    pub users: Vec<String>,
    /// User groups matched (empty: any).
    pub user_groups: Vec<String>,
    /// Verbs matched (empty: any).
    pub verbs: Vec<String>,
    /// Resources matched (empty: any).
    pub resources: Vec<GroupResources>,
    /// Namespaces matched (empty: any; `""` matches cluster-scoped requests).
    pub namespaces: Vec<String>,
    /// Non-resource URL paths matched (`/healthz*` prefixes).
    pub non_resource_urls: Vec<String>,
    /// Stages omitted for matching requests, added to the policy's.
    pub omit_stages: Vec<String>,
    /// Overrides the policy's `omitManagedFields` when set.
    pub omit_managed_fields: Option<bool>,
    /// Line of the rule in its file (for `explain` and `impact`).
    pub line: usize,
}

/// `Policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `apiVersion` (`audit.k8s.io/v1` or `v1beta1`).
    pub api_version: String,
    /// The rules, first match wins.
    pub rules: Vec<PolicyRule>,
    /// Stages omitted for every request.
    pub omit_stages: Vec<String>,
    /// Whether managedFields are omitted by default.
    pub omit_managed_fields: bool,
}

/// A policy that failed to load: every error found, plus the warnings.
#[derive(Debug, Clone)]
pub struct PolicyError {
    /// Every error found.
    pub errors: Vec<Diagnostic>,
    /// The warnings found before the errors (unknown fields).
    pub warnings: Vec<Diagnostic>,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// A loaded policy and the warnings (unknown fields dropped, as the apiserver's lenient fallback does).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The policy.
    pub policy: Policy,
    /// Unknown fields, dropped as kube-apiserver drops them.
    pub warnings: Vec<Diagnostic>,
}

const POLICY_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"];
const RULE_FIELDS: &[&str] = &[
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
];
const GROUP_FIELDS: &[&str] = &["group", "resources", "resourceNames"];

/// Accepted policy versions: the apiserver's `v1`, plus `v1beta1` on purpose (the seed's default).
pub const POLICY_VERSIONS: &[&str] = &["audit.k8s.io/v1", "audit.k8s.io/v1beta1"];

impl Policy {
    /// Loads a policy from YAML or JSON text; `file` names it in messages.
    pub fn load(text: &str, file: &str) -> Result<Loaded, PolicyError> {
        let node = yaml::parse(text, file).map_err(|e| PolicyError { errors: vec![e], warnings: vec![] })?;
        Policy::from_node(&node, file)
    }

    /// Loads a policy from an already parsed node (e.g. inlined in the kaudit config).
    pub fn from_node(node: &Node, file: &str) -> Result<Loaded, PolicyError> {
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        let mut ctx = Ctx::new(file, &mut warnings);
        let policy = decode_policy(&mut ctx, node, &mut errors);
        match policy {
            Some(policy) if errors.is_empty() => Ok(Loaded { policy, warnings }),
            _ => Err(PolicyError { errors, warnings }),
        }
    }
}

fn decode_policy(ctx: &mut Ctx, node: &Node, errors: &mut Vec<Diagnostic>) -> Option<Policy> {
    if matches!(node.kind, Kind::Null) {
        errors.push(ctx.error(node.pos, "empty policy: loaded illegal policy with 0 rules"));
        return None;
    }
    let entries = match ctx.map(node, POLICY_FIELDS) {
        Ok(e) => e,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut policy =
        Policy { api_version: String::new(), rules: Vec::new(), omit_stages: Vec::new(), omit_managed_fields: false };
    let mut kind = None;
    let mut rules_node = None;
    for (key, value) in &entries {
        let name = key.name.as_str();
        let result = ctx.at(name, |c| -> Result<(), Diagnostic> {
            match name {
                "apiVersion" => policy.api_version = c.string(value)?,
                "kind" => kind = Some((c.string(value)?, value.pos)),
                "metadata" => {
                    c.map(value, &["name", "namespace", "labels", "annotations", "creationTimestamp"])?;
                }
                "omitStages" => policy.omit_stages = decode_stages(c, value, errors)?,
                "omitManagedFields" => policy.omit_managed_fields = c.bool(value)?,
                "rules" => rules_node = Some(*value),
                _ => {}
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if !POLICY_VERSIONS.contains(&policy.api_version.as_str()) {
        let found =
            if policy.api_version.is_empty() { "none".to_string() } else { format!("{:?}", policy.api_version) };
        errors.push(ctx.at("apiVersion", |c| {
            c.error(
                node.pos,
                format!("unknown group version field {found}: expected one of {}", POLICY_VERSIONS.join(", ")),
            )
        }));
    }
    match kind {
        Some((k, _)) if k == "Policy" => {}
        Some((k, pos)) => errors.push(ctx.at("kind", |c| c.error(pos, format!("expected \"Policy\", found {k:?}")))),
        None => errors.push(ctx.at("kind", |c| c.error(node.pos, "missing: expected \"Policy\""))),
    }
    if let Some(rules) = rules_node {
        let decoded = ctx.at("rules", |c| {
            c.list(rules, |c, n| {
                let mut rule_errors = Vec::new();
                let rule = decode_rule(c, n, &mut rule_errors);
                errors.extend(rule_errors);
                Ok(rule)
            })
        });
        match decoded {
            Ok(rules) => policy.rules = rules.into_iter().flatten().collect(),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() && policy.rules.is_empty() {
        errors.push(
            ctx.at("rules", |c| c.error(rules_node.map_or(node.pos, |n| n.pos), "loaded illegal policy with 0 rules")),
        );
    }
    Some(policy)
}

fn decode_stages(ctx: &mut Ctx, node: &Node, errors: &mut Vec<Diagnostic>) -> Result<Vec<String>, Diagnostic> {
    ctx.list(node, |c, n| {
        let s = c.string(n)?;
        if !STAGES.contains(&s.as_str()) {
            errors.push(c.error(n.pos, format!("unsupported value {s:?}: supported values: {}", quoted(&STAGES))));
        }
        Ok(s)
    })
}

fn quoted(values: &[&str]) -> String {
    values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ")
}

fn decode_rule(ctx: &mut Ctx, node: &Node, errors: &mut Vec<Diagnostic>) -> Option<PolicyRule> {
    let entries = match ctx.map(node, RULE_FIELDS) {
        Ok(e) => e,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut rule = PolicyRule {
        level: Level::None,
        users: vec![],
        user_groups: vec![],
        verbs: vec![],
        resources: vec![],
        namespaces: vec![],
        non_resource_urls: vec![],
        omit_stages: vec![],
        omit_managed_fields: None,
        line: node.pos.line,
    };
    let mut level_seen = false;
    let mut positions = Vec::new();
    for (key, value) in &entries {
        let name = key.name.as_str();
        positions.push((name, value.pos));
        let result = ctx.at(name, |c| -> Result<(), Diagnostic> {
            match name {
                "level" => {
                    let s = c.string_or_null(value)?;
                    if s.is_empty() {
                        errors.push(c.error(value.pos, "Required value"));
                    } else {
                        match Level::parse(&s) {
                            Some(l) => rule.level = l,
                            None => errors.push(c.error(
                                value.pos,
                                format!(
                                    "unsupported value {s:?}: supported values: {}",
                                    quoted(&["None", "Metadata", "Request", "RequestResponse"])
                                ),
                            )),
                        }
                    }
                    level_seen = true;
                }
                "users" => rule.users = c.strings(value)?,
                "userGroups" => rule.user_groups = c.strings(value)?,
                "verbs" => rule.verbs = c.strings(value)?,
                "namespaces" => rule.namespaces = c.strings(value)?,
                "nonResourceURLs" => {
                    rule.non_resource_urls = c.list(value, |c, n| {
                        let url = c.string_or_null(n)?;
                        if let Some(msg) = non_resource_url_error(&url) {
                            errors.push(c.error(n.pos, msg));
                        }
                        Ok(url)
                    })?
                }
                "resources" => {
                    rule.resources = c.list(value, |c, n| {
                        let mut gr_errors = Vec::new();
                        let gr = decode_group_resources(c, n, &mut gr_errors)?;
                        errors.extend(gr_errors);
                        Ok(gr)
                    })?
                }
                "omitStages" => rule.omit_stages = decode_stages(c, value, errors)?,
                "omitManagedFields" => rule.omit_managed_fields = Some(c.bool(value)?),
                _ => {}
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if !level_seen {
        errors.push(ctx.at("level", |c| c.error(node.pos, "Required value")));
    }
    if !rule.non_resource_urls.is_empty() && (!rule.resources.is_empty() || !rule.namespaces.is_empty()) {
        let pos = positions.iter().find(|(n, _)| *n == "nonResourceURLs").map_or(node.pos, |p| p.1);
        errors.push(ctx.at("nonResourceURLs", |c| {
            c.error(pos, "rules cannot apply to both regular resources and non-resource URLs")
        }));
    }
    Some(rule)
}

/// The apiserver's checks on one nonResourceURL.
fn non_resource_url_error(url: &str) -> Option<String> {
    if url == "*" {
        return None;
    }
    if !url.starts_with('/') {
        return Some(format!("invalid value {url:?}: non-resource URL rules must begin with a '/' character"));
    }
    if let Some(i) = url.find('*') {
        if i != url.len() - 1 {
            return Some(format!(
                "invalid value {url:?}: non-resource URL wildcards '*' must be the final character of the rule"
            ));
        }
    }
    None
}

fn decode_group_resources(
    ctx: &mut Ctx,
    node: &Node,
    errors: &mut Vec<Diagnostic>,
) -> Result<GroupResources, Diagnostic> {
    let entries = ctx.map(node, GROUP_FIELDS)?;
    let mut gr = GroupResources::default();
    for (key, value) in &entries {
        let name = key.name.as_str();
        ctx.at(name, |c| -> Result<(), Diagnostic> {
            match name {
                "group" => {
                    gr.group = c.string_or_null(value)?;
                    if gr.group != "*" && !gr.group.is_empty() && !is_dns1123_subdomain(&gr.group) {
                        errors.push(c.error(
                            value.pos,
                            format!(
                                "invalid value {:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                                gr.group
                            ),
                        ));
                    }
                }
                "resources" => gr.resources = c.strings(value)?,
                "resourceNames" => gr.resource_names = c.strings(value)?,
                _ => {}
            }
            Ok(())
        })?;
    }
    if !gr.resource_names.is_empty() && gr.resources.is_empty() {
        let pos = entries.iter().find(|(k, _)| k.name == "resourceNames").map_or(node.pos, |(_, v)| v.pos);
        errors.push(ctx.at("resourceNames", |c| c.error(pos, "using resourceNames requires at least one resource")));
    }
    Ok(gr)
}

/// k8s.io/apimachinery IsDNS1123Subdomain.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && !b[0].is_ascii_uppercase()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && !b[b.len() - 1].is_ascii_uppercase()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    })
}
