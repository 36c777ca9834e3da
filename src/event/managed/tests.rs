use super::*;

fn pieces(text: &str) -> Vec<String> {
    let obj = raw::parse_object(text).unwrap();
    let w = wrapper_of(&obj).expect("a wrapper");
    let mut got = Vec::new();
    decode_wrapper(w, &obj, DecodeLimits { max_decoded_bytes: 1 << 20 }, &mut |p| {
        got.push(match p {
            Piece::Event { text, source } => format!("event {} {}", String::from_utf8_lossy(text), source.to_json()),
            Piece::Bad { bytes, reason, kind } => format!("bad {kind:?} {reason}: {}", String::from_utf8_lossy(bytes)),
            Piece::NotAudit { what, .. } => format!("other {what}"),
            Piece::Control => "control".into(),
        })
    });
    got
}

#[test]
fn native_events_are_not_wrappers() {
    for text in
        [r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"x","verb":"get"}"#, r#"{"verb":"get","stage":"x"}"#]
    {
        assert_eq!(wrapper_of(&raw::parse_object(text).unwrap()), None, "{text}");
    }
    assert_eq!(wrapper_of(&raw::parse_object(r#"{"a":1}"#).unwrap()), None);
}

#[test]
fn the_split_and_serde_json_tell_wrappers_from_events_alike() {
    // The split answers `stage` + `verb` from what it decoded; serde_json's split (nothing
    // decoded) looks the keys up: the same answer for any mix of the keys wrapper_of reads.
    let members = [
        r#""stage":"ResponseComplete""#,
        r#""stage":5"#,
        r#""verb":"get""#,
        r#""verb":null"#,
        r#""kind":"Event""#,
        r#""logEvents":[]"#,
        r#""messageType":"DATA_MESSAGE""#,
        r#""protoPayload":{}"#,
        r#""category":"kube-audit""#,
        r#""properties":{}"#,
        r#""records":[]"#,
        r#""awslogs":{}"#,
        r#""message":"m""#,
        r#""message":{}"#,
        r#""timestamp":1"#,
        r#""data":"ZA==""#,
        r#""messageId":"1""#,
        r#""events":[]"#,
    ];
    let mut rng = crate::test_rng::XorShift::new(0x51_7cc1_b727_220a);
    for _ in 0..20_000 {
        let n = rng.below(6) as usize;
        let chosen: Vec<&str> = (0..n).map(|_| members[rng.below(members.len() as u64) as usize]).collect();
        let text = format!("{{{}}}", chosen.join(","));
        let scanned = raw::parse_object(&text).unwrap();
        let serde = raw::parse_object_with_serde(&text).unwrap();
        assert_eq!(wrapper_of(&scanned), wrapper_of(&serde), "{text}");
    }
}

#[test]
fn azure_record_hands_on_the_event_without_its_line_break() {
    let rec = r#"{"category":"kube-audit","properties":{"log":"{\"kind\":\"Event\"}\n","pod":"p"},"resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/C"}"#;
    assert_eq!(
        pieces(rec),
        [
            r#"event {"kind":"Event"} {"provider":"aks","cluster":"C","subscription":"S1","resourceGroup":"G","category":"kube-audit","pod":"p"}"#
        ]
    );
    let klog = r#"{"category":"kube-apiserver","properties":{"log":"I0101 started"}}"#;
    assert_eq!(pieces(klog), [r#"other AKS record of category "kube-apiserver": not an audit event"#]);
}

#[test]
fn records_that_is_not_an_array_is_one_bad_record() {
    assert_eq!(pieces(r#"{"records":{"a":1}}"#), [r#"bad Wrapper records is not an array: {"records":{"a":1}}"#]);
    let bad64 = r#"{"requestId":"r","records":[{"data":"!!"}]}"#;
    assert!(pieces(bad64)[0].starts_with("bad Wrapper Firehose record data: base64"), "{:?}", pieces(bad64));
}

#[test]
fn cloudwatch_envelope_messages_and_control() {
    let env = r#"{"messageType":"DATA_MESSAGE","owner":"123","logGroup":"/aws/eks/c1/cluster","logStream":"kube-apiserver-audit-1","logEvents":[{"id":"1","timestamp":1,"message":"{\"kind\":\"Event\"}"},{"id":"2","timestamp":2,"message":"{\"kind\":\"Ev[Truncated...]"}]}"#;
    let got = pieces(env);
    assert_eq!(
        got[0],
        r#"event {"kind":"Event"} {"provider":"eks","cluster":"c1","account":"123","logGroup":"/aws/eks/c1/cluster","logStream":"kube-apiserver-audit-1"}"#
    );
    assert!(got[1].starts_with("bad Truncated EKS truncated"), "{got:?}");
    assert_eq!(pieces(r#"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#), ["control"]);
    let other = env.replace("kube-apiserver-audit-1", "authenticator-1");
    assert!(pieces(&other).iter().all(|p| p.starts_with("other CloudWatch log stream authenticator-1")));
}

#[test]
fn export_lines_and_concatenated_objects() {
    assert_eq!(export_line_message("2022-11-29T00:09:04.392Z {\"a\":1}"), Some("{\"a\":1}"));
    assert_eq!(export_line_message("hello world"), None);
    let mut got = Vec::new();
    let limits = DecodeLimits { max_decoded_bytes: 1 << 20 };
    assert!(
        decode_loose(br#"{"kind":"Event","n":1}{"kind":"Event","n":2} {"#, limits, &mut |p| got.push(format!("{p:?}")))
    );
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[2].contains("Bad"), "{got:?}");
    assert!(!decode_loose(b"{\"a\":", limits, &mut |_| panic!()));
    assert!(!decode_loose(b"{\"a\":1}{\"b\":2}", limits, &mut |_| panic!()), "not an envelope or Event: one record");
    assert!(!decode_loose(b"plain text", limits, &mut |_| panic!()));
}

#[test]
fn azure_resource_id_parts() {
    assert_eq!(
        azure_resource("/SUBSCRIPTIONS/0B62/RESOURCEGROUPS/MIKE-AZURE/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/MIKE-AZURE-AKS"),
        ("0B62", "MIKE-AZURE", "MIKE-AZURE-AKS")
    );
    assert_eq!(azure_resource(""), ("", "", ""));
}
