//! Finding and loading the kaudit config inside Fluent Bit's WASI sandbox.
//!
//! Fluent Bit gives the module no environment variables and no argv, only the `accessible_paths`
//! directories as WASI preopens. So the config is looked up at fixed paths, first found wins:
//!
//! 1. `/etc/kaudit/kaudit.yaml` (visible with `accessible_paths /etc/kaudit`),
//! 2. `kaudit.yaml` (relative: visible with the default `accessible_paths .`, i.e. in Fluent
//!    Bit's working directory).
//!
//! When none exists the embedded default serves. A file that exists but cannot be read or does
//! not load is an error that is reported, never silently replaced by the default.

use std::io::ErrorKind;

use kaudit::{FileSource, Pipeline};

/// Where the config is looked for, in order.
pub const CONFIG_PATHS: &[&str] = &["/etc/kaudit/kaudit.yaml", "kaudit.yaml"];

/// The result of the lookup.
pub enum Loaded {
    Ready {
        pipeline: Box<Pipeline>,
        /// The file used, or `<embedded default>`.
        source: String,
        warnings: Vec<String>,
    },
    /// The config exists but is bad: the message names file:line:col.
    Error(String),
}

/// Looks up and loads the config through the real (WASI) filesystem.
pub fn load() -> Loaded {
    load_from(CONFIG_PATHS, &|path| std::fs::read(path))
}

/// Looks up and loads the config with `read`, trying `paths` in order.
pub fn load_from(paths: &[&str], read: &dyn Fn(&str) -> std::io::Result<Vec<u8>>) -> Loaded {
    for path in paths {
        let bytes = match read(path) {
            Ok(b) => b,
            // Not there (or not under any preopened dir, which WASI reports the same way): next.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Loaded::Error(format!("{path}: cannot read: {e}")),
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return Loaded::Error(format!(
                    "{path}: not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ))
            }
        };
        let files = NextTo { dir: parent(path), read };
        return match Pipeline::from_config_text(&text, path, &files) {
            Ok((pipeline, warnings)) => Loaded::Ready {
                pipeline: Box::new(pipeline),
                source: (*path).to_string(),
                warnings: warnings.iter().map(|w| w.to_string()).collect(),
            },
            Err(e) => Loaded::Error(e.to_string()),
        };
    }
    Loaded::Ready {
        pipeline: Box::new(Pipeline::embedded_default()),
        source: "<embedded default>".into(),
        warnings: Vec::new(),
    }
}

/// The directory part of `path` ("" for a bare file name).
fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_string(),
        None => String::new(),
    }
}

/// Files a config refers to (`policyFile`), relative paths resolved next to the config file.
struct NextTo<'a> {
    dir: String,
    read: &'a dyn Fn(&str) -> std::io::Result<Vec<u8>>,
}

impl FileSource for NextTo<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, kaudit::FileError> {
        let full = if path.starts_with('/') || self.dir.is_empty() {
            path.to_string()
        } else if self.dir.ends_with('/') {
            format!("{}{path}", self.dir)
        } else {
            format!("{}/{path}", self.dir)
        };
        (self.read)(&full).map_err(|e| kaudit::FileError::new(full, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io;

    fn fs(files: &[(&str, &str)]) -> impl Fn(&str) -> io::Result<Vec<u8>> {
        let map: HashMap<String, Vec<u8>> = files.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        move |p: &str| map.get(p).cloned().ok_or_else(|| io::Error::from(ErrorKind::NotFound))
    }

    fn source(l: &Loaded) -> &str {
        match l {
            Loaded::Ready { source, .. } => source,
            Loaded::Error(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn no_file_means_embedded_default() {
        assert_eq!(source(&load_from(CONFIG_PATHS, &fs(&[]))), "<embedded default>");
    }

    #[test]
    fn first_path_wins_and_policy_file_is_read_next_to_it() {
        let policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";
        let files = fs(&[
            ("/etc/kaudit/kaudit.yaml", "policyFile: policy.yaml\n"),
            ("/etc/kaudit/policy.yaml", policy),
            ("kaudit.yaml", "badRecords: [oops\n"),
        ]);
        assert_eq!(source(&load_from(CONFIG_PATHS, &files)), "/etc/kaudit/kaudit.yaml");
        // The policy file is read next to the config, not from the working directory.
        let files = fs(&[("/etc/kaudit/kaudit.yaml", "policyFile: policy.yaml\n"), ("policy.yaml", policy)]);
        match load_from(CONFIG_PATHS, &files) {
            Loaded::Error(e) => assert!(e.contains("/etc/kaudit/policy.yaml"), "{e}"),
            Loaded::Ready { .. } => panic!("policy.yaml must be looked up in /etc/kaudit"),
        }
        // The relative path is the fallback.
        let files = fs(&[("kaudit.yaml", "badRecords: drop\n")]);
        assert_eq!(source(&load_from(CONFIG_PATHS, &files)), "kaudit.yaml");
    }

    #[test]
    fn a_bad_config_is_an_error_naming_the_place() {
        let files = fs(&[("kaudit.yaml", "badRecords: sometimes\n")]);
        match load_from(CONFIG_PATHS, &files) {
            Loaded::Error(e) => assert!(e.starts_with("kaudit.yaml:1:"), "{e}"),
            Loaded::Ready { .. } => panic!("a bad config must not load"),
        }
        let unreadable = |_: &str| -> io::Result<Vec<u8>> { Err(io::Error::from(ErrorKind::PermissionDenied)) };
        match load_from(CONFIG_PATHS, &unreadable) {
            Loaded::Error(e) => assert!(e.starts_with("/etc/kaudit/kaudit.yaml: cannot read"), "{e}"),
            Loaded::Ready { .. } => panic!("an unreadable config must not fall back to the default"),
        }
    }

    #[test]
    fn parent_dirs() {
        assert_eq!(parent("/etc/kaudit/kaudit.yaml"), "/etc/kaudit");
        assert_eq!(parent("/kaudit.yaml"), "/");
        assert_eq!(parent("kaudit.yaml"), "");
    }
}
