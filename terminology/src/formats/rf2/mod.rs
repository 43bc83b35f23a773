//! A SNOMED CT RF2 snapshot directory, read in six passes over its files,
//! one row at a time:
//!
//! 1. the language refsets: the ids of the descriptions *preferred* in the
//!    chosen refset (a `HashSet<u64>`: about 16 bytes per preferred
//!    description, some 12 MB for the International Edition's en-US);
//! 2. concepts: a concept record and the properties `inactive`,
//!    `moduleId`, `effectiveTime`, `sufficientlyDefined`; the ids of
//!    inactive concepts are kept (a `HashSet<u64>`, a few MB);
//! 3. relationships (inferred, or stated if asked): active is-a edges, and
//!    every other active relationship as a property of its source (the
//!    attribute's id → the destination's id);
//! 4. simple reference sets: a member record for each active member that
//!    is a concept;
//! 5. descriptions and text definitions: a designation for each active
//!    one, and the concept again with its FSN as its display;
//! 6. descriptions again: the concept with its preferred synonym as its
//!    display, which replaces the FSN.
//!
//! The concept must be sent again to carry a display found in another file
//! (a later concept record replaces the display), and it must then carry
//! its status, hence the set of inactive concepts. Nothing else grows with
//! the release.

mod files;
mod rows;
pub mod synthetic;
mod table;

use super::source::display_name;
use super::{Records, Step, Stream};
use crate::model::{CodeSystemHeader, LoadError, PropertyDefinition, PropertyKind, Record};
use rows::{Columns, Joins};
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use table::Rf2Table;

/// `CodeSystem.url` of SNOMED CT.
pub const URL: &str = "http://snomed.info/sct";
/// The International Edition's module.
pub const INTERNATIONAL_MODULE: &str = "900000000000207008";
/// The US English language refset (the default).
pub const US_ENGLISH: &str = "900000000000509007";
/// The GB English language refset.
pub const GB_ENGLISH: &str = "900000000000508004";
/// Description types.
pub const FSN: u64 = 900000000000003001;
pub const SYNONYM: u64 = 900000000000013009;
pub const DEFINITION: u64 = 900000000000550004;
/// Acceptability in a language refset.
pub const PREFERRED: u64 = 900000000000548007;
pub const ACCEPTABLE: u64 = 900000000000549004;
/// The is-a relationship type.
pub const IS_A: u64 = 116680003;
/// `definitionStatusId` of a fully defined concept.
pub const FULLY_DEFINED: u64 = 900000000000073002;
/// The `uri` of an attribute property: this and the attribute's id.
pub const ATTRIBUTE_URI: &str = "http://snomed.info/id/";

/// Whether an SCTID identifies a concept: its partition identifier (the
/// two digits before the check digit) is `00` or `10` (a concept of the
/// International Edition or of an extension), not a description's or a
/// relationship's.
pub fn is_concept_id(id: u64) -> bool {
    id >= 100_000 && (id / 10) % 10 == 0 && (id / 100) % 10 <= 1
}

/// Which relationships give the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Relationships {
    /// `sct2_Relationship_Snapshot` (the classifier's result).
    #[default]
    Inferred,
    /// `sct2_StatedRelationship_Snapshot` (as authored).
    Stated,
}

/// Options of the RF2 reader.
#[derive(Debug, Clone)]
pub struct Rf2Options {
    /// The language refset whose preferred synonym is the display.
    pub language_refset: String,
    pub relationships: Relationships,
    /// The edition's module for the version URI; taken from the file names
    /// (`_INT_` → the International Edition) when not given.
    pub module_id: Option<String>,
}

impl Default for Rf2Options {
    fn default() -> Self {
        Rf2Options {
            language_refset: US_ENGLISH.to_owned(),
            relationships: Relationships::Inferred,
            module_id: None,
        }
    }
}

/// A multiplicative hash for SCTIDs (not attacker-chosen keys), several
/// times faster than SipHash on the millions of lookups of a release.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// Opens an RF2 snapshot directory.
pub fn open(dir: &Path, options: &Rf2Options) -> Result<(CodeSystemHeader, Records), LoadError> {
    let release = files::Release::find(dir, options)?;
    let language_refset: u64 = options.language_refset.parse().map_err(|_| {
        super::source::error(
            &dir.display().to_string(),
            0,
            format!("bad language refset id '{}'", options.language_refset),
        )
    })?;
    let property = |code: &str, kind, uri: Option<&str>| PropertyDefinition {
        code: code.to_owned(),
        uri: uri.map(str::to_owned),
        description: None,
        kind,
    };
    let header = CodeSystemHeader {
        url: URL.to_owned(),
        version: Some(format!("{URL}/{}/version/{}", release.module, release.date)),
        name: Some("SNOMED CT".to_owned()),
        title: Some(if release.module == INTERNATIONAL_MODULE {
            "SNOMED CT International Edition".to_owned()
        } else {
            format!("SNOMED CT (module {})", release.module)
        }),
        hierarchy_meaning: Some("is-a".to_owned()),
        properties: vec![
            property(
                "inactive",
                PropertyKind::Boolean,
                Some("http://hl7.org/fhir/concept-properties#inactive"),
            ),
            property("moduleId", PropertyKind::Code, None),
            property("effectiveTime", PropertyKind::DateTime, None),
            property("sufficientlyDefined", PropertyKind::Boolean, None),
        ],
        property_uri: Some(ATTRIBUTE_URI.to_owned()),
    };
    let reader = Rf2Reader {
        dir: dir.to_path_buf(),
        language_refset,
        stages: VecDeque::from([
            (Stage::Language, release.language),
            (Stage::Concepts, release.concepts),
            (Stage::Relationships, release.relationships),
            (Stage::Refsets, release.simple_refsets),
            (
                Stage::Descriptions,
                [release.descriptions.clone(), release.text_definitions].concat(),
            ),
            (Stage::Displays, release.descriptions),
        ]),
        current: None,
        joins: Joins::default(),
    };
    Ok((header, Box::new(Stream::new(reader))))
}

/// The passes over the release, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Language,
    Concepts,
    Relationships,
    Refsets,
    Descriptions,
    Displays,
}

struct Rf2Reader {
    dir: PathBuf,
    language_refset: u64,
    /// The files of each pass still to read.
    stages: VecDeque<(Stage, Vec<PathBuf>)>,
    current: Option<(Rf2Table, Columns)>,
    joins: Joins,
}

impl Rf2Reader {
    /// Opens the next file; false when every pass is done.
    fn open_next(&mut self) -> Result<bool, LoadError> {
        while let Some((stage, files)) = self.stages.front_mut() {
            let stage = *stage;
            if files.is_empty() {
                self.stages.pop_front();
                continue;
            }
            let path = files.remove(0);
            // Without preferred synonyms the FSNs stay the displays.
            if stage == Stage::Displays && self.joins.preferred.is_empty() {
                continue;
            }
            let table = Rf2Table::open(&path, display_name(&self.dir, &path))?;
            let columns = Columns::of(stage, &table, self.language_refset)?;
            self.current = Some((table, columns));
            return Ok(true);
        }
        Ok(false)
    }
}

impl Step for Rf2Reader {
    fn step(&mut self, out: &mut VecDeque<Record>) -> Result<bool, LoadError> {
        let Some((table, columns)) = &mut self.current else {
            return self.open_next();
        };
        if table.next_row()? {
            columns.read(table, &mut self.joins, out)?;
        } else {
            self.current = None;
        }
        Ok(true)
    }
}
