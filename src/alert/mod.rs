//! Alert rules: a query per rule, output fields, optional aggregation over event-time windows
//! with bounded state. (Being written: this file is the interface the pipeline calls.)

use crate::event::Event;
use crate::query::Document;
use crate::yaml::{Ctx, Diagnostic, Node};

/// One configured alert rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
}

/// Bounds on alert state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertLimits {
    pub max_groups: usize,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits { max_groups: 100_000 }
    }
}

/// Evaluates the rules on kept events, in event time.
#[derive(Debug, Default)]
pub struct AlertEngine {
    rules: Vec<AlertRule>,
}

impl AlertEngine {
    pub fn new(rules: Vec<AlertRule>, _limits: AlertLimits) -> Self {
        AlertEngine { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates every rule on one kept event; appends raised alerts (JSON objects) to `out`.
    pub fn observe(&mut self, _event: &Event, _doc: &dyn Document, _out: &mut Vec<String>) {}
}

/// Decodes the config's `alerts` list.
pub fn decode_rules(ctx: &mut Ctx, node: &Node) -> Result<Vec<AlertRule>, Diagnostic> {
    ctx.list(node, |_, _| Ok(AlertRule { name: String::new() }))
}
