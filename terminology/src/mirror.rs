//! CodeSystem, ValueSet and ConceptMap resources mirrored into the
//! terminology tables: those written through the REST API (in the same
//! transaction as the write), and the R4 ones loaded at first start.

use crate::load::{LoadOptions, Loader, delete_content};
use crate::{TermError, Tx};
use serde_json::Value;

/// The resource types whose writes are mirrored.
pub fn mirrored(resource_type: &str) -> bool {
    matches!(resource_type, "CodeSystem" | "ValueSet" | "ConceptMap")
}

/// Stores `resource` (of a mirrored type) for `tenant`, replacing what an
/// earlier version of the same resource id stored.
pub async fn store(
    tx: &Tx<'_>,
    tenant: &str,
    origin: &'static str,
    resource: &Value,
) -> Result<(), TermError> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let id = resource.get("id").and_then(Value::as_str).unwrap_or("");
    remove(tx, tenant, resource_type, id, origin).await?;
    let text = |key: &str| resource.get(key).and_then(Value::as_str);
    let Some(url) = text("url") else {
        crate::store::bump_changes(tx, tenant).await?;
        return Ok(());
    };
    let version = text("version").unwrap_or("");
    match resource_type {
        "CodeSystem" => {
            let (header, records) = crate::resource::code_system_records(resource);
            let mut options = LoadOptions::new(tenant, origin);
            options.resource_id = Some(id.to_owned());
            options.resource = Some(resource.clone());
            options.content = text("content").unwrap_or("complete").to_owned();
            options.value_set = text("valueSet").map(str::to_owned);
            let mut loader = Loader::start(tx, &options, &header).await?;
            for record in records {
                loader.push(record).await?;
            }
            loader.finish().await?;
        }
        "ValueSet" => {
            tx.execute(
                "INSERT INTO term_value_sets (tenant, url, version, resource_id, resource, origin) \
                 VALUES ($1, $2, $3, $4, $5::text::json, $6)",
                &[&tenant, &url, &version, &id, &resource.to_string(), &origin],
            )
            .await?;
        }
        "ConceptMap" => store_concept_map(tx, tenant, origin, resource, url, version, id).await?,
        _ => {}
    }
    crate::store::bump_changes(tx, tenant).await?;
    Ok(())
}

/// Removes what resource `id` of `resource_type` stored for `tenant`.
pub async fn remove(
    tx: &Tx<'_>,
    tenant: &str,
    resource_type: &str,
    id: &str,
    origin: &str,
) -> Result<(), TermError> {
    match resource_type {
        "CodeSystem" => {
            let rows = tx
                .query(
                    "DELETE FROM term_code_systems WHERE tenant = $1 AND resource_id = $2 AND origin = $3 \
                     RETURNING id, url",
                    &[&tenant, &id, &origin],
                )
                .await?;
            for row in rows {
                let (system_id, url): (i64, String) = (row.get(0), row.get(1));
                delete_content(tx, tenant, system_id).await?;
                // The newest remaining version becomes current.
                tx.execute(
                    "UPDATE term_code_systems SET is_current = (id = (SELECT id FROM term_code_systems \
                     WHERE tenant = $1 AND url = $2 ORDER BY loaded_at DESC, id DESC LIMIT 1)) \
                     WHERE tenant = $1 AND url = $2",
                    &[&tenant, &url],
                )
                .await?;
            }
        }
        "ValueSet" => {
            tx.execute(
                "DELETE FROM term_value_sets WHERE tenant = $1 AND resource_id = $2 AND origin = $3",
                &[&tenant, &id, &origin],
            )
            .await?;
        }
        "ConceptMap" => {
            let rows = tx
                .query(
                    "DELETE FROM term_concept_maps WHERE tenant = $1 AND resource_id = $2 AND origin = $3 \
                     RETURNING id",
                    &[&tenant, &id, &origin],
                )
                .await?;
            for row in rows {
                let map_id: i64 = row.get(0);
                tx.execute(
                    "DELETE FROM term_map_entries WHERE tenant = $1 AND map_id = $2",
                    &[&tenant, &map_id],
                )
                .await?;
            }
        }
        _ => return Ok(()),
    }
    crate::store::bump_changes(tx, tenant).await?;
    Ok(())
}

async fn store_concept_map(
    tx: &Tx<'_>,
    tenant: &str,
    origin: &str,
    resource: &Value,
    url: &str,
    version: &str,
    id: &str,
) -> Result<(), TermError> {
    let (source, target) = crate::concept_map::scope(resource);
    let map_id: i64 = tx
        .query_one(
            "INSERT INTO term_concept_maps (tenant, url, version, resource_id, source, target, resource, origin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::json, $8) RETURNING id",
            &[&tenant, &url, &version, &id, &source, &target, &resource.to_string(), &origin],
        )
        .await?
        .get(0);
    let mut cols: [Vec<Option<String>>; 10] = Default::default();
    for e in crate::concept_map::entries(resource) {
        let row = [
            Some(e.source_system),
            e.source_version,
            Some(e.source_code),
            e.source_display,
            Some(e.target_system),
            e.target_version,
            e.target_code,
            e.target_display,
            Some(e.equivalence),
            e.comment,
        ];
        for (col, value) in cols.iter_mut().zip(row) {
            col.push(value);
        }
    }
    if cols[0].is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO term_map_entries (tenant, map_id, source_system, source_version, source_code, \
         source_display, target_system, target_version, target_code, target_display, equivalence, comment) \
         SELECT $1, $2, a, b, c, d, e, f, g, h, i, j FROM unnest($3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
         AS x(a, b, c, d, e, f, g, h, i, j)",
        &[
            &tenant, &map_id, &cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6],
            &cols[7], &cols[8], &cols[9],
        ],
    )
    .await?;
    Ok(())
}
