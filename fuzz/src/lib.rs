//! Checks run by the fuzz targets: `checks` (the core; also replayed on stable by
//! tests/fuzz_regressions.rs) and `hosts` (the Fluent Bit and Envoy adapters' native logic).

pub mod checks;
pub mod hosts;
