//! The Kubernetes audit policy: model and loading (`model`), evaluation against the request
//! attributes rebuilt from an event (`eval`), applying a decision to an event (`apply`), and the
//! policy as kube-apiserver reads it: `audit.k8s.io/v1` text and drift (`v1`).

pub mod apply;
pub mod eval;
mod matcher;
pub mod model;
pub mod v1;

pub use apply::{verdict, write_event, Changes, DropReason, Verdict};
pub use eval::{Attributes, Decision, Evaluator, Groups};
pub use model::{GroupResources, Loaded, Policy, PolicyError, PolicyRule};
pub use v1::{differences as policy_differences, to_v1_yaml};

/// The seed's default policy (ACK's `/etc/kubernetes/audit-policy.yml`, audit.k8s.io/v1beta1).
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../rules/ack-default-audit-policy.yaml");

/// The embedded default policy, loaded.
pub fn default_policy() -> Policy {
    match Policy::load(DEFAULT_POLICY_YAML, "<embedded ack-default-audit-policy.yaml>") {
        Ok(loaded) => loaded.policy,
        // The embedded file is checked by a unit test; an empty policy is never substituted silently.
        Err(e) => panic!("embedded default policy is invalid: {e}"),
    }
}
