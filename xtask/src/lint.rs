//! The style gates of `cargo xtask test` (and `cargo xtask lint` alone): the tree is formatted
//! (`rustfmt.toml`) and clippy-clean with warnings denied. They run first: they take seconds to a
//! few minutes and a failure should not wait for the hour of host tests behind them.

use crate::util::{cmd, run};

pub fn check() -> Result<(), String> {
    run(cmd("cargo").args(["fmt", "--all", "--check"]))?;
    run(cmd("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
}
