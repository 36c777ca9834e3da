//! The policy as kube-apiserver reads it: rendering a loaded [`Policy`] as `audit.k8s.io/v1`
//! text (what `kaudit apiserver policy` writes for `--audit-policy-file`), and comparing two
//! policies by meaning (what `kaudit apiserver check` reports as drift).
//!
//! `v1beta1` to `v1`: the `Policy` and `PolicyRule` types of the two versions have the same
//! fields (kubernetes/apiserver `pkg/apis/audit/v1beta1/types.go` and `v1/types.go` at
//! kubernetes-1.23.0, the last release that served v1beta1; the generated conversion copies
//! every field), so converting is re-labelling `apiVersion`. kube-apiserver 1.24 and later refuse
//! v1beta1 policies (kubernetes/kubernetes#108092), which is why the apiserver always gets v1.

use super::model::{GroupResources, Policy, PolicyRule};

/// The policy as `audit.k8s.io/v1` YAML: fields in the order of the Go types, empty lists
/// omitted, every string double-quoted (JSON escapes are valid YAML), `header` as `#` comments.
pub fn to_v1_yaml(policy: &Policy, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(if line.is_empty() { "#" } else { "# " });
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("apiVersion: audit.k8s.io/v1\nkind: Policy\n");
    list(&mut out, "", "omitStages", &policy.omit_stages);
    if policy.omit_managed_fields {
        out.push_str("omitManagedFields: true\n");
    }
    out.push_str("rules:\n");
    for rule in &policy.rules {
        out.push_str(&format!("  - level: {}\n", rule.level.as_str()));
        let pad = "    ";
        list(&mut out, pad, "users", &rule.users);
        list(&mut out, pad, "userGroups", &rule.user_groups);
        list(&mut out, pad, "verbs", &rule.verbs);
        if !rule.resources.is_empty() {
            out.push_str("    resources:\n");
            for gr in &rule.resources {
                out.push_str(&format!("      - group: {}\n", quote(&gr.group)));
                list(&mut out, "        ", "resources", &gr.resources);
                list(&mut out, "        ", "resourceNames", &gr.resource_names);
            }
        }
        list(&mut out, pad, "namespaces", &rule.namespaces);
        list(&mut out, pad, "nonResourceURLs", &rule.non_resource_urls);
        list(&mut out, pad, "omitStages", &rule.omit_stages);
        if let Some(omit) = rule.omit_managed_fields {
            out.push_str(&format!("    omitManagedFields: {omit}\n"));
        }
    }
    out
}

fn list(out: &mut String, pad: &str, key: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
    out.push_str(&format!("{pad}{key}: [{}]\n", items.join(", ")));
}

fn quote(s: &str) -> String {
    let mut out = String::new();
    crate::event::raw::write_json_str(&mut out, s);
    out
}

/// How `found` differs from `want` in what the apiserver would do with it, one sentence per
/// difference (empty: the same policy). The version label, comments, field order, line numbers
/// and the order inside a list that the apiserver reads as a set (users, verbs, resources...)
/// do not count; the order of the rules does (the first match wins).
pub fn differences(want: &Policy, found: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    if set(&want.omit_stages) != set(&found.omit_stages) {
        out.push(format!("omitStages: {:?}, the config has {:?}", found.omit_stages, want.omit_stages));
    }
    if want.omit_managed_fields != found.omit_managed_fields {
        out.push(format!(
            "omitManagedFields: {}, the config has {}",
            found.omit_managed_fields, want.omit_managed_fields
        ));
    }
    for (i, (w, f)) in want.rules.iter().zip(&found.rules).enumerate() {
        let fields = rule_differences(w, f);
        if !fields.is_empty() {
            out.push(format!(
                "rules[{i}] (line {}; line {} of the config's policy) differs in {}",
                f.line,
                w.line,
                fields.join(", ")
            ));
        }
    }
    if want.rules.len() != found.rules.len() {
        out.push(format!("{} rules, the config has {}", found.rules.len(), want.rules.len()));
    }
    out
}

fn rule_differences(w: &PolicyRule, f: &PolicyRule) -> Vec<String> {
    let mut fields = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            fields.push(name.to_string());
        }
    };
    check("level", w.level == f.level);
    check("users", set(&w.users) == set(&f.users));
    check("userGroups", set(&w.user_groups) == set(&f.user_groups));
    check("verbs", set(&w.verbs) == set(&f.verbs));
    check("resources", resources(&w.resources) == resources(&f.resources));
    check("namespaces", set(&w.namespaces) == set(&f.namespaces));
    check("nonResourceURLs", set(&w.non_resource_urls) == set(&f.non_resource_urls));
    check("omitStages", set(&w.omit_stages) == set(&f.omit_stages));
    check("omitManagedFields", w.omit_managed_fields == f.omit_managed_fields);
    fields
}

fn set(values: &[String]) -> std::collections::BTreeSet<&str> {
    values.iter().map(String::as_str).collect()
}

fn resources(values: &[GroupResources]) -> std::collections::BTreeSet<(&str, Vec<&str>, Vec<&str>)> {
    values
        .iter()
        .map(|g| {
            (g.group.as_str(), set(&g.resources).into_iter().collect(), set(&g.resource_names).into_iter().collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{default_policy, DEFAULT_POLICY_YAML};

    fn load(text: &str) -> Policy {
        Policy::load(text, "p.yaml").unwrap_or_else(|e| panic!("{e}\n{text}")).policy
    }

    #[test]
    fn the_seed_policy_renders_as_v1_and_reads_back_as_the_same_policy() {
        let seed = default_policy();
        assert_eq!(seed.api_version, "audit.k8s.io/v1beta1");
        let text = to_v1_yaml(&seed, "generated\n\nby kaudit");
        assert!(text.starts_with("# generated\n#\n# by kaudit\napiVersion: audit.k8s.io/v1\nkind: Policy\n"), "{text}");
        let back = load(&text);
        assert_eq!(back.api_version, "audit.k8s.io/v1");
        assert!(differences(&seed, &back).is_empty(), "{:?}", differences(&seed, &back));
        let strip = |p: &Policy| p.rules.iter().map(|r| PolicyRule { line: 0, ..r.clone() }).collect::<Vec<_>>();
        assert_eq!(strip(&seed), strip(&back), "field for field");
        assert_eq!((seed.omit_stages, seed.omit_managed_fields), (back.omit_stages, back.omit_managed_fields));
        // Only the version line differs in meaning from the seed's file.
        assert!(DEFAULT_POLICY_YAML.contains("audit.k8s.io/v1beta1"));
    }

    #[test]
    fn every_field_and_awkward_strings_survive_the_round_trip() {
        let text = r#"apiVersion: audit.k8s.io/v1beta1
kind: Policy
omitManagedFields: true
omitStages: [RequestReceived, Panic]
rules:
  - level: RequestResponse
    users: ["a\"b", 'x\y', "ünï: #"]
    userGroups: [system:masters]
    verbs: [get]
    namespaces: ["", kube-system]
    resources:
      - group: ""
        resources: [pods/exec, "*/status"]
        resourceNames: [p1]
      - group: apps
    omitStages: [ResponseStarted]
    omitManagedFields: false
  - level: None
    nonResourceURLs: ["/healthz*", /version]
"#;
        let p = load(text);
        let back = load(&to_v1_yaml(&p, ""));
        let strip = |p: &Policy| p.rules.iter().map(|r| PolicyRule { line: 0, ..r.clone() }).collect::<Vec<_>>();
        assert_eq!(strip(&p), strip(&back));
        assert!(back.omit_managed_fields);
        assert_eq!(back.omit_stages, ["RequestReceived", "Panic"]);
    }

    #[test]
    fn differences_name_the_rule_and_field_and_ignore_set_order() {
        let want = load("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verbs: [get, list]\n- level: Metadata\n");
        let reordered =
            load("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- verbs: [list, get]\n  level: None\n- level: Metadata\n");
        assert!(differences(&want, &reordered).is_empty());
        let changed = load(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Request\n  verbs: [get]\n",
        );
        let d = differences(&want, &changed);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("omitStages: [\"RequestReceived\"], the config has []"), "{d:?}");
        assert_eq!(d[1], "rules[0] (line 5; line 4 of the config's policy) differs in level, verbs");
        assert_eq!(d[2], "1 rules, the config has 2");
        // Rule order matters: the first match wins.
        let swapped =
            load("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n- level: None\n  verbs: [get, list]\n");
        assert_eq!(differences(&want, &swapped).len(), 2);
    }
}
