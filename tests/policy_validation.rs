//! Loading and validation, as kube-apiserver's reader.go and validation_test.go (reference 1.2-1.3),
//! with errors that name the file, line and field.

use kaudit::Level;
use kaudit::Policy;

fn load(body: &str) -> Result<kaudit::Loaded, kaudit::PolicyError> {
    Policy::load(&format!("apiVersion: audit.k8s.io/v1\nkind: Policy\n{body}"), "p.yaml")
}

fn errors(body: &str) -> Vec<String> {
    match load(body) {
        Ok(_) => panic!("expected an error for:\n{body}"),
        Err(e) => e.errors.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn valid_cases_from_validation_test() {
    let valid = [
        "rules:\n- level: Metadata\n",
        "rules:\n- level: None\n  userGroups: [system:serviceaccounts, system:nodes]\n",
        "rules:\n- level: RequestResponse\n  verbs: [get]\n  resources: [{group: rbac.authorization.k8s.io, resources: [roles, rolebindings]}]\n  namespaces: [kube-system]\n",
        "rules:\n- level: Metadata\n  userGroups: [developers]\n  nonResourceURLs: [\"/logs*\", \"/healthz*\", /metrics, \"*\"]\n",
        "rules:\n- level: Metadata\n  omitStages: [RequestReceived]\n",
        "omitStages: [RequestReceived]\nrules:\n- level: Metadata\n",
    ];
    for v in valid {
        load(v).unwrap_or_else(|e| panic!("{v}: {e}"));
    }
}

#[test]
fn invalid_cases_from_validation_test() {
    let cases: &[(&str, &str, &str)] = &[
        ("rules:\n- {}\n", "p.yaml:4:3: rules[0].level", "Required value"),
        (
            "rules:\n- verbs: [get]\n  resources: [{group: \"\"}]\n  namespaces: [default]\n",
            "rules[0].level",
            "Required value",
        ),
        ("rules:\n- level: FooBar\n", "p.yaml:4:10: rules[0].level", "unsupported value \"FooBar\""),
        (
            "rules:\n- level: Metadata\n  namespaces: [default]\n  nonResourceURLs: [/logs]\n",
            "rules[0].nonResourceURLs",
            "both regular resources and non-resource URLs",
        ),
        (
            "rules:\n- level: Metadata\n  resources: [{group: \"\"}]\n  nonResourceURLs: [/logs]\n",
            "rules[0].nonResourceURLs",
            "both regular resources",
        ),
        (
            "rules:\n- level: Metadata\n  resources:\n  - group: rbac.authorization.k8s.io/v1beta1\n",
            "p.yaml:6:12: rules[0].resources[0].group",
            "RFC 1123 subdomain",
        ),
        (
            "rules:\n- level: Metadata\n  nonResourceURLs: [logs]\n",
            "rules[0].nonResourceURLs[0]",
            "must begin with a '/'",
        ),
        (
            "rules:\n- level: Metadata\n  nonResourceURLs: [\"\"]\n",
            "rules[0].nonResourceURLs[0]",
            "must begin with a '/'",
        ),
        (
            "rules:\n- level: Metadata\n  nonResourceURLs: [\"/logs/*/*\"]\n",
            "rules[0].nonResourceURLs[0]",
            "final character",
        ),
        (
            "rules:\n- level: Metadata\n  nonResourceURLs: [\"/logs/*.log\"]\n",
            "rules[0].nonResourceURLs[0]",
            "final character",
        ),
        (
            "rules:\n- level: Metadata\n  resources: [{group: \"\", resourceNames: [leader]}]\n",
            "rules[0].resources[0].resourceNames",
            "requires at least one resource",
        ),
        ("rules:\n- level: Metadata\n  omitStages: [foo]\n", "rules[0].omitStages[0]", "unsupported value \"foo\""),
        ("rules:\n- level: Metadata\n- {}\n", "rules[1].level", "Required value"),
        ("omitStages: [foo]\nrules:\n- level: Metadata\n", "p.yaml:3:14: omitStages[0]", "unsupported value"),
    ];
    for (body, at, msg) in cases {
        let errs = errors(body);
        assert!(errs.iter().any(|e| e.contains(at) && e.contains(msg)), "{body}\nwanted {at} / {msg}, got {errs:#?}");
    }
}

#[test]
fn reader_test_cases() {
    let text = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs:
      - /healthz*
      - /version
  - level: RequestResponse
    users: ["tim"]
    userGroups: ["testers", "developers"]
    verbs: ["patch", "delete", "create"]
    resources:
      - group: ""
      - group: "rbac.authorization.k8s.io"
        resources: ["clusterroles", "clusterrolebindings"]
    namespaces: ["default", "kube-system"]
  - level: Metadata
"#;
    let p = Policy::load(text, "reader.yaml").unwrap().policy;
    assert_eq!(p.rules.len(), 3);
    assert_eq!(p.rules[0].level, Level::None);
    assert_eq!(p.rules[0].non_resource_urls, ["/healthz*", "/version"]);
    let r = &p.rules[1];
    assert_eq!(
        (r.users.clone(), r.user_groups.clone(), r.verbs.len()),
        (vec!["tim".to_string()], vec!["testers".to_string(), "developers".to_string()], 3)
    );
    assert_eq!(r.resources[0].group, "");
    assert!(r.resources[0].resources.is_empty(), "`- group: \"\"` is an empty GroupResources");
    assert_eq!(r.resources[1].resources, ["clusterroles", "clusterrolebindings"]);
    assert_eq!(r.namespaces, ["default", "kube-system"]);
    assert_eq!(r.line, 9);
}

#[test]
fn no_api_version_or_kind_is_an_unknown_group_version() {
    let e = Policy::load("rules:\n- level: Metadata\n", "x.yaml").unwrap_err();
    assert!(e.to_string().contains("unknown group version field none"), "{e}");
    let e = Policy::load("apiVersion: audit.k8s.io/v1alpha1\nkind: Policy\nrules:\n- level: Metadata\n", "x.yaml")
        .unwrap_err();
    assert!(e.to_string().contains("unknown group version field \"audit.k8s.io/v1alpha1\""), "{e}");
    let e =
        Policy::load("apiVersion: audit.k8s.io/v1\nkind: Pollicy\nrules:\n- level: Metadata\n", "x.yaml").unwrap_err();
    assert!(e.to_string().contains("x.yaml:2:7: kind: expected \"Policy\""), "{e}");
}

#[test]
fn v1beta1_is_accepted_on_purpose() {
    let p =
        Policy::load("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n", "b.yaml").unwrap();
    assert_eq!(p.policy.api_version, "audit.k8s.io/v1beta1");
}

#[test]
fn misindented_verbs_load_leniently_with_a_warning() {
    // reader_test.go: `verbs` under a resources entry is an unknown field; the restriction is silently lost.
    let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [pods]\n    verbs: [get]\n";
    let loaded = Policy::load(text, "m.yaml").unwrap();
    assert!(loaded.policy.rules[0].verbs.is_empty());
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].to_string(), "m.yaml:8:5: rules[0].resources[0].verbs: unknown field, ignored");
}

#[test]
fn zero_rules_and_empty_files_are_rejected() {
    assert!(Policy::load("apiVersion: audit.k8s.io/v1\nkind: Policy\n", "z.yaml")
        .unwrap_err()
        .to_string()
        .contains("0 rules"));
    assert!(Policy::load("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "z.yaml")
        .unwrap_err()
        .to_string()
        .contains("0 rules"));
    assert!(Policy::load("", "empty.yaml").unwrap_err().to_string().contains("0 rules"));
}

#[test]
fn json_policies_and_wrong_types() {
    let p = Policy::load(
        r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Request","verbs":["get"]}]}"#,
        "p.json",
    )
    .unwrap();
    assert_eq!(p.policy.rules[0].verbs, ["get"]);
    let e = Policy::load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  users: alice\n",
        "t.yaml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("t.yaml:5:10: rules[0].users: expected a list, found a string"), "{e}");
    let e = Policy::load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  omitManagedFields: yes\n",
        "t.yaml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("rules[0].omitManagedFields: expected true or false"), "{e}");
    let e = Policy::load("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [\n", "t.yaml").unwrap_err();
    assert!(e.to_string().starts_with("t.yaml:"), "{e}");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let errs = errors("rules:\n- level: Bogus\n- level: Metadata\n  nonResourceURLs: [x]\n");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}
