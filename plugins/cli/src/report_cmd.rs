//! `kaudit report`: the audit reports of the console's three tabs (Overview, Operations
//! Overview, Operation Details) for recorded logs, as JSON (`--json`, schema in
//! docs/REPORTS.md), as a self-contained HTML page (`--html`, the npm package's renderer
//! inlined), or as a short text summary. The aggregation is `kaudit::report`.

use std::path::PathBuf;

use crate::exit::Status;
use clap::Args;
use kaudit::query::Query;
use kaudit::report::{BuilderOptions, Filter, Report, ReportBuilder};

use crate::input::{self, Item};
use crate::term;

#[derive(Args)]
pub struct ReportArgs {
    /// kaudit config file (YAML: enrichment, GeoIP); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the report as JSON (docs/REPORTS.md).
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML page with the report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// A whole filter object as JSON (what the npm package's `report()` takes); flags override its fields.
    #[arg(long, value_name = "JSON")]
    filter: Option<String>,
    /// Start of the range (RFC 3339, inclusive).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the range (RFC 3339, inclusive); with --last or --from, default: the newest event time in the logs.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Range length when --from is absent (15m, 24h, 7d, 2w) or `all`; default all (the data's whole span).
    #[arg(long, value_name = "DURATION|all")]
    last: Option<String>,
    /// Keep only this namespace (repeatable; "" = cluster-scoped).
    #[arg(long, short = 'n', value_name = "NAME")]
    namespace: Vec<String>,
    /// Keep only this acting account (repeatable).
    #[arg(long, alias = "account", value_name = "ACCOUNT")]
    user: Vec<String>,
    /// Keep only this response code (repeatable; 0 = none).
    #[arg(long, value_name = "CODE")]
    code: Vec<i64>,
    /// Keep only events matching a search-language query (docs/QUERY.md).
    #[arg(long, short = 'q', value_name = "QUERY")]
    query: Option<String>,
    /// Resource type of the Operation Details tab (plural, any case; CRDs too).
    #[arg(long, value_name = "PLURAL")]
    resource_type: Option<String>,
    /// Events listed per table (default 100).
    #[arg(long)]
    limit: Option<usize>,
    /// Entries per distribution (default 20).
    #[arg(long)]
    top: Option<usize>,
    /// Audit logs (JSON lines, EventList or JSON arrays; gzip included); stdin when none or `-`.
    files: Vec<PathBuf>,
}

/// The renderer and page shared with the npm package (js/render/), inlined into `--html`.
const RENDER_JS: &str = include_str!("../../../js/render/render.js");
const RENDER_CSS: &str = include_str!("../../../js/render/render.css");
const PAGE: &str = include_str!("../../../js/render/page.html");

impl ReportArgs {
    fn filter(&self) -> Result<Filter, String> {
        let mut f = match &self.filter {
            Some(text) => Filter::from_json(text).map_err(|e| e.to_string())?,
            None => Filter::default(),
        };
        let set = |dst: &mut Option<String>, src: &Option<String>| {
            if src.is_some() {
                dst.clone_from(src);
            }
        };
        set(&mut f.from, &self.from);
        set(&mut f.to, &self.to);
        set(&mut f.last, &self.last);
        set(&mut f.query, &self.query);
        set(&mut f.resource_type, &self.resource_type);
        if !self.namespace.is_empty() {
            f.namespace.clone_from(&self.namespace);
        }
        if !self.user.is_empty() {
            f.account.clone_from(&self.user);
        }
        if !self.code.is_empty() {
            f.code.clone_from(&self.code);
        }
        f.limit = self.limit.or(f.limit);
        f.top = self.top.or(f.top);
        Ok(f)
    }
}

pub fn report(args: ReportArgs) -> Result<Status, String> {
    let filter = args.filter()?;
    let pipeline = kaudit::Pipeline::new(input::load_config_files(args.config.as_deref(), None)?);
    let enricher = pipeline.enricher();
    let mut builder =
        ReportBuilder::new(BuilderOptions { enrichment_key: enricher.config.key.clone(), ..BuilderOptions::default() });
    // The filter is known before reading, so its query is evaluated once per event as it is pushed.
    if let Some(q) = filter.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let query = Query::parse(q).map_err(|e| format!("invalid query: {e}\n{}", e.render(q)))?;
        builder.add_standing_query(query).map_err(|e| e.to_string())?;
    }
    // Streamed like `run` (a rotated `.gz` of any size); bad records are counted per input.
    let mut bad: Vec<(String, u64)> = Vec::new();
    let max_event_bytes = pipeline.config().limits.max_event_bytes;
    input::for_each_record(&args.files, max_event_bytes, &mut |item| {
        if let Item::Record { input, record } = item {
            let (_, n) = builder.push_input(record.bytes, enricher);
            match bad.last_mut() {
                Some((name, count)) if name == input => *count += n,
                _ => bad.push((input.to_string(), n)),
            }
        }
        Ok(())
    })?;
    for (name, n) in bad.iter().filter(|(_, n)| *n > 0) {
        eprintln!("kaudit: {}: {n} records are not audit events (counted as bad)", term::field(name));
    }
    let report = builder.report(&filter).map_err(|e| format!("filter {e}"))?;
    let json = report.to_json();
    if args.json {
        term::print_data(&json);
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html_page(&json)).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("kaudit: wrote {}", term::field(&path.display().to_string()));
    }
    if !args.json && args.html.is_none() {
        print!("{}", summary(&report));
    }
    Ok(Status::Success)
}

/// The static page: the renderer, its styles and the report inlined; the tabs switch in place.
pub fn html_page(report_json: &str) -> String {
    PAGE.replacen("/*KAUDIT_CSS*/", RENDER_CSS, 1).replacen("/*KAUDIT_RENDERER*/", RENDER_JS, 1).replacen(
        "{\"KAUDIT_REPORT\":0}",
        &script_json(report_json),
        1,
    )
}

/// JSON made safe as the text of a `<script>` element. Escaping only `</` is not enough: the
/// HTML tokenizer's script-data states also react to `<!--` and `<script` (an unclosed comment
/// opener swallows the rest of the page; WHATWG HTML 13.2.5.4-13.2.5.27). With `<`, `>` and `&`
/// written as `\u003c`, `\u003e`, `\u0026`, the text holds no markup at all, whatever the data.
/// U+2028/U+2029 are escaped too (line terminators in pre-ES2019 JavaScript). These characters
/// occur in serde_json output only inside strings, where the escape means the same character.
pub fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `text` could leave the script-data state of a `<script>` element.
#[cfg(test)]
fn has_script_breaker(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("<!--") || lower.contains("<script") || lower.contains("</script")
}

fn summary(r: &Report) -> String {
    let o = &r.overview;
    let range = match (r.range.from.as_deref(), r.range.to.as_deref()) {
        (None, None) => "the whole span of the data".to_string(),
        (from, to) => format!("{} .. {}", term::field(from.unwrap_or("start")), term::field(to.unwrap_or("end"))),
    };
    let mut s = format!(
        "kaudit report: {} events ({} bad) from {} to {}\nrange {range} ({} buckets): {} of the {} events read; \
         {} match the filters, {} succeeded, {} failed",
        r.input.events,
        r.input.bad,
        term::field(r.input.oldest.as_deref().unwrap_or("-")),
        term::field(r.input.newest.as_deref().unwrap_or("-")),
        r.range.step,
        r.range.events,
        r.input.events,
        o.total,
        o.success,
        o.failure
    );
    if let Some(rate) = o.success_rate {
        s.push_str(&format!(" (success rate {rate}%)"));
    }
    let i = &o.important;
    s.push_str(&format!(
        "\nimportant: internet access {}, command execution {}, resource deletion {}, secret access {}\n",
        i.internet_access.count, i.command_execution.count, i.resource_deletion.count, i.secret_access.count
    ));
    let top = |name: &str, entries: Vec<(String, u64)>| {
        let list: Vec<String> = entries
            .into_iter()
            .take(5)
            .map(|(k, c)| format!("{} {c}", if k.is_empty() { "-".into() } else { term::field(&k).into_owned() }))
            .collect();
        format!("{name}: {}\n", list.join(", "))
    };
    let pairs =
        |d: &kaudit::report::Distribution| d.entries.iter().map(|e| (e.key.clone(), e.count)).collect::<Vec<_>>();
    s.push_str(&top("namespaces", pairs(&o.by_namespace)));
    s.push_str(&top("accounts", pairs(&o.by_account)));
    s.push_str(&top("status codes", pairs(&o.by_status_code)));
    s.push_str(&top("source IPs", o.by_source_ip.entries.iter().map(|e| (e.key.clone(), e.count)).collect()));
    let d = &r.details;
    if let Some(t) = &d.resource_type {
        s.push_str(&format!(
            "operations on {}: {} (create {}, update {}, delete {}, access {})\n",
            term::field(t),
            d.ops.total,
            d.ops.create,
            d.ops.update,
            d.ops.delete,
            d.ops.access
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_leaves_no_markup_and_the_same_value() {
        let hostile = "<!--<script></script><svg onload=x>&amp;\u{2028}\u{2029}</SCRIPT ";
        let json = serde_json::json!({ "userAgent": hostile }).to_string();
        let safe = script_json(&json);
        assert!(!safe.contains(['<', '>', '&', '\u{2028}', '\u{2029}']), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back["userAgent"], hostile);
    }

    #[test]
    fn the_inlined_renderer_cannot_leave_its_script_element() {
        assert!(!has_script_breaker(RENDER_JS), "js/render/render.js contains <!--, <script or </script");
        assert!(has_script_breaker("a <!-- b") && has_script_breaker("</ScRiPt>"));
    }
}
