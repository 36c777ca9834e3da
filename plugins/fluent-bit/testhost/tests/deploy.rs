//! The deployment (deploy/, docs/DEPLOY.md) checked against the real things.
//!
//! * Every topology as `kubectl kustomize` renders it, and every manifest file, validated against
//!   the Kubernetes 1.32 OpenAPI schemas by `kubernetes-validate` (PyPI; its schemas are bundled,
//!   nothing is fetched), strictly (an unknown field fails); every kaudit config the ConfigMaps
//!   carry loaded by kaudit; the host configs they carry equal the shipped ones.
//! * A real kube-apiserver started with what `kaudit apiserver` generates from the deployment's
//!   kaudit config (the v1 policy, the log and webhook flags, the webhook kubeconfig with its CA
//!   and client certificate; a static-pod manifest patched with the same options checks clean
//!   against those files): its log backend read by the real Fluent Bit with the deployed
//!   fluent-bit.yaml, its webhook posted to the real Envoy with the deployed envoy.yaml, and both
//!   outputs equal to native `kaudit run` on the same run's log (less the webhook events the
//!   apiserver's own log lists as dropped at shutdown).
//!
//! It lives beside the Fluent Bit tests because it drives both real hosts: Fluent Bit through
//! `fluent_bit_run` (shared with real_fluent_bit.rs) and Envoy through plugins/envoy/tests/support.
//! Hosts are found as plugins/envoy/tests/support/real_hosts.rs says (CI=true: a missing one fails).

mod fluent_bit_run;
#[path = "../../../envoy/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use support::pki::{tls_webhook_sni, Pki, ALERT_HOST};
use support::real_hosts::{self, kaudit_run, multiset, repo_root};
use support::{loopback, wait_for, wasm_filter, yaml_to_json, Envoy, Recorder, TempDir};

/// The Kubernetes version the manifests are validated against (the apiserver the tests run).
const KUBERNETES_VERSION: &str = "1.32.0";

fn deploy() -> PathBuf {
    repo_root().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Secrets a user creates (docs/DEPLOY.md, "Certificates").
const SECRETS: &[&str] =
    &["kaudit-aggregator-tls", "kaudit-aggregator-agents-ca", "kaudit-alerts-ca", "kaudit-envoy-tls"];

/// The ConfigMaps and Secrets a pod template names (volumes, projected sources, envFrom).
fn references(v: &Value, out: &mut Vec<(&'static str, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let kind = match k.as_str() {
                    "configMap" | "configMapRef" => Some("configMap"),
                    "secret" | "secretRef" => Some("secret"),
                    _ => None,
                };
                match (kind, child["name"].as_str().or(child["secretName"].as_str())) {
                    (Some(kind), Some(name)) => out.push((kind, name.to_string())),
                    _ => references(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        _ => {}
    }
}

/// `kubernetes-validate` from the venv `cargo xtask setup` fills.
fn kubernetes_validate() -> PathBuf {
    let cache = std::env::var_os("KAUDIT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/kaudit"));
    let bin = cache.join("venv/bin/kubernetes-validate");
    assert!(bin.is_file(), "{} is missing: run `cargo xtask setup`", bin.display());
    bin
}

/// The YAML documents of a multi-document stream, as JSON.
fn documents(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| yaml_to_json(&kaudit::yaml::parse(d, "manifest").unwrap_or_else(|e| panic!("{e}\n{d}"))))
        .collect()
}

/// deploy/envoy/envoy.yaml as it must be: plugins/envoy/envoy.yaml with the plugin's inline kaudit
/// config replaced by deploy/base/kaudit.yaml.
fn expected_envoy_yaml() -> String {
    let shipped = read(&repo_root().join("plugins/envoy/envoy.yaml"));
    let config = read(&deploy().join("base/kaudit.yaml"));
    let shipped_inline = "                    config: |\n                      badRecords: pass\n";
    assert!(shipped.contains(shipped_inline), "plugins/envoy/envoy.yaml's inline config changed: update this test");
    let indented: String =
        config.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{:22}{l}\n", "") }).collect();
    shipped.replace(shipped_inline, &format!("                    config: |\n{indented}"))
}

/// Checks one file a ConfigMap carries; returns whether it was a kaudit config.
fn check_configmap_file(key: &str, text: &str, topology: &str) -> bool {
    let load = |text: &str, what: &str| {
        kaudit::Config::load(text, what, &kaudit::NoFiles).unwrap_or_else(|e| panic!("{topology}: {what}: {e}"));
    };
    match key {
        "kaudit.yaml" => {
            load(text, "kaudit.yaml");
            // The base config, or the base config plus a role (topologies/aggregated): agents and
            // their aggregator must load the same rules (docs/SCALING.md).
            let parse = |t: &str| yaml_to_json(&kaudit::yaml::parse(t, "kaudit.yaml").expect("kaudit.yaml"));
            let mut got = parse(text);
            if let Some(role) = got["alerts"]["role"].as_str().map(str::to_string) {
                // The role's keys as plugins/fluent-bit/kaudit-<role>.yaml sets them.
                let shipped = parse(&read(&repo_root().join(format!("plugins/fluent-bit/kaudit-{role}.yaml"))));
                for key in ["role", "aggregation"] {
                    assert_eq!(got["alerts"][key], shipped["alerts"][key], "{topology}: alerts.{key} of the {role}");
                }
            }
            if let Some(alerts) = got["alerts"].as_object_mut() {
                alerts.remove("role");
                alerts.remove("aggregation");
            }
            assert_eq!(
                got,
                parse(&read(&deploy().join("base/kaudit.yaml"))),
                "{topology}: a kaudit.yaml that is not the base's"
            );
            true
        }
        "fluent-bit.yaml" => {
            let shipped: Vec<String> = ["fluent-bit.yaml", "fluent-bit-agent.yaml", "fluent-bit-aggregator.yaml"]
                .iter()
                .map(|f| repo_root().join("plugins/fluent-bit").join(f))
                .filter(|p| p.is_file())
                .map(|p| read(&p))
                .collect();
            assert!(
                shipped.iter().any(|s| s == text),
                "{topology}: a fluent-bit.yaml that is not one of plugins/fluent-bit/'s"
            );
            false
        }
        "envoy.yaml" => {
            assert!(
                text == expected_envoy_yaml(),
                "{topology}: envoy.yaml is not the shipped one with kaudit.yaml inline"
            );
            let mut config = yaml_to_json(&kaudit::yaml::parse(text, "envoy.yaml").expect("envoy.yaml"));
            let envelope = wasm_filter(&mut config["static_resources"]["listeners"][0])["configuration"]["value"]
                .as_str()
                .expect("the plugin configuration")
                .to_string();
            let envelope = yaml_to_json(&kaudit::yaml::parse(&envelope, "plugin").expect("envelope"));
            load(envelope["config"].as_str().expect("an inline kaudit config"), "envoy.yaml plugin config");
            true
        }
        _ => false,
    }
}

/// What a kustomization (or component) names: resources and generator sources.
fn kustomization_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let k = yaml_to_json(&kaudit::yaml::parse(&read(&dir.join("kustomization.yaml")), "kustomization").unwrap());
    let names = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let resources =
        names(&k["resources"]).iter().filter_map(|r| r.as_str()).map(|r| dir.join(r)).filter(|p| p.is_file()).collect();
    // Generator files (`key=path` or `path`) and patches are used, and validated as rendered.
    let sources = names(&k["configMapGenerator"])
        .iter()
        .flat_map(|g| names(&g["files"]))
        .chain(names(&k["patches"]).iter().map(|p| p["path"].clone()))
        .filter_map(|f| f.as_str().map(|f| dir.join(f.rsplit('=').next().unwrap_or(f))))
        .collect();
    (resources, sources)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas_and_every_kaudit_config_loads() {
    let Some(kubectl) = real_hosts::require(&real_hosts::KUBECTL, "deploy manifests (kubectl kustomize)") else {
        return;
    };
    let work = TempDir::new("deploy-manifests");
    let mut topologies: Vec<PathBuf> =
        std::fs::read_dir(deploy().join("topologies")).unwrap().flatten().map(|e| e.path()).collect();
    topologies.sort();
    assert!(topologies.len() >= 2, "{topologies:?}");
    let mut to_validate = Vec::new();
    let mut documents_total = 0;
    let mut kinds = BTreeSet::new();
    let mut fluent_bit_configs = BTreeSet::new();
    for t in &topologies {
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        let out = Command::new(&kubectl).arg("kustomize").arg(t).output().expect("kubectl kustomize");
        assert!(out.status.success(), "kubectl kustomize {name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let docs = documents(&text);
        let mut configs = 0;
        for doc in &docs {
            kinds.insert(doc["kind"].as_str().unwrap_or_default().to_string());
            if doc["metadata"]["namespace"] != "kaudit" && doc["kind"] != "Namespace" {
                panic!("{name}: {} {} is not in the kaudit namespace", doc["kind"], doc["metadata"]["name"]);
            }
            if doc["kind"] == "ConfigMap" {
                for (key, value) in doc["data"].as_object().into_iter().flatten() {
                    let text = value.as_str().unwrap_or_default();
                    configs += usize::from(check_configmap_file(key, text, &name));
                    if key == "fluent-bit.yaml" || key == "receiver.yaml" {
                        fluent_bit_configs.insert(text.to_string());
                    }
                }
            }
        }
        assert!(configs >= 1, "{name}: no kaudit config in its ConfigMaps");
        // Every ConfigMap a pod refers to is in the same build (with its generated name); the
        // Secrets are the user's (docs/DEPLOY.md).
        let configmaps: BTreeSet<&str> =
            docs.iter().filter(|d| d["kind"] == "ConfigMap").filter_map(|d| d["metadata"]["name"].as_str()).collect();
        for doc in docs.iter().filter(|d| d["kind"] == "DaemonSet" || d["kind"] == "Deployment") {
            let mut refs = Vec::new();
            references(doc, &mut refs);
            assert!(!refs.is_empty());
            for (kind, target) in refs {
                match kind {
                    "configMap" => assert!(configmaps.contains(target.as_str()), "{name}: no ConfigMap {target}"),
                    _ => assert!(SECRETS.contains(&target.as_str()), "{name}: Secret {target} is not documented"),
                }
            }
        }
        // Agents that send partials send them to the aggregator's Service.
        for ds in docs.iter().filter(|d| d["kind"] == "DaemonSet") {
            let env = ds["spec"]["template"]["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
            if let Some(host) = env.iter().find(|e| e["name"] == "KAUDIT_AGGREGATOR_HOST") {
                let service =
                    docs.iter().find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "kaudit-aggregator");
                let service =
                    service.unwrap_or_else(|| panic!("{name}: agents forward to an aggregator that is not deployed"));
                assert_eq!(
                    host["value"],
                    format!("kaudit-aggregator.{}.svc", service["metadata"]["namespace"].as_str().unwrap())
                );
                let port = env.iter().find(|e| e["name"] == "KAUDIT_AGGREGATOR_PORT").expect("the port");
                assert_eq!(port["value"].as_str(), Some(service["spec"]["ports"][0]["port"].to_string().as_str()));
            }
        }
        documents_total += docs.len();
        let file = work.0.join(format!("{name}.yaml"));
        std::fs::write(&file, &text).unwrap();
        to_validate.push(file);
    }
    assert!(
        kinds.is_superset(&["DaemonSet", "Deployment", "Service", "ConfigMap", "Namespace"].map(String::from).into())
    );

    // Every file in deploy/ is a kustomization, a resource one names, a generator's source or the
    // image's Dockerfile: nothing unvalidated, nothing unused.
    let mut named = BTreeSet::new();
    let mut dirs = vec![deploy().join("base")];
    dirs.extend(
        std::fs::read_dir(deploy())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("kustomization.yaml").is_file() && !p.ends_with("base")),
    );
    for d in &dirs {
        let (resources, sources) = kustomization_files(d);
        for r in &resources {
            documents_total += documents(&read(r)).len();
            to_validate.push(r.clone());
        }
        named.extend(resources.into_iter().chain(sources));
    }
    let mut all = Vec::new();
    yaml_files(&deploy(), &mut all);
    for f in &all {
        assert!(
            f.ends_with("kustomization.yaml") || named.contains(f),
            "{} is in deploy/ but no kustomization uses it",
            f.display()
        );
    }

    let out = Command::new(kubernetes_validate())
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(&to_validate)
        .output()
        .expect("kubernetes-validate runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubernetes-validate:\n{report}");
    let passed = report.lines().filter(|l| l.starts_with("INFO ") && l.contains(" passed for resource ")).count();
    let other: Vec<&str> = report.lines().filter(|l| !l.starts_with("INFO ")).collect();
    assert!(other.is_empty(), "kubernetes-validate warned:\n{}", other.join("\n"));
    assert_eq!(passed, documents_total, "every document validated:\n{report}");
    // Every Fluent Bit config a ConfigMap carries passes Fluent Bit's own check (`--dry-run`:
    // every plugin's properties, the wasm filter's module), the module path being the artifact's.
    if let Some(fluent_bit) = real_hosts::require(&real_hosts::FLUENT_BIT, "deploy: fluent-bit --dry-run") {
        let wasm = fluent_bit_run::artifact().display().to_string();
        for (i, text) in fluent_bit_configs.iter().enumerate() {
            let file = work.0.join(format!("fluent-bit-{i}.yaml"));
            std::fs::write(&file, text.replace("/usr/lib/kaudit/kaudit-fluent-bit.wasm", &wasm)).unwrap();
            let out = Command::new(&fluent_bit)
                .arg("--dry-run")
                .arg("-c")
                .arg(&file)
                .current_dir(&work.0)
                .envs([
                    ("KAUDIT_ALERT_HOST", "alerts.example.com"),
                    ("KAUDIT_ALERT_PORT", "443"),
                    ("KAUDIT_ALERT_URI", "/"),
                ])
                .envs([("KAUDIT_AGGREGATOR_HOST", "kaudit-aggregator"), ("KAUDIT_AGGREGATOR_PORT", "24224")])
                .output()
                .expect("fluent-bit --dry-run");
            let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && log.contains("configuration test is successful"),
                "fluent-bit --dry-run refuses a deployed config:\n{log}\n{text}"
            );
        }
        assert!(fluent_bit_configs.len() >= 2, "the agent's and the receiver's configs at least");
    }
    eprintln!(
        "deploy: {} topologies, {documents_total} documents valid against Kubernetes {KUBERNETES_VERSION}",
        topologies.len()
    );
}

/// The image carries the modules `cargo xtask build-wasm` collects, under the names the init
/// containers copy to the paths the host configs load.
#[test]
fn the_module_image_and_the_init_containers_agree_with_the_host_configs() {
    let dockerfile = read(&deploy().join("image/Dockerfile"));
    assert!(dockerfile.contains("COPY kaudit-fluent-bit.wasm kaudit-envoy.wasm /kaudit/\n"), "{dockerfile}");
    let agent = read(&deploy().join("fluent-bit-agent/daemonset.yaml"));
    let fluent_bit = read(&repo_root().join("plugins/fluent-bit/fluent-bit.yaml"));
    assert!(fluent_bit.contains("wasm_path: /usr/lib/kaudit/kaudit-fluent-bit.wasm\n"));
    assert!(agent
        .contains(r#"command: ["cp", "/kaudit/kaudit-fluent-bit.wasm", "/usr/lib/kaudit/kaudit-fluent-bit.wasm"]"#));
    // The agent's hostPath is the folder of the apiserver's log as `kaudit apiserver flags` sets it
    // and the tail input reads it.
    assert!(fluent_bit.contains("path: /var/log/kubernetes/kubernetes.audit\n"));
    assert!(agent.contains("path: /var/log/kubernetes\n"));
    let aggregator = read(&deploy().join("aggregator/deployment.yaml"));
    assert!(aggregator
        .contains(r#"command: ["cp", "/kaudit/kaudit-fluent-bit.wasm", "/usr/lib/kaudit/kaudit-fluent-bit.wasm"]"#));
    let aggregator_config = read(&repo_root().join("plugins/fluent-bit/fluent-bit-aggregator.yaml"));
    assert!(aggregator_config.contains("wasm_path: /usr/lib/kaudit/kaudit-fluent-bit.wasm\n"));
    assert!(aggregator_config.contains("port: 24224\n"), "the aggregator Service's port");
    let envoy_deploy = read(&deploy().join("envoy/deployment.yaml"));
    assert!(envoy_deploy.contains(r#"command: ["cp", "/kaudit/kaudit-envoy.wasm", "/module/kaudit-envoy.wasm"]"#));
    assert!(expected_envoy_yaml().contains("filename: /etc/envoy/kaudit-envoy.wasm }"));
    assert!(
        envoy_deploy.contains("mountPath: /etc/envoy/kaudit-envoy.wasm\n              subPath: kaudit-envoy.wasm\n")
    );
    if let Some(dir) = std::env::var_os("KAUDIT_ARTIFACTS") {
        for name in ["kaudit-fluent-bit.wasm", "kaudit-envoy.wasm"] {
            assert!(Path::new(&dir).join(name).is_file(), "the image's build context lacks {name}");
        }
    }
}

/// deploy/envoy/envoy.yaml with the test's certificates, module, receiver and alert webhook.
fn deployed_envoy(pki: &Pki, receiver: u16, webhook: &Envoy) -> Value {
    let mut config = yaml_to_json(&kaudit::yaml::parse(&expected_envoy_yaml(), "envoy.yaml").unwrap());
    config["admin"]["address"] = loopback(0);
    let listener = &mut config["static_resources"]["listeners"][0];
    listener["address"] = loopback(0);
    wasm_filter(listener)["vm_config"]["code"]["local"]["filename"] = json!(support::artifact());
    let ctx = &mut listener["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"];
    ctx["tls_certificates"][0] =
        json!({ "certificate_chain": pki.file("envoy.crt"), "private_key": pki.file("envoy.key") });
    ctx["validation_context"]["trusted_ca"] = pki.file("client-ca.crt");
    for cluster in config["static_resources"]["clusters"].as_array_mut().unwrap() {
        let name = cluster["name"].as_str().unwrap_or_default().to_string();
        let endpoint = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        match name.as_str() {
            "audit_receiver" => *endpoint = loopback(receiver),
            "kaudit_alerts" => {
                *endpoint = loopback(webhook.listener_port("alerts"));
                cluster["type"] = json!("STATIC");
                cluster["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]["trusted_ca"] =
                    pki.file("server-ca.crt");
            }
            other => panic!("unexpected cluster {other} in deploy/envoy/envoy.yaml"),
        }
    }
    config
}

fn cli(args: &[&str]) -> std::process::Output {
    let cli = std::env::var_os("KAUDIT_CLI").expect("KAUDIT_CLI is not set: run through `cargo xtask test`");
    Command::new(cli).args(args).output().expect("kaudit runs")
}

fn cli_ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(out.status.success(), "kaudit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn key(event: &Value) -> (String, String) {
    (event["auditID"].as_str().unwrap_or_default().to_string(), event["stage"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_kube_apiserver_on_the_generated_flags_feeds_fluent_bit_and_envoy_as_native_kaudit_does() {
    let Some(fluent_bit) = real_hosts::require(&real_hosts::FLUENT_BIT, "deploy: apiserver -> Fluent Bit") else {
        return;
    };
    let Some(harness) = real_hosts::require(&real_hosts::KUBE_AUDIT, "deploy: kube-apiserver") else { return };
    let started = std::time::Instant::now();
    let config_path = deploy().join("base/kaudit.yaml");
    let config_text = read(&config_path);
    let config = config_path.display().to_string();

    // Envoy as deployed, in front of a recording receiver, alerts to a TLS webhook.
    let pki = Pki::new();
    let receiver = Recorder::start();
    let sink = Recorder::start();
    let webhook = tls_webhook_sni(&pki, &[("alerts", "alerts", Some(ALERT_HOST))], sink.port);
    let envoy = Envoy::start(&deployed_envoy(&pki, receiver.port, &webhook), Arc::new(TempDir::new("deploy-envoy")))
        .unwrap_or_else(|e| panic!("{e}"));
    let server = format!("https://127.0.0.1:{}/audit", envoy.listener_port("audit_webhook"));

    // The apiserver side, generated: files in the node's kaudit folder, the flags.
    let work = TempDir::new("deploy-apiserver");
    let kdir = work.0.join("etc/kubernetes/kaudit");
    std::fs::create_dir_all(&kdir).unwrap();
    for (from, to) in [
        ("server-ca.crt", "server-ca.crt"),
        ("apiserver.crt", "apiserver-audit.crt"),
        ("apiserver.key", "apiserver-audit.key"),
    ] {
        std::fs::copy(pki.path(from), kdir.join(to)).unwrap();
    }
    let run = work.0.join("run");
    let (kdir_s, log_path) = (kdir.display().to_string(), run.join("audit.log").display().to_string());
    let common = ["--config", &config, "--dir", &kdir_s, "--log-path", &log_path, "--webhook-server", &server];
    let with = |sub: &str| cli_ok(&[&["apiserver", sub][..], &common[..]].concat());
    std::fs::write(kdir.join("audit-policy.yaml"), with("policy")).unwrap();
    std::fs::write(kdir.join("webhook.kubeconfig"), with("webhook-kubeconfig")).unwrap();
    let flags: Vec<String> = with("flags").lines().map(String::from).collect();
    // The static-pod manifest patched with the same options checks clean against these files.
    let fixture = repo_root().join("plugins/cli/tests/fixtures/kube-apiserver.yaml").display().to_string();
    let manifest = work.0.join("kube-apiserver.yaml");
    std::fs::write(&manifest, cli_ok(&[&["apiserver", "manifest", &fixture][..], &common[..]].concat())).unwrap();
    let manifest = manifest.display().to_string();
    let check = cli(&[&["apiserver", "check", &manifest][..], &common[..]].concat());
    assert_eq!(check.status.code(), Some(0), "kaudit apiserver check: {}", String::from_utf8_lossy(&check.stdout));
    assert!(flags.iter().all(|f| !f.contains(' ')), "run-audit.sh splits EXTRA_APISERVER_FLAGS on spaces");

    let out = Command::new("bash")
        .arg(&harness)
        .arg(kdir.join("audit-policy.yaml"))
        .arg(&run)
        .env("EXTRA_APISERVER_FLAGS", flags.join(" "))
        .output()
        .expect("run-audit.sh");
    assert!(out.status.success(), "run-audit.sh ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    let used = read(&run.join("apiserver-flags.txt"));
    for f in &flags {
        assert!(used.lines().any(|l| l == f), "the apiserver did not get {f}");
    }
    let log = std::fs::read(run.join("audit.log")).expect("audit.log");
    let lines = log.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(lines > 200, "the apiserver wrote {lines} events");

    // One policy: kaudit's, applied to what the apiserver wrote under the generated policy,
    // keeps every event byte for byte (same rules, same levels, same omitted stages).
    let filtered = cli(&["filter", "--config", &config, &run.join("audit.log").display().to_string()]);
    assert!(filtered.status.success());
    assert!(filtered.stdout == log, "kaudit's policy changed events the apiserver wrote under the generated one");
    let native = kaudit_run(&log, Some(&config_text));
    assert_eq!(native.events.len(), lines);

    // The log backend through the real Fluent Bit on the deployed fluent-bit.yaml (which the
    // manifest test keeps equal to the shipped one that `check_stream` runs).
    let (records, alerts) = fluent_bit_run::check_stream(&fluent_bit, "deploy", &log, Some(&config_text), 50);

    // The webhook through Envoy: every event native kaudit writes arrives, enriched the same,
    // once, except those the apiserver's log lists as not sent at shutdown.
    let by_key: BTreeMap<(String, String), Value> = native
        .events
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("native events are JSON"))
        .map(|v| (key(&v), v))
        .collect();
    let forwarded: Vec<Value> = receiver
        .requests_to("/audit")
        .iter()
        .flat_map(|r| {
            let list: Value = serde_json::from_slice(&r.body).expect("an EventList");
            list["items"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    let apiserver_log = read(&run.join("apiserver.log"));
    let mut seen = BTreeSet::new();
    for item in &forwarded {
        let k = key(item);
        let mut want = by_key
            .get(&k)
            .unwrap_or_else(|| panic!("Envoy forwarded {k:?}, which the log backend does not have"))
            .clone();
        // The webhook's EventList items carry no kind and apiVersion (the list's do); each line
        // of the log backend does. Nothing else may differ.
        for type_meta in ["kind", "apiVersion"] {
            assert!(item.get(type_meta).is_none(), "{k:?}: a webhook item with {type_meta}");
            want.as_object_mut().expect("an event").remove(type_meta);
        }
        assert_eq!(item, &want, "{k:?}: Envoy's event differs from kaudit run's");
        assert!(seen.insert(k.clone()), "{k:?} forwarded twice");
    }
    let unsent: Vec<_> = by_key.keys().filter(|k| !seen.contains(*k)).collect();
    for (id, stage) in &unsent {
        assert!(
            apiserver_log.contains(&format!("id=\"{id}\" stage=\"{stage}\"")),
            "({id}, {stage}) never reached the receiver and the apiserver does not list it as dropped"
        );
    }
    // Alerts through Envoy's alert route: those of the events that arrived.
    let unsent_ids: BTreeSet<&str> = unsent.iter().map(|(id, _)| id.as_str()).collect();
    let want_alerts: Vec<Value> = native
        .alerts
        .iter()
        .filter(|a| {
            !a["auditIDs"]
                .as_array()
                .is_some_and(|ids| ids.iter().all(|i| unsent_ids.contains(i.as_str().unwrap_or(""))))
        })
        .cloned()
        .collect();
    let envoy_alerts = || -> Vec<Value> {
        sink.requests_to("/alerts")
            .iter()
            .flat_map(|r| {
                String::from_utf8_lossy(&r.body)
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("alert JSON"))
                    .collect::<Vec<Value>>()
            })
            .collect()
    };
    let arrived = wait_for(30, || (envoy_alerts().len() >= want_alerts.len()).then_some(()));
    assert!(
        arrived.is_some(),
        "{} of {} alerts from Envoy\n{}",
        envoy_alerts().len(),
        want_alerts.len(),
        envoy.log_tail(30)
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(multiset(&envoy_alerts()), multiset(&want_alerts), "Envoy's alerts differ from kaudit run's");
    eprintln!(
        "deploy: kube-apiserver wrote {lines} events under the generated policy; kaudit kept all of them unchanged; \
         Fluent Bit: {records} records, {alerts} alerts; Envoy: {} events forwarded ({} not sent at shutdown), {} alerts; \
         all equal to kaudit run ({:.0} s)",
        forwarded.len(),
        unsent.len(),
        want_alerts.len(),
        started.elapsed().as_secs_f64()
    );
}
