//! What the core's integration tests share (`mod support;` in each test binary): where the
//! repository is, and the `FileSource`s a config's files are read through. Each binary uses a
//! part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kaudit::{FileError, FileSource};

/// The repository root (the core's package directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The bytes of a file, by its path from the repository root.
pub fn repo_file(path: &str) -> Vec<u8> {
    let full = root().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Files read from a directory, as the CLI reads the files a config names next to it.
pub struct Dir(pub PathBuf);

impl FileSource for Dir {
    fn read(&self, path: &str) -> Result<Vec<u8>, FileError> {
        std::fs::read(self.0.join(path)).map_err(|e| FileError::new(path, e))
    }

    fn list(&self, path: &str) -> Result<Vec<String>, FileError> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.join(path))
            .map_err(|e| FileError::new(path, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Files served from memory (e.g. GeoIP databases a test builds).
pub struct Mem(pub HashMap<String, Vec<u8>>);

impl FileSource for Mem {
    fn read(&self, path: &str) -> Result<Vec<u8>, FileError> {
        self.0.get(path).cloned().ok_or_else(|| FileError::new(path, "not found"))
    }
}

/// The GeoIP databases of the seed alert tests (tests/fixtures/alerts): 203.0.113.0/24 and
/// 47.96.0.0/16 in Hangzhou, 198.51.100.0/24 in the United States, one ASN.
pub fn seed_geo_files() -> Mem {
    let mut city = kaudit_testkit::mmdb::MmdbWriter::new("GeoIP2-City");
    let hangzhou = kaudit_testkit::mmdb::DbValue::map(vec![
        (
            "country",
            kaudit_testkit::mmdb::DbValue::map(vec![
                ("iso_code", kaudit_testkit::mmdb::DbValue::str("CN")),
                (
                    "names",
                    kaudit_testkit::mmdb::DbValue::map(vec![("en", kaudit_testkit::mmdb::DbValue::str("China"))]),
                ),
            ]),
        ),
        ("subdivisions", kaudit_testkit::mmdb::DbValue::Array(vec![kaudit_testkit::mmdb::DbValue::named("Zhejiang")])),
        ("city", kaudit_testkit::mmdb::DbValue::named("Hangzhou")),
    ]);
    city.insert_str("203.0.113.0/24", &hangzhou).unwrap();
    city.insert_str("47.96.0.0/16", &hangzhou).unwrap();
    city.insert_str(
        "198.51.100.0/24",
        &kaudit_testkit::mmdb::DbValue::map(vec![("country", kaudit_testkit::mmdb::DbValue::named("United States"))]),
    )
    .unwrap();
    let mut asn = kaudit_testkit::mmdb::MmdbWriter::new("GeoLite2-ASN");
    asn.insert_str(
        "203.0.113.0/24",
        &kaudit_testkit::mmdb::DbValue::map(vec![
            ("autonomous_system_number", kaudit_testkit::mmdb::DbValue::U32(64500)),
            ("autonomous_system_organization", kaudit_testkit::mmdb::DbValue::str("Example Hosting Ltd.")),
        ]),
    )
    .unwrap();
    Mem(HashMap::from([("city.mmdb".to_string(), city.finish()), ("asn.mmdb".to_string(), asn.finish())]))
}
