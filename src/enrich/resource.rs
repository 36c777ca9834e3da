//! Resource categories and operation kinds of the seed's "Operations Overview".

/// compute / network / storage / other (CRDs and everything else by their plural name).
pub fn category(resource: &str) -> &'static str {
    match resource {
        "deployments" | "statefulsets" | "cronjobs" | "daemonsets" | "jobs" | "pods" => "compute",
        "services" | "ingresses" => "network",
        "configmaps" | "secrets" | "persistentvolumeclaims" => "storage",
        _ => "other",
    }
}

/// create / update / delete / access.
pub fn operation(verb: &str) -> &'static str {
    match verb {
        "create" => "create",
        "update" | "patch" => "update",
        "delete" | "deletecollection" => "delete",
        _ => "access",
    }
}
