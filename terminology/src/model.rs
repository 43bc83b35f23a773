//! What a loader produces and the store consumes: a code system's header,
//! then a stream of records. Records are small and independent so that a
//! loader never holds a whole release in memory: a concept, a designation,
//! a property value and an is-a edge arrive separately and in any order
//! (an RF2 release keeps them in different files).

/// Where a record came from, for errors: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A load that cannot go on: the file and line, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct LoadError {
    pub position: Position,
    pub message: String,
}

/// The code system a load fills (CodeSystem resource elements).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CodeSystemHeader {
    /// `CodeSystem.url`, e.g. `http://snomed.info/sct`.
    pub url: String,
    /// `CodeSystem.version`; a reload with another version keeps the old one.
    pub version: Option<String>,
    pub name: Option<String>,
    pub title: Option<String>,
    /// `CodeSystem.hierarchyMeaning`, normally `is-a`.
    pub hierarchy_meaning: Option<String>,
    /// The properties that concepts use (`CodeSystem.property`). A
    /// property found in the content but not declared here is declared
    /// when the load ends (see [`CodeSystemHeader::property_uri`]).
    pub properties: Vec<PropertyDefinition>,
    /// The `uri` of a property the content uses but the header does not
    /// declare: this prefix followed by the property's code (SNOMED CT's
    /// attributes: `http://snomed.info/id/` and the attribute's id).
    pub property_uri: Option<String>,
}

/// `CodeSystem.property`: `code` and `type` (code | Coding | string |
/// integer | boolean | dateTime | decimal).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDefinition {
    pub code: String,
    pub uri: Option<String>,
    pub description: Option<String>,
    pub kind: PropertyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    Code,
    Coding,
    String,
    Integer,
    Boolean,
    DateTime,
    Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    Code(String),
    Coding {
        system: String,
        code: String,
    },
    String(String),
    Integer(i64),
    Boolean(bool),
    DateTime(String),
    /// Decimal text as written.
    Decimal(String),
}

/// `CodeSystem.concept.designation`.
#[derive(Debug, Clone, PartialEq)]
pub struct Designation {
    /// BCP-47 language tag, e.g. `en`, `fr-CA`.
    pub language: Option<String>,
    /// `designation.use` as (system, code), e.g. SNOMED's
    /// `900000000000003001` (fully specified name).
    pub use_: Option<(String, String)>,
    pub value: String,
    /// Preferred for its language (a language refset's "preferred"
    /// acceptability, or the display itself).
    pub preferred: bool,
}

/// One piece of a code system's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A concept. A later record for the same code replaces the earlier
    /// one's display, definition and status.
    Concept {
        code: String,
        display: Option<String>,
        definition: Option<String>,
        active: bool,
    },
    /// `child` is-a `parent` (both codes of this code system).
    IsA { child: String, parent: String },
    Designation {
        code: String,
        designation: Designation,
    },
    Property {
        code: String,
        property: String,
        value: PropertyValue,
    },
    /// `code` is a member of the subset `set`, itself a concept of this
    /// code system (a SNOMED CT simple reference set).
    Member { set: String, code: String },
}
