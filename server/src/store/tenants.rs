//! Tenants: ids, the `tenants` table (the `baraza tenant` commands), and
//! the in-memory [`Directory`] of active tenants that requests are routed
//! with. `tenants` is the one table read without a tenant set; it has no
//! row-level security and the request role may only read it.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The tenant served at the server's base URL (`/fhir`).
pub const DEFAULT_TENANT: &str = "default";

/// Lowercase path segments right under `/fhir` that are not tenants.
pub const RESERVED_SEGMENTS: &[&str] = &["metadata"];

/// How long the directory trusts what it read: a tenant disabled with
/// `baraza tenant disable` stops being served within this time.
pub const DIRECTORY_TTL: Duration = Duration::from_secs(2);

/// A request for a tenant the directory does not know re-reads the table
/// when its copy is older than this, so a new tenant is served at once.
const MISS_REFRESH_AFTER: Duration = Duration::from_millis(250);

/// `[a-z0-9][a-z0-9-]{0,62}`: lowercase, so never a resource type.
pub fn is_tenant_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    matches!(bytes.first(), Some(b) if allowed(b))
        && bytes.len() <= 63
        && bytes.iter().all(|b| allowed(b) || *b == b'-')
}

/// A row of `baraza tenant list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// Why a tenant command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(
        "{0:?} is not a tenant id: use 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit"
    )]
    Malformed(String),
    #[error("{0:?} is reserved for a FHIR path and cannot be a tenant id")]
    Reserved(String),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error("there is no tenant {0}")]
    Unknown(String),
    #[error("the tenant {0} cannot be disabled: it is the FHIR base /fhir")]
    DefaultTenant(String),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
}

/// Checks a tenant id given on the command line.
pub fn parse_id(id: &str) -> Result<&str, TenantError> {
    if !is_tenant_id(id) {
        return Err(TenantError::Malformed(id.to_owned()));
    }
    if RESERVED_SEGMENTS.contains(&id) {
        return Err(TenantError::Reserved(id.to_owned()));
    }
    Ok(id)
}

pub async fn create(
    client: &tokio_postgres::Client,
    id: &str,
    name: &str,
) -> Result<(), TenantError> {
    let id = parse_id(id)?;
    let inserted = client
        .execute(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&id, &name],
        )
        .await?;
    if inserted == 0 {
        return Err(TenantError::Exists(id.to_owned()));
    }
    announce(client).await
}

pub async fn list(client: &tokio_postgres::Client) -> Result<Vec<Tenant>, TenantError> {
    let rows = client
        .query(
            "SELECT id, name, status, created_at FROM tenants ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Tenant {
            id: row.get(0),
            name: row.get(1),
            status: row.get(2),
            created_at: row.get(3),
        })
        .collect())
}

/// Disables a tenant: its data stays, but it is no longer served.
pub async fn disable(client: &tokio_postgres::Client, id: &str) -> Result<(), TenantError> {
    if id == DEFAULT_TENANT {
        return Err(TenantError::DefaultTenant(id.to_owned()));
    }
    let updated = client
        .execute(
            "UPDATE tenants SET status = 'disabled' WHERE id = $1",
            &[&id],
        )
        .await?;
    if updated == 0 {
        return Err(TenantError::Unknown(id.to_owned()));
    }
    announce(client).await
}

/// Serves a disabled tenant again (enabling an active one is no error).
pub async fn enable(client: &tokio_postgres::Client, id: &str) -> Result<(), TenantError> {
    let updated = client
        .execute("UPDATE tenants SET status = 'active' WHERE id = $1", &[&id])
        .await?;
    if updated == 0 {
        return Err(TenantError::Unknown(id.to_owned()));
    }
    announce(client).await
}

/// Tells every instance that the tenants changed (`events::notify`).
async fn announce(client: &tokio_postgres::Client) -> Result<(), TenantError> {
    crate::events::notify::send_on(client, crate::events::notify::Message::Tenants).await?;
    Ok(())
}

/// The ids of the active tenants.
pub async fn active_ids(
    client: &tokio_postgres::Client,
) -> Result<HashSet<String>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT id FROM tenants WHERE status = 'active'", &[])
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The active tenants, read from the table at most every
/// [`DIRECTORY_TTL`] (and on a miss, every [`MISS_REFRESH_AFTER`]).
#[derive(Debug)]
pub struct Directory {
    pool: Pool,
    known: RwLock<Snapshot>,
    /// Held while re-reading, so that concurrent requests read once.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Snapshot {
    active: std::sync::Arc<HashSet<String>>,
    read_at: Instant,
}

impl Directory {
    /// Reads the table once; fails when the database is unreachable.
    pub async fn load(pool: Pool) -> Result<Directory, ApiError> {
        let client = pool.get().await?;
        let active = active_ids(&client).await?;
        drop(client);
        Ok(Directory {
            pool,
            known: RwLock::new(Snapshot {
                active: std::sync::Arc::new(active),
                read_at: Instant::now(),
            }),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Every active tenant (for start-up work done tenant by tenant).
    pub fn active(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.snapshot().active.iter().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether `id` is an active tenant.
    pub async fn is_active(&self, id: &str) -> Result<bool, ApiError> {
        let snapshot = self.snapshot();
        let age = snapshot.read_at.elapsed();
        let found = snapshot.active.contains(id);
        let stale = if found {
            age >= DIRECTORY_TTL
        } else {
            age >= MISS_REFRESH_AFTER
        };
        if !stale {
            return Ok(found);
        }
        Ok(self.refresh(snapshot.read_at).await?.contains(id))
    }

    /// Forgets what was read: the next request re-reads the table (a
    /// tenant changed, here or on another instance).
    pub fn invalidate(&self) {
        let mut known = self
            .known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = known.read_at.checked_sub(DIRECTORY_TTL * 2) {
            known.read_at = old;
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.known
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the table unless another request did since `seen`.
    async fn refresh(&self, seen: Instant) -> Result<std::sync::Arc<HashSet<String>>, ApiError> {
        let _guard = self.refreshing.lock().await;
        let current = self.snapshot();
        if current.read_at > seen {
            return Ok(current.active);
        }
        let client = self.pool.get().await?;
        let active = std::sync::Arc::new(active_ids(&client).await?);
        *self
            .known
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Snapshot {
            active: active.clone(),
            read_at: Instant::now(),
        };
        Ok(active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_lowercase_words() {
        for id in ["a", "default", "kenya-moh", "0", "a-", &"x".repeat(63)] {
            assert!(is_tenant_id(id), "{id}");
        }
        for id in ["", "-a", "A", "Patient", "a_b", "a.b", "é", &"x".repeat(64)] {
            assert!(!is_tenant_id(id), "{id}");
        }
    }

    #[test]
    fn reserved_segments_are_not_tenant_ids() {
        assert!(matches!(
            parse_id("metadata"),
            Err(TenantError::Reserved(_))
        ));
        assert!(matches!(parse_id("Bad"), Err(TenantError::Malformed(_))));
        assert_eq!(parse_id("county-7").ok(), Some("county-7"));
    }
}
