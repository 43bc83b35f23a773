//! The planner settings `Db::query_generic` and `Db::query_merged` give
//! their statement stay with that statement: the transaction's settings
//! are the same after it as before, whether the transaction plans with the
//! session's custom plans or runs with generic plans throughout (a write,
//! `TenantTx::generic_plans`).

use crate::harness::{cluster, fresh_database};
use baraza::store::transaction::begin_for;
use baraza::store::{Access, Db, TenantTx};

const SETTINGS: &str = "SELECT current_setting('plan_cache_mode'), \
    current_setting('enable_nestloop'), current_setting('enable_sort')";

fn first(rows: &[tokio_postgres::Row]) -> (String, String, String) {
    let row = &rows[0];
    (row.get(0), row.get(1), row.get(2))
}

async fn settings(tx: &TenantTx<'_>) -> (String, String, String) {
    first(&tx.query(SETTINGS, &[]).await.unwrap())
}

fn expect(mode: &str, joins: &str) -> (String, String, String) {
    (mode.to_owned(), joins.to_owned(), joins.to_owned())
}

#[tokio::test]
async fn generic_and_merged_statements_leave_the_transaction_as_they_found_it() {
    let db = fresh_database().await;
    let pool = baraza::db::pool(cluster().request_config(&db), 1).unwrap();
    let mut client = pool.get().await.unwrap();
    let tx = begin_for(&mut client, "default", Access::ReadWrite)
        .await
        .unwrap();
    let custom = expect("force_custom_plan", "on");
    assert_eq!(settings(&tx).await, custom);

    // Each statement sees its own settings; the transaction gets its own back.
    let during = first(&tx.query_generic(SETTINGS, &[]).await.unwrap());
    assert_eq!(during, expect("force_generic_plan", "on"));
    assert_eq!(settings(&tx).await, custom);
    let during = first(&tx.query_merged(SETTINGS, &[]).await.unwrap());
    assert_eq!(during, expect("force_generic_plan", "off"));
    assert_eq!(settings(&tx).await, custom);

    // Within a write's generic plans, the mode is neither switched nor undone.
    tx.generic_plans(true).await.unwrap();
    let generic = expect("force_generic_plan", "on");
    assert_eq!(settings(&tx).await, generic);
    let during = first(&tx.query_generic(SETTINGS, &[]).await.unwrap());
    assert_eq!(during, generic);
    assert_eq!(settings(&tx).await, generic);
    let during = first(&tx.query_merged(SETTINGS, &[]).await.unwrap());
    assert_eq!(during, expect("force_generic_plan", "off"));
    assert_eq!(settings(&tx).await, generic);
    tx.generic_plans(false).await.unwrap();
    assert_eq!(settings(&tx).await, custom);
    tx.commit().await.unwrap();

    // Nothing outlives the transaction.
    let tx = begin_for(&mut client, "default", Access::ReadOnly)
        .await
        .unwrap();
    assert_eq!(settings(&tx).await, custom);
}
