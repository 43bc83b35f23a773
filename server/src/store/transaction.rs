//! The only way to tenant data: a database transaction bound to one tenant.
//!
//! [`begin`] opens a transaction and sets `baraza.tenant` for it (with
//! `set_config(..., true)`, so the setting ends with the transaction and a
//! pooled connection never carries it to the next request). Row-level
//! security (migration V11) then lets the transaction see and write only
//! that tenant's rows, even if a query forgot its tenant filter. [`Db`],
//! which every storage and search function takes, is implemented only for
//! [`TenantTx`], so no storage query can run outside such a transaction.

use super::TenantCtx;
use super::tenants::is_tenant_id;
use crate::error::ApiError;
use std::future::Future;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Whether a transaction may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `START TRANSACTION READ ONLY`: reads, searches, history.
    ReadOnly,
    ReadWrite,
}

/// A transaction whose `baraza.tenant` is set to one tenant. Dropping it
/// without [`TenantTx::commit`] rolls it back.
pub struct TenantTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
}

impl std::fmt::Debug for TenantTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantTx")
    }
}

/// Opens a transaction on `client` for `ctx.tenant`.
pub async fn begin<'a>(
    client: &'a mut deadpool_postgres::Client,
    ctx: &TenantCtx,
    access: Access,
) -> Result<TenantTx<'a>, ApiError> {
    begin_for(client, &ctx.tenant, access).await
}

/// Opens a transaction for `tenant` (background work that has no request
/// context).
pub async fn begin_for<'a>(
    client: &'a mut deadpool_postgres::Client,
    tenant: &str,
    access: Access,
) -> Result<TenantTx<'a>, ApiError> {
    // A tenant id reaches here only after parsing; refuse anything else
    // rather than run with a setting that names no tenant.
    if !is_tenant_id(tenant) {
        return Err(ApiError::fault(format!(
            "a transaction was asked for the malformed tenant id {tenant:?}"
        )));
    }
    let tx = client
        .build_transaction()
        .read_only(access == Access::ReadOnly)
        .start()
        .await?;
    let stmt = tx
        .prepare_cached("SELECT set_config('baraza.tenant', $1, true)")
        .await?;
    tx.execute(&stmt, &[&tenant]).await?;
    Ok(TenantTx { tx })
}

impl<'a> TenantTx<'a> {
    pub async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }

    /// The pool's sessions plan every execution for its values
    /// (`plan_cache_mode = force_custom_plan`, [`crate::db::pool`]). Here
    /// the mode is switched to the generic plan for this statement alone,
    /// with the planner settings of `plan`, and back to the mode it had
    /// before (kept in `baraza.plan_cache_mode`: a write that runs with
    /// generic plans throughout, `service::write::apply`, keeps them after
    /// a search inside it) and to the settings' defaults, all local to the
    /// transaction, so that even a failed statement leaves nothing behind
    /// it. The three messages are pipelined: one round trip. A generic plan
    /// is made at the statement's first execution on a connection and kept
    /// with it, so one statement must always run with the same `plan`.
    async fn query_planned(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        plan: &Planned,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = self.tx.prepare_cached(sql).await?;
        let (generic, rows, restored) = tokio::join!(
            self.tx.batch_execute(plan.set),
            self.tx.query(&stmt, params),
            self.tx.batch_execute(plan.reset),
        );
        generic?;
        let rows = rows?;
        restored?;
        Ok(rows)
    }
}

/// The settings a statement runs under ([`TenantTx::query_planned`]),
/// and the commands that restore them.
struct Planned {
    set: &'static str,
    reset: &'static str,
}

/// A generic plan ([`Db::query_generic`]).
const GENERIC: Planned = Planned {
    set: "SELECT set_config('baraza.plan_cache_mode', current_setting('plan_cache_mode'), true); \
          SET LOCAL plan_cache_mode = force_generic_plan",
    reset: "SELECT set_config('plan_cache_mode', current_setting('baraza.plan_cache_mode'), true)",
};

/// A generic plan whose only joins are merge joins of presorted inputs
/// ([`Db::query_merged`]).
const MERGED: Planned = Planned {
    set: "SELECT set_config('baraza.plan_cache_mode', current_setting('plan_cache_mode'), true); \
          SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_nestloop = off; \
          SET LOCAL enable_hashjoin = off; SET LOCAL enable_hashagg = off; \
          SET LOCAL enable_sort = off",
    reset: "SELECT set_config('plan_cache_mode', current_setting('baraza.plan_cache_mode'), true); \
            SET LOCAL enable_nestloop TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; \
            SET LOCAL enable_hashagg TO DEFAULT; SET LOCAL enable_sort TO DEFAULT",
};

impl<'a> std::ops::Deref for TenantTx<'a> {
    type Target = deadpool_postgres::Transaction<'a>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

/// Database access with prepared-statement caching. Implemented only for
/// [`TenantTx`]: storage and search queries always run with a tenant set.
pub trait Db: Sync {
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a;

    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a;

    /// Like [`Db::query`], with PostgreSQL's generic plan for this one
    /// statement (see [`TenantTx`]'s implementation): for statements whose
    /// plan their shape fixes, so that the connection plans them once
    /// instead of at every execution.
    fn query_generic<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a;

    /// Like [`Db::query_generic`], with merge joins as the only joins the
    /// planner may use, and neither sorts nor hashes: for statements that
    /// merge index scans already in the order of their join key (see
    /// `search::execute::probe`), which the planner would otherwise cost
    /// as if every row of each scan were read.
    fn query_merged<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a;

    /// The transaction itself, for SQL that needs more than `query` and
    /// `execute` (COPY, savepoints).
    fn pg(&self) -> &tokio_postgres::Transaction<'_>;

    /// The transaction for the `terminology` crate's own SQL (it runs in
    /// this transaction, under the same `baraza.tenant`), with the
    /// connection's statement cache.
    fn term(&self) -> terminology::Tx<'_>;
}

impl Db for TenantTx<'_> {
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = self.tx.prepare_cached(sql).await?;
        self.tx.query(&stmt, params).await
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let stmt = self.tx.prepare_cached(sql).await?;
        self.tx.execute(&stmt, params).await
    }

    /// See [`TenantTx::query_planned`].
    async fn query_generic(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.query_planned(sql, params, &GENERIC).await
    }

    async fn query_merged(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.query_planned(sql, params, &MERGED).await
    }

    fn pg(&self) -> &tokio_postgres::Transaction<'_> {
        &self.tx
    }

    fn term(&self) -> terminology::Tx<'_> {
        terminology::Tx::pooled(&self.tx)
    }
}
