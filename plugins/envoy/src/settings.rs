//! The plugin configuration (Envoy's `configuration` StringValue): a small JSON or YAML envelope
//! that carries the kaudit config text inline (Envoy gives the plugin no filesystem) and the
//! host settings for alert delivery.
//!
//! ```yaml
//! config: |              # the kaudit config file, inline; absent or empty: the embedded default
//!   policy: {...}
//! alerts:                # all optional
//!   cluster: kaudit_alerts
//!   path: /alerts
//!   authority: kaudit-alerts
//!   timeoutMs: 5000
//! ```
//!
//! An empty configuration means the embedded default with default alert settings. Anything
//! wrong is an error naming the line and field, so `on_configure` fails and Envoy refuses to
//! start instead of running with an empty or default policy.

use kaudit::yaml::{self, Ctx, Diagnostic, Kind, Node};
use kaudit::{Config, NoFiles, Pipeline};

/// How the envelope is named in messages.
pub const ENVELOPE_NAME: &str = "envoy plugin configuration";
/// How the inline kaudit config is named in messages (its line numbers count from the first
/// line of the `config` text, not of envoy.yaml).
pub const CONFIG_NAME: &str = "kaudit config (plugin configuration `config`)";

const ENVELOPE_KEYS: &[&str] = &["config", "alerts"];
const ALERT_KEYS: &[&str] = &["cluster", "path", "authority", "timeoutMs"];

/// Where alerts are POSTed: an Envoy cluster and the request's path and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTarget {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
}

impl Default for AlertTarget {
    fn default() -> Self {
        AlertTarget {
            cluster: "kaudit_alerts".into(),
            path: "/alerts".into(),
            authority: "kaudit-alerts".into(),
            timeout_ms: 5000,
        }
    }
}

/// The decoded plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The kaudit config text; `None` for the embedded default.
    pub config: Option<String>,
    pub alerts: AlertTarget,
}

impl Settings {
    /// Decodes the plugin configuration bytes (empty or whitespace: all defaults).
    pub fn parse(bytes: &[u8]) -> Result<Settings, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format!("{ENVELOPE_NAME}: not UTF-8 (invalid byte at offset {})", e.valid_up_to()))?;
        let node = yaml::parse(text, ENVELOPE_NAME).map_err(|d| d.to_string())?;
        if matches!(node.kind, Kind::Null) {
            return Ok(Settings::default());
        }
        decode(&node).map_err(|d| d.to_string())
    }

    /// Loads the kaudit config the settings carry, with its warnings as text.
    /// Errors name the file, line, column and field (kaudit's `ConfigError`).
    pub fn config(&self) -> Result<(Config, Vec<String>), String> {
        match self.config.as_deref() {
            None => Ok((Config::embedded_default(), Vec::new())),
            Some(text) => {
                let (config, warnings) = Config::load(text, CONFIG_NAME, &NoFiles).map_err(|e| e.to_string())?;
                Ok((config, warnings.iter().map(ToString::to_string).collect()))
            }
        }
    }

    /// The pipeline the settings describe (the config as given), with the config's warnings.
    pub fn pipeline(&self) -> Result<(Pipeline, Vec<String>), String> {
        self.config().map(|(config, warnings)| (Pipeline::new(config), warnings))
    }
}

fn decode(node: &Node) -> Result<Settings, Diagnostic> {
    let mut warnings = Vec::new();
    let mut ctx = Ctx::new(ENVELOPE_NAME, &mut warnings);
    let mut settings = Settings::default();
    let entries = ctx.strict_map(node, ENVELOPE_KEYS)?;
    for (key, value) in entries {
        match key.name.as_str() {
            "config" => {
                let text = ctx.at("config", |c| match &value.kind {
                    Kind::Null => Ok(String::new()),
                    Kind::Str(s) => Ok(s.clone()),
                    _ => Err(c.error(
                        value.pos,
                        format!(
                            "expected the kaudit config as text (a YAML block scalar `config: |`), found {}",
                            value.type_name()
                        ),
                    )),
                })?;
                settings.config = (!text.trim().is_empty()).then_some(text);
            }
            "alerts" => ctx.at("alerts", |c| decode_alerts(c, value, &mut settings.alerts))?,
            _ => {}
        }
    }
    Ok(settings)
}

fn decode_alerts(c: &mut Ctx<'_>, node: &Node, target: &mut AlertTarget) -> Result<(), Diagnostic> {
    if matches!(node.kind, Kind::Null) {
        return Ok(());
    }
    let entries = c.strict_map(node, ALERT_KEYS)?;
    for (key, value) in entries {
        c.at(&key.name, |c| -> Result<(), Diagnostic> {
            match key.name.as_str() {
                "cluster" => target.cluster = non_empty(c, value)?,
                "path" => {
                    let path = non_empty(c, value)?;
                    if !path.starts_with('/') {
                        return Err(c.error(value.pos, format!("must start with '/', found {path:?}")));
                    }
                    target.path = path;
                }
                "authority" => target.authority = non_empty(c, value)?,
                "timeoutMs" => {
                    let ms = c.u64(value)?;
                    if ms == 0 {
                        return Err(c.error(value.pos, "must be greater than 0"));
                    }
                    target.timeout_ms = ms;
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn non_empty(c: &Ctx<'_>, node: &Node) -> Result<String, Diagnostic> {
    let s = c.string(node)?;
    if s.is_empty() {
        return Err(c.error(node.pos, "must not be empty"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_is_the_embedded_default() {
        for text in ["", "  \n", "{}"] {
            let s = Settings::parse(text.as_bytes()).unwrap();
            assert_eq!(s, Settings::default(), "{text:?}");
            assert_eq!(
                s.pipeline().unwrap().0.config().policy_source,
                Pipeline::embedded_default().config().policy_source
            );
        }
    }

    #[test]
    fn json_and_yaml_envelopes_decode_the_same() {
        let json = r#"{"config":"policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n  - level: Metadata\n","alerts":{"cluster":"sink","path":"/a","authority":"a.local","timeoutMs":250}}"#;
        let yaml = "config: |\n  policy:\n    apiVersion: audit.k8s.io/v1\n    kind: Policy\n    rules:\n    - level: Metadata\nalerts:\n  cluster: sink\n  path: /a\n  authority: a.local\n  timeoutMs: 250\n";
        let a = Settings::parse(json.as_bytes()).unwrap();
        let b = Settings::parse(yaml.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.alerts,
            AlertTarget { cluster: "sink".into(), path: "/a".into(), authority: "a.local".into(), timeout_ms: 250 }
        );
        assert_eq!(a.pipeline().unwrap().0.config().policy_source, CONFIG_NAME);
    }

    #[test]
    fn a_bad_kaudit_config_is_an_error_with_its_position() {
        let s = Settings::parse(b"config: |\n  policy:\n    rules: 3\n").unwrap();
        let err = s.pipeline().err().expect("must fail");
        assert!(err.starts_with(CONFIG_NAME), "{err}");
        assert!(err.contains(":2:") || err.contains(":1:"), "{err}");
    }

    #[test]
    fn a_file_reference_is_refused_with_a_hint() {
        let s = Settings::parse(b"config: 'policyFile: /etc/policy.yaml'").unwrap();
        let err = s.pipeline().err().expect("Envoy has no filesystem");
        assert!(err.contains("no file access"), "{err}");
    }

    #[test]
    fn envelope_mistakes_are_errors() {
        for (text, want) in [
            ("confg: x", "confg: unknown key"),
            ("alerts: {cluster: ''}", "alerts.cluster: must not be empty"),
            ("alerts: {path: alerts}", "alerts.path: must start with '/'"),
            ("alerts: {timeoutMs: 0}", "alerts.timeoutMs: must be greater than 0"),
            ("alerts: {retries: 3}", "alerts.retries: unknown key"),
            ("config: {policy: {}}", "config: expected the kaudit config as text"),
            ("[1, 2]", "expected a mapping"),
            ("config: 'a\n", ENVELOPE_NAME),
        ] {
            let err = Settings::parse(text.as_bytes()).err().unwrap_or_else(|| panic!("{text:?} must fail"));
            assert!(err.contains(want), "{text:?}: {err}");
        }
        assert!(Settings::parse(b"\xff").unwrap_err().contains("not UTF-8"));
    }
}
