//! Writing search index rows: every index table is described once (its
//! value columns and their SQL types), and rows of all resources of a write
//! go to each table in one `unnest` statement, after one delete of the
//! rows the rewritten resources had.

use super::{Db, TenantCtx};
use crate::error::ApiError;
use crate::search::index::{IndexRows, ParamName};
use std::sync::OnceLock;
use tokio_postgres::types::ToSql;

/// An index table: its name and its value columns with their SQL types.
/// Every table also has tenant, res_type, res_id and param.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const TABLES: [Table; 8] = [
    Table {
        name: "search_token",
        // `patient`: see crate::search::patient_keyed.
        columns: &[("system", "text"), ("code", "text"), ("patient", "text")],
    },
    Table {
        name: "search_reference",
        columns: &[
            ("target_type", "text"),
            ("target_id", "text"),
            ("url", "text"),
        ],
    },
    Table {
        name: "search_string",
        columns: &[("folded", "text"), ("exact", "text")],
    },
    Table {
        name: "search_date",
        columns: &[("lo", "int8"), ("hi", "int8")],
    },
    Table {
        name: "search_number",
        columns: &[("value", "numeric")],
    },
    Table {
        name: "search_quantity",
        columns: &[
            ("value", "numeric"),
            ("system", "text"),
            ("code", "text"),
            ("unit", "text"),
            ("canon_value", "numeric"),
            ("canon_code", "text"),
        ],
    },
    Table {
        name: "search_uri",
        columns: &[("uri", "text")],
    },
    Table {
        name: "search_position",
        columns: &[("latitude", "float8"), ("longitude", "float8")],
    },
];

/// The (delete, insert) statements of each table, built once.
fn statements() -> &'static [(String, String)] {
    static CELL: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CELL.get_or_init(|| {
        TABLES
            .iter()
            .map(|table| {
                let delete = format!(
                    "DELETE FROM {} s USING unnest($2::text[], $3::text[]) AS k(res_type, id) \
                     WHERE s.tenant = $1 AND s.res_type = k.res_type AND s.res_id = k.id",
                    table.name
                );
                let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
                let casts: Vec<String> = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, sql_type))| format!("v{i}::{sql_type}"))
                    .collect();
                let arrays: Vec<String> = (0..table.columns.len() + 3)
                    .map(|i| format!("${}::text[]", i + 2))
                    .collect();
                let aliases: Vec<String> =
                    (0..table.columns.len()).map(|i| format!("v{i}")).collect();
                let insert = format!(
                    "INSERT INTO {} (tenant, res_type, res_id, param, {}) SELECT $1, t, i, p, {} \
                     FROM unnest({}) AS x(t, i, p, {})",
                    table.name,
                    names.join(", "),
                    casts.join(", "),
                    arrays.join(", "),
                    aliases.join(", ")
                );
                (delete, insert)
            })
            .collect()
    })
}

/// Rows for one table, column by column, every value as text.
#[derive(Default)]
struct Columns {
    types: Vec<String>,
    ids: Vec<String>,
    params: Vec<String>,
    values: Vec<Vec<Option<String>>>,
}

impl Columns {
    fn push(
        &mut self,
        resource_type: &str,
        id: &str,
        param: ParamName,
        values: Vec<Option<String>>,
    ) {
        self.types.push(resource_type.to_owned());
        self.ids.push(id.to_owned());
        self.params.push(param.into_owned());
        if self.values.len() < values.len() {
            self.values.resize_with(values.len(), Vec::new);
        }
        for (column, value) in self.values.iter_mut().zip(values) {
            column.push(value);
        }
    }
}

/// Index rows of many resources, gathered per table.
#[derive(Default)]
pub struct IndexBatch {
    tables: [Columns; 8],
}

impl IndexBatch {
    /// Adds the rows of one resource, in the order of [`TABLES`].
    pub fn add(&mut self, resource_type: &str, id: &str, rows: IndexRows) {
        let [
            tokens,
            references,
            strings,
            dates,
            numbers,
            quantities,
            uris,
            positions,
        ] = &mut self.tables;
        let text = |s: String| Some(s);
        let patient = crate::search::patient_keyed::patient_of(resource_type, &rows.references);
        for r in rows.tokens {
            let values = vec![r.system, text(r.code), patient.clone()];
            tokens.push(resource_type, id, r.param, values);
        }
        for r in rows.references {
            references.push(
                resource_type,
                id,
                r.param,
                vec![r.target_type, r.target_id, r.url],
            );
        }
        for r in rows.strings {
            strings.push(
                resource_type,
                id,
                r.param,
                vec![text(r.folded), text(r.exact)],
            );
        }
        for r in rows.dates {
            dates.push(
                resource_type,
                id,
                r.param,
                vec![text(r.lo.to_string()), text(r.hi.to_string())],
            );
        }
        for r in rows.numbers {
            numbers.push(resource_type, id, r.param, vec![text(r.value)]);
        }
        for r in rows.quantities {
            let values = vec![
                text(r.value),
                r.system,
                r.code,
                r.unit,
                r.canon_value,
                r.canon_code,
            ];
            quantities.push(resource_type, id, r.param, values);
        }
        for r in rows.uris {
            uris.push(resource_type, id, r.param, vec![text(r.uri)]);
        }
        for r in rows.positions {
            let degrees = vec![text(r.latitude.to_string()), text(r.longitude.to_string())];
            positions.push(resource_type, id, r.param, degrees);
        }
    }
}

/// Removes the index rows of the given resources from every table.
pub async fn delete_rows(
    db: &impl Db,
    ctx: &TenantCtx,
    types: &[String],
    ids: &[String],
) -> Result<(), ApiError> {
    if types.is_empty() {
        return Ok(());
    }
    let params: [&(dyn ToSql + Sync); 3] = [&ctx.tenant, &types, &ids];
    let deletes = statements()
        .iter()
        .map(|(delete, _)| db.execute(delete, &params));
    for result in futures_util::future::join_all(deletes).await {
        result?;
    }
    Ok(())
}

/// Inserts the batch's rows, one statement per table that has rows.
pub async fn insert_rows(
    db: &impl Db,
    ctx: &TenantCtx,
    batch: &IndexBatch,
) -> Result<(), ApiError> {
    let mut inserts = Vec::new();
    for ((_, insert), columns) in statements().iter().zip(&batch.tables) {
        if columns.types.is_empty() {
            continue;
        }
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&ctx.tenant, &columns.types, &columns.ids, &columns.params];
        params.extend(columns.values.iter().map(|v| v as &(dyn ToSql + Sync)));
        inserts.push(async move { db.execute(insert, &params).await });
    }
    for result in futures_util::future::join_all(inserts).await {
        result?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_every_column() {
        let (delete, insert) = &statements()[5];
        assert!(delete.starts_with("DELETE FROM search_quantity"));
        assert!(insert.contains(
            "(tenant, res_type, res_id, param, value, system, code, unit, canon_value, canon_code)"
        ));
        assert!(insert.contains("v4::numeric"));
        assert!(insert.contains("$10::text[]"));
    }
}
