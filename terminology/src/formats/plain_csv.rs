//! A plain CSV code list (national lists: districts, facility types, local
//! lab codes): optional `#key=value` metadata lines (`url`, `version`,
//! `name`, `title`), then a header row naming the columns `code` and
//! `display` (required), `parent` (codes separated by `|`), `definition`,
//! `active` (true/false), `designation:<language>` and properties, then
//! one concept per row.
//!
//! A property column is named `prop:<name>:<type>` (type `string`, `code`,
//! `integer`, `boolean`, `decimal` or `dateTime`) or `prop:<name>` (a
//! string); any other column is a string property named by its header.

use super::csv_table::CsvTable;
use super::source::{error, open_file, skip_bom};
use super::{Options, Records, Step, Stream};
use crate::model::{
    CodeSystemHeader, Designation, LoadError, PropertyDefinition, PropertyKind, PropertyValue,
    Record,
};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;

/// Options of the CSV reader.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The field separator (`,` by default; `\t` for tab-separated lists).
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: b',' }
    }
}

/// What one column of the file becomes.
#[derive(Debug, Clone)]
enum Column {
    Code,
    Display,
    Parent,
    Definition,
    Active,
    Designation(String),
    Property(String, PropertyKind),
}

/// Opens a CSV list. The url (and version, name, title) come from
/// `options` or else from the file's metadata lines.
pub fn open(path: &Path, options: &Options) -> Result<(CodeSystemHeader, Records), LoadError> {
    let name = path.display().to_string();
    let mut input = open_file(path, &name)?;
    skip_bom(&mut input, &name)?;
    let mut header = CodeSystemHeader::default();
    let mut lines_before = 0;
    let mut line = String::new();
    loop {
        let starts_with_hash = input
            .fill_buf()
            .map_err(|e| error(&name, lines_before + 1, format!("cannot read: {e}")))?
            .first()
            == Some(&b'#');
        if !starts_with_hash {
            break;
        }
        line.clear();
        input
            .read_line(&mut line)
            .map_err(|e| error(&name, lines_before + 1, format!("cannot read: {e}")))?;
        lines_before += 1;
        let Some((key, value)) = line[1..].split_once('=') else {
            return Err(error(
                &name,
                lines_before,
                "a metadata line is '#key=value'",
            ));
        };
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match key.trim() {
            "url" => header.url = value.unwrap_or_default(),
            "version" => header.version = value,
            "name" => header.name = value,
            "title" => header.title = value,
            other => {
                return Err(error(
                    &name,
                    lines_before,
                    format!("unknown metadata key '{other}' (url, version, name or title)"),
                ));
            }
        }
    }
    if let Some(url) = &options.url {
        header.url.clone_from(url);
    }
    if header.url.is_empty() {
        return Err(error(
            &name,
            0,
            "no code system url: add a '#url=' line before the header or give one as an option",
        ));
    }
    let table = CsvTable::new(input, name, options.csv.delimiter, lines_before)?;
    let columns = columns(&table)?;
    for column in &columns {
        if let Column::Property(code, kind) = column {
            header.properties.push(PropertyDefinition {
                code: code.clone(),
                uri: None,
                description: None,
                kind: *kind,
            });
        }
    }
    if columns.iter().any(|c| matches!(c, Column::Parent)) {
        header.hierarchy_meaning = Some("is-a".to_owned());
    }
    Ok((header, Box::new(Stream::new(CsvReader { table, columns }))))
}

fn columns(table: &CsvTable) -> Result<Vec<Column>, LoadError> {
    table.required("code")?;
    table.required("display")?;
    let header_error = |message: String| error(&table.name, table.line, message);
    let mut columns = Vec::new();
    for heading in table.headers() {
        let lower = heading.to_ascii_lowercase();
        let column = match lower.as_str() {
            "code" => Column::Code,
            "display" => Column::Display,
            "parent" => Column::Parent,
            "definition" => Column::Definition,
            "active" => Column::Active,
            _ if lower.starts_with("designation:") => {
                let language = &heading["designation:".len()..];
                if language.is_empty() {
                    return Err(header_error(format!("column {heading}: no language")));
                }
                Column::Designation(language.to_owned())
            }
            _ if lower.starts_with("prop:") => {
                let spec = &heading["prop:".len()..];
                let (code, kind) = match spec.split_once(':') {
                    Some((code, kind)) => (code, property_kind(kind).ok_or_else(|| {
                        header_error(format!(
                            "column {heading}: unknown type '{kind}' (string, code, integer, boolean, decimal or dateTime)"
                        ))
                    })?),
                    None => (spec, PropertyKind::String),
                };
                if code.is_empty() {
                    return Err(header_error(format!("column {heading}: no property name")));
                }
                Column::Property(code.to_owned(), kind)
            }
            "" => return Err(header_error("a column without a name".to_owned())),
            _ => Column::Property(heading.clone(), PropertyKind::String),
        };
        columns.push(column);
    }
    Ok(columns)
}

fn property_kind(name: &str) -> Option<PropertyKind> {
    Some(match name {
        "string" => PropertyKind::String,
        "code" => PropertyKind::Code,
        "integer" => PropertyKind::Integer,
        "boolean" => PropertyKind::Boolean,
        "decimal" => PropertyKind::Decimal,
        "dateTime" => PropertyKind::DateTime,
        _ => return None,
    })
}

struct CsvReader {
    table: CsvTable,
    columns: Vec<Column>,
}

impl Step for CsvReader {
    fn step(&mut self, out: &mut VecDeque<Record>) -> Result<bool, LoadError> {
        let table = &mut self.table;
        if !table.next_row()? {
            return Ok(false);
        }
        let mut code = String::new();
        let mut display = None;
        let mut definition = None;
        let mut active = true;
        let mut rest = Vec::new();
        for (index, column) in self.columns.iter().enumerate() {
            let value = table.get(index);
            match column {
                Column::Code => code = value.to_owned(),
                Column::Display => display = Some(value.to_owned()).filter(|v| !v.is_empty()),
                Column::Definition => definition = Some(value.to_owned()).filter(|v| !v.is_empty()),
                Column::Active => {
                    active = match value.to_ascii_lowercase().as_str() {
                        "" | "true" => true,
                        "false" => false,
                        _ => {
                            return Err(
                                table.error(format!("bad active value '{value}' (true or false)"))
                            );
                        }
                    }
                }
                _ if value.is_empty() => {}
                _ => rest.push((column, value)),
            }
        }
        if code.is_empty() {
            return Err(table.error("empty code"));
        }
        out.push_back(Record::Concept {
            code: code.clone(),
            display,
            definition,
            active,
        });
        for (column, value) in rest {
            let record = match column {
                Column::Parent => {
                    for parent in value.split('|').map(str::trim).filter(|p| !p.is_empty()) {
                        out.push_back(Record::IsA {
                            child: code.clone(),
                            parent: parent.to_owned(),
                        });
                    }
                    continue;
                }
                Column::Designation(language) => Record::Designation {
                    code: code.clone(),
                    designation: Designation {
                        language: Some(language.clone()),
                        use_: None,
                        value: value.to_owned(),
                        preferred: false,
                    },
                },
                Column::Property(property, kind) => Record::Property {
                    code: code.clone(),
                    property: property.clone(),
                    value: property_value(*kind, value).ok_or_else(|| {
                        table.error(format!(
                            "bad {kind:?} value '{value}' for property {property}"
                        ))
                    })?,
                },
                _ => continue,
            };
            out.push_back(record);
        }
        Ok(true)
    }
}

/// A property value of the given type, if the text is one.
fn property_value(kind: PropertyKind, text: &str) -> Option<PropertyValue> {
    Some(match kind {
        PropertyKind::String | PropertyKind::Coding => PropertyValue::String(text.to_owned()),
        PropertyKind::Code => PropertyValue::Code(text.to_owned()),
        PropertyKind::Integer => PropertyValue::Integer(text.parse().ok()?),
        PropertyKind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => PropertyValue::Boolean(true),
            "false" => PropertyValue::Boolean(false),
            _ => return None,
        },
        PropertyKind::Decimal => {
            is_decimal(text).then_some(())?;
            PropertyValue::Decimal(text.to_owned())
        }
        PropertyKind::DateTime => {
            is_date_time(text).then_some(())?;
            PropertyValue::DateTime(text.to_owned())
        }
    })
}

/// FHIR `decimal`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.is_none_or(digits)
        && exponent.is_none_or(digits)
}

/// FHIR `dateTime` shape: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a date with
/// `Thh:mm:ss` and a zone (checked by shape, digit by digit).
fn is_date_time(text: &str) -> bool {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let shape_matches = |value: &str, shape: &str| {
        value.len() == shape.len()
            && value.bytes().zip(shape.bytes()).all(|(v, s)| {
                if s == b'9' {
                    v.is_ascii_digit()
                } else {
                    v == s
                }
            })
    };
    let date_ok = ["9999", "9999-99", "9999-99-99"]
        .iter()
        .any(|shape| shape_matches(date, shape));
    match time {
        None => date_ok,
        Some(time) => {
            date_ok && date.len() == 10 && time.len() >= 8 && shape_matches(&time[..8], "99:99:99")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_property_values() {
        let check = |kind, text: &str, expected: Option<PropertyValue>| {
            assert_eq!(property_value(kind, text), expected, "{kind:?} {text}");
        };
        check(
            PropertyKind::Integer,
            "42",
            Some(PropertyValue::Integer(42)),
        );
        check(PropertyKind::Integer, "4.2", None);
        check(
            PropertyKind::Boolean,
            "TRUE",
            Some(PropertyValue::Boolean(true)),
        );
        check(PropertyKind::Boolean, "yes", None);
        check(
            PropertyKind::Decimal,
            "-1.50",
            Some(PropertyValue::Decimal("-1.50".into())),
        );
        check(
            PropertyKind::Decimal,
            "1e-3",
            Some(PropertyValue::Decimal("1e-3".into())),
        );
        check(PropertyKind::Decimal, "01.5", None);
        check(PropertyKind::Decimal, "1.", None);
        check(
            PropertyKind::DateTime,
            "2024-05",
            Some(PropertyValue::DateTime("2024-05".into())),
        );
        check(
            PropertyKind::DateTime,
            "2024-05-01T10:00:00Z",
            Some(PropertyValue::DateTime("2024-05-01T10:00:00Z".into())),
        );
        check(PropertyKind::DateTime, "May 2024", None);
        check(
            PropertyKind::Code,
            "x",
            Some(PropertyValue::Code("x".into())),
        );
    }
}
