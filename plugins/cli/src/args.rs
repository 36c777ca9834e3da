//! Arguments several commands share (clap `flatten`): where the config comes from, and how the
//! commands that process records (`filter`, `run`) treat bad records and write their metrics.

use std::path::PathBuf;

use clap::Args;
use kaudit::{BadRecords, Config};

use crate::term;

#[derive(Args)]
pub struct Source {
    /// kaudit config file (YAML); the embedded default (the seed's policy) when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Audit policy file (YAML or JSON, audit.k8s.io/v1 or v1beta1); overrides the config's policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Args)]
pub struct Metrics {
    /// At the end, write every counter (events, limit hits, alert engine statistics) as one
    /// JSON object (the object every kaudit host reports, docs/RELIABILITY.md) to FILE or `stderr`.
    #[arg(long, value_name = "FILE|stderr")]
    pub metrics: Option<PathBuf>,
}

impl Metrics {
    pub fn write(&self, pipeline: &kaudit::Pipeline) -> Result<(), String> {
        let Some(path) = &self.metrics else { return Ok(()) };
        let json = pipeline.metrics_json();
        if path.as_os_str() == "stderr" {
            eprintln!("{}", term::field(&json));
            return Ok(());
        }
        std::fs::write(path, format!("{json}\n")).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The options of the commands that process records (`filter`, `run`).
#[derive(Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub source: Source,
    /// Drop records that are not valid audit events instead of passing them through.
    #[arg(long)]
    pub drop_bad: bool,
    /// Do not report each bad record on stderr (the summary still counts them).
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub metrics: Metrics,
}

impl RecordArgs {
    /// The config of `--config` / `--policy`, with `--drop-bad` applied.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = crate::input::load_config(&self.source)?;
        if self.drop_bad {
            config.bad_records = BadRecords::Drop;
        }
        Ok(config)
    }
}
