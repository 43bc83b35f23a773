//! Finding an RF2 snapshot's files below a directory by their names (the
//! RF2 file naming convention: `sct2_Concept_Snapshot_INT_20250101.txt`,
//! that is type, content, snapshot, country or namespace, version date),
//! and the edition's module and date for the version URI.

use super::{INTERNATIONAL_MODULE, Relationships, Rf2Options};
use crate::formats::source::{display_name, error, find_files};
use crate::model::LoadError;
use std::path::{Path, PathBuf};

/// The files of one snapshot, each kind in path order.
#[derive(Debug)]
pub(crate) struct Release {
    pub(crate) concepts: Vec<PathBuf>,
    pub(crate) descriptions: Vec<PathBuf>,
    pub(crate) text_definitions: Vec<PathBuf>,
    /// Inferred or stated, as asked.
    pub(crate) relationships: Vec<PathBuf>,
    pub(crate) language: Vec<PathBuf>,
    /// Simple reference sets (`der2_Refset_Simple…Snapshot…`).
    pub(crate) simple_refsets: Vec<PathBuf>,
    pub(crate) module: String,
    /// The version date of the concept file (YYYYMMDD).
    pub(crate) date: String,
}

const CONCEPT: &str = "sct2_concept_snapshot";
const DESCRIPTION: &str = "sct2_description_snapshot";
const TEXT_DEFINITION: &str = "sct2_textdefinition_snapshot";
const INFERRED: &str = "sct2_relationship_snapshot";
const STATED: &str = "sct2_statedrelationship_snapshot";
const LANGUAGE: &str = "der2_crefset_languagesnapshot";
/// `der2_Refset_SimpleSnapshot_INT_…` (and `…_SimpleRefsetSnapshot_…`);
/// only snapshot files, as for every other kind.
const SIMPLE_REFSET: &str = "der2_refset_simple";

fn is_simple_refset_snapshot(lowercase_name: &str) -> bool {
    lowercase_name.starts_with(SIMPLE_REFSET) && lowercase_name.contains("snapshot")
}

impl Release {
    pub(crate) fn find(dir: &Path, options: &Rf2Options) -> Result<Release, LoadError> {
        let prefixes = [
            CONCEPT,
            DESCRIPTION,
            TEXT_DEFINITION,
            INFERRED,
            STATED,
            LANGUAGE,
        ];
        let files = find_files(dir, &|name| {
            name.ends_with(".txt")
                && (prefixes.iter().any(|p| name.starts_with(p)) || is_simple_refset_snapshot(name))
        })?;
        let of = |prefix: &str| -> Vec<PathBuf> {
            files
                .iter()
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|n| n.to_string_lossy().to_lowercase().starts_with(prefix))
                })
                .cloned()
                .collect()
        };
        let directory = dir.display().to_string();
        let required = |prefix: &str, what: &str| -> Result<Vec<PathBuf>, LoadError> {
            let found = of(prefix);
            if found.is_empty() {
                return Err(error(
                    &directory,
                    0,
                    format!("no {what} file below this directory"),
                ));
            }
            Ok(found)
        };
        let concepts = required(CONCEPT, "sct2_Concept_Snapshot")?;
        let descriptions = required(DESCRIPTION, "sct2_Description_Snapshot")?;
        let relationships = match options.relationships {
            Relationships::Inferred => required(INFERRED, "sct2_Relationship_Snapshot")?,
            Relationships::Stated => required(STATED, "sct2_StatedRelationship_Snapshot")?,
        };
        let concept_file = display_name(dir, &concepts[0]);
        let (namespace, date) = name_parts(&concepts[0]).ok_or_else(|| {
            error(
                &concept_file,
                0,
                "cannot read the version date from the file name (…_INT_YYYYMMDD.txt)",
            )
        })?;
        let module = match &options.module_id {
            Some(module) => module.clone(),
            None if namespace.eq_ignore_ascii_case("INT") => INTERNATIONAL_MODULE.to_owned(),
            None => {
                return Err(error(
                    &concept_file,
                    0,
                    format!(
                        "the edition '{namespace}' is not the International Edition: give its module id"
                    ),
                ));
            }
        };
        Ok(Release {
            concepts,
            descriptions,
            text_definitions: of(TEXT_DEFINITION),
            relationships,
            language: of(LANGUAGE),
            simple_refsets: files
                .iter()
                .filter(|path| {
                    path.file_name().is_some_and(|n| {
                        is_simple_refset_snapshot(&n.to_string_lossy().to_lowercase())
                    })
                })
                .cloned()
                .collect(),
            module,
            date,
        })
    }
}

/// The country or namespace and the version date of an RF2 file name.
fn name_parts(path: &Path) -> Option<(String, String)> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let mut parts = stem.rsplit('_');
    let date = parts.next()?;
    let namespace = parts.next()?;
    super::table::parse_effective_time(date)?;
    Some((namespace.to_owned(), date.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::name_parts;
    use std::path::Path;

    #[test]
    fn names_give_namespace_and_date() {
        let check = |name: &str, expected: Option<(&str, &str)>| {
            let parts = name_parts(Path::new(name));
            let parts = parts.as_ref().map(|(n, d)| (n.as_str(), d.as_str()));
            assert_eq!(parts, expected, "{name}");
        };
        check(
            "sct2_Concept_Snapshot_INT_20250101.txt",
            Some(("INT", "20250101")),
        );
        check(
            "sct2_Description_Snapshot-en_US1000124_20250301.txt",
            Some(("US1000124", "20250301")),
        );
        check("sct2_Concept_Snapshot_INT.txt", None);
        check("sct2_Concept_Snapshot_INT_2025.txt", None);
    }
}
