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
#[derive(Debug, Clone)]
pub struct Stamp {
    database: String,
    tenant: String,
    n: i64,
}

pub async fn stamp(tx: &Tx<'_>, tenant: &str) -> Result<Stamp, TermError> {
    let (database, n) = crate::store::changes(tx, tenant).await?;
    Ok(Stamp {
        database,
        tenant: tenant.to_owned(),
        n,
    })
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
