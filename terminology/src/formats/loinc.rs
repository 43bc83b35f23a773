//! A LOINC release directory: `Loinc.csv` (the LOINC table, required), and
//! when present `ComponentHierarchyBySystem.csv` (the multiaxial
//! hierarchy: is-a edges and the LP part concepts on its paths) and
//! `Part.csv` (part concepts). Files are found by name, without regard to
//! case, anywhere below the directory; columns by header name. One row is
//! held at a time.

use super::csv_table::CsvTable;
use super::source::{display_name, error, find_files, open_file};
use super::{DESIGNATION_USE, Records, Step, Stream};
use crate::model::{
    CodeSystemHeader, Designation, LoadError, PropertyDefinition, PropertyKind, PropertyValue,
    Record,
};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// `CodeSystem.url` of LOINC (terminologies.html#loinc).
pub const URL: &str = "http://loinc.org";

/// `Loinc.csv` columns that become string properties of the same name
/// (the property codes of LOINC's own CodeSystem resource).
const PART_COLUMNS: [&str; 10] = [
    "COMPONENT",
    "PROPERTY",
    "TIME_ASPCT",
    "SYSTEM",
    "SCALE_TYP",
    "METHOD_TYP",
    "CLASS",
    "CLASSTYPE",
    "ORDER_OBS",
    "EXAMPLE_UCUM_UNITS",
];

/// `Loinc.csv` columns that become designations (use [`DESIGNATION_USE`]).
const NAME_COLUMNS: [&str; 3] = ["SHORTNAME", "DisplayName", "CONSUMER_NAME"];

/// Opens a LOINC release directory.
pub fn open(dir: &Path) -> Result<(CodeSystemHeader, Records), LoadError> {
    let find = |file: &'static str| -> Result<Option<PathBuf>, LoadError> {
        Ok(find_files(dir, &|name| name == file)?.into_iter().next())
    };
    let Some(table) = find("loinc.csv")? else {
        return Err(error(
            &dir.display().to_string(),
            0,
            "no Loinc.csv below this directory",
        ));
    };
    let mut files = VecDeque::from([(Table::Loinc, table)]);
    if let Some(hierarchy) = find("componenthierarchybysystem.csv")? {
        files.push_back((Table::Hierarchy, hierarchy));
    }
    if let Some(parts) = find("part.csv")? {
        files.push_back((Table::Part, parts));
    }
    let mut properties: Vec<PropertyDefinition> = PART_COLUMNS
        .iter()
        .map(|code| property(code, PropertyKind::String))
        .collect();
    properties.push(property("STATUS", PropertyKind::Code));
    properties.push(property("PartTypeName", PropertyKind::String));
    let header = CodeSystemHeader {
        url: URL.to_owned(),
        version: version_from_directory(dir),
        name: Some("LOINC".to_owned()),
        title: Some("Logical Observation Identifiers, Names and Codes (LOINC)".to_owned()),
        hierarchy_meaning: Some("is-a".to_owned()),
        properties,
        property_uri: None,
    };
    let reader = LoincReader {
        dir: dir.to_path_buf(),
        files,
        current: None,
    };
    Ok((header, Box::new(Stream::new(reader))))
}

fn property(code: &str, kind: PropertyKind) -> PropertyDefinition {
    PropertyDefinition {
        code: code.to_owned(),
        uri: Some(format!("{URL}/property/{code}")),
        description: None,
        kind,
    }
}

/// The version in a release directory's name, e.g. `Loinc_2.78` → `2.78`.
fn version_from_directory(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_string_lossy().to_lowercase();
    let rest = name.strip_prefix("loinc")?;
    let version: String = rest
        .trim_start_matches(['_', '-', ' ', 'v'])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    (version.contains('.') && !version.starts_with('.')).then(|| version.to_owned())
}

#[derive(Debug, Clone, Copy)]
enum Table {
    Loinc,
    Hierarchy,
    Part,
}

/// The open file and where its columns are.
struct Current {
    table: CsvTable,
    columns: Columns,
}

enum Columns {
    Loinc {
        code: usize,
        display: usize,
        status: Option<usize>,
        definition: Option<usize>,
        parts: Vec<(&'static str, usize)>,
        names: Vec<(&'static str, usize)>,
    },
    Hierarchy {
        parent: usize,
        code: usize,
        text: usize,
    },
    Part {
        code: usize,
        type_name: Option<usize>,
        name: Option<usize>,
        display: Option<usize>,
        status: Option<usize>,
    },
}

struct LoincReader {
    dir: PathBuf,
    files: VecDeque<(Table, PathBuf)>,
    current: Option<Current>,
}

impl LoincReader {
    fn open_next(&mut self) -> Result<bool, LoadError> {
        let Some((kind, path)) = self.files.pop_front() else {
            return Ok(false);
        };
        let name = display_name(&self.dir, &path);
        let table = CsvTable::new(open_file(&path, &name)?, name, b',', 0)?;
        let present = |columns: &[&'static str]| -> Vec<(&'static str, usize)> {
            columns
                .iter()
                .filter_map(|c| table.column(c).map(|i| (*c, i)))
                .collect()
        };
        let columns = match kind {
            Table::Loinc => Columns::Loinc {
                code: table.required("LOINC_NUM")?,
                display: table.required("LONG_COMMON_NAME")?,
                status: table.column("STATUS"),
                definition: table.column("DefinitionDescription"),
                parts: present(&PART_COLUMNS),
                names: present(&NAME_COLUMNS),
            },
            Table::Hierarchy => Columns::Hierarchy {
                parent: table.required("IMMEDIATE_PARENT")?,
                code: table.required("CODE")?,
                text: table.required("CODE_TEXT")?,
            },
            Table::Part => Columns::Part {
                code: table.required("PartNumber")?,
                type_name: table.column("PartTypeName"),
                name: table.column("PartName"),
                display: table.column("PartDisplayName"),
                status: table.column("Status"),
            },
        };
        self.current = Some(Current { table, columns });
        Ok(true)
    }
}

impl Step for LoincReader {
    fn step(&mut self, out: &mut VecDeque<Record>) -> Result<bool, LoadError> {
        let Some(current) = &mut self.current else {
            return self.open_next();
        };
        if !current.table.next_row()? {
            self.current = None;
            return Ok(true);
        }
        let table = &current.table;
        match &current.columns {
            Columns::Loinc {
                code,
                display,
                status,
                definition,
                parts,
                names,
            } => {
                let code = non_empty(table, *code, "LOINC_NUM")?;
                let status = table.get_optional(*status).map(str::to_ascii_uppercase);
                let active = match status.as_deref() {
                    None | Some("ACTIVE" | "TRIAL" | "DISCOURAGED") => true,
                    Some("DEPRECATED") => false,
                    Some(other) => {
                        return Err(table.error(format!(
                            "unknown STATUS '{other}' (ACTIVE, TRIAL, DISCOURAGED or DEPRECATED)"
                        )));
                    }
                };
                out.push_back(Record::Concept {
                    code: code.clone(),
                    display: table.get_optional(Some(*display)).map(str::to_owned),
                    definition: table.get_optional(*definition).map(str::to_owned),
                    active,
                });
                if let Some(status) = status {
                    push_property(out, &code, "STATUS", PropertyValue::Code(status));
                }
                for (column, index) in parts {
                    if let Some(value) = table.get_optional(Some(*index)) {
                        push_property(out, &code, column, PropertyValue::String(value.to_owned()));
                    }
                }
                for (column, index) in names {
                    if let Some(value) = table.get_optional(Some(*index)) {
                        push_designation(out, &code, column, value);
                    }
                }
            }
            Columns::Hierarchy { parent, code, text } => {
                let code = non_empty(table, *code, "CODE")?;
                if code.starts_with("LP") {
                    out.push_back(Record::Concept {
                        code: code.clone(),
                        display: table.get_optional(Some(*text)).map(str::to_owned),
                        definition: None,
                        active: true,
                    });
                }
                if let Some(parent) = table.get_optional(Some(*parent)) {
                    out.push_back(Record::IsA {
                        child: code,
                        parent: parent.to_owned(),
                    });
                }
            }
            Columns::Part {
                code,
                type_name,
                name,
                display,
                status,
            } => {
                let code = non_empty(table, *code, "PartNumber")?;
                let name = table.get_optional(*name);
                let display = table.get_optional(*display).or(name);
                let active = match table.get_optional(*status).map(str::to_ascii_uppercase) {
                    None => true,
                    Some(status) => status == "ACTIVE",
                };
                out.push_back(Record::Concept {
                    code: code.clone(),
                    display: display.map(str::to_owned),
                    definition: None,
                    active,
                });
                if let Some(type_name) = table.get_optional(*type_name) {
                    let value = PropertyValue::String(type_name.to_owned());
                    push_property(out, &code, "PartTypeName", value);
                }
                if let Some(name) = name.filter(|name| Some(*name) != display) {
                    push_designation(out, &code, "PartName", name);
                }
            }
        }
        Ok(true)
    }
}

fn non_empty(table: &CsvTable, index: usize, column: &str) -> Result<String, LoadError> {
    match table.get(index) {
        "" => Err(table.error(format!("empty {column}"))),
        value => Ok(value.to_owned()),
    }
}

fn push_property(out: &mut VecDeque<Record>, code: &str, property: &str, value: PropertyValue) {
    out.push_back(Record::Property {
        code: code.to_owned(),
        property: property.to_owned(),
        value,
    });
}

fn push_designation(out: &mut VecDeque<Record>, code: &str, use_code: &str, value: &str) {
    out.push_back(Record::Designation {
        code: code.to_owned(),
        designation: Designation {
            language: Some("en-US".to_owned()),
            use_: Some((DESIGNATION_USE.to_owned(), use_code.to_owned())),
            value: value.to_owned(),
            preferred: false,
        },
    });
}

#[cfg(test)]
mod tests {
    use super::version_from_directory;
    use std::path::Path;

    #[test]
    fn version_comes_from_the_release_directory_name() {
        for (dir, expected) in [
            ("/data/Loinc_2.78", Some("2.78")),
            ("/data/loinc-2.80", Some("2.80")),
            ("/data/Loinc_2.78_MultiAxialHierarchy", Some("2.78")),
            ("/data/loinc", None),
            ("/data/other_2.78", None),
        ] {
            assert_eq!(
                version_from_directory(Path::new(dir)).as_deref(),
                expected,
                "{dir}"
            );
        }
    }
}
