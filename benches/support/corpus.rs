//! A deterministic corpus of realistic Kubernetes audit events for the throughput benchmarks.
//!
//! Std only, no I/O: include it with `#[path = ".../benches/support/corpus.rs"] mod corpus;`
//! (the core's benches and `plugins/component/benches/hosts.rs` share it). The same seed gives
//! the same bytes on every machine, so figures from different hosts are comparable.
//!
//! The mix follows what a real cluster logs (see tests/fixtures for real events):
//! * system components (controller-manager, scheduler, kubelets, kube-proxy, service accounts)
//!   polling leases/endpoints/nodes and watching — most of the volume, much of it dropped by the
//!   default policy;
//! * humans (kubectl/OIDC users) reading and writing objects, `exec` into pods, reading secrets;
//! * watch streams (`ResponseStarted` then `ResponseComplete`), `RequestReceived` stages;
//! * `Metadata` events without bodies and `RequestResponse` events with 1–20 KB request/response
//!   objects carrying managedFields (what the policy strips).
#![allow(dead_code)] // each bench uses part of it

/// SplitMix64: tiny, deterministic, good enough to pick from lists.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Who makes a request.
struct Actor {
    user: &'static str,
    groups: &'static [&'static str],
    agent: &'static str,
    ip: &'static str,
}

const SYSTEM: &[Actor] = &[
    Actor { user: "system:kube-controller-manager", groups: &["system:authenticated"], agent: "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election", ip: "10.0.0.10" },
    Actor { user: "system:kube-scheduler", groups: &["system:authenticated"], agent: "kube-scheduler/v1.30.2 (linux/amd64) kubernetes/3968350/leader-election", ip: "10.0.0.10" },
    Actor { user: "system:node:worker-1", groups: &["system:nodes", "system:authenticated"], agent: "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350", ip: "10.0.1.11" },
    Actor { user: "system:node:worker-2", groups: &["system:nodes", "system:authenticated"], agent: "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350", ip: "10.0.1.12" },
    Actor { user: "system:kube-proxy", groups: &["system:authenticated"], agent: "kube-proxy/v1.30.2 (linux/amd64) kubernetes/3968350", ip: "10.0.1.11" },
    Actor { user: "system:serviceaccount:kube-system:endpoint-controller", groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"], agent: "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:endpoint-controller", ip: "10.0.0.10" },
    Actor { user: "system:serviceaccount:monitoring:prometheus", groups: &["system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"], agent: "prometheus/2.51.0", ip: "10.244.3.17" },
    Actor { user: "system:apiserver", groups: &["system:masters"], agent: "kube-apiserver/v1.30.2 (linux/amd64) kubernetes/3968350", ip: "::1" },
];

const HUMANS: &[Actor] = &[
    Actor { user: "alice@example.com", groups: &["developers", "system:authenticated"], agent: "kubectl/v1.30.1 (darwin/arm64) kubernetes/6911225", ip: "203.0.113.7" },
    Actor { user: "bob@example.com", groups: &["sre", "system:authenticated"], agent: "kubectl/v1.29.4 (linux/amd64) kubernetes/55f2bc1", ip: "198.51.100.23" },
    Actor { user: "carol", groups: &["system:masters", "system:authenticated"], agent: "kubectl/v1.30.1 (linux/amd64) kubernetes/6911225", ip: "10.8.0.5" },
    Actor { user: "ci-deployer", groups: &["ci", "system:authenticated"], agent: "argocd-application-controller/v2.11.0", ip: "10.244.7.40" },
];

const NAMESPACES: &[&str] = &["default", "kube-system", "payments", "frontend", "monitoring", "data"];

/// (resource, group, apiVersion for the URI, kind)
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("pods", "", "v1", "Pod"),
    ("configmaps", "", "v1", "ConfigMap"),
    ("secrets", "", "v1", "Secret"),
    ("services", "", "v1", "Service"),
    ("endpoints", "", "v1", "Endpoints"),
    ("events", "", "v1", "Event"),
    ("leases", "coordination.k8s.io", "v1", "Lease"),
    ("deployments", "apps", "v1", "Deployment"),
    ("replicasets", "apps", "v1", "ReplicaSet"),
    ("roles", "rbac.authorization.k8s.io", "v1", "Role"),
];

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn word(rng: &mut Rng, len: usize) -> String {
    (0..len).map(|_| *rng.pick(ALNUM) as char).collect()
}

fn uuid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next(), rng.next());
    format!("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff | 0x4000, b >> 48 & 0x3fff | 0x8000, b & 0xffff_ffff_ffff)
}

/// `2024-05-01T<h:m:s.micros>Z` for a microsecond offset into the day (wraps after 24 h).
fn timestamp(micros: u64) -> String {
    let s = micros / 1_000_000 % 86_400;
    format!("2024-05-01T{:02}:{:02}:{:02}.{:06}Z", s / 3600, s / 60 % 60, s % 60, micros % 1_000_000)
}

/// A Kubernetes object of about `size` bytes, with managedFields (what `omitManagedFields` strips).
fn object(rng: &mut Rng, kind: &str, api_version: &str, name: &str, ns: &str, size: usize, at: &str) -> String {
    let mut o = format!(
        "{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\",\"uid\":\"{}\",\"resourceVersion\":\"{}\",\"creationTimestamp\":\"{at}\",\"labels\":{{\"app\":\"{}\",\"team\":\"{}\"}},\"managedFields\":[",
        uuid(rng),
        rng.below(90_000_000) + 1_000_000,
        word(rng, 8),
        word(rng, 5)
    );
    let managers = 1 + rng.below(3);
    for m in 0..managers {
        if m > 0 {
            o.push(',');
        }
        o.push_str(&format!(
            "{{\"manager\":\"{}\",\"operation\":\"{}\",\"apiVersion\":\"{api_version}\",\"time\":\"{at}\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{{\"f:metadata\":{{\"f:labels\":{{\".\":{{}},\"f:app\":{{}}}}}},\"f:data\":{{\"f:{}\":{{}}}}}}}}",
            rng.pick(&["kubectl-client-side-apply", "kube-controller-manager", "helm", "argocd-controller"]),
            rng.pick(&["Update", "Apply"]),
            word(rng, 10)
        ));
    }
    o.push_str("]},\"data\":{");
    let mut first = true;
    while o.len() + 40 < size {
        if !first {
            o.push(',');
        }
        first = false;
        let value_len = (size - o.len()).clamp(16, 512);
        o.push_str(&format!("\"{}\":\"{}\"", word(rng, 12), word(rng, value_len - 16)));
    }
    o.push_str("}}");
    o
}

/// One audit event (one line, no trailing newline). `micros` is its request time.
pub fn event(rng: &mut Rng, micros: u64) -> String {
    let human = rng.chance(25);
    let actor = if human { rng.pick(HUMANS) } else { rng.pick(SYSTEM) };
    let (resource, group, version, kind) = *rng.pick(RESOURCES);
    let ns = *rng.pick(NAMESPACES);
    let name = format!("{}-{}", resource.trim_end_matches('s'), word(rng, 5).to_lowercase());
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let prefix = if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/{version}") };

    // What is done: humans write and exec, system components poll and watch.
    let exec = human && rng.chance(10);
    let verb = if exec {
        "create"
    } else if human {
        *rng.pick(&["get", "list", "create", "update", "patch", "delete", "get", "list"])
    } else {
        *rng.pick(&["get", "list", "watch", "update", "get", "watch", "patch"])
    };
    let (resource, subresource, kind) = if exec { ("pods", Some("exec"), "PodExecOptions") } else { (resource, None, kind) };
    let named = !matches!(verb, "list" | "watch" | "create") || exec;
    let mut uri = format!("{prefix}/namespaces/{ns}/{resource}");
    if named {
        uri.push('/');
        uri.push_str(&name);
    }
    if let Some(sub) = subresource {
        uri.push_str(&format!("/{sub}?command=sh&container=app&stdin=true&tty=true"));
    }
    if verb == "watch" {
        uri.push_str(&format!("?allowWatchBookmarks=true&resourceVersion={}&timeout=9m21s&watch=true", rng.below(90_000_000)));
    }

    // Streams log ResponseStarted and ResponseComplete; some requests also RequestReceived.
    let streaming = verb == "watch" || exec;
    let stage = if streaming {
        *rng.pick(&["ResponseStarted", "ResponseComplete"])
    } else if rng.chance(15) {
        "RequestReceived"
    } else {
        "ResponseComplete"
    };
    let with_bodies = !streaming && stage != "RequestReceived" && rng.chance(45);
    let level = if with_bodies { "RequestResponse" } else { "Metadata" };
    let received = timestamp(micros);
    let latency = if verb == "watch" && stage == "ResponseComplete" { 561_000_000 } else { 500 + rng.below(250_000) };
    let stage_ts = timestamp(micros + if stage == "RequestReceived" { 0 } else { latency });
    let code = if rng.chance(6) { 403 } else if verb == "create" && !exec { 201 } else if exec && stage == "ResponseStarted" { 101 } else { 200 };

    let mut e = format!(
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"{level}\",\"auditID\":\"{}\",\"stage\":\"{stage}\",\"requestURI\":\"{uri}\",\"verb\":\"{verb}\",\"user\":{{\"username\":\"{}\",\"groups\":[{}]}},\"sourceIPs\":[\"{}\"],\"userAgent\":\"{}\",\"objectRef\":{{\"resource\":\"{resource}\",\"namespace\":\"{ns}\"",
        uuid(rng),
        actor.user,
        actor.groups.iter().map(|g| format!("\"{g}\"")).collect::<Vec<_>>().join(","),
        actor.ip,
        actor.agent
    );
    if named {
        e.push_str(&format!(",\"name\":\"{name}\""));
    }
    if !group.is_empty() {
        e.push_str(&format!(",\"apiGroup\":\"{group}\""));
    }
    e.push_str(&format!(",\"apiVersion\":\"{version}\""));
    if let Some(sub) = subresource {
        e.push_str(&format!(",\"subresource\":\"{sub}\""));
    }
    e.push('}');
    if stage != "RequestReceived" {
        if code == 403 {
            e.push_str(&format!(
                ",\"responseStatus\":{{\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"{resource} is forbidden: User \\\"{}\\\" cannot {verb} resource \\\"{resource}\\\" in the namespace \\\"{ns}\\\"\",\"reason\":\"Forbidden\",\"details\":{{\"kind\":\"{resource}\"}},\"code\":403}}",
                actor.user
            ));
        } else {
            e.push_str(&format!(",\"responseStatus\":{{\"metadata\":{{}},\"code\":{code}}}"));
        }
    }
    if with_bodies {
        let size = 1024 + rng.below(19 * 1024) as usize;
        let writes = matches!(verb, "create" | "update" | "patch");
        if writes {
            e.push_str(",\"requestObject\":");
            e.push_str(&object(rng, kind, &api_version, &name, ns, size / 2, &received));
        }
        e.push_str(",\"responseObject\":");
        e.push_str(&object(rng, kind, &api_version, &name, ns, if writes { size / 2 } else { size }, &received));
    }
    e.push_str(&format!(",\"requestReceivedTimestamp\":\"{received}\",\"stageTimestamp\":\"{stage_ts}\""));
    let decision = if code == 403 { "forbid" } else { "allow" };
    e.push_str(&format!(",\"annotations\":{{\"authorization.k8s.io/decision\":\"{decision}\",\"authorization.k8s.io/reason\":\"\"}}}}"));
    e
}

/// `events` audit events, one per line, each line ending with `\n`.
pub fn generate(events: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut micros = 0u64;
    (0..events)
        .map(|_| {
            micros += rng.below(20_000);
            event(&mut rng, micros) + "\n"
        })
        .collect()
}
