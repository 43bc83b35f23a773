//! The only way to tenant data: a database transaction bound to one tenant.
//!
//! [`begin`] opens a transaction and sets `baraza.tenant` for it (with
//! `SET LOCAL`, so the setting ends with the transaction and a
//! pooled connection never carries it to the next request). Row-level
//! security (migration V11) then lets the transaction see and write only
//! that tenant's rows, even if a query forgot its tenant filter. [`Db`],
//! which every storage and search function takes, is implemented only for
//! [`TenantTx`], so no storage query can run outside such a transaction.

use super::TenantCtx;
use super::tenants::is_tenant_id;
use crate::error::ApiError;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Whether the transaction runs with generic plans from here on
    /// ([`TenantTx::generic_plans`]).
    generic: AtomicBool,
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
    // `SET LOCAL`, not `SELECT set_config($1, ..., true)`: the same
    // setting, but a utility command rather than a query that is planned
    // and takes a snapshot, once per request (docs/search.md, "Fewer
    // planned statements per request"). The id is written as a literal,
    // which `is_tenant_id` makes safe: lowercase letters, digits and `-`.
    tx.batch_execute(&format!("SET LOCAL baraza.tenant = '{tenant}'"))
        .await?;
    Ok(TenantTx {
        tx,
        generic: AtomicBool::new(false),
    })
}

impl<'a> TenantTx<'a> {
    pub async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }

    /// Switches the rest of the transaction to generic plans (`on`) or
    /// back to the session's custom plans, with `SET LOCAL`: for a write,
    /// whose array statements PostgreSQL would otherwise plan afresh at
    /// every execution (`service::write::apply`). The transaction
    /// remembers the mode, so that [`Db::query_generic`] and
    /// [`Db::query_merged`] inside it neither switch it nor undo it.
    pub async fn generic_plans(&self, on: bool) -> Result<(), tokio_postgres::Error> {
        self.generic.store(on, Ordering::Relaxed);
        self.tx
            .batch_execute(if on {
                GENERIC.from_custom.set
            } else {
                GENERIC.from_custom.reset
            })
            .await
    }

    /// The pool's sessions plan every execution for its values
    /// (`plan_cache_mode = force_custom_plan`, [`crate::db::pool`]). Here
    /// the statement runs with the generic plan and the planner settings
    /// of `plan`, and the settings are reset to the session's values
    /// after it, all with `SET LOCAL`, so that even a failed statement
    /// leaves nothing behind it. Within [`TenantTx::generic_plans`] the
    /// mode is already generic and stays so. The messages are pipelined:
    /// one round trip. Only utility commands are sent around the
    /// statement: `SET` is neither planned nor executed as a query (an
    /// earlier version saved and restored the mode with `set_config`,
    /// two planned `SELECT`s per statement: docs/search.md, "Fewer
    /// planned statements per request"). A generic plan is made at the
    /// statement's first execution on a connection and kept with it, so
    /// one statement must always run with the same `plan`.
    async fn query_planned(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        plan: &Planned,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = self.tx.prepare_cached(sql).await?;
        let switch = if self.generic.load(Ordering::Relaxed) {
            plan.within_generic.as_ref()
        } else {
            Some(&plan.from_custom)
        };
        let Some(switch) = switch else {
            return self.tx.query(&stmt, params).await;
        };
        let (set, rows, reset) = tokio::join!(
            self.tx.batch_execute(switch.set),
            self.tx.query(&stmt, params),
            self.tx.batch_execute(switch.reset),
        );
        set?;
        let rows = rows?;
        reset?;
        Ok(rows)
    }
}

/// The settings a statement runs under ([`TenantTx::query_planned`]),
/// from the session's custom plans and within generic ones.
struct Planned {
    from_custom: Switch,
    /// `None`: nothing to switch.
    within_generic: Option<Switch>,
}

/// The commands that set a statement's settings, and that reset them.
struct Switch {
    set: &'static str,
    reset: &'static str,
}

// The settings' commands, as literals so that `concat!` can join them
// into the static commands below.
macro_rules! generic_on {
    () => {
        "SET LOCAL plan_cache_mode = force_generic_plan"
    };
}
macro_rules! generic_off {
    () => {
        "SET LOCAL plan_cache_mode TO DEFAULT"
    };
}
macro_rules! merge_joins_on {
    () => {
        "SET LOCAL enable_nestloop = off; SET LOCAL enable_hashjoin = off; \
         SET LOCAL enable_hashagg = off; SET LOCAL enable_sort = off"
    };
}
macro_rules! merge_joins_off {
    () => {
        "SET LOCAL enable_nestloop TO DEFAULT; SET LOCAL enable_hashjoin TO DEFAULT; \
         SET LOCAL enable_hashagg TO DEFAULT; SET LOCAL enable_sort TO DEFAULT"
    };
}

/// A generic plan ([`Db::query_generic`]).
const GENERIC: Planned = Planned {
    from_custom: Switch {
        set: generic_on!(),
        reset: generic_off!(),
    },
    within_generic: None,
};

/// A generic plan whose only joins are merge joins of presorted inputs
/// ([`Db::query_merged`]).
const MERGED: Planned = Planned {
    from_custom: Switch {
        set: concat!(generic_on!(), "; ", merge_joins_on!()),
        reset: concat!(generic_off!(), "; ", merge_joins_off!()),
    },
    within_generic: Some(Switch {
        set: merge_joins_on!(),
        reset: merge_joins_off!(),
    }),
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
