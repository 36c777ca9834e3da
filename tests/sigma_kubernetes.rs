//! The 16 Sigma Kubernetes audit rules (tests/fixtures/sigma, unchanged) compiled to kaudit
//! rules: all load, each fires on an event made to match it and not on its near miss.

use kaudit::Pipeline;
use serde_json::{json, Value};

mod support;

use support::{root, Dir};

fn sigma_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/sigma"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yml"))
        .map(|n| format!("tests/fixtures/sigma/{n}"))
        .collect();
    files.sort();
    files
}

fn pipeline() -> Pipeline {
    let packs: Vec<String> = sigma_files().iter().map(|f| format!("    - {f}\n")).collect();
    let config = format!(
        "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: RequestResponse\nalerts:\n  defaultRules: false\n  packs:\n{}",
        packs.concat()
    );
    Pipeline::from_config_text(&config, "sigma-test.yaml", &Dir(root())).unwrap().0
}

/// A realistic successful pod create by a user; tests change what they need.
fn base() -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "5b7e5c55-0000-4000-8000-000000000001", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods", "verb": "create",
        "user": {"username": "alice", "groups": ["developers", "system:authenticated"]},
        "sourceIPs": ["10.0.3.7"], "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
        "requestReceivedTimestamp": "2024-05-14T08:00:00.000000Z", "stageTimestamp": "2024-05-14T08:00:00.010000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"dev/default\" of ClusterRole \"edit\" to Group \"developers\""}
    })
}

fn with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base();
    f(&mut v);
    v
}

fn res(v: &mut Value, group: &str, resource: &str, verb: &str) {
    v["verb"] = verb.into();
    v["objectRef"] = json!({"resource": resource, "apiGroup": group, "apiVersion": "v1", "name": "x"});
    if group.is_empty() {
        v["objectRef"].as_object_mut().unwrap().remove("apiGroup");
    }
    v.as_object_mut().unwrap().remove("requestObject");
}

/// Sigma rule titles raised by one event, sorted.
fn raised(p: &mut Pipeline, event: &Value) -> Vec<String> {
    let mut out = String::new();
    p.process_stream(serde_json::to_string(event).unwrap().as_bytes(), &mut out, &mut |_| {});
    assert!(!out.is_empty(), "event not kept");
    let mut names: Vec<String> = p
        .take_alerts()
        .iter()
        .map(|a| serde_json::from_str::<Value>(a).unwrap()["rule"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

struct Case {
    rule: &'static str,
    hit: Value,
    /// Every rule the hit raises (some events are, rightly, several detections).
    also: &'static [&'static str],
    miss: Value,
}

fn cases() -> Vec<Case> {
    let exec_uri =
        "/api/v1/namespaces/default/pods/web/exec?command=%2Fbin%2Fbash&container=web&stdin=true&stdout=true&tty=true";
    vec![
        Case {
            rule: "Kubernetes Admission Controller Modification",
            hit: with(|v| res(v, "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "create")),
            also: &[],
            miss: with(|v| res(v, "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get")),
        },
        Case {
            rule: "Kubernetes CronJob/Job Modification",
            hit: with(|v| res(v, "batch", "cronjobs", "patch")),
            also: &[],
            miss: with(|v| res(v, "batch", "cronjobs", "list")),
        },
        Case {
            rule: "Deployment Deleted From Kubernetes Cluster",
            hit: with(|v| res(v, "apps", "deployments", "delete")),
            also: &[],
            // Sigma values match the whole value: deletecollection is not delete.
            miss: with(|v| res(v, "apps", "deployments", "deletecollection")),
        },
        Case {
            rule: "Kubernetes Events Deleted",
            hit: with(|v| res(v, "", "events", "delete")),
            also: &[],
            miss: with(|v| res(v, "", "events", "get")),
        },
        Case {
            rule: "Potential Remote Command Execution In Pod Container",
            hit: with(|v| {
                v["objectRef"]["subresource"] = "exec".into();
                v["requestURI"] =
                    "/api/v1/namespaces/default/pods/web/exec?command=ls&container=web&stdout=true".into();
                v["responseStatus"]["code"] = 101.into();
            }),
            also: &[],
            miss: with(|v| v["objectRef"]["subresource"] = "attach".into()),
        },
        Case {
            rule: "Container With A hostPath Mount Created",
            hit: with(|v| {
                v["requestObject"]["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/", "type": ""}}])
            }),
            also: &[],
            miss: with(|v| v["requestObject"]["spec"]["volumes"] = json!([{"name": "tmp", "emptyDir": {}}])),
        },
        Case {
            rule: "Creation Of Pod In System Namespace",
            hit: with(|v| v["objectRef"]["namespace"] = "kube-system".into()),
            also: &[],
            miss: with(|v| v["objectRef"]["namespace"] = "kube-public".into()),
        },
        Case {
            // responseStatus.code 'ALLOW' is mapped to the authorization decision; the encoded
            // shell in the exec URI matches case-insensitively (%2F vs %2f).
            rule: "Kubernetes Potential Enumeration Activity",
            hit: with(|v| {
                v["objectRef"]["subresource"] = "exec".into();
                v["requestURI"] = exec_uri.into();
                v["responseStatus"]["code"] = 101.into();
            }),
            also: &["Potential Remote Command Execution In Pod Container"],
            miss: with(|v| {
                v["objectRef"]["subresource"] = "exec".into();
                v["requestURI"] = exec_uri.into();
                v["responseStatus"] = json!({"code": 403, "status": "Failure", "reason": "Forbidden"});
                v["annotations"]["authorization.k8s.io/decision"] = "forbid".into();
            }),
        },
        Case {
            rule: "Privileged Container Deployed",
            hit: with(|v| {
                v["requestObject"]["spec"]["containers"][0]["securityContext"] =
                    json!({"capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}})
            }),
            also: &[],
            miss: with(|v| {
                v["requestObject"]["spec"]["containers"][0]["securityContext"] = json!({"runAsNonRoot": true})
            }),
        },
        Case {
            rule: "RBAC Permission Enumeration Attempt",
            hit: with(|v| res(v, "authorization.k8s.io", "selfsubjectrulesreviews", "create")),
            also: &[],
            miss: with(|v| res(v, "authorization.k8s.io", "selfsubjectaccessreviews", "create")),
        },
        Case {
            rule: "Kubernetes Rolebinding Modification",
            hit: with(|v| res(v, "rbac.authorization.k8s.io", "clusterrolebindings", "update")),
            also: &[],
            miss: with(|v| res(v, "rbac.authorization.k8s.io", "clusterrolebindings", "get")),
        },
        Case {
            rule: "Kubernetes Secrets Enumeration",
            hit: with(|v| res(v, "", "secrets", "list")),
            also: &[],
            miss: with(|v| res(v, "", "secrets", "get")),
        },
        Case {
            rule: "Kubernetes Secrets Modified or Deleted",
            hit: with(|v| res(v, "", "secrets", "delete")),
            also: &[],
            miss: with(|v| res(v, "", "secrets", "watch")),
        },
        Case {
            rule: "New Kubernetes Service Account Created",
            hit: with(|v| res(v, "", "serviceaccounts", "create")),
            also: &[],
            miss: with(|v| res(v, "", "serviceaccounts", "update")),
        },
        Case {
            rule: "Potential Sidecar Injection Into Running Deployment",
            hit: with(|v| res(v, "apps", "deployments", "patch")),
            also: &[],
            // The rule names the apps group; the legacy extensions group is not it.
            miss: with(|v| res(v, "extensions", "deployments", "patch")),
        },
        Case {
            rule: "Kubernetes Unauthorized or Unauthenticated Access",
            hit: with(|v| {
                v["responseStatus"] = json!({"code": 403, "status": "Failure", "reason": "Forbidden"});
                v["annotations"]["authorization.k8s.io/decision"] = "forbid".into();
            }),
            also: &[],
            miss: with(|v| v["responseStatus"] = json!({"code": 404, "status": "Failure", "reason": "NotFound"})),
        },
    ]
}

#[test]
fn all_sixteen_rules_load() {
    let p = pipeline();
    assert_eq!(sigma_files().len(), 16);
    let names: Vec<String> = p.config().alerts.rules.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names.len(), 16);
    let mut want: Vec<&str> = cases().iter().map(|c| c.rule).collect();
    want.sort();
    let mut got: Vec<&str> = names.iter().map(String::as_str).collect();
    got.sort();
    assert_eq!(got, want);
    for r in &p.config().alerts.rules {
        assert_eq!(r.source, "sigma");
        assert!(r.tags.iter().any(|t| t.starts_with("sigma:")), "{}: id kept as a tag", r.name);
    }
}

#[test]
fn each_rule_fires_on_its_event_and_not_on_its_near_miss() {
    let mut p = pipeline();
    // The base event itself (an ordinary pod create by a user) raises nothing.
    assert_eq!(raised(&mut p, &base()), Vec::<String>::new());
    for (i, case) in cases().into_iter().enumerate() {
        // A fresh auditID per event: the compiled rules raise once per request.
        let mut hit = case.hit;
        hit["auditID"] = format!("hit-{i}").into();
        let mut want: Vec<String> =
            std::iter::once(case.rule).chain(case.also.iter().copied()).map(String::from).collect();
        want.sort();
        assert_eq!(raised(&mut p, &hit), want, "hit for {}", case.rule);
        let mut miss = case.miss;
        miss["auditID"] = format!("miss-{i}").into();
        let got = raised(&mut p, &miss);
        assert!(!got.iter().any(|r| r == case.rule), "near miss raised {}: {got:?}", case.rule);
    }
}

#[test]
fn user_agent_branch_of_the_enumeration_rule() {
    let mut p = pipeline();
    let ev = with(|v| {
        res(v, "", "secrets", "get");
        v["userAgent"] = "TruffleHog/3.63".into();
    });
    assert_eq!(raised(&mut p, &ev), ["Kubernetes Potential Enumeration Activity"]);
}

#[test]
fn one_alert_per_request_across_stages() {
    let mut p = pipeline();
    let started = with(|v| {
        v["stage"] = "ResponseStarted".into();
        v["objectRef"]["subresource"] = "exec".into();
        v["responseStatus"]["code"] = 101.into();
    });
    let mut complete = started.clone();
    complete["stage"] = "ResponseComplete".into();
    complete["stageTimestamp"] = "2024-05-14T08:03:00.000000Z".into();
    assert_eq!(raised(&mut p, &started), ["Potential Remote Command Execution In Pod Container"]);
    assert_eq!(raised(&mut p, &complete), Vec::<String>::new());
    // Another request (another auditID) raises again.
    let mut other = complete.clone();
    other["auditID"] = "another".into();
    assert_eq!(raised(&mut p, &other), ["Potential Remote Command Execution In Pod Container"]);
}

#[test]
fn compiled_queries_are_readable() {
    let p = pipeline();
    let rule = |name: &str| p.config().alerts.rule(name).unwrap().query.source().to_string();
    assert_eq!(
        rule("Kubernetes Unauthorized or Unauthenticated Access"),
        "((responseStatus.code = 401 or responseStatus.code = 403))"
    );
    assert_eq!(
        rule("RBAC Permission Enumeration Attempt"),
        r#"((verb ~ "(?i)^create$") and (objectRef.apiGroup ~ "(?i)^authorization\\.k8s\\.io$") and (objectRef.resource ~ "(?i)^selfsubjectrulesreviews$"))"#
    );
    assert_eq!(
        rule("Container With A hostPath Mount Created"),
        r#"((verb ~ "(?i)^create$") and (objectRef.resource ~ "(?i)^pods$") and (exists(requestObject.spec.volumes.hostPath)))"#
    );
}

fn load_err(text: &str) -> String {
    kaudit::load_pack_text(text, "bad.yml", &Default::default(), Default::default()).unwrap_err().to_string()
}

#[test]
fn sigma_semantics_and_errors() {
    let rule = |detection: &str| {
        format!("title: t\nlogsource:\n  product: kubernetes\n  service: audit\ndetection:\n{detection}\nlevel: high\n")
    };
    let load = |detection: &str| {
        kaudit::load_pack_text(&rule(detection), "r.yml", &Default::default(), Default::default()).unwrap().remove(0)
    };
    let matches = |r: &kaudit::Rule, v: &Value| r.query.matches(v);
    // Case-insensitive whole-value match with wildcards; |all; lists are OR.
    let r = load("  sel:\n    userAgent: 'KUBECTL/*'\n    verb: [get, list]\n  condition: sel");
    assert!(matches(&r, &json!({"userAgent": "kubectl/v1.30", "verb": "list"})));
    assert!(!matches(&r, &json!({"userAgent": "xkubectl/v1.30", "verb": "list"})));
    let r = load("  sel:\n    requestURI|contains|all: ['/api', 'watch=true']\n  condition: sel");
    assert!(matches(&r, &json!({"requestURI": "/api/v1/pods?watch=true"})));
    assert!(!matches(&r, &json!({"requestURI": "/api/v1/pods"})));
    // |re is case-sensitive; null is absence; not / all of / 1 of.
    let r = load("  a:\n    user.username|re: '^system:node:'\n  b:\n    impersonatedUser: null\n  filter:\n    verb: watch\n  condition: (a and b) and not filter");
    assert!(matches(&r, &json!({"user": {"username": "system:node:n1"}, "verb": "get"})));
    assert!(!matches(&r, &json!({"user": {"username": "SYSTEM:node:n1"}, "verb": "get"})));
    assert!(!matches(
        &r,
        &json!({"user": {"username": "system:node:n1"}, "verb": "get", "impersonatedUser": {"username": "x"}})
    ));
    assert!(!matches(&r, &json!({"user": {"username": "system:node:n1"}, "verb": "watch"})));
    let r = load("  sel_a:\n    verb: delete\n  sel_b:\n    verb: deletecollection\n  condition: 1 of sel_*");
    assert!(matches(&r, &json!({"verb": "deletecollection"})));
    assert_eq!(r.severity, kaudit::AlertSeverity::High);
    // Errors name the file, line and key.
    let e = load_err(&rule("  sel:\n    verb|base64: x\n  condition: sel"));
    assert!(e.starts_with("bad.yml:7:"), "{e}");
    assert!(e.contains("detection.sel.verb|base64") && e.contains("not supported"), "{e}");
    let e = load_err(&rule("  sel:\n    verb: x\n  condition: sel | count() > 5"));
    assert!(e.contains("bad.yml:8:") && e.contains("detection.condition") && e.contains("aggregation"), "{e}");
    let e = load_err(&rule("  sel:\n    verb: x\n  condition: nope"));
    assert!(e.contains("unknown selection \"nope\""), "{e}");
    let e = load_err("title: t\nlogsource:\n  product: windows\ndetection:\n  sel:\n    a: b\n  condition: sel\n");
    assert!(e.contains("bad.yml:3:") && e.contains("logsource.product"), "{e}");
}
