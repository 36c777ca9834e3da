//! `kaudit report` (being written).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct ReportArgs {
    /// Audit logs.
    files: Vec<PathBuf>,
}

pub fn report(_args: ReportArgs) -> Result<ExitCode, String> {
    Err("report: not built yet".into())
}
