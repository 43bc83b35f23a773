//! The columns of a view: their names, declared FHIR types and the
//! PostgreSQL type a materialised view stores each one as.

use crate::definitions::{Primitive, structure_model};

/// One output column, as the ViewDefinition declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// A database name: `^[A-Za-z][A-Za-z0-9_]*$`, unique in the view.
    pub name: String,
    /// The declared FHIR type (`type`: `string`, `integer`, `dateTime`...),
    /// when there is one.
    pub fhir_type: Option<String>,
    /// Whether the column holds an array of values (`collection: true`).
    pub collection: bool,
    pub description: Option<String>,
    /// Where the column is declared (`select[0].column[1]`).
    pub path: String,
}

impl Column {
    /// The PostgreSQL type for the column's values:
    ///
    /// | FHIR type | PostgreSQL |
    /// |---|---|
    /// | `boolean` | `boolean` |
    /// | `integer`, `positiveInt`, `unsignedInt` | `integer` (FHIR integers are 32-bit) |
    /// | `integer64` | `bigint` |
    /// | `decimal` | `numeric` (keeps the written precision) |
    /// | `date`, `dateTime`, `instant`, `time` | `text`: the ISO 8601 text as written, because partial dates (`1970-06`) and the written offset do not survive `date`/`timestamptz` |
    /// | `string`, `code`, `id`, `uri`, `url`, `canonical`, `oid`, `uuid`, `markdown`, `base64Binary`, `xhtml` | `text` |
    /// | a complex type (`Reference`, `Quantity`...) | `jsonb` |
    /// | no `type` | `text` |
    ///
    /// A `collection` column is a JSON array whatever its type: `jsonb`.
    pub fn sql_type(&self) -> &'static str {
        if self.collection {
            return "jsonb";
        }
        match self.fhir_type.as_deref() {
            None => "text",
            Some("integer64") => "bigint",
            Some(name) => match Primitive::from_code(name) {
                Some(Primitive::Boolean) => "boolean",
                Some(Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt) => {
                    "integer"
                }
                Some(Primitive::Decimal) => "numeric",
                Some(_) => "text",
                None => "jsonb",
            },
        }
    }
}

/// Whether `name` is a valid column or constant name
/// (`^[A-Za-z][A-Za-z0-9_]*$`, the specification's database-name rule).
pub(super) fn is_database_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is a FHIR type a column may declare: a primitive
/// (`integer64` included, for views written against R5) or a type of the
/// R4 structure model.
pub(super) fn is_known_type(name: &str) -> bool {
    name == "integer64"
        || Primitive::from_code(name).is_some()
        || structure_model().node_named(name).is_some()
}
