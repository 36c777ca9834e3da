//! Applying a policy decision to a logged event: what kube-apiserver would have written had
//! this policy been in force (never more than the event already holds).

use super::eval::Decision;
pub use crate::event::edit::{write_event, Changes};
use crate::event::raw::{BodyAt, RawObject};
use crate::event::{Event, Level};

/// Why an event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The decided level is `None`.
    LevelNone,
    /// The event's stage is in the effective omitStages.
    OmittedStage,
    /// Dropped by the pipeline's `filter` query.
    Filtered,
    /// Collection is off (`enabled: false`): the pipeline consumes every record unread.
    Disabled,
}

impl DropReason {
    /// How the reason reads in messages (`level None`).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::LevelNone => "level None",
            DropReason::OmittedStage => "omitted stage",
            DropReason::Filtered => "filtered",
            DropReason::Disabled => "collection disabled",
        }
    }
}

/// What happens to an event under a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not written.
    Drop(DropReason),
    /// Written, with these edits (none: byte for byte).
    Keep(Changes),
}

/// Decides drop/keep and the edits. The written level is the lower of the decided and the
/// recorded level: a filter cannot restore bodies the apiserver did not log.
pub fn verdict(decision: &Decision, event: &Event) -> Verdict {
    verdict_with(decision, event, bodies)
}

/// [`verdict`] with the search for the bodies as a parameter (the tests pass a reference one):
/// `find(object, want request, want response)`.
#[inline(always)]
fn verdict_with<'a>(
    decision: &Decision,
    event: &Event<'a>,
    find: impl FnOnce(&RawObject<'a>, bool, bool) -> (Option<Body<'a>>, Option<Body<'a>>),
) -> Verdict {
    if decision.level == Level::None {
        return Verdict::Drop(DropReason::LevelNone);
    }
    if decision.omits(&event.stage) {
        return Verdict::Drop(DropReason::OmittedStage);
    }
    let recorded = event.level.as_deref().and_then(Level::parse);
    let level = match recorded {
        Some(r) if r < decision.level => r,
        _ => decision.level,
    };
    // A body is looked for only when the level removes it or its managedFields may go.
    let strip = decision.omit_managed_fields;
    let (request, response) =
        find(&event.obj, level < Level::Request || strip, level < Level::RequestResponse || strip);
    let mut changes = Changes {
        new_level: (recorded != Some(level)).then_some(level),
        remove_request_object: level < Level::Request && request.is_some(),
        remove_response_object: level < Level::RequestResponse && response.is_some(),
        strip_managed_fields: false,
    };
    if decision.omit_managed_fields {
        // A body the split found no managedFields key in is not searched again.
        let has_managed = |body: Option<Body>, removed: bool| {
            !removed && body.is_some_and(|(text, clean)| !clean && mentions_managed_fields(text))
        };
        changes.strip_managed_fields = has_managed(request, changes.remove_request_object)
            || has_managed(response, changes.remove_response_object);
    }
    Verdict::Keep(changes)
}

/// A body: its raw value, and whether the split found no managedFields key in it.
type Body<'a> = (&'a str, bool);

/// The values of `requestObject` and `responseObject`, each only if asked for: the last of
/// duplicates, as `RawObject::get` reads them. Where the split noted them, or else from the
/// end, where kube-apiserver writes them, so the walk usually stops after a few members.
fn bodies<'a>(obj: &RawObject<'a>, mut request: bool, mut response: bool) -> (Option<Body<'a>>, Option<Body<'a>>) {
    if let Some(noted) = obj.bodies {
        let body = |at: Option<BodyAt>| at.and_then(|at| Some((obj.value(obj.members.get(at.index)?), at.clean)));
        return (body(noted.request.filter(|_| request)), body(noted.response.filter(|_| response)));
    }
    let mut found = (None, None);
    for m in obj.members.iter().rev() {
        if !request && !response {
            break;
        }
        if request && obj.key_is(m, "requestObject") {
            found.0 = Some((obj.value(m), false));
            request = false;
        } else if response && obj.key_is(m, "responseObject") {
            found.1 = Some((obj.value(m), false));
            response = false;
        }
    }
    found
}

/// Whether `text` holds `"managedFields"` (what decides that a body is rewritten without them).
/// A Horspool search: most bytes are skipped, where a general substring search examines each
/// one, and bodies run to kilobytes (`managed_fields_search_agrees_with_contains`).
fn mentions_managed_fields(text: &str) -> bool {
    const NEEDLE: &[u8; 15] = b"\"managedFields\"";
    const SKIP: [u8; 256] = {
        let mut skip = [NEEDLE.len() as u8; 256];
        let mut i = 0;
        while i < NEEDLE.len() - 1 {
            skip[NEEDLE[i] as usize] = (NEEDLE.len() - 1 - i) as u8;
            i += 1;
        }
        skip
    };
    let h = text.as_bytes();
    let mut at = NEEDLE.len() - 1;
    while let Some(&last) = h.get(at) {
        if last == b'"' && h.get(at + 1 - NEEDLE.len()..=at) == Some(&NEEDLE[..]) {
            return true;
        }
        at += usize::from(SKIP[usize::from(last)]);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// `verdict` as written before bodies were looked for only when needed: one pass over
    /// every member, the last of duplicates winning.
    fn verdict_reference(decision: &Decision, event: &Event) -> Verdict {
        verdict_with(decision, event, |obj, _, _| {
            let (mut request, mut response) = (None, None);
            for m in &obj.members {
                let key = obj.key(m);
                match key.len() {
                    13 if key == "requestObject" => request = Some((obj.value(m), false)),
                    14 if key == "responseObject" => response = Some((obj.value(m), false)),
                    _ => {}
                }
            }
            (request, response)
        })
    }

    #[test]
    fn verdict_agrees_with_one_pass_over_every_member() {
        let levels = [Level::None, Level::Metadata, Level::Request, Level::RequestResponse];
        let recorded = [
            "",
            "\"level\":\"None\",",
            "\"level\":\"Metadata\",",
            "\"level\":\"Request\",",
            "\"level\":\"RequestResponse\",",
            "\"level\":\"Foo\",",
            "\"level\":null,",
        ];
        let bodies = [
            "",
            "\"requestObject\":{\"a\":1},",
            "\"requestObject\":{\"metadata\":{\"managedFields\":[]}},",
            "\"requestObject\":null,",
            "\"responseObject\":{\"b\":2},",
            "\"responseObject\":{\"metadata\":{\"managedFields\":[]}},",
            "\"requestObjecT\":{\"metadata\":{\"managedFields\":[]}},",
            "\"responseObjectX\":{\"metadata\":{\"managedFields\":[]}},",
            "\"stageTimestamp\":\"2024-01-01T00:00:00Z\",",
        ];
        let stages = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..50_000 {
            let mut text = format!(
                "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",{}\"stage\":\"{}\",",
                recorded[rng.below(recorded.len() as u64) as usize],
                stages[rng.below(4) as usize]
            );
            for _ in 0..rng.below(6) {
                text.push_str(bodies[rng.below(bodies.len() as u64) as usize]);
            }
            text.push_str("\"verb\":\"get\"}");
            let event = Event::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let omit: Vec<String> = stages.iter().filter(|_| rng.below(3) == 0).map(|s| s.to_string()).collect();
            let decision = Decision {
                level: levels[rng.below(4) as usize],
                omit_stages: Arc::from(omit),
                omit_managed_fields: rng.below(2) == 0,
                rule: None,
            };
            let want = verdict_reference(&decision, &event);
            assert_eq!(verdict(&decision, &event), want, "{text} {decision:?}");
            // Where the split did not note the bodies (the serde path), the walk finds them.
            assert!(event.obj.bodies.is_some());
            let mut walked = event.clone();
            walked.obj.bodies = None;
            assert_eq!(verdict(&decision, &walked), want, "{text} {decision:?}");
            kinds.insert(format!("{want:?}"));
        }
        assert!(kinds.len() >= 18, "{kinds:?}");
    }

    #[test]
    fn managed_fields_search_agrees_with_contains() {
        let pieces = [
            "\"managedFields\"",
            "managedFields",
            "\"managed",
            "Fields\"",
            "\"",
            "a",
            "d",
            "s",
            "e",
            "{}",
            "é",
            "\\\"",
        ];
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut found = 0;
        for _ in 0..100_000 {
            let n = rng.below(12);
            let text: String = (0..n).map(|_| pieces[rng.below(pieces.len() as u64) as usize]).collect();
            let want = text.contains("\"managedFields\"");
            found += usize::from(want);
            assert_eq!(mentions_managed_fields(&text), want, "{text:?}");
        }
        assert!(found > 10_000, "{found}");
        let body = r#"{"metadata":{"name":"x","managedFields":[{"manager":"kubectl"}]},"spec":{}}"#;
        assert!(mentions_managed_fields(body));
        assert!(!mentions_managed_fields(&body.replace("managedFields", "managedField")));
    }
}
