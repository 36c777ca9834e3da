//! kaudit as an Envoy HTTP filter (Proxy-Wasm ABI 0.2.1, crate `proxy-wasm` 0.2.5) in front of
//! the receiver of kube-apiserver's audit webhook (or of Vector's `http` sink).
//!
//! The filter buffers each batch, runs the shared engine's `process_batch` on it (EventList,
//! JSON array or JSON lines; the framing is kept), forwards what the policy keeps, and never
//! rejects a batch. Alerts are evaluated once for all of Envoy's VMs by a single elected
//! consumer and POSTed to an Envoy cluster. See README.md for the design and the settings.
//!
//! - [`settings`]: the plugin configuration envelope (kaudit config inline + alert target);
//! - [`batch`]: one body through the pipeline and what to forward;
//! - [`dingtalk`]: signing a DingTalk robot's webhook path at send time;
//! - [`firehose`]: the answer an Amazon Data Firehose HTTP-endpoint delivery needs;
//! - [`lease`]: electing the single alert consumer with shared data + CAS;
//! - [`outbox`]: an agent's partial records on their way to the aggregator, in order, resent;
//! - `filter` (wasm32 only): the proxy-wasm glue, with `filter/consumer.rs` (the alert
//!   consumer) and `metrics` (the Envoy counters).
//!
//! The shipped module is built with `panic=unwind` and WebAssembly exception handling (which
//! Envoy's V8 runs), so `catch_unwind` in [`batch::filter_body`] works in Envoy too: a bug
//! forwards the original batch and is counted instead of trapping the VM (README, "Faults").

// `-Zbuild-std` on the 1.95 toolchain leaves LLVM's C++ exception tag undefined (the wasm
// `throw` of Rust's unwinder uses it), so the module would import it from `env`, which Envoy
// does not provide; defining it here is what compiler-rt does (rust-lang/rust#152241).
#![cfg_attr(all(target_arch = "wasm32", panic = "unwind"), feature(asm_experimental_arch))]
#[cfg(all(target_arch = "wasm32", panic = "unwind"))]
core::arch::global_asm!(".globl __cpp_exception", ".tagtype __cpp_exception i32", "__cpp_exception:");

pub mod batch;
pub mod dingtalk;
pub mod firehose;
pub mod lease;
pub mod outbox;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod filter;
#[cfg(target_arch = "wasm32")]
mod metrics;
