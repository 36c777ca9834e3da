//! The one diagnostic of every loader (config, policy, alert packs, host settings): a problem
//! located in a source file, with what kind of problem it is and whether it stops the load.
//!
//! Callers decide on [`Diagnostic::kind`] and [`Diagnostic::severity`], never on message text.

use std::fmt;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// What kind of problem a [`Diagnostic`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The text is not a YAML/JSON document (or too large, too deep, more than one document).
    Syntax,
    /// A mapping key that is not known there (`verbz:`).
    UnknownKey,
    /// A mapping key given twice.
    DuplicateKey,
    /// A value of the wrong type (a number where a string is expected).
    Type,
    /// A value of the right type that is not allowed (an unknown level, an invalid query).
    Value,
    /// A file the document refers to cannot be read.
    File,
}

/// Whether a [`Diagnostic`] stops the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Reported; the load goes on (an unknown field in an audit policy, as kube-apiserver drops it).
    Warning,
    /// The load fails.
    Error,
}

/// An error or warning located in a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The file, as named to the loader.
    pub file: String,
    /// Where in it.
    pub pos: Pos,
    /// Dotted field path, e.g. `policy.rules[3].resources[0].group`; empty for the document itself.
    pub field: String,
    /// What kind of problem this is.
    pub kind: DiagnosticKind,
    /// Whether it stops the load.
    pub severity: Severity,
    /// What is wrong, for humans.
    pub message: String,
}

impl Diagnostic {
    /// An error of `kind` at `pos` in `file` (the document itself: no field).
    pub fn error(file: &str, pos: Pos, kind: DiagnosticKind, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            pos,
            field: String::new(),
            kind,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    /// Whether it stops the load.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The same problem seen from an enclosing document: `field` is put under `prefix`
    /// (a policy's `rules[0].level` is the config's `policy.rules[0].level`).
    pub fn under(mut self, prefix: &str) -> Diagnostic {
        self.field = match self.field.as_str() {
            "" => prefix.to_string(),
            f if f.starts_with('[') => format!("{prefix}{f}"),
            f => format!("{prefix}.{f}"),
        };
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.col)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_prefixes_the_field_path() {
        let d = Diagnostic::error("p.yaml", Pos { line: 3, col: 5 }, DiagnosticKind::Value, "Required value");
        assert_eq!(d.clone().under("policy").to_string(), "p.yaml:3:5: policy: Required value");
        let d = Diagnostic { field: "rules[0].level".into(), ..d };
        assert_eq!(d.clone().under("policy").field, "policy.rules[0].level");
        assert_eq!(Diagnostic { field: "[2]".into(), ..d }.under("rules").field, "rules[2]");
    }
}
