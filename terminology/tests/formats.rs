//! The distribution-format readers (`terminology::formats`) on the small
//! hand-written releases in `tests/fixtures`, on malformed variants of
//! them, and on a large synthetic RF2 snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "formats/claml.rs"]
mod claml;
#[path = "formats/csv.rs"]
mod csv;
#[path = "formats/icd10cm.rs"]
mod icd10cm;
#[path = "formats/loinc.rs"]
mod loinc;
#[path = "formats/rf2.rs"]
mod rf2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use terminology::formats::{self, Format, Options, Records};
use terminology::model::{CodeSystemHeader, Designation, LoadError, PropertyValue, Record};

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A fresh, empty directory for one test.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("baraza-formats-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes a file (creating its directories) and returns its path.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a fixture directory into a temporary one (to damage a file).
pub fn copy_fixture(source: &Path, target: &Path) {
    for entry in std::fs::read_dir(source).unwrap() {
        let entry = entry.unwrap();
        let to = target.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_fixture(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// What a load produced, merged the way the store merges it.
pub struct Loaded {
    pub header: CodeSystemHeader,
    pub records: Vec<Record>,
}

pub fn load(format: Format, path: &Path, options: &Options) -> Loaded {
    let (header, records) = formats::open(format, path, options).unwrap();
    let records = records.collect::<Result<Vec<_>, _>>().unwrap();
    Loaded { header, records }
}

/// The error of a load that must fail (when opening or while streaming).
pub fn load_error(format: Format, path: &Path, options: &Options) -> LoadError {
    match formats::open(format, path, options) {
        Err(e) => e,
        Ok((_, records)) => records
            .filter_map(Result::err)
            .next()
            .expect("the load should fail"),
    }
}

/// Asserts an error's file (its end), line and a part of its message.
pub fn assert_error(error: &LoadError, file_ends_with: &str, line: u64, message: &str) {
    assert!(
        error.position.file.ends_with(file_ends_with)
            && error.position.line == line
            && error.message.contains(message),
        "expected {file_ends_with}:{line} with {message:?}, got {error}"
    );
}

impl Loaded {
    /// code → (display, active), the last concept record winning.
    pub fn concepts(&self) -> BTreeMap<&str, (Option<&str>, bool)> {
        let mut concepts = BTreeMap::new();
        for record in &self.records {
            if let Record::Concept {
                code,
                display,
                active,
                ..
            } = record
            {
                concepts.insert(code.as_str(), (display.as_deref(), *active));
            }
        }
        concepts
    }

    pub fn display(&self, code: &str) -> Option<&str> {
        self.concepts().get(code).and_then(|(display, _)| *display)
    }

    pub fn active(&self, code: &str) -> bool {
        self.concepts()[code].1
    }

    pub fn definition(&self, code: &str) -> Option<&str> {
        self.records.iter().rev().find_map(|r| match r {
            Record::Concept {
                code: c,
                definition,
                ..
            } if c == code => Some(definition.as_deref()),
            _ => None,
        })?
    }

    /// The parents of a code, sorted.
    pub fn parents(&self, code: &str) -> Vec<&str> {
        let mut parents: Vec<&str> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::IsA { child, parent } if child == code => Some(parent.as_str()),
                _ => None,
            })
            .collect();
        parents.sort_unstable();
        parents.dedup();
        parents
    }

    pub fn edges(&self) -> usize {
        let mut edges: Vec<(&str, &str)> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::IsA { child, parent } => Some((child.as_str(), parent.as_str())),
                _ => None,
            })
            .collect();
        edges.sort_unstable();
        edges.dedup();
        edges.len()
    }

    pub fn designations(&self, code: &str) -> Vec<&Designation> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Designation {
                    code: c,
                    designation,
                } if c == code => Some(designation),
                _ => None,
            })
            .collect()
    }

    pub fn properties(&self, code: &str, name: &str) -> Vec<&PropertyValue> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Property {
                    code: c,
                    property,
                    value,
                } if c == code && property == name => Some(value),
                _ => None,
            })
            .collect()
    }

    /// The members of the subset `set`, sorted.
    pub fn members(&self, set: &str) -> Vec<&str> {
        let mut members: Vec<&str> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Member { set: s, code } if s == set => Some(code.as_str()),
                _ => None,
            })
            .collect();
        members.sort_unstable();
        members
    }

    pub fn property(&self, code: &str, name: &str) -> Option<&PropertyValue> {
        let values = self.properties(code, name);
        assert!(values.len() <= 1, "{code} has several {name}: {values:?}");
        values.first().copied()
    }
}

pub fn string(value: &str) -> PropertyValue {
    PropertyValue::String(value.to_owned())
}

#[test]
fn the_records_iterator_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (_, records): (_, Records) = formats::open(
        Format::Csv,
        &fixture("csv/facility-types.csv"),
        &Options {
            url: Some("urn:test".to_owned()),
            ..Options::default()
        },
    )
    .unwrap();
    assert_send(&records);
    let handle = std::thread::spawn(move || records.count());
    assert_eq!(handle.join().unwrap(), 4);
}

#[test]
fn formats_are_detected_from_the_release() {
    let rf2 = fixture("rf2/SnomedCT_TestRF2_PRODUCTION_20250101T120000Z");
    for (path, expected) in [
        (fixture("claml/icd10-test.xml"), Some(Format::Icd10)),
        (
            fixture("icd10cm/icd10cm_tabular_test.xml"),
            Some(Format::Icd10Cm),
        ),
        (fixture("loinc/Loinc_2.78"), Some(Format::Loinc)),
        (rf2, Some(Format::Snomed)),
        (fixture("csv/districts.csv"), Some(Format::Csv)),
        (fixture("csv"), None),
    ] {
        assert_eq!(formats::detect(&path), expected, "{}", path.display());
    }
}

#[test]
fn options_override_the_release_header() {
    let options = Options {
        url: Some("http://example.org/icd-10-national".to_owned()),
        version: Some("2024-national".to_owned()),
        ..Options::default()
    };
    let loaded = load(Format::Icd10, &fixture("claml/icd10-test.xml"), &options);
    assert_eq!(loaded.header.url, "http://example.org/icd-10-national");
    assert_eq!(loaded.header.version.as_deref(), Some("2024-national"));
    assert_eq!(loaded.header.name.as_deref(), Some("ICD-10-TEST"));
}

#[test]
fn a_missing_input_is_an_error_naming_it() {
    for format in Format::ALL {
        let error = load_error(
            format,
            Path::new("/nonexistent/release"),
            &Options::default(),
        );
        assert!(
            error.position.file.contains("/nonexistent/release"),
            "{format}: {error}"
        );
        assert_eq!(error.position.line, 0, "{format}: {error}");
    }
}
