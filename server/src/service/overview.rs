//! Read-only admin API for operators (issue 11, docs/console.md), used by
//! the console and open to any client with the right permission:
//! - a tenant's overview: resources per type, writes and requests per hour
//!   over the last day, the error rate, and each caller's last successful
//!   write (`tenant-admin` or `audit-read`);
//! - who the caller is, which tenants it may use and what its groups
//!   allow in a tenant (any authenticated caller, about itself);
//! - the union of any groups' permissions in a tenant, to see what a user
//!   with those groups may do (`tenant-admin`).

use super::AppState;
use super::groups::AdminAnswer;
use crate::error::{ApiError, Category};
use crate::store::transaction::{Access, begin};
use crate::store::{TenantCtx, format_instant};
use actix_web::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// Hours the overview's series cover, the current one included.
const HOURS: i64 = 24;

/// Callers listed with their last successful write, at most.
const MAX_WRITERS: i64 = 50;

pub(crate) fn require_purpose(
    ctx: &TenantCtx,
    purposes: &[&str],
    what: &str,
) -> Result<(), ApiError> {
    if ctx.caller.is_none() {
        return Ok(());
    }
    let rights = ctx.rights.as_deref();
    if purposes
        .iter()
        .any(|p| rights.is_some_and(|r| r.has_purpose(p)))
    {
        return Ok(());
    }
    Err(ApiError::new(
        Category::Forbidden,
        format!("{what} needs the {} permission", purposes.join(" or ")),
    ))
}

/// `GET /admin/{tenant}/overview`.
pub async fn overview(state: &AppState, ctx: &TenantCtx) -> Result<AdminAnswer, ApiError> {
    require_purpose(ctx, &["tenant-admin", "audit-read"], "the overview")?;
    let now = crate::store::now();
    let this_hour =
        DateTime::<Utc>::from_timestamp(now.timestamp() - now.timestamp() % 3600, 0).unwrap_or(now);
    let first_hour = this_hour - Duration::hours(HOURS - 1);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let counts = crate::store::overview::resource_counts(&tx, ctx).await?;
    let writes = crate::store::overview::writes_per_hour(&tx, ctx, first_hour).await?;
    let requests = crate::audit::stats::requests_per_hour(&tx, ctx, first_hour).await?;
    let writers = crate::audit::stats::last_successful_writes(
        &tx,
        ctx,
        now - Duration::days(30),
        MAX_WRITERS,
    )
    .await?;
    tx.commit().await?;

    let total_requests: i64 = requests.iter().map(|h| h.requests).sum();
    let total_errors: i64 = requests.iter().map(|h| h.errors).sum();
    let hours: Vec<Value> = (0..HOURS)
        .map(|i| {
            let hour = first_hour + Duration::hours(i);
            let written = writes.iter().find(|(h, _)| *h == hour).map_or(0, |w| w.1);
            let audited = requests.iter().find(|h| h.hour == hour);
            json!({
                "hour": format_instant(hour),
                "writes": written,
                "requests": audited.map_or(0, |h| h.requests),
                "errors": audited.map_or(0, |h| h.errors),
            })
        })
        .collect();
    let body = json!({
        "tenant": ctx.tenant,
        "generated": format_instant(now),
        "resources": counts
            .iter()
            .map(|(t, n)| json!({ "type": t, "count": n }))
            .collect::<Vec<_>>(),
        "hours": hours,
        "requests": total_requests,
        "errors": total_errors,
        "errorRate": error_rate(total_requests, total_errors),
        "lastSuccessfulWrites": writers
            .iter()
            .map(|(agent, at)| json!({ "agent": agent, "at": format_instant(*at) }))
            .collect::<Vec<_>>(),
    });
    Ok((StatusCode::OK, body))
}

/// The share of failed or refused requests (0 without requests).
fn error_rate(requests: i64, errors: i64) -> f64 {
    if requests == 0 {
        return 0.0;
    }
    // Counts of one day stay far below 2^52: the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let rate = errors as f64 / requests as f64;
    rate
}

/// `GET /admin/whoami` (no tenant): the caller and the active tenants it may
/// use. With authentication off, every active tenant.
pub fn whoami(state: &AppState, caller: Option<&crate::auth::Principal>) -> AdminAnswer {
    let active = state.tenants.active();
    let body = match caller {
        None => json!({
            "authenticated": false,
            "tenants": active,
        }),
        Some(p) => json!({
            "authenticated": true,
            "subject": p.subject,
            "client_id": p.client_id,
            "groups": p.groups,
            "tenants": active
                .iter()
                .filter(|t| p.tenants.contains(t))
                .collect::<Vec<_>>(),
        }),
    };
    (StatusCode::OK, body)
}

/// `GET /admin/{tenant}/me`: the caller's groups and their union in this
/// tenant (every right with authentication off).
pub fn me_in_tenant(ctx: &TenantCtx) -> AdminAnswer {
    let body = match (ctx.caller.as_deref(), ctx.rights.as_deref()) {
        (Some(p), Some(rights)) => json!({
            "tenant": ctx.tenant,
            "subject": p.subject,
            "groups": p.groups,
            "rights": rights.to_json(),
        }),
        _ => json!({
            "tenant": ctx.tenant,
            "authenticated": false,
            "rights": { "permissions": { "*": ["create", "read", "update", "delete", "search"] },
                        "purposes": ["*"] },
        }),
    };
    (StatusCode::OK, body)
}

/// `GET /admin/{tenant}/permissions?group=a&group=b`: what a user in
/// these groups may do in this tenant (the union, as enforced).
pub async fn permissions(
    state: &AppState,
    ctx: &TenantCtx,
    groups: &[String],
) -> Result<AdminAnswer, ApiError> {
    require_purpose(ctx, &["tenant-admin"], "reading the permissions of groups")?;
    if groups.is_empty() {
        return Err(ApiError::invalid("name at least one group: ?group=name").at("group"));
    }
    let rights = state.groups.rights(state, ctx, groups).await?;
    Ok((
        StatusCode::OK,
        json!({ "tenant": ctx.tenant, "groups": groups, "rights": rights.to_json() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_is_zero_without_requests() {
        assert!(error_rate(0, 0).abs() < f64::EPSILON);
        assert!((error_rate(4, 1) - 0.25).abs() < f64::EPSILON);
    }
}
