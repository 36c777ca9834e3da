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
//! - [`lease`]: electing the single alert consumer with shared data + CAS;
//! - `filter` (wasm32 only): the proxy-wasm glue.

pub mod batch;
pub mod lease;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod filter;
