//! Reading inputs and config files from the filesystem (the CLI is a host: it owns the I/O).

use std::io::Read;
use std::path::{Path, PathBuf};

use kaudit::{Config, FileSource, Pipeline};

/// One input: a file name (or `-` for stdin) and its bytes.
pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Reads every named input, or stdin when none is named.
pub fn read_inputs(files: &[PathBuf]) -> Result<Vec<Input>, String> {
    if files.is_empty() || files.iter().all(|f| f.as_os_str() == "-") && files.len() == 1 {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("stdin: {e}"))?;
        return Ok(vec![Input { name: "<stdin>".into(), bytes }]);
    }
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            Ok(Input { name: f.display().to_string(), bytes })
        })
        .collect()
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
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let full = self.resolve(path);
        std::fs::read(&full).map_err(|e| format!("{}: {e}", full.display()))
    }

    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        list_dir_files(&self.resolve(path))
    }
}

/// The regular files of a directory, sorted by name.
pub fn list_dir_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Builds the pipeline from `--config FILE`, `--policy FILE`, or the embedded default.
/// Warnings go to stderr; errors name the file, line and field.
pub fn load_pipeline(config: Option<&Path>, policy: Option<&Path>) -> Result<Pipeline, String> {
    let mut cfg = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let (cfg, warnings) = Config::load(&text, &path.display().to_string(), &RelativeFiles { base })
                .map_err(|e| e.to_string())?;
            for w in warnings {
                eprintln!("kaudit: warning: {w}");
            }
            cfg
        }
        None => Config::embedded_default(),
    };
    if let Some(path) = policy {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let loaded = kaudit::Policy::load(&text, &path.display().to_string()).map_err(|e| e.to_string())?;
        for w in loaded.warnings {
            eprintln!("kaudit: warning: {w}");
        }
        cfg.policy = loaded.policy;
        cfg.policy_source = path.display().to_string();
    }
    Ok(Pipeline::new(cfg))
}
