//! The one kaudit configuration file (YAML) that drives every host, and the embedded default.
//!
//! The core does no I/O: files a config refers to (a policy file, a GeoIP database) are read
//! through a [`FileSource`] the host provides, relative paths resolved by the host.

use crate::alert::AlertConfig;
use crate::enrich::{EnrichConfig, GeoDb, IpSet};
use crate::policy::{self, Policy};
use crate::yaml::{self, Ctx, Diagnostic, Kind, Node};

/// Reads files a config refers to. Hosts implement it over their filesystem (or refuse).
pub trait FileSource {
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
    /// The file names (not paths) in directory `path`, sorted, for rule-pack directories.
    /// Hosts without directory access keep the default.
    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        Err(format!("{path}: this host cannot list directories; name the files"))
    }
}

/// A host with no filesystem: every file reference is an error.
pub struct NoFiles;

impl FileSource for NoFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!("{path}: this host has no file access; inline the content in the config"))
    }
}

/// What to do with a record that is not a valid audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRecords {
    /// Pass it through untouched (default: never lose a record).
    #[default]
    Pass,
    /// Drop it (still counted and reported).
    Drop,
}

/// Resource bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Events larger than this pass through untouched (like kube-apiserver's truncation, nothing is parsed).
    pub max_event_bytes: usize,
    /// `process_batch` bodies larger than this are forwarded untouched, unparsed (bounds the
    /// batch path's memory at about three copies of the body).
    pub max_batch_bytes: usize,
    /// Alerts held for the host between `take_alerts` calls; newer ones are dropped and counted.
    pub max_pending_alerts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_event_bytes: 64 * 1024 * 1024, max_batch_bytes: 256 * 1024 * 1024, max_pending_alerts: 10_000 }
    }
}

const LIMIT_KEYS: &[&str] = &["maxEventBytes", "maxBatchBytes", "maxPendingAlerts"];

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: Policy,
    pub bad_records: BadRecords,
    pub limits: Limits,
    /// Where the policy came from, for messages.
    pub policy_source: String,
    pub enrichment: EnrichConfig,
    /// GeoIP database bytes (read through the host's [`FileSource`]) and the name language.
    pub geoip: Vec<Vec<u8>>,
    pub geoip_language: String,
    pub alerts: AlertConfig,
}

impl Config {
    /// Opens the configured GeoIP databases (done once when the pipeline is built).
    pub fn open_geoip(&self) -> Option<GeoDb> {
        if self.geoip.is_empty() {
            return None;
        }
        GeoDb::open(self.geoip.clone(), &self.geoip_language).ok()
    }
}

/// A config that failed to load.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub errors: Vec<Diagnostic>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.errors.iter().map(|e| e.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

impl From<Diagnostic> for ConfigError {
    fn from(d: Diagnostic) -> Self {
        ConfigError { errors: vec![d] }
    }
}

/// The top-level keys of a kaudit config.
const CONFIG_KEYS: &[&str] = &["policy", "policyFile", "badRecords", "limits", "enrichment", "alerts"];
const ENRICH_KEYS: &[&str] = &[
    "enabled",
    "key",
    "sourceIP",
    "account",
    "userKind",
    "resource",
    "exec",
    "timing",
    "tags",
    "geoip",
    "geoipLanguage",
    "highRiskIPs",
];

impl Config {
    /// The embedded default: the seed's audit policy.
    pub fn embedded_default() -> Config {
        Config {
            policy: policy::default_policy(),
            bad_records: BadRecords::Pass,
            limits: Limits::default(),
            policy_source: "<embedded ack-default-audit-policy.yaml>".into(),
            enrichment: EnrichConfig::default(),
            geoip: Vec::new(),
            geoip_language: "en".into(),
            alerts: AlertConfig::embedded_default(),
        }
    }

    /// Loads a config file. `file` names it in messages; `files` reads what it refers to.
    /// Returns the config and its warnings (unknown policy fields).
    pub fn load(text: &str, file: &str, files: &dyn FileSource) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
        let node = yaml::parse(text, file)?;
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        let mut config = Config::embedded_default();
        if matches!(node.kind, Kind::Null) {
            return Ok((config, warnings));
        }
        let mut ctx = Ctx::new(file, &mut warnings);
        let entries = ctx.map(&node, CONFIG_KEYS)?;
        // In kaudit's own file an unknown key is a mistake, not a compatibility concern.
        errors.extend(ctx.warnings.drain(..).map(|mut d| {
            d.message = format!("unknown key (expected one of: {})", CONFIG_KEYS.join(", "));
            d
        }));
        let mut policy_node: Option<&Node> = None;
        for (key, value) in &entries {
            let name = key.name.as_str();
            let result = ctx.at(name, |c| -> Result<(), Diagnostic> {
                match name {
                    "policy" => policy_node = Some(*value),
                    "policyFile" => {
                        let path = c.string(value)?;
                        let bytes = files
                            .read(&path)
                            .map_err(|e| c.error(value.pos, format!("cannot read policy file: {e}")))?;
                        let text = String::from_utf8(bytes)
                            .map_err(|_| c.error(value.pos, format!("{path}: not UTF-8 text")))?;
                        let loaded = Policy::load(&text, &path).map_err(|e| {
                            let first = e.errors.first().cloned();
                            first.unwrap_or_else(|| c.error(value.pos, "invalid policy"))
                        })?;
                        c.warnings.extend(loaded.warnings);
                        config.policy = loaded.policy;
                        config.policy_source = path;
                    }
                    "badRecords" => {
                        config.bad_records = match c.string(value)?.as_str() {
                            "pass" => BadRecords::Pass,
                            "drop" => BadRecords::Drop,
                            other => return Err(c.error(value.pos, format!("expected pass or drop, found {other:?}"))),
                        }
                    }
                    "enrichment" => decode_enrichment(c, value, files, &mut config)?,
                    "alerts" => config.alerts = crate::alert::decode_config(c, value, files)?,
                    "limits" => {
                        for (k, v) in crate::alert::rule::strict_map(c, value, LIMIT_KEYS)? {
                            // Saturating: a 32-bit host must read the same limit as a 64-bit one.
                            let n = c.at(&k.name, |c| match c.u64(v)? {
                                0 => Err(c.error(v.pos, "must be at least 1")),
                                n => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                            })?;
                            match k.name.as_str() {
                                "maxEventBytes" => config.limits.max_event_bytes = n,
                                "maxBatchBytes" => config.limits.max_batch_bytes = n,
                                _ => config.limits.max_pending_alerts = n,
                            }
                        }
                    }
                    _ => {}
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(e);
            }
        }
        if let Some(p) = policy_node {
            if entries.iter().any(|(k, _)| k.name == "policyFile") {
                errors.push(ctx.at("policy", |c| c.error(p.pos, "give either policy or policyFile, not both")));
            }
            match Policy::from_node(p, file) {
                Ok(loaded) => {
                    warnings.extend(loaded.warnings);
                    config.policy = loaded.policy;
                    config.policy_source = file.to_string();
                }
                Err(e) => errors.extend(e.errors),
            }
        }
        if errors.is_empty() {
            Ok((config, warnings))
        } else {
            Err(ConfigError { errors })
        }
    }
}

fn decode_enrichment(c: &mut Ctx, node: &Node, files: &dyn FileSource, config: &mut Config) -> Result<(), Diagnostic> {
    // Only this map's warnings: earlier ones (a policy file's unknown fields) stay warnings.
    let known = c.warnings.len();
    let entries = c.map(node, ENRICH_KEYS)?;
    if c.warnings.len() > known {
        let w = c.warnings.remove(known);
        return Err(Diagnostic { message: format!("unknown key (expected one of: {})", ENRICH_KEYS.join(", ")), ..w });
    }
    let e = &mut config.enrichment;
    for (key, value) in entries {
        let name = key.name.as_str();
        c.at(name, |c| -> Result<(), Diagnostic> {
            match name {
                "enabled" => e.enabled = c.bool(value)?,
                "key" => {
                    e.key = c.string(value)?;
                    if e.key.is_empty() {
                        return Err(c.error(value.pos, "must not be empty"));
                    }
                }
                "sourceIP" => e.source_ip = c.bool(value)?,
                "account" => e.account = c.bool(value)?,
                "userKind" => e.user_kind = c.bool(value)?,
                "resource" => e.resource = c.bool(value)?,
                "exec" => e.exec = c.bool(value)?,
                "timing" => e.timing = c.bool(value)?,
                "tags" => e.tags = c.bool(value)?,
                "geoipLanguage" => config.geoip_language = c.string(value)?,
                "geoip" => {
                    let paths = match &value.kind {
                        Kind::Str(s) => vec![s.clone()],
                        _ => c.strings(value)?,
                    };
                    let mut dbs = Vec::new();
                    for path in &paths {
                        dbs.push(
                            files
                                .read(path)
                                .map_err(|err| c.error(value.pos, format!("cannot read GeoIP database: {err}")))?,
                        );
                    }
                    GeoDb::open(dbs.clone(), "en").map_err(|err| c.error(value.pos, err))?;
                    config.geoip = dbs;
                }
                "highRiskIPs" => {
                    let nets = c.list(value, |c, n| {
                        let s = c.string(n)?;
                        IpSet::parse_entry(&s).map_err(|err| c.error(n.pos, err))
                    })?;
                    e.high_risk = IpSet::new(nets);
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(())
}
