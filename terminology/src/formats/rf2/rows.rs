//! What each RF2 row becomes, by file kind: the columns a pass needs
//! (found once per file) and the records of one row, with the two sets
//! that join the files (see the module documentation of `rf2`).

use super::table::Rf2Table;
use super::{FSN, FULLY_DEFINED, IS_A, IdSet, PREFERRED, SYNONYM, Stage, URL, is_concept_id};
use crate::model::{Designation, LoadError, PropertyValue, Record};
use std::collections::VecDeque;

/// What the passes learn for later ones.
#[derive(Default)]
pub(super) struct Joins {
    /// Descriptions preferred in the chosen language refset.
    pub(super) preferred: IdSet,
    /// Inactive concepts.
    pub(super) inactive: IdSet,
}

/// Where a file's columns are, by pass.
pub(super) enum Columns {
    Language {
        refset_id: u64,
        active: usize,
        refset: usize,
        component: usize,
        acceptability: usize,
    },
    Concept {
        id: usize,
        time: usize,
        active: usize,
        module: usize,
        status: usize,
    },
    Relationship {
        active: usize,
        source: usize,
        destination: usize,
        kind: usize,
    },
    Member {
        active: usize,
        refset: usize,
        component: usize,
    },
    Description {
        /// The second pass: only preferred synonyms, as displays.
        displays: bool,
        id: usize,
        active: usize,
        concept: usize,
        language: usize,
        kind: usize,
        term: usize,
    },
}

impl Columns {
    pub(super) fn of(
        stage: Stage,
        table: &Rf2Table,
        language_refset: u64,
    ) -> Result<Columns, LoadError> {
        Ok(match stage {
            Stage::Language => Columns::Language {
                refset_id: language_refset,
                active: table.column("active")?,
                refset: table.column("refsetId")?,
                component: table.column("referencedComponentId")?,
                acceptability: table.column("acceptabilityId")?,
            },
            Stage::Concepts => Columns::Concept {
                id: table.column("id")?,
                time: table.column("effectiveTime")?,
                active: table.column("active")?,
                module: table.column("moduleId")?,
                status: table.column("definitionStatusId")?,
            },
            Stage::Relationships => Columns::Relationship {
                active: table.column("active")?,
                source: table.column("sourceId")?,
                destination: table.column("destinationId")?,
                kind: table.column("typeId")?,
            },
            Stage::Refsets => Columns::Member {
                active: table.column("active")?,
                refset: table.column("refsetId")?,
                component: table.column("referencedComponentId")?,
            },
            Stage::Descriptions | Stage::Displays => Columns::Description {
                displays: stage == Stage::Displays,
                id: table.column("id")?,
                active: table.column("active")?,
                concept: table.column("conceptId")?,
                language: table.column("languageCode")?,
                kind: table.column("typeId")?,
                term: table.column("term")?,
            },
        })
    }

    /// Reads the current row of `table`.
    pub(super) fn read(
        &self,
        table: &Rf2Table,
        joins: &mut Joins,
        out: &mut VecDeque<Record>,
    ) -> Result<(), LoadError> {
        match *self {
            Columns::Language {
                refset_id,
                active,
                refset,
                component,
                acceptability,
            } => {
                if table.active(active)?
                    && table.id(refset)? == refset_id
                    && table.id(acceptability)? == PREFERRED
                {
                    joins.preferred.insert(table.id(component)?);
                }
            }
            Columns::Concept {
                id,
                time,
                active,
                module,
                status,
            } => {
                let (code, is_active) = (table.id(id)?, table.active(active)?);
                let properties = [
                    ("inactive", PropertyValue::Boolean(!is_active)),
                    (
                        "moduleId",
                        PropertyValue::Code(table.id(module)?.to_string()),
                    ),
                    (
                        "effectiveTime",
                        PropertyValue::DateTime(table.effective_time(time)?),
                    ),
                    (
                        "sufficientlyDefined",
                        PropertyValue::Boolean(table.id(status)? == FULLY_DEFINED),
                    ),
                ];
                if !is_active {
                    joins.inactive.insert(code);
                }
                let code = code.to_string();
                out.push_back(Record::Concept {
                    code: code.clone(),
                    display: None,
                    definition: None,
                    active: is_active,
                });
                for (property, value) in properties {
                    out.push_back(Record::Property {
                        code: code.clone(),
                        property: property.to_owned(),
                        value,
                    });
                }
            }
            Columns::Relationship {
                active,
                source,
                destination,
                kind,
            } => {
                if !table.active(active)? {
                    return Ok(());
                }
                let (kind, source, destination) =
                    (table.id(kind)?, table.id(source)?, table.id(destination)?);
                // Is-a gives the hierarchy; any other attribute is a
                // property of the source (snomedct.html: attribute id →
                // destination concept).
                out.push_back(if kind == IS_A {
                    Record::IsA {
                        child: source.to_string(),
                        parent: destination.to_string(),
                    }
                } else {
                    Record::Property {
                        code: source.to_string(),
                        property: kind.to_string(),
                        value: PropertyValue::Code(destination.to_string()),
                    }
                });
            }
            Columns::Member {
                active,
                refset,
                component,
            } => {
                // A simple refset may list descriptions or relationships;
                // only concepts are value-set members.
                let (set, member) = (table.id(refset)?, table.id(component)?);
                if table.active(active)? && is_concept_id(member) {
                    out.push_back(Record::Member {
                        set: set.to_string(),
                        code: member.to_string(),
                    });
                }
            }
            Columns::Description { .. } => self.read_description(table, joins, out)?,
        }
        Ok(())
    }

    fn read_description(
        &self,
        table: &Rf2Table,
        joins: &Joins,
        out: &mut VecDeque<Record>,
    ) -> Result<(), LoadError> {
        let Columns::Description {
            displays,
            id,
            active,
            concept,
            language,
            kind,
            term,
        } = *self
        else {
            return Ok(());
        };
        if !table.active(active)? {
            return Ok(());
        }
        let (description, concept, kind) = (table.id(id)?, table.id(concept)?, table.id(kind)?);
        let term = table.field(term);
        let preferred = joins.preferred.contains(&description);
        // A display found here reaches the store as the concept again,
        // with its status.
        let with_display = || Record::Concept {
            code: concept.to_string(),
            display: Some(term.to_owned()),
            definition: None,
            active: !joins.inactive.contains(&concept),
        };
        if displays {
            if kind == SYNONYM && preferred {
                out.push_back(with_display());
            }
            return Ok(());
        }
        if term.is_empty() {
            return Err(table.error("empty term"));
        }
        out.push_back(Record::Designation {
            code: concept.to_string(),
            designation: Designation {
                language: Some(table.field(language).to_owned()).filter(|l| !l.is_empty()),
                use_: Some((URL.to_owned(), kind.to_string())),
                value: term.to_owned(),
                preferred,
            },
        });
        // Every active FSN: the display of concepts without a preferred
        // synonym in the chosen refset (the second pass replaces it).
        if kind == FSN {
            out.push_back(with_display());
        }
        Ok(())
    }
}
