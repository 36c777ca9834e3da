use super::*;
use crate::event::Event;

#[test]
fn kubernetes_admin_is_attributed_to_the_rolebinding_user() {
    let text = r#"{"stage":"ResponseComplete","verb":"get","user":{"username":"kubernetes-admin"},"annotations":{"authorization.k8s.io/reason":"RBAC: allowed by RoleBinding \"ram-27689245/default\" of ClusterRole \"cs:admin\" to User \"27689245\""}}"#;
    let ev = Event::parse(text).unwrap();
    assert_eq!(account::acting_account(&ev), "27689245");
    let no_binding = r#"{"stage":"ResponseComplete","verb":"get","user":{"username":"kubernetes-admin"},"annotations":{"authorization.k8s.io/reason":""}}"#;
    assert_eq!(account::acting_account(&Event::parse(no_binding).unwrap()), "kubernetes-admin");
}

#[test]
fn user_kinds_on_real_users() {
    let kind = |user: &str| {
        let text = format!(r#"{{"stage":"ResponseComplete","verb":"get","user":{user}}}"#);
        account::user_kind(&Event::parse(&text).unwrap())
    };
    assert_eq!(kind(r#"{}"#), "anonymous");
    assert_eq!(kind(r#"{"username":"system:anonymous"}"#), "anonymous");
    assert_eq!(kind(r#"{"username":"system:node:worker-1","groups":["system:nodes"]}"#), "node");
    assert_eq!(kind(r#"{"username":"system:serviceaccount:kube-system:default"}"#), "serviceaccount");
    assert_eq!(kind(r#"{"username":"system:kube-scheduler"}"#), "system");
    assert_eq!(kind(r#"{"username":"alice"}"#), "human");
}

#[test]
fn port_forward_and_categories() {
    let text = r#"{"stage":"ResponseStarted","verb":"create","requestURI":"/api/v1/namespaces/default/pods/db-0/portforward?ports=5432&ports=8080","objectRef":{"resource":"pods","name":"db-0","subresource":"portforward"}}"#;
    let ev = Event::parse(text).unwrap();
    let e = Enricher::default().enrich(&ev);
    assert_eq!(e.exec.unwrap().ports, ["5432", "8080"]);
    assert_eq!(resource::category("cronjobs"), "compute");
    assert_eq!(resource::category("ingresses"), "network");
    assert_eq!(resource::category("persistentvolumeclaims"), "storage");
    assert_eq!(resource::category("aliyunlogconfigs"), "other");
    assert_eq!(resource::operation("patch"), "update");
    assert_eq!(resource::operation("watch"), "access");
}

#[test]
fn tags_are_written_as_their_json_strings() {
    for (tag, json) in ALL_TAGS.iter().zip(ALL_TAGS_JSON) {
        let mut s = String::new();
        write_json_str(&mut s, tag);
        assert_eq!(s, json);
    }
    let mut e = Enrichment::default();
    e.tags.0 = Tags::INTERNET | Tags::DELETE | Tags::SECRET;
    let mut out = String::new();
    e.write_json(&mut out);
    assert_eq!(out, r#"{"tags":["internet-access","resource-deletion","secret-access"]}"#);
}
