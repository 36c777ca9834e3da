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

#[test]
fn string_members_are_escaped_only_when_needed() {
    // Every string field plain and with characters JSON escapes: the text parses back to
    // the same values.
    for odd in ["plain", "quo\"te", "back\\slash", "line\nbreak", "\u{1}", "", "é and \u{2028}"] {
        let exec = exec::ExecInfo {
            kind: "exec",
            pod: odd,
            container: Some(odd.into()),
            command: Some(odd.into()),
            ports: vec![odd.to_string()],
            tty: true,
            stdin: false,
        };
        let e = Enrichment {
            source_ip: Some(odd),
            peer_ip: Some(odd),
            account: Some(odd),
            impersonated_user: Some(odd),
            resource_type: Some(odd),
            exec: Some(exec),
            ..Enrichment::default()
        };
        let mut out = String::new();
        e.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|err| panic!("{out}: {err}"));
        for key in ["sourceIP", "peerIP", "account", "impersonatedUser", "resourceType"] {
            assert_eq!(v[key], odd, "{out}");
        }
        for key in ["pod", "container", "command", "ports"] {
            assert_eq!(v["exec"][key], odd, "{out}");
        }
        assert_eq!(v.as_object().unwrap().len(), 6, "{out}");
        if odd == "plain" {
            assert_eq!(
                out,
                r#"{"sourceIP":"plain","peerIP":"plain","account":"plain","impersonatedUser":"plain","resourceType":"plain","exec":{"pod":"plain","container":"plain","command":"plain","ports":"plain","tty":true,"stdin":false}}"#
            );
        }
    }
}
