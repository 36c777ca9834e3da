//! The host's file capability: the core does no I/O, so files a config refers to (a policy
//! file, a GeoIP database, rule packs) are read through a [`FileSource`] the host provides.
//! Loading code at every level takes it as a parameter (as jaq's `Loader::with_read` does).

use std::fmt;

use crate::yaml::{Ctx, Diagnostic, DiagnosticKind, Pos};

/// Why a host could not read a file or list a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The path as the host resolved it (what the user should look at).
    pub path: String,
    /// What went wrong: the host's I/O error, or that it has no such access.
    pub message: String,
}

impl FileError {
    /// A failure on `path`, e.g. `FileError::new(path, io_error)`.
    pub fn new(path: impl Into<String>, message: impl fmt::Display) -> FileError {
        FileError { path: path.into(), message: message.to_string() }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FileError {}

/// Reads files a config refers to. Hosts implement it over their filesystem (or refuse);
/// relative paths are resolved by the host.
pub trait FileSource {
    /// The bytes of the file at `path`.
    fn read(&self, path: &str) -> Result<Vec<u8>, FileError>;
    /// The file names (not paths) in directory `path`, sorted, for rule-pack directories.
    /// Hosts without directory access keep the default.
    fn list(&self, path: &str) -> Result<Vec<String>, FileError> {
        Err(FileError::new(path, "this host cannot list directories; name the files"))
    }
}

/// A host with no filesystem: every file reference is an error.
pub struct NoFiles;

impl FileSource for NoFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, FileError> {
        Err(FileError::new(path, "this host has no file access; inline the content in the config"))
    }
}

/// Reads a UTF-8 file named at `pos` of the document being decoded; `what` says what it is
/// (`policy file`, `rule pack`), for the message.
pub(crate) fn read_text(
    c: &Ctx,
    files: &dyn FileSource,
    path: &str,
    pos: Pos,
    what: &str,
) -> Result<String, Diagnostic> {
    let bytes =
        files.read(path).map_err(|e| c.problem(DiagnosticKind::File, pos, format!("cannot read {what}: {e}")))?;
    String::from_utf8(bytes).map_err(|_| c.problem(DiagnosticKind::File, pos, format!("{path}: not UTF-8 text")))
}
