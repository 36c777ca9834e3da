//! Applying a policy decision to a logged event: what kube-apiserver would have written had
//! this policy been in force (never more than the event already holds).

use super::eval::Decision;
pub use crate::event::edit::{write_event, Changes};
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
    let mut changes = Changes {
        new_level: (recorded != Some(level)).then_some(level),
        remove_request_object: level < Level::Request && event.obj.get("requestObject").is_some(),
        remove_response_object: level < Level::RequestResponse && event.obj.get("responseObject").is_some(),
        strip_managed_fields: false,
    };
    if decision.omit_managed_fields {
        let has_managed =
            |key: &str, removed: bool| !removed && event.raw(key).is_some_and(|r| r.contains("\"managedFields\""));
        changes.strip_managed_fields = has_managed("requestObject", changes.remove_request_object)
            || has_managed("responseObject", changes.remove_response_object);
    }
    Verdict::Keep(changes)
}
