//! The one kaudit configuration file (YAML) that drives every host, and the embedded default.
//!
//! The core does no I/O: files a config refers to (a policy file, a GeoIP database) are read
//! through a [`FileSource`] the host provides, relative paths resolved by the host.

use crate::alert::AlertConfig;
use crate::enrich::{EnrichConfig, GeoDb, IpSet};
use crate::files::{read_text, FileSource};
use crate::policy::{self, Policy};
use crate::yaml::{self, Ctx, Diagnostic, DiagnosticKind, Kind, Node};

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
    /// `enabled`: false turns collection off: every record is consumed and nothing is written
    /// or alerted (the seed's "disable cluster auditing"); true (default) turns it back on.
    pub enabled: bool,
    /// The audit policy (`policy` or `policyFile`; the seed's by default).
    pub policy: Policy,
    /// `badRecords`.
    pub bad_records: BadRecords,
    /// `limits`.
    pub limits: Limits,
    /// Where the policy came from, for messages.
    pub policy_source: String,
    /// `enrichment`.
    pub enrichment: EnrichConfig,
    /// GeoIP database bytes (read through the host's [`FileSource`]) and the name language.
    pub geoip: Vec<Vec<u8>>,
    /// `enrichment.geoipLanguage`: the language of country and city names.
    pub geoip_language: String,
    /// `alerts`.
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
    /// Every error found, each naming file, line and field.
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
const CONFIG_KEYS: &[&str] = &["enabled", "policy", "policyFile", "badRecords", "limits", "enrichment", "alerts"];
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
            enabled: true,
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
        // In kaudit's own file an unknown key is a mistake, not a compatibility concern.
        let entries = ctx.strict_map_all(&node, CONFIG_KEYS, &mut errors)?;
        let mut policy_node: Option<&Node> = None;
        let mut policy_errors = Vec::new();
        for (key, value) in &entries {
            let name = key.name.as_str();
            let result = ctx.at(name, |c| -> Result<(), Diagnostic> {
                match name {
                    "enabled" => config.enabled = c.bool(value)?,
                    "policy" => policy_node = Some(*value),
                    "policyFile" => {
                        let path = c.string(value)?;
                        let text = read_text(c, files, &path, value.pos, "policy file")?;
                        // Its problems are the config's `policy`: every one is reported, at its full path.
                        match Policy::load(&text, &path) {
                            Ok(loaded) => {
                                c.warnings.extend(loaded.warnings.into_iter().map(|w| w.under("policy")));
                                config.policy = loaded.policy;
                                config.policy_source = path;
                            }
                            Err(e) => policy_errors.extend(e.errors.into_iter().map(|e| e.under("policy"))),
                        }
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
                        for (k, v) in c.strict_map(value, LIMIT_KEYS)? {
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
        errors.append(&mut policy_errors);
        if let Some(p) = policy_node {
            if entries.iter().any(|(k, _)| k.name == "policyFile") {
                errors.push(ctx.at("policy", |c| c.error(p.pos, "give either policy or policyFile, not both")));
            }
            match Policy::from_node(p, file) {
                Ok(loaded) => {
                    warnings.extend(loaded.warnings.into_iter().map(|w| w.under("policy")));
                    config.policy = loaded.policy;
                    config.policy_source = file.to_string();
                }
                Err(e) => errors.extend(e.errors.into_iter().map(|e| e.under("policy"))),
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
    let entries = c.strict_map(node, ENRICH_KEYS)?;
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
                        let bytes = files.read(path).map_err(|err| {
                            c.problem(DiagnosticKind::File, value.pos, format!("cannot read GeoIP database: {err}"))
                        })?;
                        dbs.push(bytes);
                    }
                    GeoDb::open(dbs.clone(), "en").map_err(|err| c.error(value.pos, err.to_string()))?;
                    config.geoip = dbs;
                }
                "highRiskIPs" => {
                    let nets = c.list(value, |c, n| {
                        let s = c.string(n)?;
                        IpSet::parse_entry(&s).map_err(|err| c.error(n.pos, err.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::NoFiles;

    fn errors(text: &str, files: &dyn FileSource) -> Vec<Diagnostic> {
        Config::load(text, "k.yaml", files).expect_err("must fail").errors
    }

    #[test]
    fn a_duplicate_key_is_the_same_error_in_every_section() {
        for (text, field) in [
            ("badRecords: pass\nbadRecords: drop\n", "badRecords"),
            ("enrichment:\n  exec: true\n  exec: false\n", "enrichment.exec"),
            ("alerts:\n  enabled: true\n  enabled: false\n", "alerts.enabled"),
            ("limits:\n  maxEventBytes: 9\n  maxEventBytes: 10\n", "limits.maxEventBytes"),
        ] {
            let e = errors(text, &NoFiles);
            assert_eq!(e.len(), 1, "{text:?}: {e:?}");
            assert_eq!(e[0].kind, DiagnosticKind::DuplicateKey, "{text:?}");
            assert_eq!(e[0].field, field);
            let line = if field.contains('.') { 2 } else { 1 };
            assert_eq!(e[0].message, format!("duplicate key (first given at line {line})"), "{text:?}");
        }
    }

    #[test]
    fn an_unknown_key_is_the_same_error_in_every_section() {
        for (text, field) in [
            ("badRecordz: pass\n", "badRecordz"),
            ("enrichment:\n  sourceIp: true\n", "enrichment.sourceIp"),
            ("alerts:\n  rulez: []\n", "alerts.rulez"),
            ("limits:\n  maxEvents: 9\n", "limits.maxEvents"),
        ] {
            let e = errors(text, &NoFiles);
            assert_eq!((e.len(), e[0].kind), (1, DiagnosticKind::UnknownKey), "{text:?}: {e:?}");
            assert_eq!(e[0].field, field);
            assert!(e[0].message.starts_with("unknown key (expected one of: "), "{}", e[0]);
        }
    }

    struct OnePolicy(&'static str);

    impl FileSource for OnePolicy {
        fn read(&self, _: &str) -> Result<Vec<u8>, crate::files::FileError> {
            Ok(self.0.as_bytes().to_vec())
        }
    }

    const TWO_ERRORS: &str =
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n- level: None\n  verbs: 3\n";

    #[test]
    fn every_policy_error_is_reported_under_policy_inline_or_from_a_file() {
        let from_file: Vec<String> =
            errors("policyFile: p.yaml\n", &OnePolicy(TWO_ERRORS)).iter().map(ToString::to_string).collect();
        assert_eq!(
            from_file,
            [
                "p.yaml:4:10: policy.rules[0].level: unsupported value \"Everything\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\"",
                "p.yaml:6:10: policy.rules[1].verbs: expected a list, found an integer",
            ]
        );
        let inline = TWO_ERRORS.lines().map(|l| format!("  {l}\n")).collect::<String>();
        let inline = errors(&format!("policy:\n{inline}"), &NoFiles);
        let fields: Vec<&str> = inline.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["policy.rules[0].level", "policy.rules[1].verbs"]);
        assert!(inline.iter().all(|d| d.file == "k.yaml"));
    }

    #[test]
    fn an_unreadable_policy_file_is_a_file_error() {
        let e = errors("policyFile: p.yaml\n", &NoFiles);
        assert_eq!((e[0].kind, e[0].field.as_str()), (DiagnosticKind::File, "policyFile"));
    }
}
