//! What ran in `kubectl exec`/`attach` (container and command from the request URI) and which
//! ports a `port-forward` opened — the seed's `regexp_extract(requestURI, ...)`, URL-decoded.

use std::borrow::Cow;

use crate::event::raw::OutBuf;
use crate::event::Event;

use super::ObjWriter;

/// Details of an exec, attach or port-forward request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo<'e> {
    /// `exec`, `attach` or `portForward` (also the JSON key).
    pub kind: &'static str,
    pub pod: &'e str,
    /// URL-decoded (borrowed from the request URI when nothing needed decoding).
    pub container: Option<Cow<'e, str>>,
    /// All `command=` values, URL-decoded, joined with spaces.
    pub command: Option<Cow<'e, str>>,
    pub ports: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
}

pub fn from_event<'e>(ev: &'e Event) -> Option<ExecInfo<'e>> {
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
    let mut info =
        ExecInfo { kind, pod: oref.name(), container: None, command: None, ports: vec![], tty: false, stdin: false };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "command" => match &mut info.command {
                None => info.command = Some(v),
                Some(c) => {
                    let c = c.to_mut();
                    c.push(' ');
                    c.push_str(&v);
                }
            },
            "container" if info.container.is_none() => info.container = Some(v),
            "ports" => info.ports.extend(v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty())),
            "tty" => info.tty = v == "true" || v == "1",
            "stdin" => info.stdin = v == "true" || v == "1",
            _ => {}
        }
    }
    Some(info)
}

impl ExecInfo<'_> {
    /// Writes the details as a JSON object. Out of line: few events have them, and inlined
    /// into the enrichment's writer it cost every record ~8 instructions (sample log).
    #[inline(never)]
    pub fn write_json<O: OutBuf + ?Sized>(&self, out: &mut O) {
        let mut w = ObjWriter::new(out);
        w.str_at(",\"pod\":\"", self.pod);
        if let Some(c) = &self.container {
            w.str_at(",\"container\":\"", c);
        }
        if let Some(c) = &self.command {
            w.str_at(",\"command\":\"", c);
        }
        if !self.ports.is_empty() {
            w.str_at(",\"ports\":\"", &self.ports.join(","));
        }
        if self.kind != "portForward" {
            w.member(if self.tty { ",\"tty\":true" } else { ",\"tty\":false" });
            w.member(if self.stdin { ",\"stdin\":true" } else { ",\"stdin\":false" });
        }
        w.end();
    }
}
