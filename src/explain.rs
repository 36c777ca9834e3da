//! `explain`: the policy's decision for every event of an input, nothing written. What the
//! CLI's `explain`, the component's `explain-batch` and `explain-lines` and the npm package's
//! `explain` show, from one loop.

use crate::event::framing::{for_each_event, RecordPos};
use crate::event::raw;
use crate::event::{Event, EventError};
use crate::pipeline::Pipeline;
use crate::policy::Decision;

/// One record of an input as [`Pipeline::explain_stream`] sees it.
#[derive(Debug)]
pub struct Explained<'e, 'a> {
    /// Where the record is in the input.
    pub pos: RecordPos,
    /// The event and the policy's decision, or why the record is not an audit event.
    pub result: Result<(&'e Event<'a>, &'e Decision), &'e EventError>,
}

impl Explained<'_, '_> {
    /// The decision as one JSON line ([`explain_json`]); `None` for a record that is not an event.
    pub fn to_json(&self) -> Option<String> {
        self.result.as_ref().ok().map(|(event, decision)| explain_json(event, decision))
    }
}

impl Pipeline {
    /// The decision for one event, for `explain`.
    pub fn explain(&self, event: &Event) -> Decision {
        self.evaluator().evaluate_event(event)
    }

    /// Frames `input` like [`Pipeline::process_stream`] (JSON lines, pretty-printed events,
    /// EventLists, arrays) and calls `f` with the policy's decision for every event, in order,
    /// or with why a record is not an audit event. Nothing is written and nothing is counted.
    pub fn explain_stream(&self, input: &[u8], f: &mut dyn FnMut(&Explained<'_, '_>)) {
        for_each_event(input, &mut |pos, parsed| match parsed {
            Ok(event) => {
                let decision = self.explain(&event);
                f(&Explained { pos, result: Ok((&event, &decision)) });
            }
            Err(error) => f(&Explained { pos, result: Err(&error) }),
        });
    }
}

/// Explains a decision as one JSON line: `{"auditID","stage","level","omitStages","omitManagedFields","rule"}`.
pub fn explain_json(event: &Event, decision: &Decision) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"auditID\":");
    raw::write_json_str(&mut out, &event.audit_id);
    out.push_str(",\"stage\":");
    raw::write_json_str(&mut out, &event.stage);
    out.push_str(",\"level\":\"");
    out.push_str(decision.level.as_str());
    out.push_str("\",\"omitStages\":[");
    for (i, s) in decision.omit_stages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        raw::write_json_str(&mut out, s);
    }
    out.push_str("],\"omitManagedFields\":");
    out.push_str(if decision.omit_managed_fields { "true" } else { "false" });
    out.push_str(",\"rule\":");
    match decision.rule {
        Some(i) => out.push_str(&i.to_string()),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}
