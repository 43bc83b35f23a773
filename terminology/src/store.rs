//! Reading the terminology tables: code systems by url and version, their
//! concepts, and the change counter. A tenant's rows and global rows
//! (tenant '') are both visible; a tenant's own code system of a url wins
//! over a global one.

use crate::{TermError, Tx};
use serde_json::Value;

/// One stored code-system version.
#[derive(Debug, Clone)]
pub struct CodeSystemRow {
    /// The owning tenant ('' for global content).
    pub tenant: String,
    pub id: i64,
    pub url: String,
    pub version: String,
    pub name: Option<String>,
    pub content: String,
    pub hierarchy_meaning: Option<String>,
    pub concept_count: i32,
}

impl CodeSystemRow {
    /// Whether the stored concepts are the code system's every concept.
    pub fn complete(&self) -> bool {
        self.content == "complete"
    }

    fn from_row(row: &tokio_postgres::Row) -> CodeSystemRow {
        CodeSystemRow {
            tenant: row.get(0),
            id: row.get(1),
            url: row.get(2),
            version: row.get(3),
            name: row.get(4),
            content: row.get(5),
            hierarchy_meaning: row.get(6),
            concept_count: row.get(7),
        }
    }
}

const SYSTEM_COLUMNS: &str =
    "tenant, id, url, version, name, content, hierarchy_meaning, concept_count";

/// The code system `url` (at `version`, or the current one) visible to
/// `tenant`.
pub async fn find_system(
    tx: &Tx<'_>,
    tenant: &str,
    url: &str,
    version: Option<&str>,
) -> Result<Option<CodeSystemRow>, TermError> {
    // Within a transaction that read the change stamp and wrote nothing,
    // the answer for that stamp may come from memory.
    if let Some(known) = crate::cache::cached_system(tx, tenant, url, version) {
        return Ok(known);
    }
    let row = tx
        .query_opt(
            &format!(
                "SELECT {SYSTEM_COLUMNS} FROM term_code_systems \
                 WHERE tenant IN ($1, '') AND url = $2 AND ($3::text IS NULL OR version = $3) \
                 ORDER BY (tenant = $1) DESC, is_current DESC, loaded_at DESC LIMIT 1"
            ),
            &[&tenant, &url, &version],
        )
        .await?;
    let found = row.as_ref().map(CodeSystemRow::from_row);
    crate::cache::keep_system(tx, tenant, url, version, &found);
    Ok(found)
}

/// The versions of `url` visible to `tenant` (for error messages).
pub async fn versions_of(tx: &Tx<'_>, tenant: &str, url: &str) -> Result<Vec<String>, TermError> {
    let rows = tx
        .query(
            "SELECT DISTINCT version FROM term_code_systems WHERE tenant IN ($1, '') AND url = $2 ORDER BY 1",
            &[&tenant, &url],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The code system `url`, or a clear error naming what is known.
pub async fn require_system(
    tx: &Tx<'_>,
    tenant: &str,
    url: &str,
    version: Option<&str>,
) -> Result<CodeSystemRow, TermError> {
    if let Some(found) = find_system(tx, tenant, url, version).await? {
        return Ok(found);
    }
    let known = versions_of(tx, tenant, url).await?;
    Err(match (version, known.is_empty()) {
        (_, true) => TermError::not_found(format!("the code system {url} is not known")),
        (Some(v), false) => TermError::not_found(format!(
            "the code system {url} has no version {v:?} (known: {})",
            known
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (None, false) => TermError::not_found(format!("the code system {url} is not known")),
    })
}

/// Every code system visible to `tenant`: (url, version, name, concept count).
pub async fn list_systems(
    tx: &Tx<'_>,
    tenant: &str,
) -> Result<Vec<(String, String, Option<String>, i32)>, TermError> {
    let rows = tx
        .query(
            "SELECT url, version, name, concept_count FROM term_code_systems \
             WHERE tenant IN ($1, '') ORDER BY url, version",
            &[&tenant],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// One concept of a code-system version.
#[derive(Debug, Clone)]
pub struct ConceptRow {
    pub concept_id: i32,
    pub code: String,
    pub display: Option<String>,
    pub definition: Option<String>,
    pub active: bool,
}

pub async fn find_concept(
    tx: &Tx<'_>,
    system: &CodeSystemRow,
    code: &str,
) -> Result<Option<ConceptRow>, TermError> {
    let row = tx
        .query_opt(
            "SELECT concept_id, code, display, definition, active FROM term_concepts \
             WHERE tenant = $1 AND system_id = $2 AND code = $3",
            &[&system.tenant, &system.id, &code],
        )
        .await?;
    Ok(row.map(|r| ConceptRow {
        concept_id: r.get(0),
        code: r.get(1),
        display: r.get(2),
        definition: r.get(3),
        active: r.get(4),
    }))
}

/// Raises the change counter of `tenant` ('' for global content).
pub async fn bump_changes(tx: &Tx<'_>, tenant: &str) -> Result<(), TermError> {
    tx.execute(
        "INSERT INTO term_changes (tenant, n) VALUES ($1, 1) \
         ON CONFLICT (tenant) DO UPDATE SET n = term_changes.n + 1",
        &[&tenant],
    )
    .await?;
    Ok(())
}

/// The change counter `tenant`'s operations see (its own plus global), with
/// the database's name (the cache's key: one process may serve several
/// databases, as the tests do).
pub async fn changes(tx: &Tx<'_>, tenant: &str) -> Result<(String, i64), TermError> {
    let row = tx
        .query_one(
            "SELECT current_database()::text, \
             coalesce((SELECT sum(n) FROM term_changes WHERE tenant IN ($1, '')), 0)::int8",
            &[&tenant],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// A stored resource (CodeSystem, ValueSet, ConceptMap) visible to
/// `tenant` by its FHIR id, for reads that fall back to global content.
pub async fn resource_by_id(
    tx: &Tx<'_>,
    tenant: &str,
    resource_type: &str,
    id: &str,
) -> Result<Option<Value>, TermError> {
    let table = match resource_type {
        "CodeSystem" => "term_code_systems",
        "ValueSet" => "term_value_sets",
        "ConceptMap" => "term_concept_maps",
        _ => return Ok(None),
    };
    let row = tx
        .query_opt(
            &format!(
                "SELECT resource::text FROM {table} WHERE tenant IN ($1, '') AND resource_id = $2 \
                 ORDER BY (tenant = $1) DESC LIMIT 1"
            ),
            &[&tenant, &id],
        )
        .await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok()))
}

/// Global resources of a type by `url` (and `version`), for searches that
/// fall back to global content.
pub async fn global_resources_by_url(
    tx: &Tx<'_>,
    resource_type: &str,
    url: &str,
    version: Option<&str>,
) -> Result<Vec<Value>, TermError> {
    let table = match resource_type {
        "CodeSystem" => "term_code_systems",
        "ValueSet" => "term_value_sets",
        "ConceptMap" => "term_concept_maps",
        _ => return Ok(Vec::new()),
    };
    let rows = tx
        .query(
            &format!(
                "SELECT resource::text FROM {table} WHERE tenant = '' AND url = $1 \
                 AND ($2::text IS NULL OR version = $2) ORDER BY version"
            ),
            &[&url, &version],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.get::<_, String>(0)).ok())
        .collect())
}

/// The codes related to `concept_id` by is-a: its descendants (and itself)
/// when `below`, else its ancestors (and itself). At most `limit + 1`.
pub async fn related_codes(
    tx: &Tx<'_>,
    system: &CodeSystemRow,
    concept_id: i32,
    below: bool,
    limit: usize,
) -> Result<Vec<String>, TermError> {
    let (from, to) = if below {
        ("ancestor", "descendant")
    } else {
        ("descendant", "ancestor")
    };
    let rows = tx
        .query(
            &format!(
                "SELECT c.code FROM term_closure cl JOIN term_concepts c ON c.tenant = cl.tenant \
                 AND c.system_id = cl.system_id AND c.concept_id = cl.{to} \
                 WHERE cl.tenant = $1 AND cl.system_id = $2 AND cl.{from} = $3 LIMIT $4"
            ),
            &[
                &system.tenant,
                &system.id,
                &concept_id,
                &((limit + 1) as i64),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
