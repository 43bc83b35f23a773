//! Row-level helpers of the store: batched pair inserts, property
//! columns, and deleting a version's content.

use crate::model::PropertyValue;
use crate::{TermError, Tx};

use super::BATCH;

/// Deletes every row of a code-system version's content.
pub async fn delete_content(tx: &Tx<'_>, tenant: &str, system_id: i64) -> Result<(), TermError> {
    for table in [
        "term_concepts",
        "term_edges",
        "term_closure",
        "term_designations",
        "term_properties",
        "term_words",
        "term_refset_members",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant = $1 AND system_id = $2"),
            &[&tenant, &system_id],
        )
        .await?;
    }
    Ok(())
}

/// Inserts (integer, integer) rows in batches (multi-row `unnest`
/// inserts: COPY is refused on tables under row-level security), with
/// `conflict` (an `ON CONFLICT` clause, or nothing) after each.
pub(super) async fn insert_pairs(
    tx: &Tx<'_>,
    table: &str,
    tenant: &str,
    system_id: i64,
    pairs: &[(i32, i32)],
    conflict: &str,
) -> Result<(), TermError> {
    let statement = format!(
        "INSERT INTO {table} SELECT $1, $2, a, b FROM unnest($3::int4[], $4::int4[]) AS x(a, b){conflict}"
    );
    for rows in pairs.chunks(BATCH * 4) {
        let (a, b): (Vec<i32>, Vec<i32>) = rows.iter().copied().unzip();
        tx.execute(&statement, &[&tenant, &system_id, &a, &b])
            .await?;
    }
    Ok(())
}

pub(super) fn property_columns(value: PropertyValue) -> (&'static str, String, Option<String>) {
    match value {
        PropertyValue::Code(c) => ("code", c, None),
        PropertyValue::Coding { system, code } => ("Coding", code, Some(system)),
        PropertyValue::String(s) => ("string", s, None),
        PropertyValue::Integer(i) => ("integer", i.to_string(), None),
        PropertyValue::Boolean(b) => ("boolean", b.to_string(), None),
        PropertyValue::DateTime(d) => ("dateTime", d, None),
        PropertyValue::Decimal(d) => ("decimal", d, None),
    }
}
