//! What ran in `kubectl exec`/`attach` (container and command from the request URI) and which
//! ports a `port-forward` opened — the seed's `regexp_extract(requestURI, ...)`, URL-decoded.

use crate::event::Event;

use super::ObjWriter;

/// Details of an exec, attach or port-forward request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo {
    /// `exec`, `attach` or `portForward` (also the JSON key).
    pub kind: &'static str,
    pub pod: String,
    pub container: Option<String>,
    /// All `command=` values, URL-decoded, joined with spaces.
    pub command: Option<String>,
    pub ports: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
}

pub fn from_event(ev: &Event) -> Option<ExecInfo> {
    let oref = ev.object_ref.as_ref()?;
    if oref.resource() != "pods" {
        return None;
    }
    let kind = match oref.subresource() {
        "exec" => "exec",
        "attach" => "attach",
        "portforward" => "portForward",
        _ => return None,
    };
    let query = ev.request_uri.split_once('?').map_or("", |(_, q)| q);
    let mut info = ExecInfo {
        kind,
        pod: oref.name().to_string(),
        container: None,
        command: None,
        ports: vec![],
        tty: false,
        stdin: false,
    };
    let mut command: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "command" => command.push(v.into_owned()),
            "container" if info.container.is_none() => info.container = Some(v.into_owned()),
            "ports" => info.ports.extend(v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty())),
            "tty" => info.tty = v == "true" || v == "1",
            "stdin" => info.stdin = v == "true" || v == "1",
            _ => {}
        }
    }
    if !command.is_empty() {
        info.command = Some(command.join(" "));
    }
    Some(info)
}

impl ExecInfo {
    pub fn write_json(&self, out: &mut String) {
        let mut w = ObjWriter::new(out);
        w.str("pod", &self.pod);
        if let Some(c) = &self.container {
            w.str("container", c);
        }
        if let Some(c) = &self.command {
            w.str("command", c);
        }
        if !self.ports.is_empty() {
            w.str("ports", &self.ports.join(","));
        }
        if self.kind != "portForward" {
            w.bool("tty", self.tty);
            w.bool("stdin", self.stdin);
        }
        w.end();
    }
}
