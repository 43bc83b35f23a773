//! Stores a code system from a stream of [`Record`]s: concepts, is-a edges
//! (with their transitive closure), designations, properties, reference set
//! members and the words of the text filter, with multi-row `unnest`
//! inserts in batches so that memory holds one batch plus a code → number
//! map and the edges. Everything happens in the
//! caller's transaction: a load that fails leaves the previous content as
//! it was. Loading the same url and version again replaces that version;
//! other versions stay addressable.

mod batch;
mod declare;
mod header;
mod rows;

use header::header_resource;
pub use header::{derived_id, kind_code};
pub use rows::delete_content;
use rows::{insert_pairs, property_columns};

use crate::model::{CodeSystemHeader, LoadError, Record};
use crate::{TermError, Tx, text};
use serde_json::Value;
use std::collections::HashMap;

/// Rows buffered per table before an insert.
const BATCH: usize = 50_000;

/// Loads of more concepts than this refresh the tables' statistics.
const ANALYZE_AFTER: usize = 10_000;

/// Where and how a load stores its code system.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The owning tenant, or [`crate::GLOBAL`].
    pub tenant: String,
    /// Overrides the header's version.
    pub version: Option<String>,
    /// `r4`, `load` or `rest`.
    pub origin: &'static str,
    /// The FHIR id the CodeSystem is read at (derived from the url if none).
    pub resource_id: Option<String>,
    /// The CodeSystem resource to serve (a header-only one is built if none).
    pub resource: Option<Value>,
    /// `CodeSystem.content`.
    pub content: String,
    /// `CodeSystem.valueSet`: the value set of all its codes.
    pub value_set: Option<String>,
}

impl LoadOptions {
    pub fn new(tenant: &str, origin: &'static str) -> LoadOptions {
        LoadOptions {
            tenant: tenant.to_owned(),
            version: None,
            origin,
            resource_id: None,
            resource: None,
            content: "complete".to_owned(),
            value_set: None,
        }
    }
}

/// What a load stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    pub system_id: i64,
    pub url: String,
    pub version: String,
    pub concepts: usize,
    pub edges: usize,
    pub designations: usize,
    pub properties: usize,
    /// Reference set memberships.
    pub members: usize,
}

/// Why a load failed: the input (file and line) or its content.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    #[error("{0}")]
    Input(LoadError),
    #[error("{0}")]
    Content(String),
    #[error("{0}")]
    Term(#[from] TermError),
}

impl From<tokio_postgres::Error> for LoadFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        LoadFailure::Term(e.into())
    }
}

impl From<LoadFailure> for TermError {
    fn from(f: LoadFailure) -> Self {
        match f {
            LoadFailure::Term(e) => e,
            other => TermError::unprocessable(fhir::IssueCode::Invalid, other.to_string()),
        }
    }
}

/// concept, language, use system, use code, value, preferred.
type DesignationRow = (
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    bool,
);

struct Concept {
    code: String,
    display: Option<String>,
    definition: Option<String>,
    active: bool,
}

/// A load in progress. [`Loader::push`] each record, then [`Loader::finish`].
pub struct Loader<'t, 'c> {
    tx: &'t Tx<'c>,
    tenant: String,
    system_id: i64,
    url: String,
    version: String,
    ids: HashMap<String, u32>,
    concepts: Vec<Option<Concept>>,
    parents: Vec<Vec<u32>>,
    used_as_parent: Vec<bool>,
    designations: Vec<DesignationRow>,
    properties: Vec<(i32, String, &'static str, String, Option<String>)>,
    words: Vec<(String, i32)>,
    /// (reference set, member) concept numbers.
    members: Vec<(i32, i32)>,
    n_designations: usize,
    n_properties: usize,
    n_members: usize,
    /// Properties the content used that the header did not declare.
    declare: declare::Undeclared,
}

impl std::fmt::Debug for Loader<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("url", &self.url).finish()
    }
}

impl<'t, 'c> Loader<'t, 'c> {
    /// Creates (or empties, for a reload of the same version) the code
    /// system's row.
    pub async fn start(
        tx: &'t Tx<'c>,
        options: &LoadOptions,
        header: &CodeSystemHeader,
    ) -> Result<Loader<'t, 'c>, LoadFailure> {
        if header.url.trim().is_empty() {
            return Err(LoadFailure::Content("the code system has no url".into()));
        }
        let version = options
            .version
            .clone()
            .or_else(|| header.version.clone())
            .unwrap_or_default();
        let resource_id = options
            .resource_id
            .clone()
            .unwrap_or_else(|| derived_id(&header.url, &version));
        let resource = options
            .resource
            .clone()
            .unwrap_or_else(|| header_resource(header, &resource_id, &version, &options.content));
        let existing = tx
            .query_opt(
                "SELECT id FROM term_code_systems WHERE tenant = $1 AND url = $2 AND version = $3",
                &[&options.tenant, &header.url, &version],
            )
            .await?;
        let system_id: i64 = match existing {
            Some(row) => {
                let id: i64 = row.get(0);
                delete_content(tx, &options.tenant, id).await?;
                tx.execute(
                    "UPDATE term_code_systems SET resource_id = $3, name = $4, title = $5, content = $6, \
                     hierarchy_meaning = $7, value_set = $8, resource = $9::text::json, origin = $10, \
                     loaded_at = now() WHERE tenant = $1 AND id = $2",
                    &[
                        &options.tenant,
                        &id,
                        &resource_id,
                        &header.name,
                        &header.title,
                        &options.content,
                        &header.hierarchy_meaning,
                        &options.value_set,
                        &resource.to_string(),
                        &options.origin,
                    ],
                )
                .await?;
                id
            }
            None => tx
                .query_one(
                    "INSERT INTO term_code_systems (tenant, url, version, resource_id, name, title, content, \
                     hierarchy_meaning, value_set, resource, origin) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::json, $11) RETURNING id",
                    &[
                        &options.tenant,
                        &header.url,
                        &version,
                        &resource_id,
                        &header.name,
                        &header.title,
                        &options.content,
                        &header.hierarchy_meaning,
                        &options.value_set,
                        &resource.to_string(),
                        &options.origin,
                    ],
                )
                .await?
                .get(0),
        };
        Ok(Loader {
            tx,
            tenant: options.tenant.clone(),
            system_id,
            url: header.url.clone(),
            version,
            ids: HashMap::new(),
            concepts: Vec::new(),
            parents: Vec::new(),
            used_as_parent: Vec::new(),
            designations: Vec::new(),
            properties: Vec::new(),
            words: Vec::new(),
            members: Vec::new(),
            n_designations: 0,
            n_properties: 0,
            n_members: 0,
            declare: declare::Undeclared::new(
                header,
                options.resource.is_none().then_some(resource),
            ),
        })
    }

    fn id(&mut self, code: &str) -> u32 {
        if let Some(id) = self.ids.get(code) {
            return *id;
        }
        let id = self.concepts.len() as u32;
        self.ids.insert(code.to_owned(), id);
        self.concepts.push(None);
        self.parents.push(Vec::new());
        self.used_as_parent.push(false);
        id
    }

    /// Takes one record (COPYing a batch when one is full).
    pub async fn push(&mut self, record: Record) -> Result<(), LoadFailure> {
        match record {
            Record::Concept {
                code,
                display,
                definition,
                active,
            } => {
                let id = self.id(&code);
                self.concepts[id as usize] = Some(Concept {
                    code,
                    display,
                    definition,
                    active,
                });
            }
            Record::IsA { child, parent } => {
                let (c, p) = (self.id(&child), self.id(&parent));
                self.used_as_parent[p as usize] = true;
                if !self.parents[c as usize].contains(&p) {
                    self.parents[c as usize].push(p);
                }
            }
            Record::Designation { code, designation } => {
                let id = self.id(&code);
                for word in text::words(&designation.value) {
                    self.words.push((word, id as i32));
                }
                let (use_system, use_code) = designation.use_.unzip();
                self.designations.push((
                    id as i32,
                    designation.language,
                    use_system,
                    use_code,
                    designation.value,
                    designation.preferred,
                ));
                self.n_designations += 1;
            }
            Record::Property {
                code,
                property,
                value,
            } => {
                let id = self.id(&code);
                let (kind, value, system) = property_columns(value);
                self.declare.saw(&property, kind);
                self.properties
                    .push((id as i32, property, kind, value, system));
                self.n_properties += 1;
            }
            Record::Member { set, code } => {
                let (set, member) = (self.id(&set), self.id(&code));
                self.members.push((set as i32, member as i32));
                self.n_members += 1;
            }
        }
        if self.designations.len() >= BATCH
            || self.properties.len() >= BATCH
            || self.words.len() >= BATCH
            || self.members.len() >= BATCH
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Checks the content (every referenced code defined, no is-a cycle),
    /// stores the concepts, edges and closure, and makes this version the
    /// current one of its url.
    pub async fn finish(mut self) -> Result<LoadSummary, LoadFailure> {
        let mut codes: Vec<&str> = vec![""; self.concepts.len()];
        for (code, id) in &self.ids {
            codes[*id as usize] = code;
        }
        if let Some(missing) = self.concepts.iter().position(Option::is_none) {
            let code = codes[missing];
            return Err(LoadFailure::Content(if self.used_as_parent[missing] {
                format!("the is-a parent {code:?} is not a concept of {}", self.url)
            } else {
                format!(
                    "{code:?} has a designation, a property or a reference set member, \
                     or is a member, but is not a concept of {}",
                    self.url
                )
            }));
        }
        let pairs = crate::closure::closure(&self.parents).map_err(|c| {
            LoadFailure::Content(format!(
                "the is-a hierarchy has a cycle through {:?}",
                codes[c as usize]
            ))
        })?;
        let mut concept_words = Vec::new();
        for (id, concept) in self.concepts.iter().enumerate() {
            if let Some(display) = concept.as_ref().and_then(|c| c.display.as_deref()) {
                for word in text::words(display) {
                    concept_words.push((word, id as i32));
                }
            }
        }
        self.words.extend(concept_words);
        self.flush().await?;
        let (tenant, sid) = (self.tenant.clone(), self.system_id);
        let concepts: Vec<(i32, &Concept)> = self
            .concepts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i as i32, c.as_ref()?)))
            .collect();
        for rows in concepts.chunks(BATCH) {
            let ids: Vec<i32> = rows.iter().map(|r| r.0).collect();
            let codes: Vec<&str> = rows.iter().map(|r| r.1.code.as_str()).collect();
            let displays: Vec<Option<&str>> = rows.iter().map(|r| r.1.display.as_deref()).collect();
            let definitions: Vec<Option<&str>> =
                rows.iter().map(|r| r.1.definition.as_deref()).collect();
            let active: Vec<bool> = rows.iter().map(|r| r.1.active).collect();
            self.tx
                .execute(
                    "INSERT INTO term_concepts (tenant, system_id, concept_id, code, display, definition, \
                     active) SELECT $1, $2, a, b, c, d, e FROM unnest($3::int4[], $4::text[], $5::text[], \
                     $6::text[], $7::bool[]) AS x(a, b, c, d, e)",
                    &[&tenant, &sid, &ids, &codes, &displays, &definitions, &active],
                )
                .await?;
        }
        let edges: Vec<(i32, i32)> = self
            .parents
            .iter()
            .enumerate()
            .flat_map(|(c, ps)| ps.iter().map(move |p| (c as i32, *p as i32)))
            .collect();
        insert_pairs(
            self.tx,
            "term_edges (tenant, system_id, child, parent)",
            &tenant,
            sid,
            &edges,
            "",
        )
        .await?;
        let pairs: Vec<(i32, i32)> = pairs
            .into_iter()
            .map(|(a, d)| (a as i32, d as i32))
            .collect();
        insert_pairs(
            self.tx,
            "term_closure (tenant, system_id, ancestor, descendant)",
            &tenant,
            sid,
            &pairs,
            "",
        )
        .await?;
        let n = concepts.len() as i32;
        self.tx
            .execute(
                "UPDATE term_code_systems SET concept_count = $3, is_current = (id = $2) \
                 WHERE tenant = $1 AND url = $4",
                &[&tenant, &sid, &n, &self.url],
            )
            .await?;
        let declared = self.declare.finish(|code| {
            let id = *self.ids.get(code)?;
            self.concepts[id as usize].as_ref()?.display.clone()
        });
        if let Some(resource) = declared {
            self.tx
                .execute(
                    "UPDATE term_code_systems SET resource = $3::text::json WHERE tenant = $1 AND id = $2",
                    &[&tenant, &sid, &resource.to_string()],
                )
                .await?;
        }
        crate::store::bump_changes(self.tx, &tenant).await?;
        if concepts.len() > ANALYZE_AFTER {
            // Fresh statistics, so that the next operations are planned
            // for the new content rather than the empty tables autovacuum
            // last saw. (A role that does not own the tables is skipped
            // with a notice; autovacuum follows soon.)
            self.tx
                .batch_execute(
                    "ANALYZE term_concepts, term_closure, term_edges, term_words, \
                     term_designations, term_properties, term_refset_members",
                )
                .await?;
        }
        Ok(LoadSummary {
            system_id: sid,
            url: self.url.clone(),
            version: self.version.clone(),
            concepts: concepts.len(),
            edges: edges.len(),
            designations: self.n_designations,
            properties: self.n_properties,
            members: self.n_members,
        })
    }
}
