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
            let key = member.split('"').nth(2).unwrap();
            assert_eq!(v[key], *value, "{fast}");
        }
    }
    for scope in [IpScope::Intranet, IpScope::Internet, IpScope::Invalid] {
        assert_eq!(scope.json_member(), format!("\",\"ipScope\":\"{}", scope.as_str()));
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

/// [`Enrichment::write_json`] as it was written member by member (one key, one value each).
fn member_by_member(e: &Enrichment<'_>) -> String {
    let mut out = String::new();
    let mut w = ObjWriter::new(&mut out);
    let plain = |v: &str| v.to_string();
    if let Some(v) = e.source_ip {
        w.str("sourceIP", v);
    }
    if let Some(v) = e.peer_ip {
        w.str("peerIP", v);
    }
    if let Some(v) = e.ip_scope {
        w.str("ipScope", v.as_str());
    }
    if let Some(g) = &e.geo {
        w.key("geo");
        g.write_json(w.out);
    }
    if let Some(v) = e.high_risk {
        w.key("highRiskIP");
        w.out.push_str(if v { "true" } else { "false" });
    }
    for (k, v) in [("account", e.account), ("impersonatedUser", e.impersonated_user)] {
        if let Some(v) = v {
            w.str(k, v);
        }
    }
    if let Some(v) = e.user_kind {
        w.str("userKind", &plain(v));
    }
    if let Some(v) = e.resource_type {
        w.str("resourceType", v);
    }
    if let Some(v) = e.resource_category {
        w.str("resourceCategory", &plain(v));
    }
    if let Some(x) = &e.exec {
        w.key(x.kind);
        x.write_json(w.out);
    }
    if let Some(v) = e.latency_ms {
        w.key("latencyMs");
        w.out.push_str(&format_ms(v));
    }
    if let Some(v) = e.success {
        w.key("success");
        w.out.push_str(if v { "true" } else { "false" });
    }
    if let Some(v) = e.operation {
        w.str("operation", &plain(v));
    }
    if !e.tags.is_empty() {
        w.key("tags");
        let tags: Vec<String> = e.tags.iter().map(|t| format!("\"{t}\"")).collect();
        w.out.push_str(&format!("[{}]", tags.join(",")));
    }
    w.end();
    out
}

#[test]
fn members_are_written_as_one_key_and_value_each_would_be() {
    // Every field present or not (and escaped or not), every constant: the text is the one
    // written member by member.
    let mut rng = crate::test_rng::XorShift::new(0x5eed_0e11_0c4a_7e5d);
    let texts = ["10.0.0.1", "quo\"te", "", "é"];
    let pick = |rng: &mut crate::test_rng::XorShift, n: u64| rng.below(n) as usize;
    for round in 0..20_000 {
        let mut e = Enrichment::default();
        let some = |rng: &mut crate::test_rng::XorShift| rng.below(3) != 0;
        if some(&mut rng) {
            e.source_ip = Some(texts[pick(&mut rng, 4)]);
        }
        if some(&mut rng) {
            e.peer_ip = Some(texts[pick(&mut rng, 4)]);
        }
        if some(&mut rng) {
            e.ip_scope = Some([IpScope::Intranet, IpScope::Internet, IpScope::Invalid][pick(&mut rng, 3)]);
        }
        if some(&mut rng) {
            e.high_risk = Some(rng.below(2) == 0);
        }
        if some(&mut rng) {
            e.account = Some(texts[pick(&mut rng, 4)]);
        }
        if rng.below(4) == 0 {
            e.impersonated_user = Some(texts[pick(&mut rng, 4)]);
        }
        if some(&mut rng) {
            e.user_kind = Some(account::USER_KINDS[pick(&mut rng, 5)].0);
        }
        if some(&mut rng) {
            e.resource_type = Some(texts[pick(&mut rng, 4)]);
        }
        if some(&mut rng) {
            e.resource_category = Some(resource::CATEGORIES[pick(&mut rng, 4)].0);
        }
        if rng.below(5) == 0 {
            e.exec = Some(exec::ExecInfo {
                kind: ["exec", "attach", "portForward"][pick(&mut rng, 3)],
                pod: texts[pick(&mut rng, 4)],
                container: None,
                command: Some("ls".into()),
                ports: vec![],
                tty: true,
                stdin: false,
            });
        }
        if some(&mut rng) {
            e.latency_ms = Some(rng.below(1 << 34) as f64 / 1000.0);
        }
        if some(&mut rng) {
            e.success = Some(rng.below(2) == 0);
        }
        if some(&mut rng) {
            let op = resource::OPERATIONS[pick(&mut rng, 4)].0;
            // Now and then a string of the same text (not the table's): written as text.
            e.operation = Some(if round % 7 == 0 { String::from(op).leak() } else { op });
        }
        e.tags.0 = rng.below(16) as u8;
        let mut out = String::new();
        e.write_json(&mut out);
        assert_eq!(out, member_by_member(&e), "{e:?}");
        let mut member = String::from("{");
        e.write_members(&mut member, "}}");
        assert_eq!(member, format!("{out}}}"));
        // Into bytes (the component's and Envoy's output), with a provider context after
        // the members: the same text, the context as `add_member` adds it.
        let source = [None, Some(r#"{"provider":"aks"}"#)][pick(&mut rng, 2)];
        let mut bytes = b"{".to_vec();
        match source {
            None => e.write_members(&mut bytes, "}}"),
            Some(source) => e.write_members_with_source(&mut bytes, source, "}}"),
        }
        let mut want = out.clone();
        if let Some(source) = source {
            add_member(&mut want, "source", source);
        }
        assert_eq!(String::from_utf8(bytes).unwrap(), format!("{want}}}"), "{e:?} {source:?}");
    }
}

#[test]
fn a_provider_context_is_the_last_member_after_any_other() {
    // After no member, a string value (its closing quote still to write) or another value.
    let source = r#"{"provider":"gke","cluster":"c"}"#;
    let enrichments = [
        Enrichment::default(),
        Enrichment { account: Some("alice"), ..Enrichment::default() },
        Enrichment { high_risk: Some(true), ..Enrichment::default() },
    ];
    let want = [
        r#"{"source":{"provider":"gke","cluster":"c"}}"#,
        r#"{"account":"alice","source":{"provider":"gke","cluster":"c"}}"#,
        r#"{"highRiskIP":true,"source":{"provider":"gke","cluster":"c"}}"#,
    ];
    for (e, want) in enrichments.iter().zip(want) {
        let (mut text, mut bytes) = (String::from("{"), b"{".to_vec());
        e.write_members_with_source(&mut text, source, "}");
        e.write_members_with_source(&mut bytes, source, "}");
        assert_eq!(text, want);
        assert_eq!(bytes, want.as_bytes());
    }
}
