//! A throw-away PKI made with openssl at test time, and a TLS-terminating Envoy in front of a
//! recording webhook: the TLS counterparts the shipped configs need (Envoy's audit listener and
//! alert route, Vector's client certificate, Fluent Bit's alert route).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{loopback, Envoy, TempDir};

/// The alert webhook's name in the shipped envoy.yaml (SNI, SAN match, authority).
pub const ALERT_HOST: &str = "alerts.example.com";

/// A throw-away PKI in a temp dir: two CAs for clients (the configured one and another), one
/// CA for servers, and leaf certificates made with openssl.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki { dir: TempDir::new("pki") };
        for ca in ["client-ca", "other-ca", "server-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=kaudit test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        pki.leaf("envoy", "server-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
        pki.leaf("apiserver", "client-ca", "extendedKeyUsage=clientAuth");
        pki.leaf("intruder", "other-ca", "extendedKeyUsage=clientAuth");
        pki.leaf("alerts", "server-ca", &format!("subjectAltName=DNS:{ALERT_HOST}\nextendedKeyUsage=serverAuth"));
        pki.leaf("alerts-other-name", "server-ca", "subjectAltName=DNS:other.example.com\nextendedKeyUsage=serverAuth");
        // Vector's client certificate towards Envoy (plugins/vector/vector.yaml).
        pki.leaf("vector", "client-ca", "extendedKeyUsage=clientAuth");
        pki
    }

    pub fn leaf(&self, name: &str, ca: &str, extensions: &str) {
        std::fs::write(self.path(&format!("{name}.ext")), format!("basicConstraints=CA:FALSE\n{extensions}\n"))
            .unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN=kaudit test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    pub fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl").args(args).current_dir(&self.dir.0).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    pub fn file(&self, file: &str) -> Value {
        json!({ "filename": self.path(file) })
    }
}

/// A webhook over TLS: an Envoy with one listener per `(name, cert)` (on port 0) that
/// terminates TLS with `<cert>.crt` and forwards every request to `sink` (plain HTTP).
pub fn tls_webhook(pki: &Pki, listeners: &[(&str, &str)], sink: u16) -> Envoy {
    let listeners: Vec<(&str, &str, Option<&str>)> = listeners.iter().map(|&(name, cert)| (name, cert, None)).collect();
    tls_webhook_sni(pki, &listeners, sink)
}

/// [`tls_webhook`] whose listeners may also require a TLS server name (`Some(sni)`): a client
/// that sends another name, or none, finds no filter chain and is closed.
pub fn tls_webhook_sni(pki: &Pki, listeners: &[(&str, &str, Option<&str>)], sink: u16) -> Envoy {
    let listener = |name: &str, cert: &str, sni: Option<&str>| {
        let chain_match = sni.map_or(json!({}), |s| json!({ "server_names": [s] }));
        // The TLS inspector reads the ClientHello's server name for the match.
        let inspector = sni.map_or(json!([]), |_| json!([{ "name": "envoy.filters.listener.tls_inspector",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" } }]));
        json!({
            "name": name,
            "stat_prefix": name,
            "address": loopback(0),
            "listener_filters": inspector,
            "filter_chains": [{
                "filter_chain_match": chain_match,
                "transport_socket": { "name": "envoy.transport_sockets.tls", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    "common_tls_context": { "tls_certificates": [{
                        "certificate_chain": pki.file(&format!("{cert}.crt")),
                        "private_key": pki.file(&format!("{cert}.key")) }] } } },
                "filters": [{ "name": "envoy.filters.network.http_connection_manager", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": name,
                    "route_config": { "virtual_hosts": [{ "name": "all", "domains": ["*"],
                        "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "sink" } }] }] },
                    "http_filters": [{ "name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }] } }]
            }]
        })
    };
    let config = json!({
        "admin": { "address": loopback(0) },
        "static_resources": {
            "listeners": listeners.iter().map(|&(name, cert, sni)| listener(name, cert, sni)).collect::<Vec<_>>(),
            "clusters": [{ "name": "sink", "type": "STATIC", "connect_timeout": "5s", "load_assignment": {
                "cluster_name": "sink", "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": loopback(sink) } }] }] } }]
        }
    });
    Envoy::start(&config, Arc::new(TempDir::new("tls-webhook"))).unwrap_or_else(|e| panic!("{e}"))
}
