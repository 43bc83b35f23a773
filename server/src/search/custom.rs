//! Custom search parameters per tenant (search.html, SearchParameter):
//! a tenant's SearchParameter resources become searchable after `$reindex`
//! has indexed the existing resources with them.
//!
//! Each tenant has two registries: `searching` (the R4 parameters plus
//! its active custom ones) and `indexing` (plus those a running `$reindex`
//! is adding, so that writes during the job index them too). Both are the
//! shared R4 registry for tenants without custom parameters. The sets are
//! stored in `search_param_sets` and loaded at start-up, tenant by tenant.

use super::registry::Registry;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// A tenant's registries.
#[derive(Debug)]
pub struct TenantRegistries {
    pub searching: Arc<Registry>,
    pub indexing: Arc<Registry>,
    /// Whether this tenant has custom parameters (else both are the R4
    /// registry and the shared CapabilityStatement applies).
    pub custom: bool,
    /// This tenant's CapabilityStatement text, built on first use.
    pub capabilities: OnceLock<Arc<String>>,
}

fn base() -> &'static Arc<TenantRegistries> {
    static BASE: OnceLock<Arc<TenantRegistries>> = OnceLock::new();
    BASE.get_or_init(|| {
        let r = Arc::new(Registry::global().clone());
        Arc::new(TenantRegistries {
            searching: r.clone(),
            indexing: r,
            custom: false,
            capabilities: OnceLock::new(),
        })
    })
}

/// The registries of every tenant with custom parameters, for one
/// application (one database), and the other per-tenant state derived
/// from that database which every request context carries.
#[derive(Debug, Default)]
pub struct CustomRegistries {
    tenants: RwLock<HashMap<String, Arc<TenantRegistries>>>,
    /// Each tenant's materialised views (kept current by writes).
    pub live_views: crate::store::views::LiveCache,
}

impl CustomRegistries {
    /// The registries of `tenant`.
    pub fn get(&self, tenant: &str) -> Arc<TenantRegistries> {
        let map = self
            .tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tenant).cloned().unwrap_or_else(|| base().clone())
    }

    /// Installs a tenant's active and pending definitions; returns the
    /// problems with definitions that were skipped.
    pub fn install(
        &self,
        tenant: &str,
        active: &[Value],
        pending: Option<&[Value]>,
    ) -> Vec<String> {
        let (searching, mut problems) = Registry::global().extended(active);
        let indexing = match pending {
            Some(pending) => {
                let (indexing, more) = Registry::global().extended(pending);
                problems.extend(more);
                Arc::new(indexing)
            }
            None => Arc::new(searching.clone()),
        };
        let custom = !active.is_empty() || pending.is_some_and(|p| !p.is_empty());
        let entry = Arc::new(TenantRegistries {
            searching: Arc::new(searching),
            indexing,
            custom,
            capabilities: OnceLock::new(),
        });
        let mut map = self
            .tenants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if custom {
            map.insert(tenant.to_owned(), entry);
        } else {
            map.remove(tenant);
        }
        problems
    }

    /// Loads the sets of `tenants` (at start-up, and when another instance
    /// announces a change), each in a transaction for that tenant.
    pub async fn load_all(
        &self,
        pool: &deadpool_postgres::Pool,
        tenants: &[String],
    ) -> Result<(), crate::error::ApiError> {
        use crate::store::{Access, Db, transaction::begin_for};
        for tenant in tenants {
            let mut client = pool.get().await?;
            let tx = begin_for(&mut client, tenant, Access::ReadOnly).await?;
            let rows = tx
                .query(
                    "SELECT active::text, pending::text FROM search_param_sets WHERE tenant = $1",
                    &[tenant],
                )
                .await?;
            if rows.is_empty() {
                self.install(tenant, &[], None);
            }
            for row in rows {
                let parse = |text: Option<String>| -> Option<Vec<Value>> {
                    text.and_then(|t| serde_json::from_str(&t).ok())
                };
                let active = parse(row.get(0)).unwrap_or_default();
                let pending = parse(row.get(1));
                for problem in self.install(tenant, &active, pending.as_deref()) {
                    tracing::warn!(tenant, problem, "custom search parameter");
                }
            }
        }
        Ok(())
    }
}
