//! Resource categories and operation kinds of the seed's "Operations Overview".

/// The categories, each with its enrichment member as written (see `super::Members::constant`).
pub(crate) static CATEGORIES: [(&str, &str); 4] = [
    ("compute", "\",\"resourceCategory\":\"compute"),
    ("network", "\",\"resourceCategory\":\"network"),
    ("storage", "\",\"resourceCategory\":\"storage"),
    ("other", "\",\"resourceCategory\":\"other"),
];

/// The operations, each with its enrichment member as written (see `super::Members::constant`).
pub(crate) static OPERATIONS: [(&str, &str); 4] = [
    ("create", "\",\"operation\":\"create"),
    ("update", "\",\"operation\":\"update"),
    ("delete", "\",\"operation\":\"delete"),
    ("access", "\",\"operation\":\"access"),
];

/// compute / network / storage / other (CRDs and everything else by their plural name).
pub fn category(resource: &str) -> &'static str {
    let i = match resource {
        "deployments" | "statefulsets" | "cronjobs" | "daemonsets" | "jobs" | "pods" => 0,
        "services" | "ingresses" => 1,
        "configmaps" | "secrets" | "persistentvolumeclaims" => 2,
        _ => 3,
    };
    CATEGORIES[i].0
}

/// create / update / delete / access.
pub fn operation(verb: &str) -> &'static str {
    let i = match verb {
        "create" => 0,
        "update" | "patch" => 1,
        "delete" | "deletecollection" => 2,
        _ => 3,
    };
    OPERATIONS[i].0
}
