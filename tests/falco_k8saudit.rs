//! The Falco pack (`rules/falco-k8saudit.yaml`) on Falco's own k8s audit traces
//! (tests/fixtures/falco): every trace raises exactly the alerts Falco's default rules raise on
//! it, derived by reading Falco's conditions (tests/fixtures/falco/falco-k8s-audit-rules.yaml)
//! and the k8saudit plugin's field extraction. Events go through the whole pipeline with a
//! policy that keeps everything (Falco sees raw events).

use std::collections::BTreeMap;

use kaudit::Pipeline;

mod support;

use support::{root, Dir};

const KEEP_ALL: &str =
    "policy:\n  apiVersion: audit.k8s.io/v1\n  kind: Policy\n  rules:\n    - level: RequestResponse\n";

fn pipeline(packs: &str) -> Pipeline {
    let config = format!("{KEEP_ALL}alerts:\n  defaultRules: false\n  packs: [{packs}]\n");
    Pipeline::from_config_text(&config, "falco-test.yaml", &Dir(root())).unwrap().0
}

/// Rule names of the alerts `input` raises, sorted.
fn raised(p: &mut Pipeline, input: &[u8]) -> Vec<String> {
    let mut out = String::new();
    p.process_stream(input, &mut out, &mut |_| {});
    let mut names: Vec<String> = p
        .take_alerts()
        .iter()
        .map(|a| serde_json::from_str::<serde_json::Value>(a).unwrap()["rule"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Trace -> the rules Falco raises on it (each once per event that matches).
const EXPECTED: &[(&str, &[&str])] = &[
    // system:anonymous starts with "system:", so it is not a "Disallowed K8s User"; the request
    // was allowed and is not a health endpoint; foo is not an allowed namespace.
    (
        "anonymous_creates_namespace_foo.json",
        &["Anonymous Request Allowed", "Create Disallowed Namespace", "K8s Namespace Created"],
    ),
    ("attach_cluster_admin_role.json", &["Attach to cluster-admin Role", "K8s ClusterRoleBinding Created"]),
    // ResponseStarted: only kevt_started rules can match (all the others need ResponseComplete).
    ("attach_pod.json", &["Attach/Exec Pod"]),
    ("create_cluster_role_pod_exec.json", &["ClusterRole With Pod Exec Created", "K8s ClusterRole Created"]),
    ("create_cluster_role_wildcard_resources.json", &["ClusterRole With Wildcard Created", "K8s ClusterRole Created"]),
    // verbs: ["*"] is a wildcard, but not a write privilege: `intersects (create, update, ...)`
    // compares literally and "*" is not in that list.
    ("create_cluster_role_wildcard_verbs.json", &["ClusterRole With Wildcard Created", "K8s ClusterRole Created"]),
    // The only write verb ("delete") is on the nonResourceURLs rule: Falco flattens the verbs of
    // every rule of the role.
    (
        "create_cluster_role_write_privileges.json",
        &["ClusterRole With Write Privileges Created", "K8s ClusterRole Created"],
    ),
    ("create_clusterrole.json", &["K8s ClusterRole Created"]),
    // roleRef is system:basic-user, not cluster-admin.
    ("create_clusterrolebinding.json", &["K8s ClusterRoleBinding Created"]),
    ("create_configmap.json", &["K8s ConfigMap Created"]),
    ("create_configmap_no_sensitive_values.json", &["K8s ConfigMap Created"]),
    // Six events, one per marker (aws_access_key_id, aws-access-key-id, aws_s3_access_key_id,
    // aws-s3-access-key-id, password, passphrase), each also a successful configmap create.
    (
        "create_configmap_sensitive_values.json",
        &[
            "Create/Modify Configmap With Private Credentials",
            "Create/Modify Configmap With Private Credentials",
            "Create/Modify Configmap With Private Credentials",
            "Create/Modify Configmap With Private Credentials",
            "Create/Modify Configmap With Private Credentials",
            "Create/Modify Configmap With Private Credentials",
            "K8s ConfigMap Created",
            "K8s ConfigMap Created",
            "K8s ConfigMap Created",
            "K8s ConfigMap Created",
            "K8s ConfigMap Created",
            "K8s ConfigMap Created",
        ],
    ),
    ("create_deployment.json", &["K8s Deployment Created"]),
    // admin is an allowed user, and secrets in kube-system are excluded from "K8s Secret Created".
    ("create_kube_system_secret.json", &[]),
    // Pods created by the replicaset controller: a system: user, so never "Disallowed K8s User";
    // there is no activity rule for pods. nginx/mysql are in no allow-list.
    ("create_nginx_pod_hostnetwork.json", &["Create HostNetwork Pod"]),
    // The first container has no securityContext, the second is privileged: any container
    // privileged is enough (intersects), and not every image is allow-listed.
    ("create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json", &["Create Privileged Pod"]),
    ("create_nginx_pod_nohostnetwork.json", &[]),
    ("create_nginx_pod_privileged.json", &["Create Privileged Pod"]),
    ("create_nginx_pod_privileged_2nd_container.json", &["Create Privileged Pod"]),
    ("create_nginx_pod_sensitive_mount.json", &["Create Sensitive Mount Pod"]),
    ("create_nginx_pod_sensitive_mount_2nd_container.json", &["Create Sensitive Mount Pod"]),
    ("create_nginx_pod_unprivileged.json", &[]),
    // Despite its name this trace is a kubelet (system:node:minikube) GET of a pod.
    ("create_nginx_pod_unsensitive_mount.json", &[]),
    ("create_nginx_service_nodeport.json", &["Create NodePort Service", "K8s Service Created"]),
    ("create_nginx_service_nonodeport.json", &["K8s Service Created"]),
    ("create_pod_kube_public_namespace.json", &["Pod Created in Kube Namespace"]),
    ("create_pod_kube_system_namespace.json", &["Pod Created in Kube Namespace"]),
    ("create_secret.json", &["K8s Secret Created"]),
    ("create_service.json", &["K8s Service Created"]),
    // Created by system:kube-controller-manager: "K8s Secret Created" excludes system: users.
    ("create_service_account_token_secret.json", &[]),
    ("create_serviceaccount.json", &["K8s Serviceaccount Created"]),
    // myacct is not a known controller service account.
    (
        "create_serviceaccount_kube_public_namespace.json",
        &["K8s Serviceaccount Created", "Service Account Created in Kube Namespace"],
    ),
    (
        "create_serviceaccount_kube_system_namespace.json",
        &["K8s Serviceaccount Created", "Service Account Created in Kube Namespace"],
    ),
    ("delete_cluster_role_kube_aggregator.json", &["K8s ClusterRole Deleted", "System ClusterRole Modified/Deleted"]),
    ("delete_clusterrole.json", &["K8s ClusterRole Deleted"]),
    ("delete_clusterrolebinding.json", &["K8s ClusterRoleBinding Deleted"]),
    ("delete_configmap.json", &["K8s ConfigMap Deleted"]),
    ("delete_deployment.json", &["K8s Deployment Deleted"]),
    // By minikube-user, who is not a system: user.
    ("delete_namespace_foo.json", &["K8s Namespace Deleted"]),
    ("delete_secret.json", &["K8s Secret Deleted"]),
    ("delete_service.json", &["K8s Service Deleted"]),
    ("delete_serviceaccount.json", &["K8s Serviceaccount Deleted"]),
    ("exec_pod.json", &["Attach/Exec Pod"]),
    // Not an audit event ({"kind": 0}): passed through, no alert.
    ("fal_01_003.json", &[]),
    // minikube-user is allowed; foo is still not an allowed namespace.
    ("minikube_creates_namespace_foo.json", &["Create Disallowed Namespace", "K8s Namespace Created"]),
    // A patch: "modified" for the system: role rule, but there is no activity rule for patches.
    ("modify_cluster_role_node_problem_detector.json", &["System ClusterRole Modified/Deleted"]),
    (
        "some-user_creates_namespace_foo.json",
        &["Create Disallowed Namespace", "Disallowed K8s User", "K8s Namespace Created"],
    ),
];

#[test]
fn every_trace_raises_exactly_what_falco_raises() {
    let dir = root().join("tests/fixtures/falco");
    let mut traces: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    traces.sort();
    let table: BTreeMap<&str, &[&str]> = EXPECTED.iter().copied().collect();
    assert_eq!(traces, table.keys().map(|k| k.to_string()).collect::<Vec<_>>(), "the table must cover every trace");
    let mut p = pipeline("builtin:falco-k8saudit");
    let mut total = 0;
    for trace in &traces {
        let input = std::fs::read(dir.join(trace)).unwrap();
        let got = raised(&mut p, &input);
        let mut want: Vec<String> = table[trace.as_str()].iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{trace}");
        total += got.len();
    }
    assert_eq!(total, 66);
}

#[test]
fn the_pack_file_and_the_builtin_are_the_same_rules() {
    let mut a = pipeline("builtin:falco-k8saudit");
    let mut b = pipeline("rules/falco-k8saudit.yaml");
    let input = std::fs::read(root().join("tests/fixtures/sample-audit.log")).unwrap();
    let (mut out_a, mut out_b) = (String::new(), String::new());
    a.process_stream(&input, &mut out_a, &mut |_| {});
    b.process_stream(&input, &mut out_b, &mut |_| {});
    let (alerts_a, alerts_b) = (a.take_alerts(), b.take_alerts());
    assert!(alerts_a.len() > 60, "{}", alerts_a.len());
    // Only the source differs: a file pack is named by its `name:` too.
    assert_eq!(alerts_a, alerts_b);
}

/// The pack covers exactly Falco's rules that are on by default, under Falco's names.
#[test]
fn the_pack_has_every_default_on_falco_rule() {
    let text = std::fs::read_to_string(root().join("tests/fixtures/falco/falco-k8s-audit-rules.yaml")).unwrap();
    let doc = kaudit::yaml::parse(&text, "falco").unwrap();
    let kaudit::yaml::Kind::Seq(items) = &doc.kind else { panic!() };
    let falco: Vec<&str> = items.iter().filter_map(|i| i.get("rule").and_then(|r| r.as_str())).collect();
    assert_eq!(falco.len(), 48);
    // Off by default: their conditions contain `not <always true macro>` or a never-true macro.
    let off = [
        "Create Disallowed Pod",
        "All K8s Audit Events",
        "Full K8s Administrative Access",
        "Untrusted Node Successfully Joined the Cluster",
        "Untrusted Node Unsuccessfully Tried to Join the Cluster",
    ];
    let on: Vec<&str> = falco.iter().copied().filter(|r| !off.contains(r)).collect();
    let pack =
        kaudit::load_pack_text(kaudit::FALCO_PACK, "falco-k8saudit.yaml", &Default::default(), Default::default())
            .unwrap();
    let names: Vec<&str> = pack.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, on);
}

/// Mutates a trace's JSON and returns it as one line.
fn mutate(trace: &str, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/falco").join(trace)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn allow_lists_use_falco_subset_semantics() {
    let mut p = pipeline("builtin:falco-k8saudit");
    // Every container image allow-listed (tags and digests stripped): no alert.
    let all_allowed = mutate("create_nginx_pod_privileged_2nd_container.json", |v| {
        let c = &mut v["requestObject"]["spec"]["containers"];
        c[0]["image"] = "docker.io/calico/node:v3.8".into();
        c[1]["image"] = "sysdig/sysdig@sha256:0123".into();
    });
    assert_eq!(raised(&mut p, &all_allowed), Vec::<String>::new());
    // One image allowed and one not: `in` is a subset test, so the rule fires.
    let one_allowed = mutate("create_nginx_pod_privileged_2nd_container.json", |v| {
        v["requestObject"]["spec"]["containers"][0]["image"] = "docker.io/calico/node:v3.8".into();
    });
    assert_eq!(raised(&mut p, &one_allowed), ["Create Privileged Pod"]);
    // A privileged init container counts too.
    let init = mutate("create_nginx_pod_unprivileged.json", |v| {
        v["requestObject"]["spec"]["initContainers"] =
            serde_json::json!([{"name": "init", "image": "busybox", "securityContext": {"privileged": true}}]);
    });
    assert_eq!(raised(&mut p, &init), ["Create Privileged Pod"]);
}

#[test]
fn near_misses() {
    let mut p = pipeline("builtin:falco-k8saudit");
    // A credential marker in a configmap *key* is in the serialised object as well.
    let key = mutate("create_configmap.json", |v| v["requestObject"]["data"] = serde_json::json!({"db-password": "x"}));
    assert_eq!(raised(&mut p, &key), ["Create/Modify Configmap With Private Credentials", "K8s ConfigMap Created"]);
    // Case matters to Falco's `contains`.
    let upper =
        mutate("create_configmap.json", |v| v["requestObject"]["data"] = serde_json::json!({"k": "PASSWORD=x"}));
    assert_eq!(raised(&mut p, &upper), ["K8s ConfigMap Created"]);
    // Anonymous on a health endpoint (with a query string) is excluded; elsewhere it is not.
    let healthz = mutate("anonymous_creates_namespace_foo.json", |v| {
        v["verb"] = "get".into();
        v["requestURI"] = "/healthz?verbose=1".into();
        v["objectRef"] = serde_json::Value::Null;
    });
    assert_eq!(raised(&mut p, &healthz), Vec::<String>::new());
    let healthzx = mutate("anonymous_creates_namespace_foo.json", |v| {
        v["verb"] = "get".into();
        v["requestURI"] = "/healthzx".into();
        v["objectRef"] = serde_json::Value::Null;
    });
    assert_eq!(raised(&mut p, &healthzx), ["Anonymous Request Allowed"]);
    // port-forward matches at any stage.
    let pf = mutate("exec_pod.json", |v| {
        v["objectRef"]["subresource"] = "portforward".into();
        v["stage"] = "ResponseComplete".into();
    });
    assert_eq!(raised(&mut p, &pf), ["port-forward"]);
    // A failed secret get is "Unsuccessfully Tried"; the same at ResponseStarted is nothing.
    let get = mutate("delete_secret.json", |v| {
        v["verb"] = "get".into();
        v["responseStatus"] = serde_json::json!({"code": 403});
    });
    assert_eq!(raised(&mut p, &get), ["K8s Secret Get Unsuccessfully Tried"]);
    let started = mutate("delete_secret.json", |v| {
        v["verb"] = "get".into();
        v["stage"] = "ResponseStarted".into();
    });
    assert_eq!(raised(&mut p, &started), Vec::<String>::new());
    // system:coredns is exempt from the system role rule.
    let coredns =
        mutate("modify_cluster_role_node_problem_detector.json", |v| v["objectRef"]["name"] = "system:coredns".into());
    assert_eq!(raised(&mut p, &coredns), Vec::<String>::new());
}

#[test]
fn alerts_carry_falco_output_fields() {
    let mut p = pipeline("builtin:falco-k8saudit");
    let input = std::fs::read(root().join("tests/fixtures/falco/exec_pod.json")).unwrap();
    let mut out = String::new();
    p.process_stream(&input, &mut out, &mut |_| {});
    let alerts = p.take_alerts();
    assert_eq!(alerts.len(), 1);
    let a: serde_json::Value = serde_json::from_str(&alerts[0]).unwrap();
    assert_eq!(a["severity"], "low");
    assert_eq!(a["source"], "falco-k8saudit");
    assert_eq!(a["tags"], serde_json::json!(["k8s", "falco-priority:NOTICE"]));
    assert_eq!(a["fields"]["user"], "minikube-user");
    assert_eq!(a["fields"]["pod"], "nginx-deployment-7998647bdf-phvq7");
    assert_eq!(a["fields"]["action"], "exec");
    assert_eq!(a["fields"]["command"], "bash");
    assert_eq!(a["auditIDs"], serde_json::json!(["ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"]));
    assert_eq!(a["time"], "2018-10-26T13:38:34.902914Z");
}
