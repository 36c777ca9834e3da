//! Managed clusters' audit logs as users receive them (tests/fixtures/managed, README there):
//! every EKS delivery path gives the apiserver's Events byte for byte, AKS records give theirs,
//! GKE LogEntries give rebuilt Events with what GKE keeps and nothing invented, and wrappers
//! that do not decode are bad records passed through as they came.

use std::path::PathBuf;

use kaudit::{Config, Outcome, Pipeline, Policy, RecordReport};

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/managed").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(path: &str) -> String {
    String::from_utf8(fixture(path)).unwrap()
}

/// A pipeline whose policy keeps every event as it is (level RequestResponse, no stage omitted),
/// enrichment and alerts off: the output is exactly what was read.
fn keep_all() -> Pipeline {
    keep_all_with(false)
}

fn keep_all_with(enrichment: bool) -> Pipeline {
    let mut config = Config::embedded_default();
    config.policy =
        Policy::load("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n", "keep.yaml")
            .unwrap()
            .policy;
    config.enrichment.enabled = enrichment;
    config.alerts.enabled = false;
    Pipeline::new(config)
}

fn stream(p: &mut Pipeline, input: &[u8]) -> (Vec<String>, Vec<RecordReport>) {
    let mut out = Vec::new();
    let mut reports = Vec::new();
    p.process_stream(input, &mut out, &mut |r| reports.push(r.clone()));
    let lines = String::from_utf8_lossy(&out).lines().map(str::to_string).collect();
    (lines, reports)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The `message`s of a CloudWatch envelope or response, decoded independently of kaudit.
fn messages(doc: &serde_json::Value, key: &str) -> Vec<String> {
    doc[key].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[test]
fn eks_every_delivery_path_gives_the_apiservers_bytes() {
    let data_message =
        messages(&json(&text("eks/cloudwatch-synth/subscription-DATA_MESSAGE.decoded.json")), "logEvents");
    assert_eq!(data_message.len(), 8);
    // The 12 events of the Firehose paths, one per line after Firehose's message extraction.
    let twelve: Vec<String> = text("eks/cloudwatch-synth/firehose-s3-object.decompressed-message-extraction.jsonl")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(twelve.len(), 12);
    // They are the apiserver-form events of the labelled set, byte for byte.
    let source = text("eks/panther/eks-audit-events.denormalized.jsonl");
    for e in data_message.iter().chain(&twelve) {
        assert!(source.lines().any(|l| l == e), "not in the source set: {e}");
    }
    let paths: [(&str, &Vec<String>); 8] = [
        ("subscription-DATA_MESSAGE.decoded.json", &data_message),
        ("kinesis-record-data.DATA_MESSAGE.gz", &data_message),
        ("kinesis-record-data.DATA_MESSAGE.gz.b64", &data_message),
        ("lambda-awslogs-event.json", &data_message),
        ("firehose-http-endpoint-request.json", &twelve),
        ("firehose-s3-object.no-decompression.gz", &twelve),
        ("firehose-s3-object.decompressed-message-extraction.jsonl", &twelve),
        ("export-task-000000.gz", &twelve),
    ];
    for (file, want) in paths {
        let mut p = keep_all();
        let (got, reports) = stream(&mut p, &fixture(&format!("eks/cloudwatch-synth/{file}")));
        assert_eq!(&got, want, "{file}");
        assert!(reports.iter().all(|r| r.outcome == Outcome::Kept { changed: false }), "{file}: {reports:?}");
        assert_eq!(p.counters().read, want.len() as u64, "{file}");
    }
    let response = json(&text("eks/cloudwatch-synth/filter-log-events-response.json"));
    let (got, _) = stream(&mut keep_all(), &fixture("eks/cloudwatch-synth/filter-log-events-response.json"));
    assert_eq!(got, messages(&response, "events"));
}

#[test]
fn eks_control_messages_are_consumed_and_truncated_events_counted() {
    let mut p = keep_all();
    let (got, reports) = stream(&mut p, &fixture("eks/cloudwatch-synth/subscription-CONTROL_MESSAGE.decoded.json"));
    assert!(got.is_empty() && reports.is_empty());
    assert_eq!((p.counters().control_messages, p.counters().read), (1, 0));

    let cut = text("eks/cloudwatch-synth/truncated-message.example.txt");
    let cut = cut.trim_end();
    // As CloudWatch delivers it: inside an envelope, between two good events.
    let good = &messages(&json(&text("eks/cloudwatch-synth/subscription-DATA_MESSAGE.decoded.json")), "logEvents")[0];
    let envelope = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/eks/prod/cluster",
        "logStream": "kube-apiserver-audit-0123", "subscriptionFilters": ["f"],
        "logEvents": [{"id": "1", "timestamp": 1, "message": good}, {"id": "2", "timestamp": 2, "message": cut},
                      {"id": "3", "timestamp": 3, "message": good}]
    });
    let mut p = keep_all();
    let (got, reports) = stream(&mut p, envelope.to_string().as_bytes());
    assert_eq!(got, [good.as_str(), cut, good.as_str()], "the cut event passes through as it came");
    assert!(
        matches!(&reports[1].outcome, Outcome::Bad { error, passed: true } if error.to_string().contains("[Truncated...]"))
    );
    let c = p.counters();
    assert_eq!((c.read, c.kept, c.bad, c.truncated, c.bad_wrapper), (3, 2, 1, 1, 0));
    // A bare message (Firehose message extraction) is recognised too.
    let mut p = keep_all();
    let (got, _) = stream(&mut p, cut.as_bytes());
    assert_eq!((got, p.counters().truncated), (vec![cut.to_string()], 1));
}

#[test]
fn eks_provider_context_is_enrichment_under_kaudit_source() {
    let mut p = keep_all_with(true);
    let (got, _) = stream(&mut p, &fixture("eks/cloudwatch-synth/firehose-http-endpoint-request.json"));
    let plain: Vec<String> = text("eks/cloudwatch-synth/firehose-s3-object.decompressed-message-extraction.jsonl")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(got.len(), 12);
    for (line, event) in got.iter().zip(&plain) {
        // The event's bytes, then kaudit's enrichment appended as its last member.
        assert!(line.starts_with(&event[..event.len() - 1]) && line[event.len() - 1..].starts_with(",\"kaudit\":{"));
        let source = &json(line)["kaudit"]["source"];
        assert_eq!(source["provider"], "eks");
        assert_eq!(source["cluster"], "my-cluster");
        assert_eq!(source["account"], "123456789012");
        assert!(source["logStream"].as_str().unwrap().starts_with("kube-apiserver-audit-"));
        assert!(source.get("region").is_none(), "CloudWatch envelopes do not say the region: absent, not invented");
    }
}

/// The Events inside AKS records, decoded independently of kaudit (`properties.log` less its '\n').
fn aks_events(records: &[serde_json::Value]) -> Vec<String> {
    records.iter().map(|r| r["properties"]["log"].as_str().unwrap().trim_end_matches('\n').to_string()).collect()
}

#[test]
fn aks_event_hubs_bodies_give_the_apiservers_bytes() {
    let mut total = 0;
    for file in ["aks/eventhub-synth/eventhub-message-1.json", "aks/eventhub-synth/eventhub-message-2.json"] {
        let body = json(&text(file));
        let want = aks_events(body["records"].as_array().unwrap());
        let mut p = keep_all();
        let (got, _) = stream(&mut p, &fixture(file));
        assert_eq!(got, want, "{file}");
        total += got.len();
        // Batch hosts (Envoy) forward the same events as one EventList.
        let mut out = Vec::new();
        let summary = keep_all().process_batch(&fixture(file), &mut out);
        let list = json(std::str::from_utf8(&out).unwrap());
        assert_eq!(list["kind"], "EventList");
        let items: Vec<String> = list["items"].as_array().unwrap().iter().map(|i| i.to_string()).collect();
        let want_values: Vec<String> = want.iter().map(|w| json(w).to_string()).collect();
        assert_eq!(items, want_values);
        assert_eq!((summary.kept, summary.bad), (want.len() as u64, 0));
    }
    assert_eq!(total, 21);
    let mut p = keep_all_with(true);
    let (got, _) = stream(&mut p, &fixture("aks/eventhub-synth/eventhub-message-1.json"));
    let source = &json(&got[0])["kaudit"]["source"];
    assert_eq!(source["provider"], "aks");
    assert_eq!(source["cluster"], "MIKE-AZURE-AKS");
    assert_eq!(source["subscription"], "0B62A232-B8DB-4380-9DA6-640F7272ED6D");
    assert_eq!(source["resourceGroup"], "MIKE-AZURE");
    assert_eq!(source["category"], "kube-audit");
}

#[test]
fn aks_blob_lines_and_other_categories() {
    let input = text("aks/dynatrace/aks-records.jsonl");
    let lines: Vec<&str> = input.lines().collect();
    let mut p = keep_all();
    let (got, reports) = stream(&mut p, input.as_bytes());
    assert_eq!(got[0], aks_events(&[json(lines[0])])[0]);
    assert_eq!(got[1], lines[1], "a kube-controller-manager record passes through untouched");
    assert!(
        matches!(&reports[1].outcome, Outcome::Bad { error, passed: true } if error.to_string().contains("kube-controller-manager"))
    );
    assert_eq!((p.counters().kept, p.counters().not_audit), (1, 1));
    // Fluent Bit hands each blob line over as one record: the same event comes back.
    let mut out = Vec::new();
    assert_eq!(keep_all().process_record(lines[0].as_bytes(), &mut out), Outcome::Kept { changed: false });
    assert_eq!(String::from_utf8(out).unwrap(), got[0]);

    // Panther's hand-written AKS records: most Events in them lack `stage`; those are bad
    // records (the Event passed through), the others are kept.
    let mut p = keep_all();
    let (got, reports) = stream(&mut p, &fixture("aks/panther/aks-records.jsonl"));
    assert_eq!(got.len(), 34);
    let missing_stage = reports
        .iter()
        .filter(|r| matches!(&r.outcome, Outcome::Bad { error, .. } if error.to_string().starts_with("stage:")))
        .count();
    assert_eq!((p.counters().kept as usize, missing_stage), (34 - missing_stage, p.counters().bad as usize));
    assert!(missing_stage > 0 && p.counters().kept > 0);
}

fn gke_events(input: &[u8]) -> (Vec<serde_json::Value>, Pipeline) {
    let mut p = keep_all();
    let (got, _) = stream(&mut p, input);
    (got.iter().map(|l| json(l)).collect(), p)
}

#[test]
fn gke_log_entries_become_events_with_what_gke_keeps() {
    let input = fixture("gke/khi/gke-logentries.jsonl");
    let (events, p) = gke_events(&input);
    assert_eq!((events.len(), p.counters().kept), (3, 3));
    let entry = json(text("gke/khi/gke-logentries.jsonl").lines().next().unwrap());
    let create = &events[0];
    assert_eq!(create["kind"], "Event");
    assert_eq!(create["verb"], "create");
    assert_eq!(create["stage"], "ResponseComplete");
    assert_eq!(create["level"], "RequestResponse");
    assert_eq!(create["auditID"], entry["operation"]["id"]);
    assert_eq!(create["responseStatus"]["code"], 201, "gRPC OK on a create");
    assert_eq!(
        create["objectRef"],
        serde_json::json!({"resource":"pods","namespace":"1-2-deployment-update","name":"nginx-deployment-surge-8655b4b8c5-xf5f4","apiGroup":"","apiVersion":"v1"})
    );
    assert_eq!(
        create["user"],
        serde_json::json!({"username": "system:serviceaccount:kube-system:replicaset-controller"})
    );
    assert_eq!(create["sourceIPs"], serde_json::json!(["172.16.0.3"]));
    assert_eq!(create["stageTimestamp"], entry["timestamp"]);
    // Not carried by GKE: absent, not invented.
    for lost in ["requestURI", "requestReceivedTimestamp", "impersonatedUser"] {
        assert!(create.get(lost).is_none(), "{lost}");
    }
    assert!(create["user"].get("groups").is_none());
    // Bodies without Cloud Logging's @type; labels become annotations, plus the rebuilt mark.
    let mut request = entry["protoPayload"]["request"].clone();
    request.as_object_mut().unwrap().remove("@type");
    assert_eq!(create["requestObject"], request);
    assert!(create["responseObject"].get("@type").is_none());
    let mut annotations = entry["labels"].clone();
    annotations["kaudit/rebuilt-from"] = "gke-logentry".into();
    assert_eq!(create["annotations"], annotations);
    // pods/status patches: a subresource.
    assert_eq!(events[1]["objectRef"]["subresource"], "status");
    assert_eq!(events[1]["verb"], "patch");
}

#[test]
fn gke_every_delivery_path_gives_the_same_event() {
    let (pull, _) = gke_events(&fixture("gke/pubsub-synth/pull-response.json"));
    let (push, _) = gke_events(&fixture("gke/pubsub-synth/push-request-body.json"));
    assert_eq!(pull.len(), 1);
    assert_eq!(pull, push);
    assert_eq!(pull[0]["objectRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(pull[0]["objectRef"]["resource"], "clusterroles");
    // `gcloud logging read --format=json`: a pretty-printed array of LogEntries.
    let entries: Vec<serde_json::Value> = text("gke/khi/gke-logentries.jsonl").lines().map(json).collect();
    let array = serde_json::to_string_pretty(&entries).unwrap();
    assert_eq!(gke_events(array.as_bytes()).0, gke_events(&fixture("gke/khi/gke-logentries.jsonl")).0);
    // Other Cloud Audit Logs services pass through untouched.
    let input = text("gke/dynatrace/gcp-logentries.jsonl");
    let mut p = keep_all();
    let (got, _) = stream(&mut p, input.as_bytes());
    assert_eq!(json(&got[0])["objectRef"]["resource"], "endpoints");
    assert_eq!(&got[1..], &input.lines().skip(1).collect::<Vec<_>>()[..]);
    assert_eq!((p.counters().kept, p.counters().not_audit), (1, 3));
}

/// A real GKE entry (KHI's pods.create) changed into another call: how GKE logs it.
fn gke_variant(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let mut entry = json(text("gke/khi/gke-logentries.jsonl").lines().next().unwrap());
    edit(&mut entry);
    let (events, _) = gke_events(entry.to_string().as_bytes());
    assert_eq!(events.len(), 1);
    events.into_iter().next().unwrap()
}

#[test]
fn gke_status_stage_and_non_resource_requests() {
    let denied =
        gke_variant(|e| e["protoPayload"]["status"] = serde_json::json!({"code": 7, "message": "PERMISSION_DENIED"}));
    assert_eq!(denied["responseStatus"]["code"], 403);
    let not_found = gke_variant(|e| {
        e["protoPayload"]["methodName"] = "io.k8s.core.v1.services.delete".into();
        e["protoPayload"]["resourceName"] = "core/v1/namespaces/default/services/web".into();
        e["protoPayload"]["status"] = serde_json::json!({"code": 5});
        e["protoPayload"]["response"] = serde_json::json!({"@type":"core.k8s.io/v1.Status","kind":"Status","status":"Failure","reason":"NotFound","code":404});
    });
    assert_eq!(
        not_found["responseStatus"],
        serde_json::json!({"metadata":{},"status":"Failure","reason":"NotFound","code":404})
    );
    let exec = gke_variant(|e| {
        let p = &mut e["protoPayload"];
        p["methodName"] = "io.k8s.core.v1.pods.exec.create".into();
        p["resourceName"] = "core/v1/namespaces/default/pods/web-0/exec/web-0".into();
        p["status"] = serde_json::json!({"code": 2, "message": "UNKNOWN"});
        p.as_object_mut().unwrap().remove("response");
        e["operation"] = serde_json::json!({"id": "x", "first": true, "producer": "k8s.io"});
    });
    assert_eq!((exec["stage"].as_str(), exec["responseStatus"]["code"].as_i64()), (Some("ResponseStarted"), Some(101)));
    assert_eq!(
        (exec["objectRef"]["name"].as_str(), exec["objectRef"]["subresource"].as_str()),
        (Some("web-0"), Some("exec"))
    );
    assert_eq!(exec["level"], "Request");
    let readyz = gke_variant(|e| {
        let p = &mut e["protoPayload"];
        p["methodName"] = "io.k8s.get".into();
        p["resourceName"] = "readyz".into();
        p.as_object_mut().unwrap().remove("request");
        p.as_object_mut().unwrap().remove("response");
    });
    assert_eq!((readyz["requestURI"].as_str(), readyz["verb"].as_str()), (Some("/readyz"), Some("get")));
    assert!(readyz.get("objectRef").is_none());
    assert_eq!(readyz["level"], "Metadata");
    let namespace = gke_variant(|e| {
        e["protoPayload"]["methodName"] = "io.k8s.core.v1.namespaces.finalize.update".into();
        e["protoPayload"]["resourceName"] = "core/v1/namespaces/team-a/finalize".into();
    });
    assert_eq!(
        namespace["objectRef"],
        serde_json::json!({"resource":"namespaces","namespace":"team-a","name":"team-a","apiGroup":"","apiVersion":"v1","subresource":"finalize"})
    );
}

#[test]
fn gke_loses_what_rules_on_groups_and_request_uri_need() {
    // The seed's exec alert fires on a GKE exec, but the command and container it reports come
    // from requestURI's query, which GKE does not keep (docs/MANAGED.md, "What GKE loses").
    let mut entry = json(text("gke/khi/gke-logentries.jsonl").lines().next().unwrap());
    let p = &mut entry["protoPayload"];
    p["methodName"] = "io.k8s.core.v1.pods.exec.create".into();
    p["resourceName"] = "core/v1/namespaces/default/pods/web-0/exec/web-0".into();
    p["status"] = serde_json::json!({"code": 2});
    p["requestMetadata"]["callerIp"] = "203.0.113.9".into();
    entry["operation"] = serde_json::json!({"id": "exec-1", "first": true});
    let mut pipeline = Pipeline::embedded_default();
    let mut out = Vec::new();
    pipeline.process_stream(entry.to_string().as_bytes(), &mut out, &mut |_| {});
    let alerts: Vec<serde_json::Value> = pipeline.take_alerts().iter().map(|a| json(a)).collect();
    let exec = alerts.iter().find(|a| a["rule"] == "exec-into-container").expect("the exec alert fires on GKE");
    let fields = &exec["fields"];
    assert_eq!(fields["pod"], "web-0");
    assert!(fields.get("command").is_none_or(|c| c.is_null()), "{exec}");

    // A policy rule on user groups never matches a GKE event: GKE does not carry groups.
    let policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  userGroups: [\"system:serviceaccounts\"]\n- level: Metadata\n";
    let mut config = Config::embedded_default();
    config.policy = Policy::load(policy, "p.yaml").unwrap().policy;
    config.enrichment.enabled = false;
    let mut p = Pipeline::new(config);
    let mut out = Vec::new();
    // A service account's call: natively (AKS) dropped by the groups rule…
    let aks = text("aks/dynatrace/aks-records.jsonl");
    p.process_stream(aks.lines().next().unwrap().as_bytes(), &mut out, &mut |_| {});
    assert_eq!(p.counters().dropped_level_none, 1);
    // …on GKE (the replicaset controller's create) kept at Metadata.
    p.process_stream(&fixture("gke/khi/gke-logentries.jsonl")[..], &mut out, &mut |_| {});
    assert_eq!((p.counters().dropped_level_none, p.counters().kept), (1, 3));
}

#[test]
fn bad_wrappers_pass_through_and_what_decoded_before_is_processed() {
    let request = json(&text("eks/cloudwatch-synth/firehose-http-endpoint-request.json"));
    let good = request["records"][0].clone();
    let data = good["data"].as_str().unwrap().to_string();
    // Cut the gzip short but keep valid base64.
    use base64::Engine as _;
    let gz = base64::engine::general_purpose::STANDARD.decode(&data).unwrap();
    let cut = base64::engine::general_purpose::STANDARD.encode(&gz[..gz.len() / 2]);
    let body = serde_json::json!({"requestId": "r-1", "timestamp": 1, "records": [good, {"data": "not base64!"}, {"data": cut}, good]});
    let body = body.to_string();
    let mut p = keep_all();
    let (got, reports) = stream(&mut p, body.as_bytes());
    let per_record = p.counters().kept as usize / 2;
    assert!(per_record > 0);
    assert_eq!(got.len(), per_record * 2 + 2);
    assert_eq!(got[per_record], r#"{"data":"not base64!"}"#, "the bad record as it came");
    assert_eq!(got[per_record + 1], format!("{{\"data\":\"{cut}\"}}"));
    let bad: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Bad { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(bad.len(), 2);
    assert!(bad[0].contains("base64") && bad[1].contains("gzip"), "{bad:?}");
    assert_eq!(p.counters().bad_wrapper, 2);
    // `records` that is not an array: the whole body is one bad record.
    let mut p = keep_all();
    let (got, _) = stream(&mut p, br#"{"requestId":"r","records":"x"}"#);
    assert_eq!((got, p.counters().bad_wrapper), (vec![r#"{"requestId":"r","records":"x"}"#.to_string()], 1));
}

#[test]
fn gzip_bombs_are_bounded_by_max_batch_bytes() {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b' '; 8 << 20]).unwrap();
    let bomb = e.finish().unwrap();
    let (config, _) = Config::load("limits:\n  maxBatchBytes: 1048576\n", "c.yaml", &kaudit::NoFiles).unwrap();
    let mut p = Pipeline::new(config);
    let mut out = Vec::new();
    let mut reports = Vec::new();
    p.process_stream(&bomb, &mut out, &mut |r| reports.push(r.clone()));
    assert!(
        matches!(&reports[..], [RecordReport { outcome: Outcome::Bad { error, passed: true }, .. }] if error.to_string().contains("maxBatchBytes"))
    );
    assert_eq!(out, [bomb.as_slice(), b"\n"].concat(), "passed through as it came");
    assert_eq!(p.counters().bad_wrapper, 1);
}

/// An HTTP client's `Content-Encoding: gzip` batch (Vector's http sink with `compression: gzip`)
/// comes out plain in the framing it was compressed in: JSON lines stay lines (they came out as
/// one EventList before, which a receiver decoding JSON lines reads as one event).
#[test]
fn compressed_batches_keep_their_framing() {
    let gz = kaudit_testkit::gzip;
    let lines =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-audit.log")).unwrap();
    let items: Vec<&str> = std::str::from_utf8(&lines).unwrap().lines().collect();
    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    );
    let array = format!("[{}]", items.join(","));
    for (name, body) in [("lines", lines.clone()), ("EventList", list.into_bytes()), ("array", array.into_bytes())] {
        let (mut plain, mut packed) = (Vec::new(), Vec::new());
        let want = Pipeline::embedded_default().process_batch(&body, &mut plain);
        let got = Pipeline::embedded_default().process_batch(&gz(&body), &mut packed);
        assert!(!plain.is_empty() && want.kept > 0, "{name}");
        assert_eq!(String::from_utf8_lossy(&packed), String::from_utf8_lossy(&plain), "{name}");
        assert_eq!((got.kept, got.dropped), (want.kept, want.dropped), "{name}");
    }
    // Still bounded: a member over maxBatchBytes is forwarded as it came.
    let (config, _) = Config::load("limits:\n  maxBatchBytes: 1048576\n", "c.yaml", &kaudit::NoFiles).unwrap();
    let bomb = gz(&vec![b' '; 2 << 20]);
    let mut out = Vec::new();
    Pipeline::new(config).process_batch(&bomb, &mut out);
    assert_eq!(out, bomb);
}

#[test]
fn arrays_that_are_not_lists_of_events_are_one_record() {
    for input in ["[]", "[[{\"kind\":\"Event\"}]]", "[1,2]"] {
        let mut p = keep_all();
        let (got, reports) = stream(&mut p, input.as_bytes());
        assert_eq!(got, [input], "{input}");
        assert_eq!(reports.len(), 1, "{input}");
        let mut out = Vec::new();
        keep_all().process_batch(input.as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap().trim_end(), input, "batch: {input}");
    }
}

#[test]
fn aks_oversize_bodies_are_kept_as_they_are() {
    // AKS replaces a body over its size limit by this string (azure-reference-other, AKSAudit).
    let records = json(&text("aks/eventhub-synth/eventhub-message-1.json"));
    let event = records["records"][0]["properties"]["log"].as_str().unwrap().trim_end().to_string();
    let big = event.replacen(
        "\"level\":\"Metadata\"",
        "\"level\":\"RequestResponse\",\"requestObject\":\"skipped-too-big-size-object\",\"responseObject\":\"skipped-too-big-size-object\"",
        1,
    );
    assert_ne!(big, event);
    let mut record = records["records"][0].clone();
    record["properties"]["log"] = format!("{big}\n").into();
    let (got, reports) = stream(&mut keep_all(), record.to_string().as_bytes());
    assert_eq!(got, [big]);
    assert_eq!(reports[0].outcome, Outcome::Kept { changed: false });
}
