//! A deterministic generator of realistic audit logs, for benchmarks and load tests: a mix of
//! control-plane chatter (leases, endpoints, node status, kube-proxy watches), service accounts
//! and humans (deployments with 1-20 KB bodies, secret reads, exec streams, 403s from public
//! IPs), at the levels and stages kube-apiserver writes them.

use std::fmt::Write as _;

use kaudit::{format_micros, write_json_str};

/// A small xorshift generator: the same seed gives the same log on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; the same seed, the same sequence).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A pseudo-random number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const NAMESPACES: &[&str] = &["default", "kube-system", "payments", "web", "monitoring", "ci"];
const HUMANS: &[&str] = &["alice", "bob", "carol", "kubernetes-admin", "27689245"];

/// Generates `events` audit events as JSON lines.
pub fn generate(events: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(events * 3000);
    let mut t: i64 = 1_714_557_600_000_000; // 2024-05-01T10:00:00Z
    let mut i = 0;
    while i < events {
        t += 1_000 + rng.below(20_000) as i64;
        let kind = rng.below(100);
        let n = match kind {
            0..=39 => system_chatter(&mut rng, &mut out, t, i),
            40..=54 => service_account(&mut rng, &mut out, t, i),
            55..=79 => human_write(&mut rng, &mut out, t, i),
            80..=87 => human_read(&mut rng, &mut out, t, i),
            88..=93 => exec_stream(&mut rng, &mut out, t, i),
            _ => public_probe(&mut rng, &mut out, t, i),
        };
        i += n;
    }
    out.into_bytes()
}

struct Ev<'a> {
    level: &'a str,
    stage: &'a str,
    uri: String,
    verb: &'a str,
    user: &'a str,
    groups: &'a [&'a str],
    ip: String,
    agent: &'a str,
    resource: Option<(&'a str, &'a str, String, &'a str, &'a str)>, // (group, resource, name, namespace, subresource)
    code: u32,
    received: i64,
    stage_time: i64,
    request: Option<String>,
    response: Option<String>,
}

fn write(out: &mut String, e: &Ev, id: usize) {
    out.push_str("{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"");
    out.push_str(e.level);
    out.push_str(&format!("\",\"auditID\":\"{:08x}-7bf4-4c85-81a8-{:012x}\",\"stage\":\"", id as u32, id));
    out.push_str(e.stage);
    out.push_str("\",\"requestURI\":");
    write_json_str(out, &e.uri);
    out.push_str(",\"verb\":\"");
    out.push_str(e.verb);
    out.push_str("\",\"user\":{\"username\":");
    write_json_str(out, e.user);
    out.push_str(",\"groups\":[");
    for (k, g) in e.groups.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        write_json_str(out, g);
    }
    out.push_str("]},\"sourceIPs\":[\"");
    out.push_str(&e.ip);
    out.push_str("\"],\"userAgent\":");
    write_json_str(out, e.agent);
    if let Some((group, resource, name, ns, sub)) = &e.resource {
        out.push_str(",\"objectRef\":{\"resource\":\"");
        out.push_str(resource);
        out.push('"');
        if !ns.is_empty() {
            out.push_str(",\"namespace\":\"");
            out.push_str(ns);
            out.push('"');
        }
        if !name.is_empty() {
            out.push_str(",\"name\":\"");
            out.push_str(name);
            out.push('"');
        }
        if !group.is_empty() {
            out.push_str(",\"apiGroup\":\"");
            out.push_str(group);
            out.push('"');
        }
        out.push_str(",\"apiVersion\":\"v1\"");
        if !sub.is_empty() {
            out.push_str(",\"subresource\":\"");
            out.push_str(sub);
            out.push('"');
        }
        out.push('}');
    }
    if e.stage != "RequestReceived" {
        out.push_str(&format!(",\"responseStatus\":{{\"metadata\":{{}},\"code\":{}}}", e.code));
    }
    if let Some(r) = &e.request {
        out.push_str(",\"requestObject\":");
        out.push_str(r);
    }
    if let Some(r) = &e.response {
        out.push_str(",\"responseObject\":");
        out.push_str(r);
    }
    out.push_str(",\"requestReceivedTimestamp\":\"");
    out.push_str(&format_micros(e.received));
    out.push_str("\",\"stageTimestamp\":\"");
    out.push_str(&format_micros(e.stage_time));
    out.push('"');
    if e.stage != "RequestReceived" {
        out.push_str(",\"annotations\":{\"authorization.k8s.io/decision\":\"");
        out.push_str(if e.code == 403 { "forbid" } else { "allow" });
        out.push_str("\",\"authorization.k8s.io/reason\":");
        let reason = if e.user == "kubernetes-admin" {
            "RBAC: allowed by RoleBinding \"ram-27689245/default\" of ClusterRole \"cs:admin\" to User \"27689245\""
        } else {
            ""
        };
        write_json_str(out, reason);
        out.push('}');
    }
    out.push_str("}\n");
}

/// A Kubernetes object of roughly `size` bytes, with managedFields and annotations like real ones.
fn object(rng: &mut Rng, kind: &str, name: &str, ns: &str, size: usize) -> String {
    let mut s = format!(
        "{{\"kind\":\"{kind}\",\"apiVersion\":\"apps/v1\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\",\"uid\":\"{:016x}\",\"resourceVersion\":\"{}\",\"labels\":{{\"app\":\"{name}\",\"tier\":\"backend\"}},\"managedFields\":[{{\"manager\":\"kubectl-client-side-apply\",\"operation\":\"Update\",\"apiVersion\":\"apps/v1\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{{\"f:metadata\":{{\"f:labels\":{{\".\":{{}},\"f:app\":{{}}}}}}}}}}]}},\"spec\":{{\"replicas\":{},\"template\":{{\"spec\":{{\"containers\":[",
        rng.next_u64(),
        rng.below(1_000_000),
        rng.below(5) + 1
    );
    let mut c = 0;
    while s.len() < size {
        if c > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"name\":\"c{c}\",\"image\":\"registry.example.com/team/{name}:{}.{}\",\"args\":[\"--port=8080\",\"--log-level=info\",\"--config=/etc/app/config-{c}.yaml\"],\"env\":[{{\"name\":\"MODE\",\"value\":\"production\"}},{{\"name\":\"REGION\",\"value\":\"eu-central-1\"}}],\"resources\":{{\"limits\":{{\"cpu\":\"500m\",\"memory\":\"512Mi\"}}}},\"securityContext\":{{\"privileged\":false,\"runAsNonRoot\":true}}}}",
            rng.below(10),
            rng.below(100)
        ));
        c += 1;
    }
    s.push_str("]}}},\"status\":{\"observedGeneration\":1}}");
    s
}

fn intranet_ip(rng: &mut Rng) -> String {
    format!("10.{}.{}.{}", rng.below(4), rng.below(255), rng.below(254) + 1)
}

fn system_chatter(rng: &mut Rng, out: &mut String, t: i64, id: usize) -> usize {
    let which = rng.below(4);
    let node = format!("system:node:worker-{}", rng.below(20));
    let (user, groups, verb, group, resource, ns, name, level): (&str, &[&str], &str, &str, &str, &str, String, &str) =
        match which {
            0 => (
                "system:kube-controller-manager",
                &["system:authenticated"],
                "update",
                "coordination.k8s.io",
                "leases",
                "kube-system",
                "kube-controller-manager".into(),
                "Metadata",
            ),
            1 => (
                "system:kube-scheduler",
                &["system:authenticated"],
                "get",
                "coordination.k8s.io",
                "leases",
                "kube-system",
                "kube-scheduler".into(),
                "Metadata",
            ),
            2 => (
                "",
                &["system:nodes", "system:authenticated"],
                "patch",
                "",
                "nodes",
                "",
                format!("worker-{}", rng.below(20)),
                "RequestResponse",
            ),
            _ => {
                ("system:kube-proxy", &["system:authenticated"], "watch", "", "endpoints", "", String::new(), "Request")
            }
        };
    let user: &str = if which == 2 { &node } else { user };
    let uri = match which {
        0 | 1 => format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}"),
        2 => format!("/api/v1/nodes/{name}/status"),
        _ => "/api/v1/endpoints?allowWatchBookmarks=true&resourceVersion=1234&watch=true".into(),
    };
    let sub = if which == 2 { "status" } else { "" };
    let body = (which == 2).then(|| format!("{{\"status\":{{\"conditions\":[{{\"type\":\"Ready\",\"status\":\"True\",\"lastHeartbeatTime\":\"{}\"}}]}}}}", format_micros(t)));
    let mut e = Ev {
        level,
        stage: "ResponseComplete",
        uri,
        verb,
        user,
        groups,
        ip: intranet_ip(rng),
        agent: "kube-controller-manager/v1.30.1 (linux/amd64) kubernetes/abcdef",
        resource: Some((group, resource, name, ns, sub)),
        code: 200,
        received: t,
        stage_time: t + 800 + rng.below(3000) as i64,
        request: body.clone(),
        response: body.map(|b| b.replace("True", "True\",\"reason\":\"KubeletReady")),
    };
    if verb == "watch" {
        e.stage = "ResponseStarted";
        write(out, &e, id);
        e.stage = "ResponseComplete";
        e.stage_time += 300_000_000;
        write(out, &e, id);
        return 2;
    }
    write(out, &e, id);
    1
}

fn service_account(rng: &mut Rng, out: &mut String, t: i64, id: usize) -> usize {
    let ns = rng.pick(NAMESPACES);
    let sa = format!("system:serviceaccount:{ns}:{}", rng.pick(&["default", "prometheus", "argocd", "fluent-bit"]));
    let resource = rng.pick(&["pods", "configmaps", "services", "secrets"]);
    let e = Ev {
        level: if resource == "secrets" || resource == "configmaps" { "Metadata" } else { "Request" },
        stage: "ResponseComplete",
        uri: format!("/api/v1/namespaces/{ns}/{resource}?limit=500"),
        verb: "list",
        user: &sa,
        groups: &["system:serviceaccounts", "system:authenticated"],
        ip: intranet_ip(rng),
        agent: "prometheus/2.51.0",
        resource: Some(("", resource, String::new(), ns, "")),
        code: if rng.below(20) == 0 { 403 } else { 200 },
        received: t,
        stage_time: t + 2_000 + rng.below(20_000) as i64,
        request: None,
        response: None,
    };
    write(out, &e, id);
    1
}

fn human_write(rng: &mut Rng, out: &mut String, t: i64, id: usize) -> usize {
    let ns = rng.pick(NAMESPACES);
    let user = rng.pick(HUMANS);
    let name = format!("app-{}", rng.below(50));
    let size = 1_000 + rng.below(19_000) as usize;
    let body = object(rng, "Deployment", &name, ns, size);
    let verb = rng.pick(&["create", "update", "patch", "delete"]);
    let uri = if verb == "create" {
        format!("/apis/apps/v1/namespaces/{ns}/deployments?fieldManager=kubectl-client-side-apply")
    } else {
        format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    };
    let mut e = Ev {
        level: "RequestResponse",
        stage: "RequestReceived",
        uri,
        verb,
        user,
        groups: &["system:masters", "system:authenticated"],
        ip: if rng.below(4) == 0 { format!("203.0.113.{}", rng.below(254) + 1) } else { intranet_ip(rng) },
        agent: "kubectl/v1.30.1 (linux/amd64) kubernetes/abcdef",
        resource: Some(("apps", "deployments", name.clone(), ns, "")),
        code: 200,
        received: t,
        stage_time: t,
        request: (verb != "delete").then(|| body.clone()),
        response: None,
    };
    write(out, &e, id);
    e.stage = "ResponseComplete";
    e.stage_time = t + 5_000 + rng.below(50_000) as i64;
    e.code = if verb == "create" { 201 } else { 200 };
    e.response = Some(body);
    write(out, &e, id);
    2
}

fn human_read(rng: &mut Rng, out: &mut String, t: i64, id: usize) -> usize {
    let ns = rng.pick(NAMESPACES);
    let user = rng.pick(HUMANS);
    let resource = rng.pick(&["secrets", "pods", "configmaps"]);
    let name = format!("{resource}-{}", rng.below(30));
    let e = Ev {
        level: if resource == "pods" { "Request" } else { "Metadata" },
        stage: "ResponseComplete",
        uri: format!("/api/v1/namespaces/{ns}/{resource}/{name}"),
        verb: "get",
        user,
        groups: &["system:authenticated"],
        ip: intranet_ip(rng),
        agent: "kubectl/v1.30.1 (linux/amd64) kubernetes/abcdef",
        resource: Some(("", resource, name, ns, "")),
        code: if rng.below(10) == 0 { 404 } else { 200 },
        received: t,
        stage_time: t + 3_000,
        request: None,
        response: None,
    };
    write(out, &e, id);
    1
}

fn exec_stream(rng: &mut Rng, out: &mut String, t: i64, id: usize) -> usize {
    let ns = rng.pick(NAMESPACES);
    let user = rng.pick(HUMANS);
    let pod = format!("app-{}-7998647bdf-phvq7", rng.below(50));
    let cmd = rng.pick(&["command=bash", "command=sh&command=-c&command=cat%20%2Fetc%2Fpasswd", "command=ls"]);
    let mut e = Ev {
        level: "Request",
        stage: "ResponseStarted",
        uri: format!("/api/v1/namespaces/{ns}/pods/{pod}/exec?{cmd}&container=app&stdin=true&stdout=true&tty=true"),
        verb: "create",
        user,
        groups: &["system:masters", "system:authenticated"],
        ip: format!("198.51.100.{}", rng.below(254) + 1),
        agent: "kubectl/v1.30.1 (linux/amd64) kubernetes/abcdef",
        resource: Some(("", "pods", pod, ns, "exec")),
        code: 101,
        received: t,
        stage_time: t + 40_000,
        request: None,
        response: None,
    };
    write(out, &e, id);
    e.stage = "ResponseComplete";
    e.stage_time = t + 60_000_000;
    write(out, &e, id);
    2
}

fn public_probe(rng: &mut Rng, out: &mut String, t: i64, id: usize) -> usize {
    let e = Ev {
        level: "Metadata",
        stage: "ResponseComplete",
        uri: rng.pick(&["/api/v1/namespaces/kube-system/secrets", "/apis", "/version", "/api/v1/pods"]).to_string(),
        verb: "list",
        user: "system:anonymous",
        groups: &["system:unauthenticated"],
        ip: format!("45.{}.{}.{}", rng.below(4), rng.below(255), rng.below(254) + 1),
        agent: "python-requests/2.31.0",
        resource: None,
        code: 403,
        received: t,
        stage_time: t + 500,
        request: None,
        response: None,
    };
    write(out, &e, id);
    1
}

/// High-cardinality load (memory-bound tests): event `i` comes from its own source address and
/// its own user, `user-i`,: every other one a secret read, then a
/// forbidden list, a deletion or an exec, so every default rule sees traffic and keeps groups.
pub fn distinct_actor_event(i: u32, line: &mut String) {
    line.clear();
    let ip = format!("{}.{}.{}.{}", 11 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let (verb, uri, resource, sub, stage, code) = match i % 8 {
        0 | 2 | 4 | 6 => {
            ("get", format!("/api/v1/namespaces/ns-{}/secrets/s-{i}", i % 97), "secrets", "", "ResponseComplete", 200)
        }
        1 | 5 => ("list", "/api/v1/pods".to_string(), "pods", "", "ResponseComplete", 403),
        3 => (
            "delete",
            format!("/api/v1/namespaces/ns-{}/configmaps/c-{i}", i % 97),
            "configmaps",
            "",
            "ResponseComplete",
            200,
        ),
        _ => (
            "create",
            format!("/api/v1/namespaces/ns-{}/pods/p-{i}/exec?command=sh", i % 97),
            "pods",
            "exec",
            "ResponseStarted",
            101,
        ),
    };
    let sub = if sub.is_empty() { String::new() } else { format!(r#","subresource":"{sub}""#) };
    // One event per millisecond of event time.
    let (s, ms) = (i / 1000, i % 1000);
    let _ = write!(
        line,
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-{i}","stage":"{stage}","requestURI":"{uri}","verb":"{verb}","user":{{"username":"user-{i}","groups":["system:authenticated"]}},"sourceIPs":["{ip}"],"userAgent":"kubectl/v1.30.0","objectRef":{{"resource":"{resource}","namespace":"ns-{}","name":"n-{i}","apiVersion":"v1"{sub}}},"responseStatus":{{"code":{code}}},"requestReceivedTimestamp":"2024-05-14T{:02}:{:02}:{:02}.{:03}000Z","stageTimestamp":"2024-05-14T{:02}:{:02}:{:02}.{:03}000Z"}}"#,
        i % 97,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        ms,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        ms
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid() {
        let a = generate(500, 7);
        assert_eq!(a, generate(500, 7));
        let text = std::str::from_utf8(&a).unwrap();
        let mut sizes = Vec::new();
        for line in text.lines() {
            kaudit::Event::parse(line).unwrap();
            sizes.push(line.len());
        }
        assert!(sizes.len() >= 500);
        assert!(sizes.iter().any(|s| *s > 10_000) && sizes.iter().any(|s| *s < 1_500));
    }
}
