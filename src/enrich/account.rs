//! Who acted: the account as the seed's alert query resolves it, and the kind of user.

use crate::event::Event;

/// The seed's "Account name" CASE expression: the username, except that the shared
/// `kubernetes-admin` certificate is attributed to the user its RoleBinding names
/// (`regexp_extract(reason, ' to User "(\w+)"', 1)` when the reason mentions a RoleBinding).
pub fn acting_account<'e>(ev: &'e Event) -> &'e str {
    let name = ev.user.name();
    if name != "kubernetes-admin" {
        return name;
    }
    let Some(reason) = ev.annotation("authorization.k8s.io/reason") else { return name };
    if !reason.contains("RoleBinding") {
        return name;
    }
    user_in_reason(reason).unwrap_or(name)
}

/// The first `(\w+)` in ` to User "(\w+)"` (word characters as in the seed's regex engine).
fn user_in_reason(reason: &str) -> Option<&str> {
    const NEEDLE: &str = " to User \"";
    let mut rest = reason;
    while let Some(i) = rest.find(NEEDLE) {
        let after = &rest[i + NEEDLE.len()..];
        let end = after.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_')).unwrap_or(after.len());
        if end > 0 && after.as_bytes().get(end) == Some(&b'"') {
            return Some(&after[..end]);
        }
        rest = after;
    }
    None
}

/// The kinds of user, each with its enrichment member as written (see `super::Members::constant`).
pub(crate) static USER_KINDS: [(&str, &str); 5] = [
    ("anonymous", "\",\"userKind\":\"anonymous"),
    ("node", "\",\"userKind\":\"node"),
    ("serviceaccount", "\",\"userKind\":\"serviceaccount"),
    ("system", "\",\"userKind\":\"system"),
    ("human", "\",\"userKind\":\"human"),
];

/// `anonymous`, `node`, `serviceaccount`, `system` (control-plane components) or `human`.
pub fn user_kind(ev: &Event) -> &'static str {
    let name = ev.user.name();
    let i = if name.is_empty() || name == "system:anonymous" {
        0
    } else if name.starts_with("system:node:") || ev.user.groups().any(|g| g == "system:nodes") {
        1
    } else if name.starts_with("system:serviceaccount:") {
        2
    } else if name.starts_with("system:") || name == "kubelet" || name == "kube-proxy" {
        3
    } else {
        4
    };
    USER_KINDS[i].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_parsing() {
        let r = "RBAC: allowed by RoleBinding \"dev-admin/default\" of ClusterRole \"admin\" to User \"27689245\"";
        assert_eq!(user_in_reason(r), Some("27689245"));
        assert_eq!(user_in_reason("to User \"al-ice\""), None);
        assert_eq!(user_in_reason(""), None);
    }
}
