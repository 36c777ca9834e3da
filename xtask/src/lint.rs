//! The style gates of `cargo xtask test` (and `cargo xtask lint` alone): the tree is formatted
//! (`rustfmt.toml`) and clippy-clean with warnings denied. They run first: they take seconds to a
//! few minutes and a failure should not wait for the hour of host tests behind them.

use crate::util::{cmd, run};

/// The proxy-wasm filter and the Fluent Bit module keep their host glue behind
/// `cfg(target_arch = "wasm32")` (plugins/envoy/src/lib.rs, plugins/fluent-bit/src/lib.rs), which a
/// native clippy never sees; they are linted for the target they ship on too. A check build
/// only (no codegen): from an empty target dir 30 s of CPU (165 s wall on the shared, busy 2-core
/// build machine). The component's and the WASI CLI's wasm-only lines (an export macro, an
/// assembler tag) are not worth a wasip2 check (65 s of CPU, 3.5 min wall there).
const WASM_ONLY: &[&str] = &["-p", "kaudit-envoy", "-p", "kaudit-fluent-bit"];

pub fn check() -> Result<(), String> {
    run(cmd("cargo").args(["fmt", "--all", "--check"]))?;
    run(cmd("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(cmd("cargo").args(["clippy", "--target", "wasm32-wasip1"]).args(WASM_ONLY).args(["--", "-D", "warnings"]))
}
