//! Reading inputs and config files from the filesystem (the CLI is a host: it owns the I/O).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use kaudit::Feed;
use kaudit::Record;
use kaudit::{Config, FileError, FileSource};

/// No input named, or `-`: stdin.
fn reads_stdin(files: &[PathBuf]) -> bool {
    files.is_empty() || files.len() == 1 && files[0].as_os_str() == "-"
}

/// Bytes asked for per read.
const CHUNK: usize = 1 << 20;

/// What [`for_each_record`] hands over.
pub enum Item<'a> {
    /// A record of the input named `input`.
    Record { input: &'a str, record: Record<'a> },
    /// The records of one read are done. On stdin a read returns what has arrived, so flushing
    /// here passes records on as they come (`tail -f audit.log | kaudit filter`).
    EndOfRead,
}

/// Streams every named input (stdin when none is named) record by record, in bounded memory
/// (one read plus the record being assembled, which may grow to `max_event_bytes`, the
/// pipeline's `limits.maxEventBytes`), with the line numbers of the whole file. A gzip input is
/// decompressed as it is read (gunzip.rs): its records and line numbers are those of the
/// decompressed stream, whatever its size.
pub fn for_each_record(
    files: &[PathBuf],
    max_event_bytes: usize,
    f: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), String> {
    if reads_stdin(files) {
        return stream("<stdin>", &mut std::io::stdin().lock(), max_event_bytes, 0, f);
    }
    for path in files {
        let name = path.display().to_string();
        let mut file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
        stream(&name, &mut file, max_event_bytes, 0, f)?;
    }
    Ok(())
}

/// gzip layers read in one input (a `.gz` of a `.gz`); a gzip quine must not recurse for ever.
const MAX_GZIP_LAYERS: u8 = 4;

fn stream(
    name: &str,
    reader: &mut dyn Read,
    max_event_bytes: usize,
    layers: u8,
    f: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = std::io::BufReader::with_capacity(CHUNK, reader);
    let head = loop {
        match reader.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    if kaudit::is_gzip(head) {
        if layers == MAX_GZIP_LAYERS {
            return Err(format!("{name}: gzip inside gzip more than {MAX_GZIP_LAYERS} deep"));
        }
        return stream(name, &mut crate::gunzip::Gunzip::new(reader), max_event_bytes, layers + 1, f);
    }
    let mut feed = Feed::with_max_event_bytes(max_event_bytes);
    let mut chunk = vec![0u8; CHUNK];
    // The feed's callback cannot stop it: the first error is kept and returned after the read.
    let mut failed: Result<(), String> = Ok(());
    let mut end = false;
    while !end {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // An I/O error, a gzip stream cut short or corrupt: the records before it were
                // processed; flush their output, and not the incomplete record it broke off.
                f(Item::EndOfRead)?;
                return Err(format!("{name}: {e}"));
            }
        };
        let mut each = |record: Record| {
            if failed.is_ok() {
                failed = f(Item::Record { input: name, record });
            }
        };
        if n == 0 {
            feed.finish(&mut each);
            end = true;
        } else {
            feed.push(&chunk[..n], &mut each);
        }
        std::mem::replace(&mut failed, Ok(()))?;
        f(Item::EndOfRead)?;
    }
    Ok(())
}

/// Resolves paths in a config relative to the config file's directory.
pub struct RelativeFiles {
    pub base: PathBuf,
}

impl RelativeFiles {
    fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

impl FileSource for RelativeFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, FileError> {
        let full = self.resolve(path);
        std::fs::read(&full).map_err(|e| FileError::new(full.display().to_string(), e))
    }

    fn list(&self, path: &str) -> Result<Vec<String>, FileError> {
        list_dir_files(&self.resolve(path))
    }
}

/// The regular files of a directory, sorted by name.
pub fn list_dir_files(dir: &Path) -> Result<Vec<String>, FileError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| FileError::new(dir.display().to_string(), e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The config of `--config FILE` and `--policy FILE` (see [`load_config_files`]).
pub fn load_config(source: &crate::args::Source) -> Result<Config, String> {
    load_config_files(source.config.as_deref(), source.policy.as_deref())
}

/// The config from `--config FILE`, `--policy FILE`, or the embedded default; commands adjust
/// it (e.g. `--drop-bad`) before building the pipeline.
/// Warnings go to stderr; errors name the file, line and field.
pub fn load_config_files(config: Option<&Path>, policy: Option<&Path>) -> Result<Config, String> {
    let mut cfg = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let (cfg, warnings) =
                Config::load(&text, &path.display().to_string(), &RelativeFiles { base }).map_err(|e| e.to_string())?;
            for w in warnings {
                crate::term::say!("kaudit: warning: {w}");
            }
            cfg
        }
        None => Config::embedded_default(),
    };
    if let Some(path) = policy {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let loaded = kaudit::Policy::load(&text, &path.display().to_string()).map_err(|e| e.to_string())?;
        for w in loaded.warnings {
            crate::term::say!("kaudit: warning: {w}");
        }
        cfg.policy = loaded.policy;
        cfg.policy_source = path.display().to_string();
    }
    Ok(cfg)
}
