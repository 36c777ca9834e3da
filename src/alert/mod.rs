//! Alert rules: a query per rule, output fields, optional aggregation over event-time windows
//! with bounded state. (Being written: this file is the interface the pipeline calls.)

use crate::config::FileSource;
use crate::event::Event;
use crate::query::Document;
use crate::yaml::{Ctx, Diagnostic, Node};

/// The `alerts` section of the config: rules, rule packs, limits.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {}

impl AlertConfig {
    /// The embedded default: the seed's alert examples and important operations.
    pub fn embedded_default() -> AlertConfig {
        AlertConfig {}
    }
}

/// Evaluates the rules on kept events, in event time.
#[derive(Debug, Default)]
pub struct AlertEngine {}

impl AlertEngine {
    pub fn new(_config: &AlertConfig) -> Self {
        AlertEngine {}
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    /// Evaluates every rule on one kept event; appends raised alerts (JSON objects) to `out`.
    pub fn observe(&mut self, _event: &Event, _doc: &dyn Document, _out: &mut Vec<String>) {}
}

/// Decodes the config's `alerts` section.
pub fn decode_config(_ctx: &mut Ctx, _node: &Node, _files: &dyn FileSource) -> Result<AlertConfig, Diagnostic> {
    Ok(AlertConfig::default())
}
