//! Validation of a ViewDefinition's JSON into the select tree that
//! evaluation walks: known elements only, required `resource` and
//! `select`, database names, one iteration per select, unionAll branches
//! with the same columns, and FHIRPath that parses and uses only defined
//! constants.

use super::column::{is_database_name, is_known_type};
use super::constant::{BUILT_IN_CONSTANTS, constants};
use super::json::{array, check_keys, object, optional_string, required_string};
use super::{Column, ViewDefinition, ViewError, parse_expression};
use crate::fhirpath::Expression;
use crate::id::ResourceType;
use serde_json::{Map, Value as Json};
use std::collections::HashSet;

/// An expression with the ViewDefinition path it came from.
#[derive(Debug, Clone)]
pub(super) struct Located {
    pub expr: Expression,
    pub at: String,
}

/// A column's expression.
#[derive(Debug, Clone)]
pub(super) struct ColumnPath {
    pub expr: Expression,
    pub at: String,
    pub collection: bool,
}

/// How a select chooses the nodes its content is evaluated on.
#[derive(Debug, Clone)]
pub(super) enum Iteration {
    /// The parent's node.
    Parent,
    ForEach(Located),
    ForEachOrNull(Located),
    /// Every node reached by applying the paths recursively, depth first.
    Repeat(Vec<Located>),
}

/// A `select` element: its columns come first, then those of its nested
/// selects, then those of its unionAll branches (which all have the same).
#[derive(Debug, Clone)]
pub(super) struct Select {
    pub iteration: Iteration,
    pub columns: Vec<ColumnPath>,
    pub selects: Vec<Select>,
    pub union_all: Vec<Select>,
    /// The number of columns its rows have.
    pub width: usize,
}

/// The elements a ViewDefinition may have: its own, and those every
/// (canonical) resource has.
const VIEW_KEYS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "url",
    "identifier",
    "version",
    "name",
    "title",
    "status",
    "experimental",
    "date",
    "publisher",
    "contact",
    "description",
    "useContext",
    "jurisdiction",
    "purpose",
    "copyright",
    "resource",
    "profile",
    "fhirVersion",
    "constant",
    "select",
    "where",
];
const SELECT_KEYS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "column",
    "select",
    "forEach",
    "forEachOrNull",
    "repeat",
    "unionAll",
];
const COLUMN_KEYS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "name",
    "path",
    "description",
    "collection",
    "type",
    "tag",
];
const WHERE_KEYS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "path",
    "description",
];

pub(super) fn view_definition(json: &Json) -> Result<ViewDefinition, ViewError> {
    let map = object(json, "")?;
    check_keys(map, VIEW_KEYS, "")?;
    if let Some(rt) = map.get("resourceType") {
        if rt.as_str() != Some("ViewDefinition") {
            return Err(ViewError::new("resourceType", "must be 'ViewDefinition'"));
        }
    }
    if let Some(status) = map.get("status") {
        let known = ["draft", "active", "retired", "unknown"];
        if !status.as_str().is_some_and(|s| known.contains(&s)) {
            return Err(ViewError::new(
                "status",
                "must be draft, active, retired or unknown",
            ));
        }
    }
    let resource = match map.get("resource") {
        None => return Err(ViewError::new("resource", "is required")),
        Some(r) => r
            .as_str()
            .and_then(ResourceType::parse)
            .ok_or_else(|| ViewError::new("resource", "must name an R4 resource type"))?,
    };
    let name = optional_string(map, "name", "")?.map(str::to_owned);
    let constants = constants(map)?;
    let mut parser = Parser {
        constants: constants.iter().map(|c| c.name.clone()).collect(),
        columns: Vec::new(),
    };
    let filters = parser.filters(map)?;
    let selects = match map.get("select") {
        None => return Err(ViewError::new("select", "is required")),
        Some(s) => parser.select_list(s, "select")?,
    };
    let root = Select {
        iteration: Iteration::Parent,
        columns: Vec::new(),
        width: selects.iter().map(|s| s.width).sum(),
        selects,
        union_all: Vec::new(),
    };
    let mut seen = HashSet::new();
    for column in &parser.columns {
        if !seen.insert(column.name.as_str()) {
            return Err(ViewError::new(
                format!("{}.name", column.path),
                format!("column name '{}' is used twice", column.name),
            ));
        }
    }
    Ok(ViewDefinition {
        resource,
        name,
        constants,
        filters,
        root,
        columns: parser.columns,
    })
}

struct Parser {
    constants: Vec<String>,
    /// The view's columns, in output order, as they are parsed.
    columns: Vec<Column>,
}

impl Parser {
    fn expression(&self, v: Option<&Json>, at: &str) -> Result<Expression, ViewError> {
        let text = match v {
            None => return Err(ViewError::new(at, "is required")),
            Some(Json::String(s)) if !s.trim().is_empty() => s,
            Some(_) => {
                return Err(ViewError::new(
                    at,
                    "must be a FHIRPath expression (a string)",
                ));
            }
        };
        let expr = parse_expression(text, at)?;
        for name in expr.external_constants() {
            let known = self.constants.iter().any(|c| c == name)
                || BUILT_IN_CONSTANTS.contains(&name)
                || name.starts_with("vs-")
                || name.starts_with("ext-");
            if !known {
                return Err(ViewError::new(at, format!("undefined constant %{name}")));
            }
        }
        Ok(expr)
    }

    fn filters(&self, map: &Map<String, Json>) -> Result<Vec<Located>, ViewError> {
        let mut out = Vec::new();
        for (k, item) in array(map.get("where"), "where")?.iter().enumerate() {
            let at = format!("where[{k}]");
            let w = object(item, &at)?;
            check_keys(w, WHERE_KEYS, &at)?;
            optional_string(w, "description", &at)?;
            let at = format!("{at}.path");
            out.push(Located {
                expr: self.expression(w.get("path"), &at)?,
                at,
            });
        }
        Ok(out)
    }

    fn select_list(&mut self, v: &Json, at: &str) -> Result<Vec<Select>, ViewError> {
        let items = array(Some(v), at)?;
        if items.is_empty() {
            return Err(ViewError::new(at, "must not be empty"));
        }
        items
            .iter()
            .enumerate()
            .map(|(k, item)| self.select(item, &format!("{at}[{k}]")))
            .collect()
    }

    fn select(&mut self, v: &Json, at: &str) -> Result<Select, ViewError> {
        let map = object(v, at)?;
        check_keys(map, SELECT_KEYS, at)?;
        let iteration = self.iteration(map, at)?;
        let first_column = self.columns.len();
        let columns = self.columns(map, at)?;
        let selects = match map.get("select") {
            Some(s) => self.select_list(s, &format!("{at}.select"))?,
            None => Vec::new(),
        };
        let union_all = match map.get("unionAll") {
            Some(u) => self.union_all(u, &format!("{at}.unionAll"))?,
            None => Vec::new(),
        };
        if columns.is_empty() && selects.is_empty() && union_all.is_empty() {
            return Err(ViewError::new(at, "needs a column, select or unionAll"));
        }
        Ok(Select {
            iteration,
            columns,
            selects,
            union_all,
            width: self.columns.len() - first_column,
        })
    }

    fn iteration(&self, map: &Map<String, Json>, at: &str) -> Result<Iteration, ViewError> {
        let present: Vec<&str> = ["forEach", "forEachOrNull", "repeat"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        if present.len() > 1 {
            return Err(ViewError::new(
                at,
                "only one of forEach, forEachOrNull and repeat is allowed",
            ));
        }
        let located = |key: &str| -> Result<Located, ViewError> {
            let at = format!("{at}.{key}");
            Ok(Located {
                expr: self.expression(map.get(key), &at)?,
                at,
            })
        };
        Ok(match present.first() {
            None => Iteration::Parent,
            Some(&"forEach") => Iteration::ForEach(located("forEach")?),
            Some(&"forEachOrNull") => Iteration::ForEachOrNull(located("forEachOrNull")?),
            Some(_) => {
                let repeat_at = format!("{at}.repeat");
                let paths = array(map.get("repeat"), &repeat_at)?;
                if paths.is_empty() {
                    return Err(ViewError::new(&repeat_at, "must not be empty"));
                }
                let mut out = Vec::new();
                for (k, p) in paths.iter().enumerate() {
                    let at = format!("{repeat_at}[{k}]");
                    out.push(Located {
                        expr: self.expression(Some(p), &at)?,
                        at,
                    });
                }
                Iteration::Repeat(out)
            }
        })
    }

    fn columns(&mut self, map: &Map<String, Json>, at: &str) -> Result<Vec<ColumnPath>, ViewError> {
        let Some(v) = map.get("column") else {
            return Ok(Vec::new());
        };
        let items = array(Some(v), &format!("{at}.column"))?;
        if items.is_empty() {
            return Err(ViewError::new(format!("{at}.column"), "must not be empty"));
        }
        let mut out = Vec::new();
        for (k, item) in items.iter().enumerate() {
            let at = format!("{at}.column[{k}]");
            let c = object(item, &at)?;
            check_keys(c, COLUMN_KEYS, &at)?;
            let name = required_string(c, "name", &at)?;
            if !is_database_name(name) {
                return Err(ViewError::new(
                    format!("{at}.name"),
                    format!("'{name}' is not a valid column name (^[A-Za-z][A-Za-z0-9_]*$)"),
                ));
            }
            let fhir_type = optional_string(c, "type", &at)?;
            if let Some(t) = fhir_type.filter(|t| !is_known_type(t)) {
                return Err(ViewError::new(
                    format!("{at}.type"),
                    format!("unknown FHIR type '{t}'"),
                ));
            }
            let collection = match c.get("collection") {
                None => false,
                Some(Json::Bool(b)) => *b,
                Some(_) => {
                    return Err(ViewError::new(
                        format!("{at}.collection"),
                        "must be a boolean",
                    ));
                }
            };
            tags(c.get("tag"), &at)?;
            let path_at = format!("{at}.path");
            out.push(ColumnPath {
                expr: self.expression(c.get("path"), &path_at)?,
                at: path_at,
                collection,
            });
            self.columns.push(Column {
                name: name.to_owned(),
                fhir_type: fhir_type.map(str::to_owned),
                collection,
                description: optional_string(c, "description", &at)?.map(str::to_owned),
                path: at,
            });
        }
        Ok(out)
    }

    /// The branches of a unionAll; only the first branch's columns are
    /// the view's, and every other branch must match them by name, order,
    /// type and `collection`.
    fn union_all(&mut self, v: &Json, at: &str) -> Result<Vec<Select>, ViewError> {
        let items = array(Some(v), at)?;
        if items.is_empty() {
            return Err(ViewError::new(at, "must not be empty"));
        }
        let start = self.columns.len();
        let mut branches = Vec::new();
        for (k, item) in items.iter().enumerate() {
            let branch_at = format!("{at}[{k}]");
            branches.push(self.select(item, &branch_at)?);
            if k == 0 {
                continue;
            }
            let first = &self.columns[start..start + branches[0].width];
            let this = &self.columns[start + branches[0].width..];
            let same = first.len() == this.len()
                && first.iter().zip(this).all(|(a, b)| {
                    a.name == b.name && a.fhir_type == b.fhir_type && a.collection == b.collection
                });
            if !same {
                let names = |cs: &[Column]| {
                    cs.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(ViewError::new(
                    branch_at,
                    format!(
                        "unionAll branches must have the same columns in the same order: ({}) differs from ({})",
                        names(this),
                        names(first)
                    ),
                ));
            }
            self.columns.truncate(start + branches[0].width);
        }
        Ok(branches)
    }
}

fn tags(v: Option<&Json>, at: &str) -> Result<(), ViewError> {
    for (k, tag) in array(v, &format!("{at}.tag"))?.iter().enumerate() {
        let tag_at = format!("{at}.tag[{k}]");
        let t = object(tag, &tag_at)?;
        check_keys(t, &["id", "extension", "name", "value"], &tag_at)?;
        required_string(t, "name", &tag_at)?;
        required_string(t, "value", &tag_at)?;
    }
    Ok(())
}
