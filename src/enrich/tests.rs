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
fn needs_escape_agrees_with_the_byte_loop() {
    let slow = |s: &str| s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    // Bytes around every boundary the word trick tests, in every position of a word.
    let alphabet = ['a', ' ', '!', '"', '#', '\\', ']', '\u{1f}', '\u{0}', '\n', '\u{7f}', 'é', '\u{2028}', '0', '~'];
    let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
    let mut escaped = 0;
    for _ in 0..200_000 {
        let len = rng.below(40) as usize;
        let mut s: String = "abcdefghij-:/.0123456789".chars().cycle().skip(rng.below(24) as usize).take(len).collect();
        // Mostly plain text with at most a couple of other characters somewhere.
        for _ in 0..rng.below(3) {
            if s.is_empty() {
                break;
            }
            let at = s.char_indices().nth(rng.below(s.chars().count() as u64) as usize).map_or(0, |(i, _)| i);
            s.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]);
        }
        escaped += usize::from(slow(&s));
        assert_eq!(needs_escape(&s), slow(&s), "{s:?}");
        let mut fast = String::new();
        push_json_str(&mut fast, &s);
        let mut general = String::new();
        write_json_str(&mut general, &s);
        assert_eq!(fast, general);
    }
    assert!(escaped > 20_000, "{escaped}");
    for b in 0..=255u8 {
        let s = String::from_utf8_lossy(&[b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b]).into_owned();
        assert_eq!(needs_escape(&s), slow(&s), "{b}");
        let s = String::from_utf8_lossy(&[b, b'x', b'x', b'x', b'x', b'x', b'x', b'x']).into_owned();
        assert_eq!(needs_escape(&s), slow(&s), "{b}");
    }
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
