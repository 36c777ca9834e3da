//! `kaudit demo-log`: one day of a small cluster's audit log, generated deterministically (the same
//! bytes on every machine), to try kaudit on something that looks like production.
//!
//! The cluster: one control-plane node and three workers (kubeadm-style identities), CoreDNS,
//! kube-proxy, Prometheus, a web shop in `web` and `payments`, a CI bot deploying during the
//! working day, three people using kubectl. The request rates are the components' defaults
//! (leader-election renewals every 2 s, node leases every 10 s, kubelet node-status reads every
//! 10 s, informer watches re-opened every 5-10 minutes), so most of the volume is control-plane
//! chatter, as in a real cluster. Among it: an exec into a payments pod, a secret read by a person,
//! a burst of forbidden requests from one Internet address, deletions by people and the CI bot.
//!
//! The log is what kube-apiserver writes under a catch-all policy (`level: RequestResponse`, no
//! `omitStages`): every stage, every body. `kaudit policy impact` then shows what a real policy
//! (the seed's) saves, and where. Event layout: audit.k8s.io/v1 `Event` as kube-apiserver 1.32
//! serializes it (k8s.io/apiserver/pkg/apis/audit/v1/types.go). `--format eks|aks` wraps the
//! same events as those providers deliver them (docs/MANAGED.md); GKE is not offered: its
//! `LogEntry` is a lossy conversion kaudit rebuilds from, not the apiserver's bytes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use kaudit::{format_micros, parse_micros};

/// The day's deterministic choices: xorshift64 (Marsaglia 2003), the sequence the benchmarks'
/// corpus generator draws too, kept here so the product binary carries no test support.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A pseudo-random number below `n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Args)]
pub struct DemoLogArgs {
    /// The day (UTC) the log covers.
    #[arg(long, default_value = "2026-05-04", value_name = "YYYY-MM-DD")]
    date: String,
    /// Write the log to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// `native` (the apiserver's log file), `eks` (CloudWatch Logs subscription envelopes, one
    /// per line, as Firehose delivers them to S3 once decompressed) or `aks` (diagnostic-settings
    /// records, one per line, as a storage account keeps them). docs/MANAGED.md.
    #[arg(long, default_value = "native", value_parser = ["native", "eks", "aks"])]
    format: String,
}

pub fn demo_log(args: DemoLogArgs) -> Result<crate::exit::Status, String> {
    let start = parse_micros(&format!("{}T00:00:00Z", args.date))
        .ok_or_else(|| format!("--date: not a date like 2026-05-04: {:?}", args.date))?;
    let log = match args.format.as_str() {
        "eks" => eks(&generate(start)),
        "aks" => aks(&generate(start)),
        _ => generate(start),
    };
    match &args.output {
        Some(path) => std::fs::write(path, &log).map_err(|e| format!("{}: {e}", path.display()))?,
        None => std::io::stdout().lock().write_all(&log).map_err(|e| format!("stdout: {e}"))?,
    }
    Ok(crate::exit::Status::Success)
}

/// EKS: the events as CloudWatch Logs delivers them to a subscription (log group
/// `/aws/eks/<cluster>/cluster`, streams `kube-apiserver-audit-<id>`), up to 100 per
/// `DATA_MESSAGE` envelope, one envelope per line.
fn eks(native: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(native);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(native.len() * 11 / 10);
    for (n, batch) in lines.chunks(100).enumerate() {
        out.push_str(
            "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"123456789012\",\"logGroup\":\"/aws/eks/demo/cluster\",\
             \"logStream\":\"kube-apiserver-audit-5e2f0c4b9a7d4f1e8c3b6a0d9e2f1c4b\",\
             \"subscriptionFilters\":[\"eks-audit-to-firehose\"],\"logEvents\":[",
        );
        for (k, line) in batch.iter().enumerate() {
            let millis = event_time(line) / 1000;
            if k > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"id\":\"{millis}{:020}\",\"timestamp\":{millis},\"message\":", n * 100 + k);
            kaudit::write_json_str(&mut out, line);
            out.push('}');
        }
        out.push_str("]}\n");
    }
    out.into_bytes()
}

/// AKS: diagnostic-settings records of category `kube-audit`, the Event as the string
/// `properties.log` (with the apiserver's line break), one record per line.
fn aks(native: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(native);
    let mut out = String::with_capacity(native.len() * 13 / 10);
    for line in text.lines() {
        let time = format_micros(event_time(line));
        out.push_str(
            "{\"category\":\"kube-audit\",\"operationName\":\"Microsoft.ContainerService/managedClusters/diagnosticLogs/Read\",\
             \"resourceId\":\"/SUBSCRIPTIONS/0B2C7E6A-1D4F-4A8B-9C3E-5F7A9B1D3E5F/RESOURCEGROUPS/DEMO-RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/DEMO\",\
             \"properties\":{\"log\":",
        );
        kaudit::write_json_str(&mut out, &format!("{line}\n"));
        let _ =
            writeln!(out, ",\"stream\":\"stdout\",\"pod\":\"kube-apiserver-7d9f8b6c5-x2k4p\"}},\"time\":\"{time}\"}}");
    }
    out.into_bytes()
}

/// The stage time of a line this module wrote.
fn event_time(line: &str) -> i64 {
    let key = "\"stageTimestamp\":\"";
    line.find(key).and_then(|at| parse_micros(&line[at + key.len()..at + key.len() + 27])).unwrap_or(0)
}

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

const CONTROL_PLANE: &str = "10.0.0.10";
const NODES: [(&str, &str); 4] =
    [("cp-1", CONTROL_PLANE), ("worker-1", "10.0.1.11"), ("worker-2", "10.0.1.12"), ("worker-3", "10.0.1.13")];
const CI_RUNNER: &str = "10.0.5.20";
const ALICE_IP: &str = "10.8.0.21";
const BOB_IP: &str = "10.8.0.35";
const ADMIN_IP: &str = "10.8.0.40";
/// The Internet address that probes the API server (TEST-NET-3, RFC 5737).
const PROBER: &str = "203.0.113.45";

const AUTHENTICATED: &[&str] = &["system:authenticated"];
const NODE_GROUPS: &[&str] = &["system:nodes", "system:authenticated"];
const CI_GROUPS: &[&str] = &["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"];
const MASTERS: &[&str] = &["system:masters", "system:authenticated"];
const UNAUTHENTICATED: &[&str] = &["system:unauthenticated"];

const KCM: &str = "system:kube-controller-manager";
const SCHEDULER: &str = "system:kube-scheduler";
const CI_BOT: &str = "system:serviceaccount:ci:deployer";
const KCM_AGENT: &str = "kube-controller-manager/v1.32.4 (linux/amd64) kubernetes/59526cd/leader-election";
const KUBECTL: &str = "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd";
const KUBECTL_MAC: &str = "kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46";

/// Who sent a request.
#[derive(Clone, Copy)]
struct Who {
    user: &'static str,
    groups: &'static [&'static str],
    ip: &'static str,
    agent: &'static str,
}

/// `objectRef`.
#[derive(Clone, Default)]
struct Obj {
    resource: &'static str,
    namespace: String,
    name: String,
    group: &'static str,
    version: &'static str,
    subresource: &'static str,
}

fn obj(resource: &'static str, group: &'static str, version: &'static str, namespace: &str, name: &str) -> Obj {
    Obj { resource, group, version, namespace: namespace.into(), name: name.into(), subresource: "" }
}

/// Request and response bodies, rendered when the event is written.
#[derive(Clone)]
enum Body {
    None,
    /// A Lease update (request and response: the Lease).
    Lease {
        holder: String,
        renew: i64,
        duration: u32,
    },
    /// A Node read (response: the Node).
    Node,
    /// A kubelet node-status patch (request: the conditions' heartbeat; response: the Node).
    NodeStatus {
        heartbeat: i64,
    },
    /// A list (response: a list of `items` objects of the named kind).
    List {
        kind: &'static str,
        items: u32,
    },
    /// A Deployment patch by `kubectl apply` (request: the patch; response: the Deployment).
    Deployment {
        image: String,
        generation: u32,
    },
    /// An object created (request and response: the object text).
    Created {
        kind: &'static str,
        api_version: &'static str,
        extra: String,
    },
    /// A `Status` object (deletions and failures).
    Status {
        status: &'static str,
        reason: &'static str,
        message: String,
    },
    /// A TokenReview (request: the token, response: the user).
    TokenReview {
        user: &'static str,
    },
}

struct Request {
    at: i64,
    /// ResponseStarted after this long (watches, exec), then ResponseComplete after `latency`.
    started: Option<i64>,
    latency: i64,
    verb: &'static str,
    uri: String,
    who: Who,
    obj: Option<Obj>,
    code: u16,
    body: Body,
    /// `authorization.k8s.io/reason`; `None`: the request was not authorized (failed or anonymous).
    reason: Option<String>,
}

struct Day {
    rng: Rng,
    start: i64,
    requests: Vec<Request>,
}

impl Day {
    fn add(&mut self, r: Request) {
        if r.at >= self.start && r.at < self.start + DAY {
            self.requests.push(r);
        }
    }

    /// Milliseconds of latency: `base` plus up to `spread` more.
    fn ms(&mut self, base: i64, spread: u64) -> i64 {
        (base + self.rng.below(spread.max(1)) as i64) * 1000 + self.rng.below(1000) as i64
    }

    fn jitter(&mut self, max: i64) -> i64 {
        self.rng.below(max.max(1) as u64) as i64
    }

    #[allow(clippy::too_many_arguments)]
    fn request(&mut self, at: i64, verb: &'static str, uri: String, who: Who, obj: Option<Obj>, code: u16, body: Body) {
        let latency = self.ms(2, 12);
        let reason = Some(rbac_reason(who.user));
        self.add(Request { at, started: None, latency, verb, uri, who, obj, code, body, reason });
    }

    /// An informer's watch: re-opened every 5-10 minutes (the client's random timeout) all day.
    fn watches(&mut self, who: Who, resource: &'static str, group: &'static str, namespace: &str) {
        let base = if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/v1") };
        let path = if namespace.is_empty() {
            format!("{base}/{resource}")
        } else {
            format!("{base}/namespaces/{namespace}/{resource}")
        };
        let mut t = self.start - self.jitter(10 * MINUTE);
        let mut rv = 48_211_000 + self.rng.below(10_000);
        while t < self.start + DAY {
            let timeout = 300 + self.rng.below(300) as i64;
            let uri = format!(
                "{path}?allowWatchBookmarks=true&resourceVersion={rv}&timeout={}m{}s&timeoutSeconds={timeout}&watch=true",
                timeout / 60,
                timeout % 60
            );
            let o = obj(resource, group, "v1", namespace, "");
            let reason = Some(rbac_reason(who.user));
            let started = Some(self.ms(1, 3));
            self.add(Request {
                at: t,
                started,
                latency: timeout * SECOND,
                verb: "watch",
                uri,
                who,
                obj: Some(o),
                code: 200,
                body: Body::None,
                reason,
            });
            t += timeout * SECOND + self.jitter(SECOND);
            rv += 1500 + self.rng.below(500);
        }
    }

    /// Leader election (client-go, leaderelection.go): the holder renews its Lease every
    /// `retry` (2 s for kube-controller-manager and kube-scheduler) with an update.
    fn leader_lease(&mut self, who: Who, name: &str) {
        let mut t = self.start + self.jitter(2 * SECOND);
        while t < self.start + DAY {
            let uri = format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}?timeout=5s");
            let body = Body::Lease { holder: format!("cp-1_{}", holder_uid(name)), renew: t, duration: 15 };
            let o = obj("leases", "coordination.k8s.io", "v1", "kube-system", name);
            self.request(t, "update", uri, who, Some(o), 200, body);
            t += 2 * SECOND + self.jitter(40_000);
        }
    }

    /// A kubelet: its node Lease every 10 s, its Node read (from the watch cache) every 10 s,
    /// a node-status patch every 5 minutes, and its watches.
    fn kubelet(&mut self, node: &'static str, ip: &'static str) {
        let who = Who {
            user: node_user(node),
            groups: NODE_GROUPS,
            ip,
            agent: "kubelet/v1.32.4 (linux/amd64) kubernetes/59526cd",
        };
        let mut t = self.start + self.jitter(10 * SECOND);
        let mut n = 0u32;
        while t < self.start + DAY {
            let o = obj("nodes", "", "v1", "", node);
            self.request(
                t,
                "get",
                format!("/api/v1/nodes/{node}?resourceVersion=0&timeout=10s"),
                who,
                Some(o),
                200,
                Body::Node,
            );
            let lease = obj("leases", "coordination.k8s.io", "v1", "kube-node-lease", node);
            let uri = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}?timeout=10s");
            let body = Body::Lease { holder: node.to_string(), renew: t + 3_000, duration: 40 };
            self.request(t + 3_000, "update", uri, who, Some(lease), 200, body);
            if n.is_multiple_of(30) {
                let mut o = obj("nodes", "", "v1", "", node);
                o.subresource = "status";
                let uri = format!("/api/v1/nodes/{node}/status?timeout=10s");
                self.request(t + 9_000, "patch", uri, who, Some(o), 200, Body::NodeStatus { heartbeat: t });
            }
            n += 1;
            t += 10 * SECOND + self.jitter(20_000);
        }
        for (resource, group, ns) in [
            ("pods", "", ""),
            ("nodes", "", ""),
            ("services", "", ""),
            ("runtimeclasses", "node.k8s.io", ""),
            ("csidrivers", "storage.k8s.io", ""),
            ("configmaps", "", "kube-system"),
        ] {
            self.watches(who, resource, group, ns);
        }
    }
}

fn node_user(node: &str) -> &'static str {
    match node {
        "cp-1" => "system:node:cp-1",
        "worker-1" => "system:node:worker-1",
        "worker-2" => "system:node:worker-2",
        _ => "system:node:worker-3",
    }
}

fn holder_uid(name: &str) -> &'static str {
    if name == "kube-scheduler" {
        "5f0d7a9e-3c1b-4f57-9b9e-0d6c7c2f4a11"
    } else {
        "9b2e41c8-7d55-4a3e-8f0b-2c61d9e8a7f3"
    }
}

/// The RBAC reason the authorizer gives (`authorization.k8s.io/reason`).
fn rbac_reason(user: &str) -> String {
    let (kind, binding, role) = match user {
        KCM => ("ClusterRoleBinding", "system:kube-controller-manager", "system:kube-controller-manager"),
        SCHEDULER => ("ClusterRoleBinding", "system:kube-scheduler", "system:kube-scheduler"),
        "system:kube-proxy" => ("ClusterRoleBinding", "system:node-proxier", "system:node-proxier"),
        CI_BOT => ("RoleBinding", "deployer/web", "edit"),
        "alice" => ("RoleBinding", "developers/web", "edit"),
        "bob" => ("ClusterRoleBinding", "sre", "cluster-admin"),
        "kubernetes-admin" => ("ClusterRoleBinding", "27689245-clusterrolebinding", "cluster-admin"),
        u if u.starts_with("system:node:") => return String::new(), // the Node authorizer gives no reason
        u if u.starts_with("system:serviceaccount:") => ("ClusterRoleBinding", "system:service-accounts", "view"),
        _ => return String::new(),
    };
    // kubernetes-admin is ACK's shared certificate; its binding names the RAM user it stands for
    // (the seed's "Account name" expression reads that user from this reason).
    let subject = match user {
        "kubernetes-admin" => "User \"27689245\"".to_string(),
        u if u.starts_with("system:serviceaccount:") => {
            let mut parts = u.rsplitn(2, ':');
            let name = parts.next().unwrap_or_default();
            let ns = parts.next().unwrap_or_default().trim_start_matches("system:serviceaccount:");
            format!("ServiceAccount \"{name}/{ns}\"")
        }
        u => format!("User \"{u}\""),
    };
    format!("RBAC: allowed by {kind} \"{binding}\" of ClusterRole \"{role}\" to {subject}")
}

/// The whole day, one JSON line per event, in the order kube-apiserver writes them (stage time).
pub fn generate(start: i64) -> Vec<u8> {
    let mut day = Day { rng: Rng::new(0x6b61_7564_6974), start, requests: Vec::new() };
    control_plane(&mut day);
    for (node, ip) in NODES {
        day.kubelet(node, ip);
        let proxy = Who {
            user: "system:kube-proxy",
            groups: AUTHENTICATED,
            ip,
            agent: "kube-proxy/v1.32.4 (linux/amd64) kubernetes/59526cd",
        };
        day.watches(proxy, "services", "", "");
        day.watches(proxy, "endpointslices", "discovery.k8s.io", "");
    }
    workloads(&mut day);
    people(&mut day);
    prober(&mut day);
    write_all(day)
}

fn control_plane(day: &mut Day) {
    let kcm = Who { user: KCM, groups: AUTHENTICATED, ip: CONTROL_PLANE, agent: KCM_AGENT };
    let scheduler = Who {
        user: SCHEDULER,
        groups: AUTHENTICATED,
        ip: CONTROL_PLANE,
        agent: "kube-scheduler/v1.32.4 (linux/amd64) kubernetes/59526cd/leader-election",
    };
    day.leader_lease(kcm, "kube-controller-manager");
    day.leader_lease(scheduler, "kube-scheduler");
    let kcm_informers =
        Who { agent: "kube-controller-manager/v1.32.4 (linux/amd64) kubernetes/59526cd/shared-informers", ..kcm };
    for (resource, group) in [
        ("pods", ""),
        ("nodes", ""),
        ("services", ""),
        ("endpoints", ""),
        ("namespaces", ""),
        ("serviceaccounts", ""),
        ("secrets", ""),
        ("configmaps", ""),
        ("persistentvolumeclaims", ""),
        ("persistentvolumes", ""),
        ("replicationcontrollers", ""),
        ("resourcequotas", ""),
        ("deployments", "apps"),
        ("replicasets", "apps"),
        ("statefulsets", "apps"),
        ("daemonsets", "apps"),
        ("controllerrevisions", "apps"),
        ("jobs", "batch"),
        ("cronjobs", "batch"),
        ("endpointslices", "discovery.k8s.io"),
        ("horizontalpodautoscalers", "autoscaling"),
        ("poddisruptionbudgets", "policy"),
        ("leases", "coordination.k8s.io"),
        ("roles", "rbac.authorization.k8s.io"),
        ("rolebindings", "rbac.authorization.k8s.io"),
        ("clusterroles", "rbac.authorization.k8s.io"),
        ("clusterrolebindings", "rbac.authorization.k8s.io"),
        ("ingresses", "networking.k8s.io"),
        ("networkpolicies", "networking.k8s.io"),
        ("csinodes", "storage.k8s.io"),
    ] {
        day.watches(kcm_informers, resource, group, "");
    }
    let sched_informers =
        Who { agent: "kube-scheduler/v1.32.4 (linux/amd64) kubernetes/59526cd/scheduler", ..scheduler };
    for (resource, group) in [
        ("pods", ""),
        ("nodes", ""),
        ("namespaces", ""),
        ("services", ""),
        ("persistentvolumeclaims", ""),
        ("persistentvolumes", ""),
        ("replicasets", "apps"),
        ("statefulsets", "apps"),
        ("poddisruptionbudgets", "policy"),
        ("storageclasses", "storage.k8s.io"),
        ("csinodes", "storage.k8s.io"),
        ("csidrivers", "storage.k8s.io"),
    ] {
        day.watches(sched_informers, resource, group, "");
    }
    let coredns = Who {
        user: "system:serviceaccount:kube-system:coredns",
        groups: &["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        ip: "10.244.1.3",
        agent: "coredns/v1.11.3 (linux/amd64) kubernetes/$Format",
    };
    for (resource, group) in [("services", ""), ("namespaces", ""), ("endpointslices", "discovery.k8s.io")] {
        day.watches(coredns, resource, group, "");
    }
    // The HPA controller reads pod metrics every 15 s (an aggregated API the seed's policy does
    // not list, so it falls to the catch-all Metadata rule).
    let hpa = Who { agent: "kube-controller-manager/v1.32.4 (linux/amd64) kubernetes/59526cd/system:serviceaccount:kube-system:horizontal-pod-autoscaler", ..kcm };
    let mut t = day.start + day.jitter(15 * SECOND);
    while t < day.start + DAY {
        let o = obj("pods", "metrics.k8s.io", "v1beta1", "web", "");
        let uri = "/apis/metrics.k8s.io/v1beta1/namespaces/web/pods?labelSelector=app%3Dshop-frontend".to_string();
        day.request(t, "list", uri, hpa, Some(o), 200, Body::List { kind: "PodMetrics", items: 3 });
        t += 15 * SECOND + day.jitter(50_000);
    }
    // An external load balancer checks the API server every 10 s.
    let lb = Who { user: "system:anonymous", groups: UNAUTHENTICATED, ip: "10.0.0.5", agent: "ELB-HealthChecker/2.0" };
    let mut t = day.start + day.jitter(10 * SECOND);
    while t < day.start + DAY {
        let latency = day.ms(0, 2);
        let reason = Some("RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"".to_string());
        day.add(Request {
            at: t,
            started: None,
            latency,
            verb: "get",
            uri: "/healthz".into(),
            who: lb,
            obj: None,
            code: 200,
            body: Body::None,
            reason,
        });
        t += 10 * SECOND;
    }
    // Prometheus scrapes each kubelet every 30 s; the kubelet authenticates the scraper's token
    // with a TokenReview (cached for 2 minutes).
    for (node, ip) in NODES {
        let who = Who {
            user: node_user(node),
            groups: NODE_GROUPS,
            ip,
            agent: "kubelet/v1.32.4 (linux/amd64) kubernetes/59526cd",
        };
        let mut t = day.start + day.jitter(2 * MINUTE);
        while t < day.start + DAY {
            let o = obj("tokenreviews", "authentication.k8s.io", "v1", "", "");
            let body = Body::TokenReview { user: "system:serviceaccount:monitoring:prometheus" };
            day.request(t, "create", "/apis/authentication.k8s.io/v1/tokenreviews".into(), who, Some(o), 201, body);
            t += 2 * MINUTE + day.jitter(SECOND);
        }
    }
    let prometheus = Who {
        user: "system:serviceaccount:monitoring:prometheus",
        groups: &["system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"],
        ip: "10.244.2.7",
        agent: "prometheus/2.53.1",
    };
    for (resource, group) in [("pods", ""), ("services", ""), ("endpointslices", "discovery.k8s.io"), ("nodes", "")] {
        day.watches(prometheus, resource, group, "");
    }
}

/// The CI bot deploys the shop during the working day; each rollout makes controllers create
/// ReplicaSets and Pods, the scheduler bind them, and everyone record Events.
fn workloads(day: &mut Day) {
    let ci = Who { user: CI_BOT, groups: CI_GROUPS, ip: CI_RUNNER, agent: KUBECTL };
    let kcm = Who { user: KCM, groups: AUTHENTICATED, ip: CONTROL_PLANE, agent: "kube-controller-manager/v1.32.4 (linux/amd64) kubernetes/59526cd/system:serviceaccount:kube-system:replicaset-controller" };
    let scheduler = Who {
        user: SCHEDULER,
        groups: AUTHENTICATED,
        ip: CONTROL_PLANE,
        agent: "kube-scheduler/v1.32.4 (linux/amd64) kubernetes/59526cd/scheduler",
    };
    let deploys = [
        (9, 12, "shop-frontend", "web"),
        (10, 41, "cart", "web"),
        (11, 5, "shop-frontend", "web"),
        (13, 30, "payments-api", "payments"),
        (14, 52, "shop-frontend", "web"),
        (16, 18, "cart", "web"),
        (17, 44, "payments-api", "payments"),
    ];
    for (k, (h, m, app, ns)) in deploys.into_iter().enumerate() {
        let t0 = day.start + h * HOUR + m * MINUTE + day.jitter(MINUTE);
        let generation = 40 + k as u32;
        let image = format!("registry.example.com/shop/{app}:1.{}.{}", 14 + k / 3, k);
        // kubectl apply: discovery, get, server-side patch; then rollout status (a watch).
        let o = obj("deployments", "apps", "v1", ns, app);
        day.request(
            t0,
            "get",
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{app}"),
            ci,
            Some(o.clone()),
            200,
            Body::Deployment { image: image.clone(), generation: generation - 1 },
        );
        day.request(t0 + 180_000, "patch", format!("/apis/apps/v1/namespaces/{ns}/deployments/{app}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"), ci, Some(o), 200, Body::Deployment { image: image.clone(), generation });
        // A config map per release, the previous one deleted.
        let cm = obj("configmaps", "", "v1", ns, &format!("{app}-config-{generation}"));
        day.request(
            t0 + 90_000,
            "create",
            format!("/api/v1/namespaces/{ns}/configmaps?fieldManager=kubectl-client-side-apply"),
            ci,
            Some(cm),
            201,
            Body::Created {
                kind: "ConfigMap",
                api_version: "v1",
                extra: format!(",\"data\":{{\"LOG_LEVEL\":\"info\",\"RELEASE\":\"{generation}\"}}"),
            },
        );
        let old = obj("configmaps", "", "v1", ns, &format!("{app}-config-{}", generation - 1));
        day.request(
            t0 + 400_000,
            "delete",
            format!("/api/v1/namespaces/{ns}/configmaps/{app}-config-{}", generation - 1),
            ci,
            Some(old),
            200,
            Body::Status { status: "Success", reason: "", message: String::new() },
        );
        let mut watch = obj("deployments", "apps", "v1", ns, "");
        watch.name = app.to_string();
        let uri = format!("/apis/apps/v1/namespaces/{ns}/deployments?fieldSelector=metadata.name%3D{app}&watch=true");
        let latency = 45 * SECOND + day.jitter(30 * SECOND);
        day.add(Request {
            at: t0 + 400_000,
            started: Some(3_000),
            latency,
            verb: "watch",
            uri,
            who: ci,
            obj: Some(watch),
            code: 200,
            body: Body::None,
            reason: Some(rbac_reason(CI_BOT)),
        });
        // The rollout: a ReplicaSet, three pods, bindings, events.
        let rs = format!("{app}-{:x}", 0x5d8f7c9b00u64 + day.rng.below(0xffff));
        let o = obj("replicasets", "apps", "v1", ns, "");
        day.request(t0 + 300_000, "create", format!("/apis/apps/v1/namespaces/{ns}/replicasets"), kcm, Some(o), 201, Body::Created { kind: "ReplicaSet", api_version: "apps/v1", extra: format!(",\"spec\":{{\"replicas\":3,\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\"}}]}}}}}}") });
        for p in 0..3 {
            let t = t0 + 400_000 + p * 8 * SECOND;
            let pod = format!("{rs}-{}", ["x7k2p", "m4q9z", "b8w3n"][p as usize]);
            let o = obj("pods", "", "v1", ns, "");
            day.request(
                t,
                "create",
                format!("/api/v1/namespaces/{ns}/pods"),
                kcm,
                Some(o),
                201,
                Body::Created {
                    kind: "Pod",
                    api_version: "v1",
                    extra: format!(",\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\"}}]}}"),
                },
            );
            let mut b = obj("pods", "", "v1", ns, &pod);
            b.subresource = "binding";
            day.request(
                t + 20_000,
                "create",
                format!("/api/v1/namespaces/{ns}/pods/{pod}/binding"),
                scheduler,
                Some(b),
                201,
                Body::Created {
                    kind: "Binding",
                    api_version: "v1",
                    extra: format!(",\"target\":{{\"kind\":\"Node\",\"name\":\"worker-{}\"}}", p + 1),
                },
            );
            let node = NODES[p as usize + 1];
            let kubelet = Who {
                user: node_user(node.0),
                groups: NODE_GROUPS,
                ip: node.1,
                agent: "kubelet/v1.32.4 (linux/amd64) kubernetes/59526cd",
            };
            for (i, reason) in ["Scheduled", "Pulling", "Pulled", "Created", "Started"].into_iter().enumerate() {
                let who = if i == 0 { scheduler } else { kubelet };
                let o = obj("events", "", "v1", ns, "");
                let at = t + 25_000 + i as i64 * 900_000;
                day.request(at, "create", format!("/api/v1/namespaces/{ns}/events"), who, Some(o), 201, Body::Created { kind: "Event", api_version: "v1", extra: format!(",\"reason\":\"{reason}\",\"involvedObject\":{{\"kind\":\"Pod\",\"namespace\":\"{ns}\",\"name\":\"{pod}\"}}") });
            }
            // The old pods go: the ReplicaSet controller deletes them.
            let old = obj("pods", "", "v1", ns, &format!("{app}-6c4d8b7f9-old{p}"));
            day.request(
                t + 30 * SECOND,
                "delete",
                format!("/api/v1/namespaces/{ns}/pods/{app}-6c4d8b7f9-old{p}"),
                kcm,
                Some(old),
                200,
                Body::Status { status: "Success", reason: "", message: String::new() },
            );
        }
    }
    // Nightly: the CI bot cleans up finished jobs in `ci`.
    for j in 0..6 {
        let t = day.start + 2 * HOUR + j * 40 * SECOND + day.jitter(SECOND);
        let name = format!("integration-tests-{}", 29_140 + j);
        let o = obj("jobs", "batch", "v1", "ci", &name);
        day.request(
            t,
            "delete",
            format!("/apis/batch/v1/namespaces/ci/jobs/{name}?propagationPolicy=Background"),
            ci,
            Some(o),
            200,
            Body::Status { status: "Success", reason: "", message: String::new() },
        );
    }
}

/// Three people: alice (a developer) looks at her service, bob (SRE) debugs payments with an exec
/// and deletes a preview namespace, the platform admin (ACK's shared `kubernetes-admin`
/// certificate, standing for RAM user 27689245) reads a database secret.
fn people(day: &mut Day) {
    let alice =
        Who { user: "alice", groups: &["developers", "system:authenticated"], ip: ALICE_IP, agent: KUBECTL_MAC };
    let bob = Who { user: "bob", groups: &["sre", "system:authenticated"], ip: BOB_IP, agent: KUBECTL };
    let admin = Who { user: "kubernetes-admin", groups: MASTERS, ip: ADMIN_IP, agent: KUBECTL };
    // alice: `kubectl get pods`, `describe`, `logs` a few times an hour through the day.
    let mut t = day.start + 8 * HOUR + 47 * MINUTE;
    while t < day.start + 18 * HOUR {
        let o = obj("pods", "", "v1", "web", "");
        day.request(
            t,
            "list",
            "/api/v1/namespaces/web/pods?limit=500".into(),
            alice,
            Some(o),
            200,
            Body::List { kind: "Pod", items: 9 },
        );
        let pod = "shop-frontend-5d8f7c9b4d-m4q9z";
        let o = obj("pods", "", "v1", "web", pod);
        day.request(
            t + 20 * SECOND,
            "get",
            format!("/api/v1/namespaces/web/pods/{pod}"),
            alice,
            Some(o),
            200,
            Body::Created { kind: "Pod", api_version: "v1", extra: String::new() },
        );
        let mut l = obj("pods", "", "v1", "web", pod);
        l.subresource = "log";
        day.request(
            t + 50 * SECOND,
            "get",
            format!("/api/v1/namespaces/web/pods/{pod}/log?container=app&tailLines=200"),
            alice,
            Some(l),
            200,
            Body::None,
        );
        t += 20 * MINUTE + day.jitter(30 * MINUTE);
    }
    // alice deletes a stuck pod, and is refused a secret in payments.
    let t = day.start + 11 * HOUR + 26 * MINUTE;
    let o = obj("pods", "", "v1", "web", "cart-7b9c6d5f48-qz2lk");
    day.request(
        t,
        "delete",
        "/api/v1/namespaces/web/pods/cart-7b9c6d5f48-qz2lk".into(),
        alice,
        Some(o),
        200,
        Body::Status { status: "Success", reason: "", message: String::new() },
    );
    let o = obj("secrets", "", "v1", "payments", "stripe-api-key");
    let r = Request { at: t + 3 * MINUTE, started: None, latency: 2_100, verb: "get", uri: "/api/v1/namespaces/payments/secrets/stripe-api-key".into(), who: alice, obj: Some(o), code: 403, body: Body::Status { status: "Failure", reason: "Forbidden", message: "secrets \\\"stripe-api-key\\\" is forbidden: User \\\"alice\\\" cannot get resource \\\"secrets\\\" in API group \\\"\\\" in the namespace \\\"payments\\\"".into() }, reason: Some(String::new()) };
    day.add(r);
    // bob: payments errors in the afternoon; he lists pods, reads logs, then execs into one.
    let t = day.start + 15 * HOUR + 3 * MINUTE;
    let o = obj("pods", "", "v1", "payments", "");
    day.request(
        t,
        "list",
        "/api/v1/namespaces/payments/pods?limit=500".into(),
        bob,
        Some(o),
        200,
        Body::List { kind: "Pod", items: 3 },
    );
    let pod = "payments-api-6f7d9c8b5-h2xkv";
    let mut l = obj("pods", "", "v1", "payments", pod);
    l.subresource = "log";
    day.request(
        t + MINUTE,
        "get",
        format!("/api/v1/namespaces/payments/pods/{pod}/log?container=api&tailLines=500"),
        bob,
        Some(l),
        200,
        Body::None,
    );
    let mut e = obj("pods", "", "v1", "payments", pod);
    e.subresource = "exec";
    day.add(Request {
        at: t + 3 * MINUTE,
        started: Some(41_000),
        latency: 7 * MINUTE + 12 * SECOND,
        verb: "get",
        uri: format!("/api/v1/namespaces/payments/pods/{pod}/exec?command=%2Fbin%2Fsh&command=-c&command=cat+%2Fetc%2Fresolv.conf%3B+env&container=api&stdin=true&stdout=true&tty=true"),
        who: bob,
        obj: Some(e),
        code: 101,
        body: Body::None,
        reason: Some(rbac_reason("bob")),
    });
    let o = obj("namespaces", "", "v1", "", "preview-pr-1432");
    day.request(
        t + 40 * MINUTE,
        "delete",
        "/api/v1/namespaces/preview-pr-1432".into(),
        bob,
        Some(o),
        200,
        Body::Status { status: "Success", reason: "", message: String::new() },
    );
    // The admin reads the database credentials.
    let t = day.start + 16 * HOUR + 12 * MINUTE;
    let o = obj("secrets", "", "v1", "payments", "postgres-credentials");
    day.request(
        t,
        "get",
        "/api/v1/namespaces/payments/secrets/postgres-credentials".into(),
        admin,
        Some(o),
        200,
        Body::Created {
            kind: "Secret",
            api_version: "v1",
            extra: ",\"type\":\"Opaque\",\"data\":{\"password\":\"cGdfNzNhOWZmMmQ=\",\"username\":\"cGF5bWVudHM=\"}"
                .into(),
        },
    );
}

/// 03:17 UTC: one Internet address tries the API server's endpoints for two minutes, anonymously.
fn prober(day: &mut Day) {
    let who = Who { user: "system:anonymous", groups: UNAUTHENTICATED, ip: PROBER, agent: "python-requests/2.31.0" };
    let paths = [
        ("/api/v1/namespaces/kube-system/secrets", Some(("secrets", "kube-system"))),
        ("/api/v1/pods", Some(("pods", ""))),
        ("/apis/apps/v1/deployments", None),
        ("/api/v1/namespaces/default/configmaps", Some(("configmaps", "default"))),
        ("/apis", None),
        ("/api/v1/nodes", Some(("nodes", ""))),
        ("/version", None),
    ];
    let mut t = day.start + 3 * HOUR + 17 * MINUTE;
    for i in 0..48 {
        let (uri, o) = paths[i % paths.len()];
        let (code, body, reason) = match (uri, o) {
            ("/version", _) | ("/apis", _) => (200, Body::None, Some("RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"".to_string())),
            (_, Some((resource, ns))) => (403, Body::Status { status: "Failure", reason: "Forbidden", message: format!("{resource} is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"{resource}\\\" in API group \\\"\\\"{}", if ns.is_empty() { " at the cluster scope".to_string() } else { format!(" in the namespace \\\"{ns}\\\"") }) }, Some(String::new())),
            _ => (403, Body::Status { status: "Failure", reason: "Forbidden", message: "deployments.apps is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"deployments\\\" in API group \\\"apps\\\" at the cluster scope".into() }, Some(String::new())),
        };
        let obj = o
            .map(|(resource, ns)| Obj { resource, namespace: ns.into(), version: "v1", ..Obj::default() })
            .or_else(|| {
                uri.starts_with("/apis/apps").then(|| Obj {
                    resource: "deployments",
                    group: "apps",
                    version: "v1",
                    ..Obj::default()
                })
            });
        let verb = if obj.is_some() { "list" } else { "get" };
        let latency = day.ms(1, 3);
        day.add(Request { at: t, started: None, latency, verb, uri: uri.into(), who, obj, code, body, reason });
        t += 2 * SECOND + day.jitter(800_000);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
}

fn write_all(mut day: Day) -> Vec<u8> {
    day.requests.sort_by_key(|r| r.at);
    let mut stages: Vec<(i64, u32, Stage)> = Vec::with_capacity(day.requests.len() * 2 + 1024);
    for (i, r) in day.requests.iter().enumerate() {
        stages.push((r.at, i as u32, Stage::RequestReceived));
        if let Some(s) = r.started {
            stages.push((r.at + s, i as u32, Stage::ResponseStarted));
        }
        stages.push((r.at + r.latency, i as u32, Stage::ResponseComplete));
    }
    // Watches opened late in the day complete tomorrow: that file's business.
    let end = day.start + DAY;
    stages.retain(|(t, _, _)| *t < end);
    stages.sort();
    let mut out = String::with_capacity(stages.len() * 1400);
    for (t, i, stage) in stages {
        write_event(&mut out, &day.requests[i as usize], i, stage, t);
    }
    out.into_bytes()
}

fn write_event(out: &mut String, r: &Request, id: u32, stage: Stage, t: i64) {
    let stage_name = match stage {
        Stage::RequestReceived => "RequestReceived",
        Stage::ResponseStarted => "ResponseStarted",
        Stage::ResponseComplete => "ResponseComplete",
    };
    let _ = write!(
        out,
        "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"RequestResponse\",\"auditID\":\"{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}\",\"stage\":\"{stage_name}\",\"requestURI\":\"{}\",\"verb\":\"{}\",\"user\":{{\"username\":\"{}\"",
        id.wrapping_mul(2_654_435_761),
        (id >> 3) & 0xffff,
        id & 0xfff,
        (id >> 12) & 0xfff,
        0x5eed_0000_0000u64 + u64::from(id),
        r.uri,
        r.verb,
        r.who.user
    );
    if !r.who.user.starts_with("system:anonymous")
        && !r.who.user.starts_with("system:node:")
        && r.who.user != KCM
        && r.who.user != SCHEDULER
        && r.who.user != "system:kube-proxy"
    {
        let _ = write!(out, ",\"uid\":\"{:08x}-0000-4000-8000-000000000000\"", fnv(r.who.user));
    }
    out.push_str(",\"groups\":[");
    for (k, g) in r.who.groups.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{g}\"");
    }
    let _ = write!(out, "]}},\"sourceIPs\":[\"{}\"],\"userAgent\":\"{}\"", r.who.ip, r.who.agent);
    if let Some(o) = &r.obj {
        let _ = write!(out, ",\"objectRef\":{{\"resource\":\"{}\"", o.resource);
        if !o.namespace.is_empty() {
            let _ = write!(out, ",\"namespace\":\"{}\"", o.namespace);
        }
        if !o.name.is_empty() {
            let _ = write!(out, ",\"name\":\"{}\"", o.name);
        }
        if !o.group.is_empty() {
            let _ = write!(out, ",\"apiGroup\":\"{}\"", o.group);
        }
        let _ = write!(out, ",\"apiVersion\":\"{}\"", o.version);
        if !o.subresource.is_empty() {
            let _ = write!(out, ",\"subresource\":\"{}\"", o.subresource);
        }
        out.push('}');
    }
    if stage != Stage::RequestReceived {
        match &r.body {
            Body::Status { status, reason, message } if r.code >= 400 => {
                let _ = write!(
                    out,
                    ",\"responseStatus\":{{\"metadata\":{{}},\"status\":\"{status}\",\"message\":\"{message}\",\"reason\":\"{reason}\",\"details\":{{}},\"code\":{}}}",
                    r.code
                );
            }
            _ => {
                let _ = write!(out, ",\"responseStatus\":{{\"metadata\":{{}},\"code\":{}}}", r.code);
            }
        }
    }
    // The request body is decoded after RequestReceived is logged; the response exists only at
    // ResponseComplete.
    if stage != Stage::RequestReceived {
        if let Some(body) = request_object(r) {
            out.push_str(",\"requestObject\":");
            out.push_str(&body);
        }
    }
    if stage == Stage::ResponseComplete {
        if let Some(body) = response_object(r, id) {
            out.push_str(",\"responseObject\":");
            out.push_str(&body);
        }
    }
    let _ = write!(
        out,
        ",\"requestReceivedTimestamp\":\"{}\",\"stageTimestamp\":\"{}\"",
        format_micros(r.at),
        format_micros(t)
    );
    if stage != Stage::RequestReceived {
        if let Some(reason) = &r.reason {
            let decision = if r.code == 403 { "forbid" } else { "allow" };
            let _ = write!(out, ",\"annotations\":{{\"authorization.k8s.io/decision\":\"{decision}\",\"authorization.k8s.io/reason\":\"{}\"}}", reason.replace('"', "\\\""));
        }
    }
    out.push_str("}\n");
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn metadata(kind: &str, namespace: &str, name: &str, rv: u64, created: &str) -> String {
    let ns = if namespace.is_empty() { String::new() } else { format!("\"namespace\":\"{namespace}\",") };
    format!(
        "\"metadata\":{{\"name\":\"{name}\",{ns}\"uid\":\"{:08x}-5a1c-4e0b-9d3e-{:012x}\",\"resourceVersion\":\"{rv}\",\"creationTimestamp\":\"{created}\"}}",
        fnv(kind) ^ fnv(name),
        u64::from(fnv(name)) << 8
    )
}

fn request_object(r: &Request) -> Option<String> {
    let o = r.obj.as_ref()?;
    Some(match &r.body {
        Body::Lease { holder, renew, duration } => lease(o, holder, *renew, *duration, None),
        Body::NodeStatus { heartbeat } => {
            let hb = format_micros(*heartbeat);
            let hb = &hb[..19];
            format!(
                "{{\"status\":{{\"$setElementOrder/conditions\":[{{\"type\":\"MemoryPressure\"}},{{\"type\":\"DiskPressure\"}},{{\"type\":\"PIDPressure\"}},{{\"type\":\"Ready\"}}],\"conditions\":[{{\"lastHeartbeatTime\":\"{hb}Z\",\"type\":\"MemoryPressure\"}},{{\"lastHeartbeatTime\":\"{hb}Z\",\"type\":\"DiskPressure\"}},{{\"lastHeartbeatTime\":\"{hb}Z\",\"type\":\"PIDPressure\"}},{{\"lastHeartbeatTime\":\"{hb}Z\",\"type\":\"Ready\"}}]}}}}"
            )
        }
        Body::Deployment { image, .. } if r.verb == "patch" => format!(
            "{{\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/last-applied-configuration\":\"{{\\\"apiVersion\\\":\\\"apps/v1\\\",\\\"kind\\\":\\\"Deployment\\\",\\\"metadata\\\":{{\\\"name\\\":\\\"{}\\\",\\\"namespace\\\":\\\"{}\\\"}},\\\"spec\\\":{{\\\"replicas\\\":3,\\\"template\\\":{{\\\"spec\\\":{{\\\"containers\\\":[{{\\\"image\\\":\\\"{image}\\\",\\\"name\\\":\\\"app\\\"}}]}}}}}}}}\\n\"}}}},\"spec\":{{\"template\":{{\"spec\":{{\"$setElementOrder/containers\":[{{\"name\":\"app\"}}],\"containers\":[{{\"image\":\"{image}\",\"name\":\"app\"}}]}}}}}}}}",
            o.name, o.namespace
        ),
        Body::Created { kind, api_version, extra } if r.verb == "create" => {
            let name = if o.name.is_empty() { "" } else { &o.name };
            format!("{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{}\"}}{extra}}}", o.namespace)
        }
        Body::TokenReview { .. } => "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"token\":\"eyJhbGciOiJSUzI1NiIsImtpZCI6IjNkX2JhN2QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bW9uaXRvcmluZzpwcm9tZXRoZXVzIn0.c2lnbmF0dXJl\"},\"status\":{\"user\":{}}}".to_string(),
        Body::Status { .. } if r.verb == "delete" => {
            "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Background\"}".to_string()
        }
        _ => return None,
    })
}

fn lease(o: &Obj, holder: &str, renew: i64, duration: u32, rv: Option<u64>) -> String {
    let meta = metadata(
        "Lease",
        &o.namespace,
        &o.name,
        rv.unwrap_or(48_000_000 + (renew / SECOND % 1_000_000) as u64),
        "2026-01-12T08:03:11Z",
    );
    format!(
        "{{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",{meta},\"spec\":{{\"holderIdentity\":\"{holder}\",\"leaseDurationSeconds\":{duration},\"acquireTime\":\"2026-04-28T06:14:52.118209Z\",\"renewTime\":\"{}\",\"leaseTransitions\":7}}}}",
        format_micros(renew)
    )
}

fn node_object(name: &str, heartbeat: &str, rv: u64) -> String {
    let meta = metadata("Node", "", name, rv, "2026-01-12T08:02:40Z");
    let conditions: Vec<String> = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    .iter()
    .map(|(t, s, reason, message)| {
        format!("{{\"type\":\"{t}\",\"status\":\"{s}\",\"lastHeartbeatTime\":\"{heartbeat}\",\"lastTransitionTime\":\"2026-04-28T06:13:30Z\",\"reason\":\"{reason}\",\"message\":\"{message}\"}}")
    })
    .collect();
    format!(
        "{{\"kind\":\"Node\",\"apiVersion\":\"v1\",{},\"spec\":{{\"podCIDR\":\"10.244.1.0/24\",\"podCIDRs\":[\"10.244.1.0/24\"],\"providerID\":\"ecs://cn-hangzhou.i-bp1{:x}\"}},\"status\":{{\"capacity\":{{\"cpu\":\"4\",\"ephemeral-storage\":\"123722704Ki\",\"memory\":\"16093304Ki\",\"pods\":\"110\"}},\"allocatable\":{{\"cpu\":\"3900m\",\"ephemeral-storage\":\"114022843818\",\"memory\":\"15185784Ki\",\"pods\":\"110\"}},\"conditions\":[{}],\"addresses\":[{{\"type\":\"InternalIP\",\"address\":\"10.0.1.1\"}},{{\"type\":\"Hostname\",\"address\":\"{name}\"}}],\"daemonEndpoints\":{{\"kubeletEndpoint\":{{\"Port\":10250}}}},\"nodeInfo\":{{\"machineID\":\"ec2b6f1d9d8a4c5e9f0a1b2c3d4e5f60\",\"systemUUID\":\"ec2b6f1d-9d8a-4c5e-9f0a-1b2c3d4e5f60\",\"bootID\":\"5b8f2d4e-1c3a-4e6f-8a9b-0c1d2e3f4a5b\",\"kernelVersion\":\"6.1.0-28-cloud-amd64\",\"osImage\":\"Debian GNU/Linux 12 (bookworm)\",\"containerRuntimeVersion\":\"containerd://1.7.24\",\"kubeletVersion\":\"v1.32.4\",\"kubeProxyVersion\":\"v1.32.4\",\"operatingSystem\":\"linux\",\"architecture\":\"amd64\"}},\"images\":[{{\"names\":[\"registry.k8s.io/kube-proxy@sha256:4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a\",\"registry.k8s.io/kube-proxy:v1.32.4\"],\"sizeBytes\":30902478}},{{\"names\":[\"registry.k8s.io/coredns/coredns@sha256:9caabbf6238b189a65d0d6e6ac138de60d6a1c419e5a341fbbb7c78382559c6e\",\"registry.k8s.io/coredns/coredns:v1.11.3\"],\"sizeBytes\":18562039}},{{\"names\":[\"registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a\",\"registry.k8s.io/pause:3.10\"],\"sizeBytes\":320368}}]}}}}",
        meta,
        fnv(name),
        conditions.join(",")
    )
}

fn response_object(r: &Request, id: u32) -> Option<String> {
    let o = r.obj.as_ref();
    Some(match &r.body {
        Body::Lease { holder, renew, duration } => lease(o?, holder, *renew, *duration, Some(48_000_000 + u64::from(id))),
        Body::Node => {
            let hb = format_micros(r.at - r.at % (5 * MINUTE));
            node_object(&o?.name, &format!("{}Z", &hb[..19]), 48_000_000 + u64::from(id))
        }
        Body::NodeStatus { heartbeat } => {
            let hb = format_micros(*heartbeat);
            node_object(&o?.name, &format!("{}Z", &hb[..19]), 48_000_000 + u64::from(id))
        }
        Body::List { kind, items } => {
            let o = o?;
            let list: Vec<String> = (0..*items)
                .map(|k| {
                    let name = format!("{}-{k}", if o.namespace == "web" { "shop-frontend-5d8f7c9b4d" } else { "payments-api-6f7d9c8b5" });
                    let meta = metadata(kind, &o.namespace, &name, 47_990_000 + u64::from(k), "2026-05-03T17:40:02Z");
                    if *kind == "PodMetrics" {
                        format!("{{{meta},\"timestamp\":\"{}\",\"window\":\"15s\",\"containers\":[{{\"name\":\"app\",\"usage\":{{\"cpu\":\"{}m\",\"memory\":\"{}Ki\"}}}}]}}", format_micros(r.at), 40 + (id + k) % 200, 180_000 + (id * 7 + k) % 40_000)
                    } else {
                        format!("{{{meta},\"spec\":{{\"nodeName\":\"worker-{}\",\"containers\":[{{\"name\":\"app\",\"image\":\"registry.example.com/shop/app:1.14.2\",\"ports\":[{{\"containerPort\":8080,\"protocol\":\"TCP\"}}],\"resources\":{{\"requests\":{{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}}}}}]}},\"status\":{{\"phase\":\"Running\",\"podIP\":\"10.244.{}.{}\",\"startTime\":\"2026-05-03T17:40:09Z\"}}}}", 1 + k % 3, 1 + k % 3, 10 + k)
                    }
                })
                .collect();
            let api = if *kind == "PodMetrics" { "metrics.k8s.io/v1beta1" } else { "v1" };
            format!("{{\"kind\":\"{kind}List\",\"apiVersion\":\"{api}\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[{}]}}", 48_000_000 + id, list.join(","))
        }
        Body::Deployment { image, generation } => {
            let o = o?;
            let meta = metadata("Deployment", &o.namespace, &o.name, 48_000_000 + u64::from(id), "2025-11-20T10:00:00Z");
            format!(
                "{{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",{meta},\"spec\":{{\"replicas\":3,\"selector\":{{\"matchLabels\":{{\"app\":\"{}\"}}}},\"template\":{{\"metadata\":{{\"labels\":{{\"app\":\"{}\"}}}},\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\",\"ports\":[{{\"containerPort\":8080,\"protocol\":\"TCP\"}}],\"resources\":{{\"requests\":{{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}}}}}]}}}},\"strategy\":{{\"type\":\"RollingUpdate\",\"rollingUpdate\":{{\"maxUnavailable\":\"25%\",\"maxSurge\":\"25%\"}}}}}},\"status\":{{\"observedGeneration\":{},\"replicas\":3,\"updatedReplicas\":3,\"readyReplicas\":3,\"availableReplicas\":3}}}}",
                o.name, o.name, generation
            )
        }
        Body::Created { kind, api_version, extra } => {
            let o = o?;
            let name = if o.name.is_empty() { format!("{}-{:05x}", o.resource.trim_end_matches('s'), id & 0xfffff) } else { o.name.clone() };
            let meta = metadata(kind, &o.namespace, &name, 48_000_000 + u64::from(id), &format_micros(r.at)[..19]);
            format!("{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",{meta}{extra}}}")
        }
        Body::Status { status, reason, message } => {
            if r.code >= 400 {
                format!("{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"{status}\",\"message\":\"{message}\",\"reason\":\"{reason}\",\"details\":{{}},\"code\":{}}}", r.code)
            } else {
                let o = o?;
                format!("{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"{status}\",\"details\":{{\"name\":\"{}\",\"kind\":\"{}\",\"uid\":\"{:08x}-5a1c-4e0b-9d3e-000000000000\"}}}}", o.name, o.resource, fnv(&o.name))
            }
        }
        Body::TokenReview { user } => format!("{{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{{\"creationTimestamp\":null}},\"spec\":{{}},\"status\":{{\"authenticated\":true,\"user\":{{\"username\":\"{user}\",\"uid\":\"{:08x}-0000-4000-8000-000000000000\",\"groups\":[\"system:serviceaccounts\",\"system:serviceaccounts:monitoring\",\"system:authenticated\"]}},\"audiences\":[\"https://kubernetes.default.svc.cluster.local\"]}}}}", fnv(user)),
        Body::None => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prober's two minutes (96 events) as the apiserver writes them.
    fn sample() -> Vec<u8> {
        let mut day =
            Day { rng: Rng::new(7), start: parse_micros("2026-05-04T00:00:00Z").unwrap(), requests: Vec::new() };
        prober(&mut day);
        write_all(day)
    }

    fn policy_only(input: &[u8]) -> String {
        let mut config = kaudit::Config::embedded_default();
        config.enrichment.enabled = false;
        config.alerts.enabled = false;
        let mut out = String::new();
        kaudit::Pipeline::new(config).process_stream(input, &mut out, &mut |_| {});
        out
    }

    #[test]
    fn eks_and_aks_exports_carry_the_apiservers_bytes() {
        let native = sample();
        assert_eq!(native.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 96);
        let want = policy_only(&native);
        // The seed's policy keeps the 403s and drops /version and RequestReceived.
        assert_eq!(want.lines().count(), 42);
        let eks = eks(&native);
        assert_eq!(eks.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 1, "96 events: one envelope");
        assert!(eks.starts_with(
            br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/eks/demo/cluster""#
        ));
        assert_eq!(policy_only(&eks), want, "EKS: the same events, byte for byte");
        let aks = aks(&native);
        assert_eq!(aks.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 96);
        assert_eq!(policy_only(&aks), want, "AKS: the same events, byte for byte");
    }
}
