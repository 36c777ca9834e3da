//! `kaudit apiserver`: what it generates for kube-apiserver loads as the same policy kaudit
//! applies, the static-pod manifest it patches checks clean, and `check` finds each kind of
//! drift (a flag, a volume, the policy file, its version, the webhook's address) with exit 1.
//! The real kube-apiserver started with these outputs is in plugins/envoy/tests/deploy_apiserver.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MANIFEST: &str = "tests/fixtures/kube-apiserver.yaml";
const WEBHOOK: &str = "https://10.96.0.90:9880/audit";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kaudit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaudit")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = kaudit(args);
    assert!(out.status.success(), "kaudit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("kaudit-apiserver-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn write(&self, rel: &str, text: &str) -> String {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn policy(text: &str) -> kaudit::Policy {
    kaudit::Policy::load(text, "generated").unwrap_or_else(|e| panic!("{e}\n{text}")).policy
}

#[test]
fn the_generated_policy_is_v1_and_the_policy_kaudit_applies() {
    // The embedded default (the seed's v1beta1 policy) and a config with its own inline policy.
    let seed = ok(&["apiserver", "policy"]);
    let loaded = policy(&seed);
    assert_eq!(loaded.api_version, "audit.k8s.io/v1");
    assert!(kaudit::policy_differences(&kaudit::default_policy(), &loaded).is_empty());
    let tmp = Tmp::new("policy");
    let config = tmp.write(
        "kaudit.yaml",
        "policy:\n  apiVersion: audit.k8s.io/v1beta1\n  kind: Policy\n  omitStages: [RequestReceived]\n  rules:\n  \
         - level: None\n    nonResourceURLs: [/healthz*]\n  - level: Metadata\n",
    );
    let text = ok(&["apiserver", "policy", "--config", &config]);
    assert!(text.contains("apiVersion: audit.k8s.io/v1\n"), "{text}");
    assert!(text.lines().next().unwrap().contains(&config), "the header names the config: {text}");
    let loaded = policy(&text);
    assert_eq!(loaded.rules.len(), 2);
    assert_eq!(loaded.omit_stages, ["RequestReceived"]);
    assert_eq!(loaded.rules[0].non_resource_urls, ["/healthz*"]);
    // A config that does not load is an error naming the file, line and field.
    let bad =
        tmp.write("bad.yaml", "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n  - level: All\n");
    let out = kaudit(&["apiserver", "policy", "--config", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:5:12: policy.rules[0].level"), "{out:?}");
}

#[test]
fn flags_kubeadm_and_kubeconfig_agree() {
    let flags = ok(&["apiserver", "flags", "--webhook-server", WEBHOOK]);
    let flags: Vec<(String, String)> = flags
        .lines()
        .map(|l| {
            let (k, v) = l.strip_prefix("--").unwrap().split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let get = |k: &str| flags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("audit-log-format"), Some("json"));
    assert_eq!(get("audit-log-path"), Some("/var/log/kubernetes/kubernetes.audit"));
    assert_eq!(get("audit-webhook-config-file"), Some("/etc/kubernetes/kaudit/webhook.kubeconfig"));
    // Without a webhook server: the log backend only; `--log-path none`: the webhook only.
    assert!(!ok(&["apiserver", "flags"]).contains("webhook"));
    let webhook_only = ok(&["apiserver", "flags", "--log-path", "none", "--webhook-server", WEBHOOK]);
    assert!(!webhook_only.contains("--audit-log-") && webhook_only.contains("--audit-webhook-mode=batch"));

    // kubeadm v1beta4 (a list of name/value) and v1beta3 (a map) carry the same flags.
    for (api, list) in [("v1beta4", true), ("v1beta3", false)] {
        let text = ok(&["apiserver", "kubeadm", "--kubeadm-api", api, "--webhook-server", WEBHOOK]);
        let node = kaudit::yaml::parse(&text, "kubeadm").unwrap();
        assert_eq!(node.get("apiVersion").and_then(|n| n.as_str()), Some(&*format!("kubeadm.k8s.io/{api}")));
        let server = node.get("apiServer").unwrap();
        let args = server.get("extraArgs").unwrap();
        for (k, v) in &flags {
            let found = match (&args.kind, list) {
                (kaudit::yaml::Kind::Seq(items), true) => items
                    .iter()
                    .find(|i| i.get("name").and_then(|n| n.as_str()) == Some(k))
                    .and_then(|i| i.get("value")?.as_str()),
                (kaudit::yaml::Kind::Map(_), false) => args.get(k).and_then(|n| n.as_str()),
                _ => panic!("{api}: extraArgs has the wrong shape"),
            };
            assert_eq!(found, Some(v.as_str()), "{api}: {k}");
        }
        let volumes = server.get("extraVolumes").unwrap();
        let kaudit::yaml::Kind::Seq(volumes) = &volumes.kind else { panic!("extraVolumes") };
        let paths: Vec<_> = volumes.iter().map(|v| v.get("hostPath").unwrap().as_str().unwrap()).collect();
        assert_eq!(paths, ["/etc/kubernetes/kaudit", "/var/log/kubernetes"]);
    }

    let kc = ok(&["apiserver", "webhook-kubeconfig", "--webhook-server", WEBHOOK]);
    let node = kaudit::yaml::parse(&kc, "kubeconfig").unwrap();
    assert_eq!(node.get("kind").and_then(|n| n.as_str()), Some("Config"));
    assert!(kc.contains(&format!("server: \"{WEBHOOK}\"")), "{kc}");
    assert!(kc.contains("client-certificate: \"/etc/kubernetes/kaudit/apiserver-audit.crt\""));
    let out = kaudit(&["apiserver", "webhook-kubeconfig"]);
    assert_eq!(out.status.code(), Some(1), "no server named");
}

/// The sizes the flags carry come from the shipped host configs: they must still say so.
#[test]
fn the_sizes_match_the_shipped_fluent_bit_and_envoy_configs() {
    let fb = std::fs::read_to_string(root().join("plugins/fluent-bit/fluent-bit.yaml")).unwrap();
    assert!(fb.contains("      buffer_max_size: 4M\n"), "tail's buffer_max_size changed: update TAIL_BUFFER_MAX");
    let envoy = std::fs::read_to_string(root().join("plugins/envoy/envoy.yaml")).unwrap();
    let limits: Vec<&str> = envoy.lines().filter(|l| l.contains("per_connection_buffer_limit_bytes")).collect();
    assert!(!limits.is_empty());
    for l in limits {
        assert!(l.ends_with(": 16777216"), "{l}: update ENVOY_BUFFER_LIMIT");
    }
    let flags = ok(&["apiserver", "flags", "--webhook-server", WEBHOOK]);
    assert!(flags.contains("--audit-webhook-truncate-max-batch-size=8388608\n"));
    assert!(flags.contains("--audit-log-truncate-max-event-size=4128768\n"));
}

/// A node's files under `host`: the policy and kubeconfig `kaudit apiserver` generates.
fn node_files(host: &Tmp, config: &[&str]) {
    let mut args = vec!["apiserver", "policy"];
    args.extend(config);
    host.write("etc/kubernetes/kaudit/audit-policy.yaml", &ok(&args));
    host.write(
        "etc/kubernetes/kaudit/webhook.kubeconfig",
        &ok(&["apiserver", "webhook-kubeconfig", "--webhook-server", WEBHOOK]),
    );
}

fn check(manifest: &str, host: &Tmp, extra: &[&str]) -> (i32, String) {
    let root = host.0.display().to_string();
    let mut args = vec!["apiserver", "check", manifest, "--host-root", &root];
    if !extra.contains(&"--webhook-server") {
        args.extend(["--webhook-server", WEBHOOK]);
    }
    args.extend(extra);
    let out = kaudit(&args);
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_patched_manifest_checks_clean_and_each_drift_is_found() {
    let host = Tmp::new("check");
    node_files(&host, &[]);
    let original = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(MANIFEST)).unwrap();
    let patched = ok(&["apiserver", "manifest", MANIFEST, "--webhook-server", WEBHOOK]);
    let m = host.write("kube-apiserver.yaml", &patched);

    // The diff is the patch: applied by patch(1) to the original it gives the patched manifest.
    let diff = ok(&["apiserver", "manifest", "--diff", MANIFEST, "--webhook-server", WEBHOOK]);
    let copy = host.write("original.yaml", &original);
    let diff_file = host.write("manifest.diff", &diff);
    let out = Command::new("patch").args([&copy, &diff_file]).output().expect("patch(1)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), patched);
    // Everything the original had is still there, in order: lines were only added.
    let mut rest = original.lines().peekable();
    for line in patched.lines() {
        if rest.peek() == Some(&line) {
            rest.next();
        }
    }
    assert_eq!(rest.next(), None, "a line of the original is missing");

    let (code, out) = check(&m, &host, &[]);
    assert_eq!((code, out.trim()), (0, format!("{m}: in sync with the kaudit config").as_str()));
    // Patching again changes nothing.
    assert_eq!(ok(&["apiserver", "manifest", &m, "--webhook-server", WEBHOOK]), patched);

    // The unpatched manifest: every flag missing, the files not mounted.
    let (code, out) = check(MANIFEST, &host, &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("drift: --audit-policy-file is not set (want /etc/kubernetes/kaudit/audit-policy.yaml)"),
        "{out}"
    );
    assert!(out.contains("is not on a hostPath volume mounted at the same path"), "{out}");

    // A flag changed by hand, an audit flag kaudit does not generate, a volume removed.
    let edited = patched
        .replace("--audit-log-maxage=7", "--audit-log-maxage=30")
        .replace("    - --audit-log-mode=blocking\n", "    - --audit-log-mode=batch\n    - --audit-log-compress\n");
    let (code, out) = check(&host.write("edited.yaml", &edited), &host, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("drift: --audit-log-maxage=30 (want 7)"), "{out}");
    assert!(out.contains("drift: --audit-log-mode=batch (want blocking)"), "{out}");
    assert!(out.contains("drift: --audit-log-compress is set (--audit-log-compress) but not generated"), "{out}");
    // ... and regenerating repairs it: the flags are rewritten in place, the extra one removed.
    let repaired = ok(&["apiserver", "manifest", &host.write("edited2.yaml", &edited), "--webhook-server", WEBHOOK]);
    assert_eq!(repaired, patched);

    // The policy file: a rule edited on the node, the v1beta1 original, another config's policy.
    let policy_path = "etc/kubernetes/kaudit/audit-policy.yaml";
    let generated = std::fs::read_to_string(host.0.join(policy_path)).unwrap();
    let first_level = generated.find("  - level: None").unwrap();
    let mut edited = generated.clone();
    edited.replace_range(first_level..first_level + "  - level: None".len(), "  - level: Metadata");
    host.write(policy_path, &edited);
    let (code, out) = check(&m, &host, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("rules[0] (line 7; line 9 of the config's policy) differs in level"), "{out}");
    host.write(policy_path, &std::fs::read_to_string(root().join("rules/ack-default-audit-policy.yaml")).unwrap());
    let (code, out) = check(&m, &host, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("the policy file is audit.k8s.io/v1beta1 (kube-apiserver 1.24 and later"), "{out}");
    assert_eq!(out.lines().count(), 1, "the same rules otherwise: {out}");
    node_files(&host, &[]);
    let other = host
        .write("other.yaml", "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n  - level: Metadata\n");
    let (code, out) = check(&m, &host, &["--config", &other]);
    assert_eq!(code, 1);
    assert!(out.contains("differs in level") && out.contains("12 rules, the config has 1"), "{out}");
    let (code, _) = check(&m, &host, &["--config", &other, "--webhook-server", "https://elsewhere:9880/audit"]);
    assert_eq!(code, 1);

    // A missing manifest is an error (2), not drift.
    let (code, _) = check("no-such.yaml", &host, &[]);
    assert_eq!(code, 2);
}
