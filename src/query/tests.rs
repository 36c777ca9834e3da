//! Unit tests for the search language, on audit events shaped like the ones an ACK cluster
//! ships to SLS.

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde_json::{json, Value as Json};

use super::*;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// `kubectl exec` into a pod: the `create pods/exec` event at stage ResponseStarted (the
/// connection upgrade, code 101).
fn exec_event() -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": "6a1d3c2e-8f0b-4a7e-9a53-2b6f1f0c9d11",
        "stage": "ResponseStarted",
        "requestURI": "/api/v1/namespaces/default/pods/nginx-7c5ddbdf54-x8k2p/exec?command=sh&container=nginx&stdin=true&stdout=true&tty=true",
        "verb": "create",
        "user": {
            "username": "kubernetes-admin",
            "uid": "kubernetes-admin",
            "groups": ["system:masters", "system:authenticated"]
        },
        "sourceIPs": ["203.0.113.7"],
        "userAgent": "kubectl/v1.30.1 (linux/amd64) kubernetes/6911225",
        "objectRef": {
            "resource": "pods",
            "namespace": "default",
            "name": "nginx-7c5ddbdf54-x8k2p",
            "apiVersion": "v1",
            "subresource": "exec"
        },
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": "2024-05-14T08:21:11.532104Z",
        "stageTimestamp": "2024-05-14T08:21:11.561437Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": ""
        }
    })
}

/// The same exec once the stream closed (stage ResponseComplete).
fn exec_complete_event() -> Json {
    let mut e = exec_event();
    e["stage"] = json!("ResponseComplete");
    e
}

/// A kubelet reading its own Node object.
fn node_get_event() -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "0b9e7c55-3f1e-4b51-8a77-5d0c2b1e9a30",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/nodes/cn-hangzhou.10.0.1.12?resourceVersion=0&timeout=10s",
        "verb": "get",
        "user": {
            "username": "system:node:cn-hangzhou.10.0.1.12",
            "groups": ["system:nodes", "system:authenticated"]
        },
        "sourceIPs": ["10.0.1.12"],
        "userAgent": "kubelet/v1.30.1-aliyun.1 (linux/amd64) kubernetes/9b2a3c1",
        "objectRef": {"resource": "nodes", "name": "cn-hangzhou.10.0.1.12", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-14T08:21:12.004518Z",
        "stageTimestamp": "2024-05-14T08:21:12.006871Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": ""
        }
    })
}

/// CoreDNS's service account listing EndpointSlices.
fn sa_list_event() -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "c3f1d2a4-6b7e-4c8d-9e0f-1a2b3c4d5e6f",
        "stage": "ResponseComplete",
        "requestURI": "/apis/discovery.k8s.io/v1/endpointslices?limit=500&resourceVersion=0",
        "verb": "list",
        "user": {
            "username": "system:serviceaccount:kube-system:coredns",
            "uid": "0e8f5a9b-1c2d-4e3f-8a7b-6c5d4e3f2a1b",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
        },
        "sourceIPs": ["172.20.0.14"],
        "userAgent": "coredns/v1.11.1 (linux/amd64) kubernetes/$Format",
        "objectRef": {"resource": "endpointslices", "apiGroup": "discovery.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-14T08:21:13.120004Z",
        "stageTimestamp": "2024-05-14T08:21:13.124431Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"system:coredns\" of ClusterRole \"system:coredns\" to ServiceAccount \"coredns/kube-system\""
        }
    })
}

/// An unauthenticated probe for secrets, rejected with 401.
fn anonymous_401_event() -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "9d8c7b6a-5f4e-4d3c-8b2a-190817263544",
        "stage": "ResponseStarted",
        "requestURI": "/api/v1/namespaces/kube-system/secrets",
        "verb": "list",
        "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        "sourceIPs": ["198.51.100.23"],
        "userAgent": "curl/8.4.0",
        "responseStatus": {
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401
        },
        "requestReceivedTimestamp": "2024-05-14T08:22:40.000120Z",
        "stageTimestamp": "2024-05-14T08:22:40.000388Z"
    })
}

/// Alice impersonating a deployer service account; RBAC forbids the delete.
fn impersonated_event() -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "51f2e3d4-c5b6-4a79-8811-2233445566ff",
        "stage": "ResponseComplete",
        "requestURI": "/apis/apps/v1/namespaces/prod/deployments/payments-api",
        "verb": "delete",
        "user": {"username": "alice@example.com", "groups": ["dev-team", "system:authenticated"]},
        "impersonatedUser": {
            "username": "system:serviceaccount:prod:deployer",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:prod", "system:authenticated"]
        },
        "sourceIPs": ["192.0.2.44", "10.0.0.8"],
        "userAgent": "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
        "objectRef": {
            "resource": "deployments",
            "namespace": "prod",
            "name": "payments-api",
            "apiGroup": "apps",
            "apiVersion": "v1"
        },
        "responseStatus": {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403},
        "requestReceivedTimestamp": "2024-05-14T09:02:05.410203Z",
        "stageTimestamp": "2024-05-14T09:02:05.412980Z",
        "annotations": {
            "authorization.k8s.io/decision": "forbid",
            "authorization.k8s.io/reason": ""
        }
    })
}

/// The DaemonSet controller creating a privileged CSI plugin pod (RequestResponse level, so
/// the pod spec is in requestObject).
fn privileged_pod_event() -> Json {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "77aa88bb-99cc-4ddd-8eee-ff0011223344",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/kube-system/pods",
        "verb": "create",
        "user": {
            "username": "system:serviceaccount:kube-system:daemon-set-controller",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
        },
        "sourceIPs": ["192.168.0.10"],
        "userAgent": "kube-controller-manager/v1.30.1 (linux/amd64) kubernetes/9b2a3c1/system:serviceaccount:kube-system:daemon-set-controller",
        "objectRef": {"resource": "pods", "namespace": "kube-system", "apiVersion": "v1"},
        "requestObject": {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "generateName": "csi-plugin-",
                "namespace": "kube-system",
                "labels": {"app": "csi-plugin-legacy", "app.kubernetes.io/name": "csi-plugin"}
            },
            "spec": {
                "hostNetwork": true,
                "containers": [
                    {
                        "name": "driver-registrar",
                        "image": "registry-cn-hangzhou.ack.aliyuncs.com/acs/csi-node-driver-registrar:v2.9.0",
                        "securityContext": {"privileged": false}
                    },
                    {
                        "name": "csi-plugin",
                        "image": "registry-cn-hangzhou.ack.aliyuncs.com/acs/csi-plugin:v1.30.1",
                        "securityContext": {"privileged": true},
                        "ports": [{"containerPort": 11260, "name": "healthz"}]
                    }
                ]
            }
        },
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2024-05-14T07:59:59.999001Z",
        "stageTimestamp": "2024-05-14T08:00:00.010000Z"
    })
}

/// A minimal event with only a user name, for the control-plane users.
fn user_event(username: &str) -> Json {
    json!({"verb": "get", "stage": "ResponseComplete", "user": {"username": username}})
}

fn q(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("query failed to parse:\n{}", e.render(text)))
}

fn hit(text: &str, doc: &Json) -> bool {
    q(text).matches(doc)
}

fn err(text: &str) -> QueryError {
    match Query::parse(text) {
        Ok(parsed) => panic!("expected {text:?} to fail, parsed as {parsed:?}"),
        Err(e) => e,
    }
}

/// Asserts `text` parses and gives `expected` on each `(name, event)`.
fn expect_each(text: &str, cases: &[(&str, Json, bool)]) {
    let query = q(text);
    for (name, event, expected) in cases {
        assert_eq!(query.matches(event), *expected, "query {text:?} on the {name} event");
    }
}

// ---------------------------------------------------------------------------------------
// The seed's queries, verbatim
// ---------------------------------------------------------------------------------------

const SEED_EXEC: &str = "verb : create and objectRef.subresource:exec and stage:  ResponseStarted";
const SEED_HUMANS: &str = "NOT user.username: node NOT user.username: serviceaccount NOT user.username: apiserver NOT user.username: kube-scheduler NOT user.username: kube-controller-manager";

#[test]
fn seed_exec_query() {
    expect_each(
        SEED_EXEC,
        &[
            ("exec", exec_event(), true),
            ("exec (complete)", exec_complete_event(), false),
            ("node get", node_get_event(), false),
            ("sa list", sa_list_event(), false),
            ("anonymous 401", anonymous_401_event(), false),
            ("impersonated", impersonated_event(), false),
            ("privileged pod", privileged_pod_event(), false),
        ],
    );
}

#[test]
fn seed_exclude_system_users_query() {
    expect_each(
        SEED_HUMANS,
        &[
            ("exec (kubernetes-admin)", exec_event(), true),
            ("node get (system:node:..)", node_get_event(), false),
            ("sa list (system:serviceaccount:..)", sa_list_event(), false),
            ("anonymous 401 (system:anonymous)", anonymous_401_event(), true),
            ("impersonated (alice)", impersonated_event(), true),
            ("privileged pod (daemon-set-controller sa)", privileged_pod_event(), false),
            ("system:apiserver", user_event("system:apiserver"), false),
            ("system:kube-scheduler", user_event("system:kube-scheduler"), false),
            ("system:kube-controller-manager", user_event("system:kube-controller-manager"), false),
            // `-` is not a delimiter: the only token is the whole name, not `apiserver`.
            ("kube-apiserver-healthcheck", user_event("kube-apiserver-healthcheck"), true),
            // No user at all: every NOT holds.
            ("no user", json!({"verb": "get"}), true),
        ],
    );
}

#[test]
fn seed_queries_read_only_their_fields() {
    let paths: Vec<String> = q(SEED_EXEC).field_paths().unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(paths, ["verb", "objectRef.subresource", "stage"]);
    let paths = q(SEED_HUMANS).field_paths().unwrap();
    assert_eq!(paths, [FieldPath::parse("user.username").unwrap()], "deduplicated");
    assert_eq!(q(SEED_EXEC).source(), SEED_EXEC);
}

// ---------------------------------------------------------------------------------------
// Token match vs exact comparison
// ---------------------------------------------------------------------------------------

#[test]
fn colon_is_a_case_insensitive_token_match() {
    let node = node_get_event();
    assert!(hit("user.username: node", &node));
    assert!(hit("user.username: NODE", &node));
    assert!(hit("user.username: system", &node));
    assert!(hit("user.username: cn-hangzhou.10.0.1.12", &node), "'.' and '-' are not delimiters");
    assert!(!hit("user.username: cn-hangzhou", &node), "a token must match whole");
    assert!(!hit("user.username: nod", &node));
    assert!(hit("verb: GET", &node));
    assert!(hit("user.username: apiserver", &user_event("system:apiserver")));
    assert!(!hit("user.username: apiserver", &user_event("kube-apiserver-healthcheck")));
    assert!(hit("user.username: kube-apiserver-healthcheck", &user_event("kube-apiserver-healthcheck")));
    // Field names themselves are case-sensitive JSON keys.
    assert!(!hit("Verb: get", &node));
}

#[test]
fn equals_is_case_sensitive_whole_value() {
    let node = node_get_event();
    assert!(!hit("user.username = node", &node));
    assert!(hit(r#"user.username = "system:node:cn-hangzhou.10.0.1.12""#, &node));
    assert!(hit("user.username = system:node:cn-hangzhou.10.0.1.12", &node), "unquoted value runs to whitespace");
    assert!(!hit(r#"user.username = "SYSTEM:node:cn-hangzhou.10.0.1.12""#, &node));
    assert!(hit("verb = get", &node));
    assert!(!hit("verb = GET", &node));
    assert!(hit("verb == get", &node));
    assert!(hit("verb != list", &node));
    assert!(!hit("verb != get", &node));
    // `!=` means "no visited value equals": true when the field is absent.
    assert!(hit("objectRef.subresource != exec", &node));
    assert!(!hit("objectRef.subresource != exec", &exec_event()));
}

#[test]
fn phrases_match_consecutive_tokens() {
    let node = node_get_event();
    assert!(hit(r#"user.username: "system:node""#, &node));
    assert!(!hit(r#"user.username: "node:system""#, &node), "order matters");
    assert!(!hit(r#"user.username: "system:cn-hangzhou.10.0.1.12""#, &node), "tokens must be adjacent");
    assert!(hit(r#"requestURI: "/api/v1/nodes""#, &node));
    assert!(hit(r#"requestURI: "nodes cn-hangzhou.10.0.1.12 resourceVersion""#, &node), "any delimiters between");
    // Unquoted values containing delimiters are phrases too.
    assert!(hit("user.username: system:serviceaccount:kube-system", &sa_list_event()));
    assert!(!hit("user.username: system:serviceaccount:kube-system", &impersonated_event()));
    assert!(hit("impersonatedUser.username: system:serviceaccount:prod", &impersonated_event()));
    // A phrase in a long annotation value.
    let sa = sa_list_event();
    assert!(hit(r#"annotations."authorization.k8s.io/reason": "ClusterRoleBinding system:coredns""#, &sa));
    assert!(!hit(r#"annotations."authorization.k8s.io/reason": "ClusterRole system:kube-dns""#, &sa));
}

#[test]
fn wildcards_inside_tokens() {
    let sa = sa_list_event();
    assert!(hit("user.username: kube*", &sa), "prefix of the token kube-system");
    assert!(hit("user.username: core*", &sa));
    assert!(hit("user.username: *dns", &sa));
    assert!(hit("user.username: c?redns", &sa));
    assert!(!hit("user.username: c?dns", &sa), "? is exactly one char");
    assert!(hit("user.username: system:serviceaccount:*:coredns", &sa), "* as a whole token in a phrase");
    assert!(!hit("user.username: system:serviceaccount:*:kube-proxy", &sa));
    assert!(hit("objectRef.name: *hangzhou*", &node_get_event()));
    assert!(hit("verb: CR*E", &exec_event()), "wildcards are case-insensitive too");
    assert!(!hit("verb: cre*x", &exec_event()));
    // Quoted values are literal: no wildcard.
    assert!(!hit(r#"user.username: "kube*""#, &sa));
    assert!(hit(r#"name: "a*b""#, &json!({"name": "x a*b y"})));
    // Pathological patterns stay linear-ish and correct.
    let long = "a".repeat(2000);
    assert!(!hit("v: *a*a*a*a*a*a*a*b", &json!({ "v": long })));
    assert!(hit("v: *a*a*a*a*a*a*a*", &json!({ "v": long })));
}

#[test]
fn numbers_and_booleans_token_match_as_text() {
    let anon = anonymous_401_event();
    assert!(hit("responseStatus.code: 401", &anon));
    assert!(hit("responseStatus.code: 40*", &anon));
    assert!(!hit("responseStatus.code: 403", &anon));
    assert!(hit("requestObject.spec.hostNetwork: true", &privileged_pod_event()));
    assert!(hit("n: 1.50", &json!({"n": 1.5})), "a numeric value compares numerically");
}

// ---------------------------------------------------------------------------------------
// Existence and null
// ---------------------------------------------------------------------------------------

#[test]
fn existence() {
    expect_each("objectRef.subresource: *", &[("exec", exec_event(), true), ("node", node_get_event(), false)]);
    expect_each(
        "exists(impersonatedUser)",
        &[("impersonated", impersonated_event(), true), ("exec", exec_event(), false)],
    );
    expect_each(
        "not exists(objectRef)",
        &[("anonymous", anonymous_401_event(), true), ("node", node_get_event(), false)],
    );
    // Objects exist; empty arrays and nulls do not.
    let doc = json!({"meta": {}, "empty": [], "nothing": null, "list": [null, 1]});
    assert!(hit("exists(meta)", &doc));
    assert!(hit("meta: *", &doc));
    assert!(!hit("exists(empty)", &doc));
    assert!(!hit("exists(nothing)", &doc));
    assert!(hit("exists(list)", &doc));
    assert!(hit("nothing = null", &doc));
    assert!(hit("missing = null", &doc));
    assert!(!hit("meta = null", &doc));
    assert!(hit("meta != null", &doc));
    assert!(!hit("nothing != null", &doc));
    assert!(hit("requestObject = null", &exec_event()));
    assert!(!hit("requestObject = null", &privileged_pod_event()));
    assert!(hit("EXISTS ( stage )", &exec_event()), "keyword is case-insensitive, spaces allowed");
    // `exists` not followed by '(' is an ordinary word.
    assert!(hit("exists: yes", &json!({"exists": "yes"})));
}

// ---------------------------------------------------------------------------------------
// Numeric and ordering comparisons
// ---------------------------------------------------------------------------------------

#[test]
fn numeric_comparisons() {
    let all = [
        ("exec 101", exec_event()),
        ("node 200", node_get_event()),
        ("sa 200", sa_list_event()),
        ("anon 401", anonymous_401_event()),
        ("impersonated 403", impersonated_event()),
        ("pod 201", privileged_pod_event()),
    ];
    let run = |text: &str, expected: [bool; 6]| {
        let query = q(text);
        for ((name, event), want) in all.iter().zip(expected) {
            assert_eq!(query.matches(event), want, "{text} on {name}");
        }
    };
    run("responseStatus.code >= 400", [false, false, false, true, true, false]);
    run("responseStatus.code>400", [false, false, false, true, true, false]);
    run("responseStatus.code < 200", [true, false, false, false, false, false]);
    run("responseStatus.code <= 200", [true, true, true, false, false, false]);
    run("responseStatus.code = 401", [false, false, false, true, false, false]);
    run(r#"responseStatus.code = "403""#, [false, false, false, false, true, false]);
    run("responseStatus.code != 200", [true, false, false, true, true, true]);
    run("responseStatus.code >= 4e2", [false, false, false, true, true, false]);
}

#[test]
fn strings_holding_numbers_compare_as_numbers() {
    let doc = json!({"port": "8080", "id": "007", "name": "web"});
    assert!(hit("port > 1024", &doc));
    assert!(!hit("port < 1024", &doc));
    assert!(hit("port = 8080", &doc));
    assert!(hit("port = 8080.0", &doc));
    assert!(hit(r#"port = "8080""#, &doc));
    assert!(!hit(r#"port = "8080.0""#, &doc), "two strings compare exactly");
    assert!(hit("id = 7", &doc));
    assert!(!hit("name > 5", &doc), "non-numeric strings never compare with numbers");
    assert!(!hit("name < 5", &doc));
}

#[test]
fn string_bounds_compare_lexicographically() {
    let exec = exec_event();
    assert!(hit(r#"requestReceivedTimestamp >= "2024-05-14T08:00:00Z""#, &exec));
    assert!(!hit(r#"requestReceivedTimestamp < "2024-05-14T08:00:00Z""#, &exec));
    assert!(hit(
        r#"requestReceivedTimestamp >= "2024-05-14T08:21:00Z" and requestReceivedTimestamp < "2024-05-14T08:22:00Z""#,
        &exec
    ));
    assert!(!hit("verb > zzz", &exec));
    assert!(hit("verb > a", &exec));
}

#[test]
fn boolean_literals() {
    let pod = privileged_pod_event();
    assert!(hit("requestObject.spec.hostNetwork = true", &pod));
    assert!(hit("requestObject.spec.hostNetwork = TRUE", &pod));
    assert!(!hit("requestObject.spec.hostNetwork = false", &pod));
    assert!(hit(r#"requestObject.spec.hostNetwork = "true""#, &pod), "the string form of a bool");
    assert!(hit("flag = true", &json!({"flag": "true"})), "a stringly bool");
    assert!(!hit("flag = true", &json!({"flag": 1})));
}

// ---------------------------------------------------------------------------------------
// in, regex
// ---------------------------------------------------------------------------------------

#[test]
fn in_lists() {
    let verbs = "verb in (create, delete, patch)";
    expect_each(
        verbs,
        &[
            ("exec", exec_event(), true),
            ("impersonated", impersonated_event(), true),
            ("node", node_get_event(), false),
        ],
    );
    expect_each(
        "verb not in (get,list,watch)",
        &[("exec", exec_event(), true), ("sa", sa_list_event(), false), ("node", node_get_event(), false)],
    );
    assert!(hit(r#"objectRef.resource in ("pods", nodes,)"#, &node_get_event()), "trailing comma");
    assert!(hit("responseStatus.code in (401, 403)", &anonymous_401_event()));
    assert!(!hit("responseStatus.code in (401, 403)", &node_get_event()));
    assert!(hit(r#"user.groups IN ("system:masters")"#, &exec_event()));
    assert!(!hit(r#"user.groups in ("system")"#, &exec_event()), "in is exact, not a token match");
    assert!(hit(r#"reason in ("c d", x)"#, &json!({"reason": "c d"})));
    assert!(hit("objectRef.subresource in (exec, null)", &node_get_event()), "null matches absence");
    // `not in` holds for absent fields.
    assert!(hit("objectRef.subresource not in (exec, log)", &node_get_event()));
}

#[test]
fn regex_matches() {
    expect_each(
        r#"userAgent ~ "^kubectl/""#,
        &[
            ("exec", exec_event(), true),
            ("impersonated", impersonated_event(), true),
            ("node", node_get_event(), false),
        ],
    );
    let exec = exec_event();
    assert!(hit(r#"requestURI ~ "/exec\?command=""#, &exec), "unknown escapes pass through to the regex");
    assert!(hit(r#"requestURI ~ "pods/[a-z0-9-]+/exec""#, &exec), "unanchored search");
    assert!(!hit(r#"verb ~ "CREATE""#, &exec), "case-sensitive by default");
    assert!(hit(r#"verb ~ "(?i)CREATE""#, &exec));
    assert!(hit(r#"user.username !~ "^system:""#, &exec));
    assert!(!hit(r#"user.username !~ "^system:""#, &node_get_event()));
    assert!(hit(r#"responseStatus.code ~ "^4\d\d$""#, &anonymous_401_event()), "numbers match by their text");
    assert!(hit(r#"user.groups ~ "^system:masters$""#, &exec), "any array element");
}

// ---------------------------------------------------------------------------------------
// Arrays
// ---------------------------------------------------------------------------------------

#[test]
fn arrays_are_visited_elementwise() {
    let exec = exec_event();
    assert!(hit("user.groups: system:masters", &exec));
    assert!(!hit("user.groups: system:masters", &node_get_event()));
    assert!(hit(r#"user.groups = "system:masters""#, &exec));
    assert!(hit("sourceIPs: 10.0.0.8", &impersonated_event()));

    let pod = privileged_pod_event();
    let privileged = "requestObject.spec.containers.securityContext.privileged = true";
    assert!(hit(privileged, &pod));
    assert!(!hit(privileged, &exec));
    // Existential: some container is unprivileged too...
    assert!(hit("requestObject.spec.containers.securityContext.privileged = false", &pod));
    // ...and `!=` means "no container has it".
    assert!(!hit("requestObject.spec.containers.securityContext.privileged != true", &pod));
    assert!(hit(r#"requestObject.spec.containers.name = "csi-plugin""#, &pod));
    assert!(hit("requestObject.spec.containers.image: acs", &pod));
    // Arrays inside arrays.
    assert!(hit("requestObject.spec.containers.ports.containerPort > 10000", &pod));
    assert!(!hit("requestObject.spec.containers.ports.containerPort > 20000", &pod));
    let nested = json!({"a": [[{"b": 1}], [{"b": [2, [3]]}]]});
    assert!(hit("a.b = 3", &nested));
    assert!(!hit("a.b = 4", &nested));
}

// ---------------------------------------------------------------------------------------
// Dotted keys: quoted and the unquoted SLS form
// ---------------------------------------------------------------------------------------

#[test]
fn quoted_and_unquoted_annotation_keys() {
    let imp = impersonated_event();
    assert!(hit(r#"annotations."authorization.k8s.io/decision": forbid"#, &imp));
    assert!(hit("annotations.authorization.k8s.io/decision: forbid", &imp));
    assert!(hit("annotations.authorization.k8s.io/decision = forbid", &imp));
    assert!(!hit("annotations.authorization.k8s.io/decision: allow", &imp));
    assert!(hit("annotations.authorization.k8s.io/decision: allow", &exec_event()));
    assert!(hit("exists(annotations.authorization.k8s.io/decision)", &imp));
    assert!(!hit("exists(annotations.authorization.k8s.io/decision)", &anonymous_401_event()));
    // A label key that shares its first segment with another label.
    let pod = privileged_pod_event();
    assert!(hit(r#"requestObject.metadata.labels.app.kubernetes.io/name = "csi-plugin""#, &pod));
    assert!(hit(r#"requestObject.metadata.labels."app.kubernetes.io/name" = "csi-plugin""#, &pod));
    assert!(hit(r#"requestObject.metadata.labels.app = "csi-plugin-legacy""#, &pod));
    assert!(!hit(r#"requestObject.metadata.labels.app = "csi-plugin""#, &pod));
    // A quoted dotted segment is one literal key: it does not descend into nested objects.
    assert!(!hit(r#""objectRef.resource" = pods"#, &exec_event()));
    assert!(hit(r#""objectRef.resource" = pods"#, &json!({"objectRef.resource": "pods"})));
    // Both spellings present (as SLS would flatten them): both are visited.
    let both = json!({"a": {"b": 1}, "a.b": 2});
    assert!(hit("a.b = 1", &both));
    assert!(hit("a.b = 2", &both));
    assert!(!hit("a.b != 2", &both));
}

// ---------------------------------------------------------------------------------------
// Bare full-text terms
// ---------------------------------------------------------------------------------------

#[test]
fn bare_terms_search_every_value() {
    let events = [
        ("exec", exec_event()),
        ("node", node_get_event()),
        ("sa", sa_list_event()),
        ("anon", anonymous_401_event()),
        ("impersonated", impersonated_event()),
        ("pod", privileged_pod_event()),
    ];
    let run = |text: &str, expected: [bool; 6]| {
        let query = q(text);
        assert_eq!(query.field_paths(), None, "{text} reads the whole document");
        for ((name, event), want) in events.iter().zip(expected) {
            assert_eq!(query.matches(event), want, "{text} on {name}");
        }
    };
    run("nginx-7c5ddbdf54-x8k2p", [true, false, false, false, false, false]);
    run("coredns", [false, false, true, false, false, false]);
    run("alice@example.com", [false, false, false, false, true, false]);
    run("Unauthorized", [false, false, false, true, false, false]);
    run("401", [false, false, false, true, false, false]);
    run("kube-system", [false, false, true, true, false, true]);
    run(r#""system:serviceaccount:prod""#, [false, false, false, false, true, false]);
    run("privileged", [false, false, false, false, false, false]); // only ever a key
    run("deployer forbid", [false, false, false, false, true, false]);
    assert_eq!(q("*").field_paths(), Some(vec![]));
    assert!(hit("*", &exec_event()));
    assert!(hit("", &exec_event()), "the empty query matches everything");
    assert!(hit("   ", &json!({})));
}

// ---------------------------------------------------------------------------------------
// Precedence
// ---------------------------------------------------------------------------------------

#[test]
fn or_binds_looser_than_and() {
    // a or (b and c): the node GET matches through `a` alone.
    let text = "verb: get or verb: create and objectRef.subresource: exec";
    expect_each(
        text,
        &[
            ("node", node_get_event(), true),
            ("exec", exec_event(), true),
            ("pod create (no subresource)", privileged_pod_event(), false),
        ],
    );
    // Juxtaposition is `and` at the same level.
    expect_each(
        "verb: get or verb: create objectRef.subresource: exec",
        &[("node", node_get_event(), true), ("pod", privileged_pod_event(), false)],
    );
    expect_each(
        "(verb: get or verb: create) and objectRef.subresource: exec",
        &[("node", node_get_event(), false), ("exec", exec_event(), true)],
    );
}

#[test]
fn not_binds_to_the_next_term() {
    // (not a) and b
    let text = "not verb: get user.username: coredns";
    expect_each(
        text,
        &[
            ("sa list (coredns)", sa_list_event(), true),
            ("node get", node_get_event(), false),
            ("exec", exec_event(), false),
        ],
    );
    expect_each(
        "not (verb: get or verb: list)",
        &[("node", node_get_event(), false), ("sa", sa_list_event(), false), ("exec", exec_event(), true)],
    );
    assert!(hit("not not verb: get", &node_get_event()));
    assert!(hit("NOT verb: list AND verb: get OR stage: nope", &node_get_event()));
    assert!(hit("verb: get aNd NoT verb: list", &node_get_event()));
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn parse_errors_point_at_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("verb:", 6, "expected a value after ':', found end of query"),
        ("objectRef.name: ", 17, "expected a value after ':', found end of query"),
        ("(verb: ) and x", 8, "expected a value after ':', found ')'"),
        ("verb: and stage: x", 7, "expected a value after ':', found the keyword 'and'"),
        ("verb: create and", 17, "expected a search term after 'and', found end of query"),
        ("or verb: get", 1, "expected a search term, found 'or'"),
        ("verb: get or", 13, "expected a search term after 'or', found end of query"),
        ("not", 4, "expected a search term after 'not', found end of query"),
        ("verb: \"create", 7, "unterminated string: missing closing '\"'"),
        ("(verb: get", 11, "expected ')' to close the '(' at column 1, found end of query"),
        ("verb: get)", 10, "unexpected ')'"),
        ("()", 2, "empty parentheses: expected a search term"),
        (": get", 1, "expected a field name before ':'"),
        ("verb ! get", 6, "expected '=' or '~' after '!'"),
        ("a..b: x", 3, "empty segment in field path"),
        ("a.b.: x", 5, "field path ends with '.'"),
        ("a*b: x", 2, "'*' cannot appear in an unquoted field name"),
        ("code >= true", 9, "'>=' needs a number or a string, not 'true'"),
        ("verb ~ create", 8, "expected a quoted regular expression after '~'"),
        ("verb ~ \"(\"", 8, "invalid regular expression: unclosed group"),
        ("verb in [get]", 9, "expected '(' after 'in'"),
        ("verb in (get list)", 14, "expected ',' or ')' in the 'in' list"),
        ("verb in ()", 10, "expected a value in the 'in' list, found ')'"),
        ("verb: \":\"", 7, "value after ':' has no searchable text"),
        ("verb: \"get\"x", 12, "unexpected text right after a closing quote"),
        ("verb: ge\"t\"", 9, "unexpected '\"' inside a value"),
        ("foo\"bar\"", 4, "a quoted string must stand alone"),
        ("exists(verb", 12, "expected ')' after the field name in exists(..)"),
        // Columns count chars, not bytes.
        ("名前: 値 and", 10, "expected a search term after 'and'"),
    ];
    for (text, column, message) in cases {
        let e = err(text);
        assert_eq!(e.column, *column, "column for {text:?}: {e}");
        assert!(e.message.starts_with(message), "message for {text:?}: got {:?}, want prefix {message:?}", e.message);
    }
}

#[test]
fn error_display_and_caret_rendering() {
    let text = "verb: create and objectRef.name:";
    let e = err(text);
    assert_eq!(e.to_string(), "column 33: expected a value after ':', found end of query");
    let rendered = e.render(text);
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines[0], text);
    assert_eq!(lines[1], format!("{}^ {e}", " ".repeat(32)));
    // Line breaks in the query are flattened so the caret still lines up.
    let text = "verb: get and\n  (stage";
    let e = err(text);
    assert_eq!(e.column, 23);
    assert_eq!(e.render(text).lines().next(), Some("verb: get and   (stage"));
}

#[test]
fn nesting_depth_is_bounded() {
    let ok = format!("{}verb: get{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(hit(&ok, &node_get_event()));
    let deep = format!("{}verb: get{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let e = err(&deep);
    assert_eq!(e.column, MAX_DEPTH + 1);
    assert!(e.message.contains("deeper than 64"), "{e}");
    let nots = format!("{}verb: get", "not ".repeat(MAX_DEPTH + 1));
    assert_eq!(err(&nots).column, 4 * MAX_DEPTH + 1);
    assert!(hit(&format!("{}verb: get", "not ".repeat(MAX_DEPTH)), &node_get_event()));
    // A hostile amount of nesting is an error, not a stack overflow.
    let hostile = "(".repeat(100_000);
    assert!(Query::parse(&hostile).is_err());
    // Long flat chains are fine (they are loops, not recursion).
    let chain = vec!["verb: x"; 10_000].join(" or ") + " or verb: get";
    assert!(hit(&chain, &node_get_event()));
}

#[test]
fn oversized_regex_is_rejected() {
    let e = err(r#"verb ~ "\w{1000}\w{1000}\w{1000}""#);
    assert_eq!(e.column, 8);
    assert!(e.message.starts_with("invalid regular expression"), "{e}");
}

// ---------------------------------------------------------------------------------------
// FieldPath
// ---------------------------------------------------------------------------------------

#[test]
fn field_path_parse_and_display_round_trip() {
    for text in [
        "verb",
        "objectRef.subresource",
        r#"annotations."authorization.k8s.io/decision""#,
        "annotations.authorization.k8s.io/decision",
        r#"a."b \"c\" \\d".e"#,
        r#""and".x"#,
        "requestObject.spec.containers.securityContext.privileged",
    ] {
        let path = FieldPath::parse(text).unwrap();
        assert_eq!(path.to_string(), text, "display of {text}");
        assert_eq!(FieldPath::parse(&path.to_string()).unwrap(), path);
    }
    let quoted = FieldPath::parse(r#"annotations."authorization.k8s.io/decision""#).unwrap();
    assert_eq!(quoted.segments().collect::<Vec<_>>(), ["annotations", "authorization.k8s.io/decision"]);
    let unquoted = FieldPath::parse("annotations.authorization.k8s.io/decision").unwrap();
    assert_eq!(unquoted.len(), 4);
    assert_eq!(unquoted.segment(3), Some("io/decision"));
    assert_eq!(unquoted.dotted(1, 4), Some("authorization.k8s.io/decision"));
    assert_eq!(unquoted.dotted(2, 2), None);
    assert_eq!(unquoted.dotted(3, 9), None);
    assert_eq!(unquoted.flattened(), "annotations.authorization.k8s.io/decision");
    // Keys that need quoting are quoted on display.
    let odd = FieldPath::from_segments(["metadata", "labels", "app.kubernetes.io/name", "a b"]).unwrap();
    assert_eq!(odd.to_string(), r#"metadata.labels."app.kubernetes.io/name"."a b""#);
    assert_eq!(FieldPath::parse(&odd.to_string()).unwrap(), odd);
    assert_eq!(FieldPath::from_segments(["a", ""]), None);
    assert_eq!(FieldPath::from_segments(Vec::<String>::new()), None);
    assert_eq!(FieldPath::parse("").unwrap_err().column, 1);
    assert_eq!(FieldPath::parse("a b").unwrap_err().column, 2);
}

#[test]
fn field_paths_lists_every_path_once() {
    let query = q(
        r#"verb: get and (user.username = x or exists(objectRef.name)) and not verb in (list) and annotations."a.b" ~ "z""#,
    );
    let paths: Vec<String> = query.field_paths().unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(paths, ["verb", "user.username", "objectRef.name", r#"annotations."a.b""#]);
    assert_eq!(q("verb: get and kube-system").field_paths(), None);
}

// ---------------------------------------------------------------------------------------
// The Document trait
// ---------------------------------------------------------------------------------------

/// A flat map document, standing in for the pipeline's lazily decoded event.
struct Flat(HashMap<&'static str, Vec<&'static str>>);

impl Document for Flat {
    fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        for s in self.0.get(path.flattened()).into_iter().flatten() {
            if visit(Value::Str(s)).is_break() {
                return;
            }
        }
    }
    fn visit_all(&self, visit: &mut dyn FnMut(Value<'_>) -> ControlFlow<()>) {
        for s in self.0.values().flatten() {
            if visit(Value::Str(s)).is_break() {
                return;
            }
        }
    }
}

#[test]
fn custom_documents_work_through_the_trait() {
    let doc = Flat(HashMap::from([
        ("verb", vec!["create"]),
        ("objectRef.subresource", vec!["exec"]),
        ("stage", vec!["ResponseStarted"]),
        ("user.username", vec!["kubernetes-admin"]),
    ]));
    assert!(q(SEED_EXEC).matches(&doc));
    assert!(q(SEED_HUMANS).matches(&doc));
    assert!(q("kubernetes-admin").matches(&doc));
    assert!(!q("verb: get").matches(&doc));
}

#[test]
fn lookup_helpers_visit_and_stop_early() {
    let pod = privileged_pod_event();
    let path = FieldPath::parse("requestObject.spec.containers.name").unwrap();
    let mut names = Vec::new();
    let flow = lookup_json(&pod, &path, |v| {
        names.push(v);
        ControlFlow::Continue(())
    });
    assert_eq!(flow, ControlFlow::Continue(()));
    assert_eq!(names, [Value::Str("driver-registrar"), Value::Str("csi-plugin")]);

    let mut seen = 0;
    let flow = lookup_json(&pod, &path, |_| {
        seen += 1;
        ControlFlow::Break(())
    });
    assert_eq!((flow, seen), (ControlFlow::Break(()), 1));

    // Resuming below a sub-object the caller resolved itself.
    let spec = &pod["requestObject"]["spec"];
    let mut privileged = Vec::new();
    let _ = lookup_json_from(
        spec,
        &FieldPath::parse("requestObject.spec.containers.securityContext.privileged").unwrap(),
        2,
        |v| {
            privileged.push(v);
            ControlFlow::Continue(())
        },
    );
    assert_eq!(privileged, [Value::Bool(false), Value::Bool(true)]);

    let mut leaves = 0;
    let _ = visit_all_json(&json!({"a": [1, "x", null, {"b": true}], "c": {}}), |_| {
        leaves += 1;
        ControlFlow::Continue(())
    });
    assert_eq!(leaves, 3, "strings, numbers and booleans only");
}

#[test]
fn query_is_shareable() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<Query>();
    assert_traits::<FieldPath>();
    assert_traits::<QueryError>();
    let query: Query = SEED_EXEC.parse().unwrap();
    let copy = query.clone();
    let handle = std::thread::spawn(move || copy.matches(&exec_event()));
    assert!(handle.join().unwrap());
    assert_eq!(query.to_string(), SEED_EXEC);
}

// ---------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------

#[test]
fn arbitrary_input_never_panics() {
    // Deterministic xorshift over an alphabet of every syntactically meaningful char plus
    // multi-byte ones; parse, and evaluate whatever parses.
    const ALPHABET: &[&str] = &[
        "a",
        "verb",
        "user.username",
        " ",
        ":",
        "=",
        "!",
        "<",
        ">",
        "~",
        "(",
        ")",
        ",",
        "\"",
        "\\",
        ".",
        "*",
        "?",
        "not ",
        " and ",
        " or ",
        "in ",
        "exists",
        "null",
        "true",
        "-1.5e3",
        "名",
        "é",
        "\t",
        "\n",
        "/",
        "@",
        "[",
        "]",
        "'",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let events = [exec_event(), privileged_pod_event(), json!({"user.username": ["名", 1, null, {}]})];
    let mut parsed = 0;
    for _ in 0..20_000 {
        let len = (next() % 12) as usize;
        let text: String = (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize]).collect();
        match Query::parse(&text) {
            Ok(query) => {
                parsed += 1;
                for e in &events {
                    let _ = query.matches(e);
                }
                let _ = query.field_paths();
            }
            Err(e) => {
                assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{text:?}: {e}");
                let _ = e.render(&text);
            }
        }
        let _ = FieldPath::parse(&text).map(|p| assert_eq!(FieldPath::parse(&p.to_string()), Ok(p)));
    }
    assert!(parsed > 1_000, "the generator should produce valid queries too ({parsed})");
}

#[test]
fn one_ascii_word_matches_as_the_general_token_match() {
    // The byte-wise path for a query of one ASCII word against the definition (some field
    // token equals the word, char by char, folded), on generated texts of delimiters, ASCII
    // letters and chars whose lower case is ASCII (Kelvin sign), two chars (U+0130) or neither.
    let alphabet = ["a", "k", "K", "b", "\u{212a}", "\u{130}", "é", " ", ":", "/", "?", "-", "1"];
    let words = ["k", "ka", "Ab", "kak", "b1", "a-b", "k?"];
    let mut rng = crate::test_rng::XorShift::new(0x5eed_cafe);
    let (mut checked, mut hits) = (0, 0);
    for word in words {
        let query = text::TextQuery::new(word, true).unwrap();
        let folded: Vec<String> = text::Tokens::field(word).map(|t| t.chars().map(text::fold).collect()).collect();
        for _ in 0..4000 {
            let len = rng.below(9) as usize;
            let t: String = (0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect();
            let field: Vec<String> = text::Tokens::field(&t).map(|t| t.chars().map(text::fold).collect()).collect();
            let expected = field.windows(folded.len()).any(|w| w == folded.as_slice());
            assert_eq!(query.matches_text(&t), expected, "{word:?} in {t:?}");
            checked += 1;
            hits += usize::from(expected);
        }
    }
    assert!(checked == 28_000 && hits > 1_000, "{hits} matches");
}
