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

#[test]
fn constant_members_are_written_as_their_key_and_value() {
    // Every constant the enricher hands out, written from its member text, gives what a
    // member written from a string of the same text (the fallback) gives, for every one of
    // them first or after another member.
    let kinds = account::USER_KINDS.iter().chain(&resource::CATEGORIES).chain(&resource::OPERATIONS);
    for (value, member) in kinds {
        let copy: &'static str = String::from(*value).leak();
        for first in [true, false] {
            let with = |v: &'static str| {
                let mut e = Enrichment { account: (!first).then_some("a"), ..Enrichment::default() };
                if member.contains("userKind") {
                    e.user_kind = Some(v);
                } else if member.contains("resourceCategory") {
                    e.resource_category = Some(v);
                } else {
                    e.operation = Some(v);
                }
                let mut out = String::new();
                e.write_json(&mut out);
                out
            };
            let (fast, slow) = (with(value), with(copy));
            assert_eq!(fast, slow);
            let v: serde_json::Value = serde_json::from_str(&fast).unwrap();
            let key = member.split('"').nth(1).unwrap();
            assert_eq!(v[key], *value, "{fast}");
        }
    }
    for scope in [IpScope::Intranet, IpScope::Internet, IpScope::Invalid] {
        assert_eq!(scope.json_member(), format!(",\"ipScope\":\"{}\"", scope.as_str()));
    }
    // What the enricher computes is the table's own string.
    let ev = Event::parse(
        r#"{"stage":"ResponseComplete","verb":"patch","user":{"username":"alice"},"objectRef":{"resource":"pods"}}"#,
    )
    .unwrap();
    let e = Enricher::default().enrich(&ev);
    assert!(std::ptr::eq(e.user_kind.unwrap(), account::USER_KINDS[4].0));
    assert!(std::ptr::eq(e.resource_category.unwrap(), resource::CATEGORIES[0].0));
    assert!(std::ptr::eq(e.operation.unwrap(), resource::OPERATIONS[1].0));
    let mut out = String::new();
    e.write_json(&mut out);
    assert_eq!(
        out,
        r#"{"account":"alice","userKind":"human","resourceType":"pods","resourceCategory":"compute","operation":"update"}"#
    );
}
