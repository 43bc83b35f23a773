//! Storage of resources and their versions in PostgreSQL. All SQL lives
//! under this module; every function takes the tenant context first, and no
//! query runs without a tenant filter, inside a transaction whose
//! `baraza.tenant` names the same tenant ([`transaction`]).

pub mod export;
pub mod expunge;
pub mod groups;
pub mod history;
pub mod index_tables;
pub mod overview;
pub mod read;
pub mod tenants;
pub mod transaction;
pub mod views;
pub mod write;

pub use transaction::{Access, Db, TenantTx, begin};

use chrono::{DateTime, SubsecRound, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Whose data a request touches. Required by every storage call.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant: String,
    /// The tenant's FHIR base URL: absolute references under it are local.
    pub base_url: String,
    /// The application's custom search parameters (see `search::custom`).
    pub registries: std::sync::Arc<crate::search::custom::CustomRegistries>,
    /// Who is asking: the verified caller, or `None` when authentication
    /// is off (loopback only) or for the server's own background work.
    pub caller: Option<std::sync::Arc<crate::auth::Principal>>,
    /// What the caller's groups allow (with `caller`).
    pub rights: Option<std::sync::Arc<crate::auth::permissions::Rights>>,
    /// The master patient index Patient writes are linked with; `None`
    /// when it is off (`BARAZA_MPI=off`) or for work outside requests.
    pub mpi: Option<std::sync::Arc<mpi::store::Linker>>,
    /// With `mpi`: Patient writes are only recorded, and the outbox
    /// consumer `mpi` links them after they commit.
    pub mpi_queued: bool,
}

impl TenantCtx {
    /// The search parameters this tenant searches with.
    pub fn registry(&self) -> std::sync::Arc<crate::search::registry::Registry> {
        self.registries.get(&self.tenant).searching.clone()
    }

    /// The search parameters this tenant's writes are indexed with.
    pub fn index_registry(&self) -> std::sync::Arc<crate::search::registry::Registry> {
        self.registries.get(&self.tenant).indexing.clone()
    }

    /// The `default` tenant, served at the server's base URL.
    pub fn default_tenant(
        base_url: &str,
        registries: std::sync::Arc<crate::search::custom::CustomRegistries>,
    ) -> Self {
        TenantCtx::new(tenants::DEFAULT_TENANT, base_url, registries)
    }

    /// `tenant`'s context: its FHIR base is `{server_base}/{tenant}`, except
    /// for `default`, whose base is the server's.
    pub fn new(
        tenant: &str,
        server_base: &str,
        registries: std::sync::Arc<crate::search::custom::CustomRegistries>,
    ) -> Self {
        let base_url = if tenant == tenants::DEFAULT_TENANT {
            server_base.to_owned()
        } else {
            format!("{server_base}/{tenant}")
        };
        TenantCtx {
            tenant: tenant.to_owned(),
            base_url,
            registries,
            caller: None,
            rights: None,
            mpi: None,
            mpi_queued: false,
        }
    }
}

/// One stored version of a resource.
#[derive(Debug, Clone)]
pub struct Stored {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: DateTime<Utc>,
    pub deleted: bool,
    /// The JSON text as served; `None` for a deletion.
    pub content: Option<String>,
}

/// A parameter of a statement built at run time.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// Adds `value` to `params` and returns its placeholder (`$n`).
pub fn bind(params: &mut Vec<Param>, value: Param) -> String {
    params.push(value);
    format!("${}", params.len())
}

/// Runs a statement built at run time with its parameters.
pub async fn query_built(
    db: &impl Db,
    sql: &str,
    params: &[Param],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    db.query(sql, &param_refs(params)).await
}

/// Runs a statement built at run time whose shape fixes its plan with
/// PostgreSQL's generic plan ([`Db::query_generic`]).
pub async fn query_built_generic(
    db: &impl Db,
    sql: &str,
    params: &[Param],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    db.query_generic(sql, &param_refs(params)).await
}

/// Runs a statement built at run time with merge joins only
/// ([`Db::query_merged`]).
pub async fn query_built_merged(
    db: &impl Db,
    sql: &str,
    params: &[Param],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    db.query_merged(sql, &param_refs(params)).await
}

fn param_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The server's clock for `meta.lastUpdated`, at millisecond precision so
/// that the value in the resource and the one in the database agree exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Formats an instant the way FHIR `instant` wants it.
pub fn format_instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
