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
//!   partials:            # alerts.role agent: where partial records go (default: the above)
//!     path: /kaudit.partials
//!   routes:              # one target per route of the kaudit config's `alerts.routes`
//!     alertmanager:      # each key as above; what is not given is taken from `alerts`
//!       cluster: alertmanager
//!       path: /api/v2/alerts
//!       authority: alertmanager.monitoring.svc
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
const ALERT_KEYS: &[&str] = &["cluster", "path", "authority", "timeoutMs", "partials", "routes"];
const PARTIALS_KEYS: &[&str] = &["cluster", "path", "authority", "timeoutMs"];
const TARGET_KEYS: &[&str] = &["cluster", "path", "authority", "timeoutMs", "dingtalkSecret"];

/// Where alerts are POSTed: an Envoy cluster and the request's path and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTarget {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
    /// A route's `dingtalkSecret`: the path is signed when sent (`dingtalk::signed_path`).
    pub dingtalk_secret: Option<String>,
}

impl Default for AlertTarget {
    fn default() -> Self {
        AlertTarget {
            cluster: "kaudit_alerts".into(),
            path: "/alerts".into(),
            authority: "kaudit-alerts".into(),
            timeout_ms: 5000,
            dingtalk_secret: None,
        }
    }
}

/// The decoded plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The kaudit config text; `None` for the embedded default.
    pub config: Option<String>,
    /// Where alerts go when the kaudit config has no `alerts.routes` (JSON lines).
    pub alerts: AlertTarget,
    /// `alerts.routes`: the target of each route of the kaudit config, by route name.
    pub routes: Vec<(String, AlertTarget)>,
    /// `alerts.partials`: where an agent's partial records go (the aggregator); `None`: the
    /// `alerts` target.
    pub partials: Option<AlertTarget>,
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
                self.check_routes(&config)?;
                Ok((config, warnings.iter().map(ToString::to_string).collect()))
            }
        }
    }

    /// Every route of the kaudit config has a target here, and every target a route: a route
    /// without one would lose its alerts, a target without a route is a misspelt name.
    fn check_routes(&self, config: &Config) -> Result<(), String> {
        let names: Vec<&str> = config.alerts.routes.iter().map(|r| r.name.as_str()).collect();
        if let Some(missing) = names.iter().find(|n| !self.routes.iter().any(|(t, _)| t == *n)) {
            return Err(format!(
                "{ENVELOPE_NAME}: alerts.routes: no target for the kaudit config's route {missing:?} (give its cluster and path under alerts.routes.{missing})"
            ));
        }
        for (name, target) in &self.routes {
            let format = config.alerts.route(name).map(|r| r.format);
            if target.dingtalk_secret.is_some() && format != Some(kaudit::AlertFormat::DingTalk) {
                return Err(format!(
                    "{ENVELOPE_NAME}: alerts.routes.{name}.dingtalkSecret: only for a route of format dingtalk"
                ));
            }
        }
        if let Some((extra, _)) = self.routes.iter().find(|(t, _)| !names.contains(&t.as_str())) {
            return Err(format!(
                "{ENVELOPE_NAME}: alerts.routes.{extra}: the kaudit config has no route named {extra:?} (its routes: {names:?})"
            ));
        }
        Ok(())
    }

    /// The target of route `name` (the default target when the config has no routes).
    pub fn target(&self, name: &str) -> &AlertTarget {
        self.routes.iter().find(|(n, _)| n == name).map(|(_, t)| t).unwrap_or(&self.alerts)
    }

    /// Where an agent's partial records go (`alerts.partials`, else the `alerts` target).
    pub fn partials_target(&self) -> &AlertTarget {
        self.partials.as_ref().unwrap_or(&self.alerts)
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
            "alerts" => ctx.at("alerts", |c| decode_alerts(c, value, &mut settings))?,
            _ => {}
        }
    }
    Ok(settings)
}

fn decode_alerts(c: &mut Ctx<'_>, node: &Node, settings: &mut Settings) -> Result<(), Diagnostic> {
    if matches!(node.kind, Kind::Null) {
        return Ok(());
    }
    let entries = c.strict_map(node, ALERT_KEYS)?;
    let routes = entries.iter().find(|(k, _)| k.name == "routes").map(|(_, v)| *v);
    let partials = entries.iter().find(|(k, _)| k.name == "partials").map(|(_, v)| *v);
    let targets: Vec<_> = entries.into_iter().filter(|(k, _)| k.name != "routes" && k.name != "partials").collect();
    decode_target(c, &targets, &mut settings.alerts)?;
    if let Some(partials) = partials {
        c.at("partials", |c| -> Result<(), Diagnostic> {
            let mut target = settings.alerts.clone();
            let entries = c.strict_map(partials, PARTIALS_KEYS)?;
            decode_target(c, &entries, &mut target)?;
            settings.partials = Some(target);
            Ok(())
        })?;
    }
    let Some(routes) = routes else { return Ok(()) };
    c.at("routes", |c| -> Result<(), Diagnostic> {
        let Kind::Map(items) = &routes.kind else {
            return Err(c.type_error(routes, "a mapping of route name to target"));
        };
        for (name, value) in items {
            c.at(&name.name, |c| -> Result<(), Diagnostic> {
                if settings.routes.iter().any(|(n, _)| *n == name.name) {
                    return Err(c.error(name.pos, "route given twice"));
                }
                let mut target = settings.alerts.clone();
                let entries = c.strict_map(value, TARGET_KEYS)?;
                decode_target(c, &entries, &mut target)?;
                settings.routes.push((name.name.clone(), target));
                Ok(())
            })?;
        }
        Ok(())
    })
}

fn decode_target(c: &mut Ctx<'_>, entries: &[(&yaml::Key, &Node)], target: &mut AlertTarget) -> Result<(), Diagnostic> {
    for &(key, value) in entries {
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
                "dingtalkSecret" => target.dingtalk_secret = Some(non_empty(c, value)?),
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
            AlertTarget {
                cluster: "sink".into(),
                path: "/a".into(),
                authority: "a.local".into(),
                timeout_ms: 250,
                dingtalk_secret: None
            }
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
    fn each_route_of_the_kaudit_config_needs_a_target_and_inherits_the_rest() {
        let config =
            "alerts:\n    routes:\n      - {name: am, format: alertmanager}\n      - {name: chat, format: slack}\n";
        let text = format!(
            "config: |\n  {config}alerts:\n  cluster: sink\n  timeoutMs: 250\n  routes:\n    am: {{cluster: alertmanager, path: /api/v2/alerts}}\n    chat: {{path: /services/T/B/x, authority: hooks.slack.com}}\n"
        );
        let s = Settings::parse(text.as_bytes()).unwrap();
        assert_eq!(s.config().unwrap().0.alerts.routes.len(), 2);
        assert_eq!(
            s.target("am"),
            &AlertTarget {
                cluster: "alertmanager".into(),
                path: "/api/v2/alerts".into(),
                authority: "kaudit-alerts".into(),
                timeout_ms: 250,
                dingtalk_secret: None
            }
        );
        assert_eq!(
            s.target("chat"),
            &AlertTarget {
                cluster: "sink".into(),
                path: "/services/T/B/x".into(),
                authority: "hooks.slack.com".into(),
                timeout_ms: 250,
                dingtalk_secret: None
            }
        );
        assert_eq!(s.target("").cluster, "sink", "no routes: the one target");
        // A route without a target would lose its alerts; a target without a route is a typo.
        let missing =
            Settings::parse(format!("config: |\n  {config}alerts:\n  routes:\n    am: {{path: /a}}\n").as_bytes())
                .unwrap();
        let err = missing.config().unwrap_err();
        assert!(err.contains("no target for the kaudit config's route \"chat\""), "{err}");
        let extra = Settings::parse(
            format!("config: |\n  {config}alerts:\n  routes:\n    am: {{}}\n    chat: {{}}\n    chatt: {{}}\n")
                .as_bytes(),
        )
        .unwrap();
        assert!(extra
            .config()
            .unwrap_err()
            .contains("alerts.routes.chatt: the kaudit config has no route named \"chatt\""));
        // A DingTalk route's secret; no secret on another format.
        let ding = "alerts:\n    routes:\n      - {name: d, format: dingtalk}\n      - {name: s, format: slack}\n";
        let signed = Settings::parse(
            format!("config: |\n  {ding}alerts:\n  routes:\n    d: {{dingtalkSecret: SECx}}\n    s: {{}}\n").as_bytes(),
        )
        .unwrap();
        assert!(signed.config().is_ok());
        assert_eq!(signed.target("d").dingtalk_secret.as_deref(), Some("SECx"));
        let misplaced = Settings::parse(
            format!("config: |\n  {ding}alerts:\n  routes:\n    d: {{}}\n    s: {{dingtalkSecret: SECx}}\n").as_bytes(),
        )
        .unwrap();
        let err = misplaced.config().unwrap_err();
        assert!(err.contains("alerts.routes.s.dingtalkSecret: only for a route of format dingtalk"), "{err}");
        let bad = Settings::parse(b"alerts:\n  routes:\n    am: {path: api}\n").unwrap_err();
        assert!(bad.contains("alerts.routes.am.path: must start with '/'"), "{bad}");
    }

    #[test]
    fn partials_go_to_their_own_target_or_the_alerts_one() {
        let s = Settings::parse(b"alerts:\n  cluster: sink\n  timeoutMs: 250\n").unwrap();
        assert_eq!(s.partials_target(), &s.alerts);
        let s = Settings::parse(
            b"alerts:\n  cluster: sink\n  timeoutMs: 250\n  partials: {cluster: kaudit_aggregator, path: /kaudit.partials}\n",
        )
        .unwrap();
        assert_eq!(
            s.partials_target(),
            &AlertTarget {
                cluster: "kaudit_aggregator".into(),
                path: "/kaudit.partials".into(),
                authority: "kaudit-alerts".into(),
                timeout_ms: 250,
                dingtalk_secret: None
            }
        );
        assert_eq!(s.alerts.cluster, "sink");
        let err = Settings::parse(b"alerts:\n  partials: {dingtalkSecret: x}\n").unwrap_err();
        assert!(err.contains("alerts.partials.dingtalkSecret: unknown key"), "{err}");
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
