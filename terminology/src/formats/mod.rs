//! The readers of terminology distribution formats: each turns a release
//! (a file or a directory) into a [`CodeSystemHeader`] and a stream of
//! [`Record`]s, reading line by line or event by event so that memory does
//! not grow with the release (docs/terminology-formats.md gives each
//! format's mapping and its memory bound). [`open`] is the one entry point.
//!
//! An error ends the stream: the iterator yields it once and then nothing.
//! Whether parents and other references name codes that exist is not the
//! reader's concern; the store checks that.

pub mod claml;
mod csv_table;
pub mod icd10cm;
pub mod loinc;
pub mod plain_csv;
pub mod rf2;
pub(crate) mod source;
mod xml;

use crate::model::{CodeSystemHeader, LoadError, Record};
use std::collections::VecDeque;
use std::path::Path;
use std::str::FromStr;

/// The `designation.use` system of designations that have no standard use
/// code: ClaML rubric kinds (`inclusion`, `preferredLong`), ICD-10-CM
/// `inclusionTerm`, LOINC `SHORTNAME`, `DisplayName` and `CONSUMER_NAME`.
pub const DESIGNATION_USE: &str = "https://baraza.dev/fhir/CodeSystem/designation-use";

/// A distribution format, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// WHO ICD-10 in ClaML XML.
    Icd10,
    /// The ICD-10-CM tabular XML file of CMS/NCHS.
    Icd10Cm,
    /// A LOINC release directory.
    Loinc,
    /// A SNOMED CT RF2 snapshot directory.
    Snomed,
    /// A plain CSV list (docs/terminology-formats.md).
    Csv,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Icd10,
        Format::Icd10Cm,
        Format::Loinc,
        Format::Snomed,
        Format::Csv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Icd10 => "icd10",
            Format::Icd10Cm => "icd10cm",
            Format::Loinc => "loinc",
            Format::Snomed => "snomed",
            Format::Csv => "csv",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown terminology format {s:?} (icd10, icd10cm, loinc, snomed or csv)")
            })
    }
}

/// What a caller may set for any format. `url`, `version`, `name` and
/// `title` replace what the release says (for CSV they are the defaults
/// that the file's `#url=` lines may not override: the command line wins).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub url: Option<String>,
    pub version: Option<String>,
    pub name: Option<String>,
    pub title: Option<String>,
    pub rf2: rf2::Rf2Options,
    pub csv: plain_csv::CsvOptions,
}

/// The records of one load; `Send` so that a load can run on any thread.
pub type Records = Box<dyn Iterator<Item = Result<Record, LoadError>> + Send>;

/// Opens a release of `format` at `path` (a file for icd10, icd10cm and csv;
/// a directory for loinc and snomed).
pub fn open(
    format: Format,
    path: &Path,
    options: &Options,
) -> Result<(CodeSystemHeader, Records), LoadError> {
    let (mut header, records) = match format {
        Format::Icd10 => claml::open(path)?,
        Format::Icd10Cm => icd10cm::open(path)?,
        Format::Loinc => loinc::open(path)?,
        Format::Snomed => rf2::open(path, &options.rf2)?,
        Format::Csv => plain_csv::open(path, options)?,
    };
    if let Some(url) = &options.url {
        header.url.clone_from(url);
    }
    if options.version.is_some() {
        header.version.clone_from(&options.version);
    }
    if options.name.is_some() {
        header.name.clone_from(&options.name);
    }
    if options.title.is_some() {
        header.title.clone_from(&options.title);
    }
    Ok((header, records))
}

/// Guesses the format of a release: a directory with an RF2 concept file is
/// snomed, one with `Loinc.csv` is loinc; an XML file is icd10 or icd10cm
/// by its root element; a `.csv` file is csv.
pub fn detect(path: &Path) -> Option<Format> {
    if path.is_dir() {
        let has = |prefix: &str| {
            source::find_files(path, &|name| name.starts_with(prefix))
                .map(|files| !files.is_empty())
                .unwrap_or(false)
        };
        if has("sct2_concept_snapshot") {
            return Some(Format::Snomed);
        }
        if has("loinc.csv") {
            return Some(Format::Loinc);
        }
        return None;
    }
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    if name.ends_with(".csv") {
        return Some(Format::Csv);
    }
    if name.ends_with(".xml") {
        return match xml::root_element(path)?.as_str() {
            "ClaML" => Some(Format::Icd10),
            "ICD10CM.tabular" => Some(Format::Icd10Cm),
            _ => None,
        };
    }
    None
}

/// A reader that produces records in steps: each step reads a little input
/// (one XML element, one line) and queues what it yields.
pub(crate) trait Step {
    /// Reads on, pushing records onto `out`; false once the input is done.
    fn step(&mut self, out: &mut VecDeque<Record>) -> Result<bool, LoadError>;
}

/// Turns a [`Step`] reader into the iterator of records, ending after the
/// input or after the first error.
pub(crate) struct Stream<S> {
    reader: S,
    queue: VecDeque<Record>,
    done: bool,
}

impl<S: Step> Stream<S> {
    pub(crate) fn new(reader: S) -> Stream<S> {
        Stream {
            reader,
            queue: VecDeque::new(),
            done: false,
        }
    }

    /// Starts with records already produced (e.g. while reading a header).
    pub(crate) fn with_queue(reader: S, queue: VecDeque<Record>) -> Stream<S> {
        Stream {
            reader,
            queue,
            done: false,
        }
    }
}

impl<S: Step> Iterator for Stream<S> {
    type Item = Result<Record, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.queue.pop_front() {
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            match self.reader.step(&mut self.queue) {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.queue.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_parse_back() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert_eq!("SNOMED".parse::<Format>(), Ok(Format::Snomed));
        assert!("rf2".parse::<Format>().is_err());
    }
}
