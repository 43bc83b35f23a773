//! Value-set membership cached in memory per (database, tenant, canonical),
//! for `$validate-code` and the binding checks of writes. An entry is valid
//! while the tenant's change counter (its own plus global, `term_changes`)
//! is what it was when the entry was computed; every change of terminology
//! content raises the counter in the changing transaction, so any instance
//! sees a change at its next check (one indexed read per request).
//! Value sets larger than [`CACHED_LIMIT`] codes, or not fully expandable
//! (an unknown or incomplete code system), are cached as such and checked
//! in the database instead.

use crate::expand::{Expansion, Request, expand};
use crate::{TermError, Tx};
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The largest value set kept in memory.
pub const CACHED_LIMIT: usize = 10_000;

/// Entries kept before the cache is emptied (a crude bound on memory).
const MAX_ENTRIES: usize = 2_000;

#[derive(Debug)]
pub enum Membership {
    /// Every code, by (system, code): (display, active).
    Known(HashMap<(String, String), (Option<String>, bool)>),
    /// Too large for memory: check in the database.
    Large,
    /// The value set depends on content this server does not have
    /// (unknown or incomplete code systems, unknown value sets).
    Incomplete,
    /// No value set of that canonical is known.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    stamp: i64,
    membership: Arc<Membership>,
}

type Key = (String, String, String);

fn cache() -> &'static DashMap<Key, Entry> {
    static CACHE: OnceLock<DashMap<Key, Entry>> = OnceLock::new();
    CACHE.get_or_init(DashMap::new)
}

/// The change stamp a sequence of checks in one transaction uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stamp {
    database: String,
    tenant: String,
    n: i64,
}

pub async fn stamp(tx: &Tx<'_>, tenant: &str) -> Result<Stamp, TermError> {
    let (database, n) = crate::store::changes(tx, tenant).await?;
    let stamp = Stamp {
        database,
        tenant: tenant.to_owned(),
        n,
    };
    tx.remember_stamp(stamp.clone());
    Ok(stamp)
}

/// The membership of the value set `canonical`, from the cache or computed.
pub async fn membership(
    tx: &Tx<'_>,
    stamp: &Stamp,
    canonical: &str,
) -> Result<Arc<Membership>, TermError> {
    let key = (
        stamp.database.clone(),
        stamp.tenant.clone(),
        canonical.to_owned(),
    );
    if let Some(entry) = cache().get(&key) {
        if entry.stamp == stamp.n {
            return Ok(entry.membership.clone());
        }
    }
    let membership = Arc::new(compute(tx, &stamp.tenant, canonical).await?);
    if cache().len() >= MAX_ENTRIES {
        cache().clear();
    }
    cache().insert(
        key,
        Entry {
            stamp: stamp.n,
            membership: membership.clone(),
        },
    );
    Ok(membership)
}

async fn compute(tx: &Tx<'_>, tenant: &str, canonical: &str) -> Result<Membership, TermError> {
    let Some(vs) = crate::valueset::resolve(tx, tenant, canonical).await? else {
        return Ok(Membership::Unknown);
    };
    let request = Request {
        limit: CACHED_LIMIT,
        ..Request::default()
    };
    let mut stack = vec![canonical.to_owned()];
    match expand(tx, tenant, &vs, &request, &mut stack).await {
        Ok(Expansion {
            items,
            complete: true,
            ..
        }) => Ok(Membership::Known(
            items
                .into_iter()
                .map(|i| ((i.system, i.code), (i.display, i.active)))
                .collect(),
        )),
        Ok(_) => Ok(Membership::Incomplete),
        Err(e) if e.code == fhir::IssueCode::TooCostly => Ok(Membership::Large),
        // A cyclic or otherwise unusable definition cannot be checked.
        Err(e) if e.kind == crate::error::Kind::Unprocessable => Ok(Membership::Incomplete),
        Err(e) => Err(e),
    }
}

/// Code-system rows by (database, tenant, url, version), with the stamp
/// they were read at (`store::find_system`).
type SystemKey = (String, String, String, Option<String>);

fn systems() -> &'static DashMap<SystemKey, (i64, Option<crate::store::CodeSystemRow>)> {
    static SYSTEMS: OnceLock<DashMap<SystemKey, (i64, Option<crate::store::CodeSystemRow>)>> =
        OnceLock::new();
    SYSTEMS.get_or_init(DashMap::new)
}

/// The cached answer of `find_system(tenant, url, version)` for the
/// transaction's stamp, if there is one.
pub fn cached_system(
    tx: &Tx<'_>,
    tenant: &str,
    url: &str,
    version: Option<&str>,
) -> Option<Option<crate::store::CodeSystemRow>> {
    let stamp = tx.known_stamp().filter(|s| s.tenant == tenant)?;
    let key = (
        stamp.database,
        stamp.tenant,
        url.to_owned(),
        version.map(str::to_owned),
    );
    systems()
        .get(&key)
        .filter(|entry| entry.0 == stamp.n)
        .map(|entry| entry.1.clone())
}

/// Keeps `find_system`'s answer for the transaction's stamp.
pub fn keep_system(
    tx: &Tx<'_>,
    tenant: &str,
    url: &str,
    version: Option<&str>,
    row: &Option<crate::store::CodeSystemRow>,
) {
    let Some(stamp) = tx.known_stamp().filter(|s| s.tenant == tenant) else {
        return;
    };
    if systems().len() >= MAX_ENTRIES {
        systems().clear();
    }
    systems().insert(
        (
            stamp.database,
            stamp.tenant,
            url.to_owned(),
            version.map(str::to_owned),
        ),
        (stamp.n, row.clone()),
    );
}
