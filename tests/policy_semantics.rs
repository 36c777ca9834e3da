//! The policy semantics of kube-apiserver (kubernetes/apiserver: `pkg/apis/audit/validation/validation.go`,
//! `pkg/audit/policy/checker.go`, `pkg/audit/request.go`, and the pitfalls a reimplementation meets), each case checked through a logged event as kaudit sees it.

use kaudit::Event;
use kaudit::Level;
use kaudit::{Decision, Evaluator, Policy};

fn policy(rules_yaml: &str) -> Evaluator {
    let text = format!("apiVersion: audit.k8s.io/v1\nkind: Policy\n{rules_yaml}");
    Evaluator::new(Policy::load(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}")).policy)
}

/// An event for a resource request (`oref` is the objectRef JSON) or a non-resource one (`None`).
fn event(user: &str, groups: &[&str], verb: &str, uri: &str, oref: Option<&str>) -> String {
    let user =
        if user.is_empty() { "{}".to_string() } else { format!("{{\"username\":\"{user}\",\"groups\":{groups:?}}}") };
    let oref = oref.map(|o| format!(",\"objectRef\":{o}")).unwrap_or_default();
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"x","stage":"ResponseComplete","requestURI":"{uri}","verb":"{verb}","user":{user}{oref}}}"#
    )
}

fn decide(e: &Evaluator, ev: &str) -> Decision {
    e.evaluate_event(&Event::parse(ev).unwrap())
}

fn pods_get(user: &str) -> String {
    event(
        user,
        &["system:authenticated"],
        "get",
        "/api/v1/namespaces/default/pods/p1",
        Some(r#"{"resource":"pods","namespace":"default","name":"p1","apiVersion":"v1"}"#),
    )
}

#[test]
fn p1_first_match_wins_and_no_match_is_none_with_policy_omit_stages() {
    let e = policy("omitStages: [RequestReceived]\nrules:\n- level: Metadata\n  users: [alice]\n- level: Request\n  users: [alice]\n");
    let d = decide(&e, &pods_get("alice"));
    assert_eq!((d.level, d.rule), (Level::Metadata, Some(0)));
    let d = decide(&e, &pods_get("bob"));
    assert_eq!((d.level, d.rule), (Level::None, None));
    assert_eq!(*d.omit_stages, ["RequestReceived"]);
}

#[test]
fn p2_omit_stages_is_the_union_as_a_set() {
    let e = policy("omitStages: [RequestReceived, Panic]\nrules:\n- level: Metadata\n  omitStages: [ResponseStarted, RequestReceived]\n");
    let mut d = decide(&e, &pods_get("alice")).omit_stages.to_vec();
    d.sort();
    assert_eq!(d, ["Panic", "RequestReceived", "ResponseStarted"]);
}

#[test]
fn p3_omit_managed_fields_tri_state() {
    let e = policy(
        "omitManagedFields: true\nrules:\n- level: Metadata\n  users: [a]\n  omitManagedFields: false\n- level: Metadata\n  users: [b]\n- level: Metadata\n  omitManagedFields: true\n",
    );
    assert!(!decide(&e, &pods_get("a")).omit_managed_fields, "rule false overrides policy true");
    assert!(decide(&e, &pods_get("b")).omit_managed_fields, "unset inherits policy true");
    let e = policy("rules:\n- level: Metadata\n  users: [a]\n  omitManagedFields: true\n- level: Metadata\n");
    assert!(decide(&e, &pods_get("a")).omit_managed_fields, "rule true overrides policy false");
    assert!(!decide(&e, &pods_get("b")).omit_managed_fields);
    // No match: the policy's value.
    let e = policy("omitManagedFields: true\nrules:\n- level: Metadata\n  users: [a]\n");
    let d = decide(&e, &pods_get("b"));
    assert_eq!((d.level, d.omit_managed_fields), (Level::None, true));
}

#[test]
fn p4_cluster_scope_and_resource_vs_non_resource_rules() {
    let e = policy("rules:\n- level: Request\n  namespaces: [\"\"]\n- level: Metadata\n  nonResourceURLs: [\"*\"]\n- level: RequestResponse\n  users: [alice]\n");
    let node =
        event("alice", &[], "get", "/api/v1/nodes/n1", Some(r#"{"resource":"nodes","name":"n1","apiVersion":"v1"}"#));
    assert_eq!(decide(&e, &node).rule, Some(0), "namespace \"\" selects cluster-scoped requests");
    assert_eq!(
        decide(&e, &pods_get("alice")).rule,
        Some(2),
        "a namespaced request skips the \"\" rule and the non-resource rule"
    );
    let healthz = event("alice", &[], "get", "/healthz", None);
    assert_eq!(decide(&e, &healthz).rule, Some(1), "`*` non-resource rule");
    let e = policy("rules:\n- level: Request\n  namespaces: [default]\n- level: Metadata\n  users: [alice]\n");
    assert_eq!(
        decide(&e, &healthz).rule,
        Some(1),
        "a resource rule never matches a non-resource request; a users-only rule matches both"
    );
}

#[test]
fn p5_resource_and_subresource_matching() {
    let get = |res: &str, sub: Option<&str>| {
        let s = sub.map(|s| format!(",\"subresource\":\"{s}\"")).unwrap_or_default();
        let uri = format!("/api/v1/namespaces/default/{res}/x{}", sub.map(|s| format!("/{s}")).unwrap_or_default());
        event("u", &[], "get", &uri, Some(&format!(r#"{{"resource":"{res}","namespace":"default","name":"x"{s}}}"#)))
    };
    let only = |spec: &str| {
        policy(&format!("rules:\n- level: Metadata\n  resources: [{{group: \"\", resources: [\"{spec}\"]}}]\n"))
    };
    let m = |e: &Evaluator, ev: &String| decide(e, ev).rule.is_some();
    let pods = get("pods", None);
    let pods_log = get("pods", Some("log"));
    let svc_status = get("services", Some("status"));
    assert!(m(&only("pods"), &pods));
    assert!(!m(&only("pods"), &pods_log), "pods does not match pods/log");
    assert!(m(&only("pods/log"), &pods_log));
    assert!(!m(&only("pods/log"), &pods), "pods/log does not match pods");
    assert!(m(&only("*"), &pods) && m(&only("*"), &pods_log), "* matches everything incl. subresources");
    assert!(m(&only("*/status"), &svc_status));
    assert!(!m(&only("*/status"), &get("services", None)), "*/x needs a subresource");
    assert!(!m(&only("*/log"), &svc_status));
    assert!(m(&only("pods/*"), &pods_log));
    assert!(m(&only("pods/*"), &pods), "pods/* also matches plain pods (the apiserver's code)");
    assert!(!m(&only("pods/*"), &svc_status));
}

#[test]
fn p6_resource_names_need_a_request_name() {
    let e = policy("rules:\n- level: None\n  resources: [{group: \"\", resources: [configmaps], resourceNames: [cfg]}]\n- level: Metadata\n");
    let get = event(
        "u",
        &[],
        "get",
        "/api/v1/namespaces/d/configmaps/cfg",
        Some(r#"{"resource":"configmaps","namespace":"d","name":"cfg"}"#),
    );
    assert_eq!(decide(&e, &get).rule, Some(0));
    let list = event(
        "u",
        &[],
        "list",
        "/api/v1/namespaces/d/configmaps",
        Some(r#"{"resource":"configmaps","namespace":"d"}"#),
    );
    assert_eq!(decide(&e, &list).rule, Some(1));
    // A create's objectRef.name is back-filled from the body after the policy ran: the URI has no name.
    let create = event(
        "u",
        &[],
        "create",
        "/api/v1/namespaces/d/configmaps",
        Some(r#"{"resource":"configmaps","namespace":"d","name":"cfg"}"#),
    );
    assert_eq!(decide(&e, &create).rule, Some(1), "create takes the name from the URI (empty)");
    // A list with fieldSelector=metadata.name=cfg carries the name attribute.
    let selected = event(
        "u",
        &[],
        "list",
        "/api/v1/namespaces/d/configmaps?fieldSelector=metadata.name%3Dcfg",
        Some(r#"{"resource":"configmaps","namespace":"d","name":"cfg"}"#),
    );
    assert_eq!(decide(&e, &selected).rule, Some(0));
}

#[test]
fn p7_groups_exact_unless_star_and_empty_group_entry_matches_all_core() {
    let deploy = event(
        "u",
        &[],
        "get",
        "/apis/apps/v1/namespaces/d/deployments/w",
        Some(r#"{"resource":"deployments","namespace":"d","name":"w","apiGroup":"apps","apiVersion":"v1"}"#),
    );
    let pod_log = event(
        "u",
        &[],
        "get",
        "/api/v1/namespaces/d/pods/w/log",
        Some(r#"{"resource":"pods","namespace":"d","name":"w","subresource":"log"}"#),
    );
    let e = policy("rules:\n- level: Metadata\n  resources: [{group: \"\"}]\n");
    assert_eq!(decide(&e, &deploy).rule, None, "core group does not match apps");
    assert_eq!(
        decide(&e, &pod_log).rule,
        Some(0),
        "group \"\" with no resources matches all core resources and subresources"
    );
    let e = policy("rules:\n- level: Metadata\n  resources: [{group: \"*\", resources: [deployments]}]\n");
    assert_eq!(decide(&e, &deploy).rule, Some(0));
    let e = policy("rules:\n- level: Metadata\n  resources: [{group: \"extensions\", resources: [deployments]}]\n");
    assert_eq!(decide(&e, &deploy).rule, None);
}

#[test]
fn p7b_v1alpha1_events_carry_the_group_in_api_version() {
    let ev = event(
        "u",
        &[],
        "get",
        "/apis/apps/v1beta1/namespaces/d/deployments/w",
        Some(r#"{"resource":"deployments","namespace":"d","name":"w","apiVersion":"apps/v1beta1"}"#),
    );
    let e = policy("rules:\n- level: Metadata\n  resources: [{group: apps}]\n");
    assert_eq!(decide(&e, &ev).rule, Some(0));
}

#[test]
fn p8_non_resource_url_prefix_is_plain() {
    let e = policy(
        "rules:\n- level: Metadata\n  nonResourceURLs: [\"/logs*\"]\n- level: Request\n  nonResourceURLs: [/version]\n",
    );
    let get = |uri: &str| decide(&e, &event("u", &[], "get", uri, None)).rule;
    assert_eq!(get("/logs"), Some(0));
    assert_eq!(get("/logs/kubelet.log"), Some(0));
    assert_eq!(get("/logsfoo"), Some(0), "trailing * is a plain prefix");
    assert_eq!(get("/version"), Some(1));
    assert_eq!(get("/version?timeout=32s"), Some(1), "the query string is not part of the path");
    assert_eq!(get("/version/x"), None, "no * means exact");
    assert_eq!(get("/log"), None);
}

#[test]
fn p9_users_and_groups_are_exact_and_need_a_user() {
    let e = policy("rules:\n- level: Metadata\n  users: [system:anonymous]\n- level: Request\n  userGroups: [system:unauthenticated]\n- level: RequestResponse\n");
    let anon = event("system:anonymous", &["system:unauthenticated"], "get", "/healthz", None);
    assert_eq!(decide(&e, &anon).rule, Some(0));
    let failed_authn =
        event("", &[], "get", "/api/v1/namespaces/d/pods", Some(r#"{"resource":"pods","namespace":"d"}"#));
    assert_eq!(decide(&e, &failed_authn).rule, Some(2), "no user never matches users/userGroups rules");
    let e = policy("rules:\n- level: Metadata\n  users: [Alice]\n- level: Request\n  userGroups: [\"system:*\"]\n");
    assert_eq!(decide(&e, &pods_get("alice")).rule, None, "case-sensitive, no wildcards");
    let e = policy("rules:\n- level: Metadata\n  verbs: [\"*\"]\n- level: Request\n  verbs: [get]\n");
    assert_eq!(decide(&e, &pods_get("alice")).rule, Some(1), "no * in verbs");
}

#[test]
fn namespace_requests_carry_their_own_name() {
    let e = policy("rules:\n- level: Metadata\n  namespaces: [foo]\n- level: Request\n");
    let delete = event(
        "u",
        &[],
        "delete",
        "/api/v1/namespaces/foo",
        Some(r#"{"resource":"namespaces","namespace":"foo","name":"foo"}"#),
    );
    assert_eq!(decide(&e, &delete).rule, Some(0));
    let finalize = event(
        "u",
        &[],
        "update",
        "/api/v1/namespaces/foo/finalize",
        Some(r#"{"resource":"namespaces","name":"foo","subresource":"finalize"}"#),
    );
    assert_eq!(decide(&e, &finalize).rule, Some(0));
    let create = event("u", &[], "create", "/api/v1/namespaces", Some(r#"{"resource":"namespaces","name":"foo"}"#));
    assert_eq!(decide(&e, &create).rule, Some(1), "POST /api/v1/namespaces has namespace \"\"");
}

#[test]
fn p11_unknown_level_strings_rank_like_none() {
    assert_eq!(Level::rank_of("Bogus"), 0);
    assert_eq!(Level::rank_of("None"), 0);
    assert!(Level::rank_of("Metadata") < Level::rank_of("Request"));
    assert!(Level::rank_of("Request") < Level::rank_of("RequestResponse"));
}

#[test]
fn all_shipped_policies_load() {
    for f in [
        "ack-default-audit-policy.yaml",
        "k8s-website-audit-policy.yaml",
        "gce-configure-helper-audit-policy.yaml",
        "falco-k8saudit-audit-policy.yaml",
    ] {
        let text =
            std::fs::read_to_string(format!("{}/tests/fixtures/policies/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let loaded = Policy::load(&text, f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!loaded.policy.rules.is_empty());
    }
}
