//! `cargo xtask memory` (and a step of `cargo xtask test`): the memory bounds under a million
//! distinct source addresses and a million distinct users, in every place memory is measured
//! (docs/RELIABILITY.md, "Memory at high cardinality"):
//!
//! * the engine in process, peak RSS (`tests/limits_memory.rs`, release: a million events);
//! * the native CLI fed through a pipe, peak RSS (`plugins/cli/tests/cli.rs`, release);
//! * the Fluent Bit module in the test host, linear-memory size (`fluentbit::cardinality`).
//!
//! `cargo test` runs the same tests on fewer events in debug builds; here they run on the million.

use crate::util::{cmd, run};

pub const EVENTS: u32 = 1_000_000;

pub fn million() -> Result<(), String> {
    run(cmd("cargo").args(["test", "--release", "-p", "kaudit", "--test", "limits_memory", "--", "--nocapture"]))?;
    run(cmd("cargo")
        .args(["test", "--release", "-p", "kaudit-cli", "--test", "cli", "run_memory_is_bounded", "--", "--nocapture"])
        .env("KAUDIT_CLI_MEMORY_EVENTS", EVENTS.to_string()))?;
    crate::fluentbit::cardinality(&[EVENTS.to_string()])
}
