//! `AuditEvent` over the FHIR API, served from the audit trail: search
//! (`GET /fhir/AuditEvent?...`, newest first, keyset pages) and read
//! (`GET /fhir/AuditEvent/{id}`), for the request's tenant only. Clients
//! never write AuditEvents (the router answers 405). The service layer
//! routes AuditEvent reads and searches here; authorization
//! (`audit-read`) happens before, like for any other type.

use super::query::AuditQuery;
use crate::error::ApiError;
use crate::search::criteria::Strictness;
use crate::service::bundle_out::{Bundle, Embedded, Entry, Link, search_match};
use crate::service::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::store::{Db, Param, TenantCtx, bind, query_built};
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use fhir::outcome::operation_outcome;
use serde_json::json;

/// Whether `t` is served by this module rather than by the resource store.
pub fn serves(t: fhir::ResourceType) -> bool {
    t.as_str() == "AuditEvent"
}

const COLUMNS: &str = "seq, recorded, event::text";

/// `GET AuditEvent?...`
pub async fn search(
    db: &impl Db,
    state: &AppState,
    ctx: &TenantCtx,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let strictness = if req.strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    let mut params: Vec<Param> = vec![Box::new(ctx.tenant.clone())];
    let query = AuditQuery::parse(
        &req.params,
        strictness,
        state.max_page_size,
        &ctx.base_url,
        &mut params,
    )?;
    let mut conditions = vec!["tenant = $1".to_owned()];
    conditions.extend(query.conditions.iter().cloned());
    if let Some((recorded, seq)) = query.after {
        let recorded = DateTime::<Utc>::from_timestamp_micros(recorded)
            .ok_or_else(|| ApiError::invalid("_page is not a page cursor").at("_page"))?;
        let recorded = bind(&mut params, Box::new(recorded));
        let seq = bind(&mut params, Box::new(seq));
        conditions.push(format!("(recorded, seq) < ({recorded}, {seq})"));
    }
    let limit = bind(&mut params, Box::new(query.count as i64 + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {} ORDER BY recorded DESC, seq DESC LIMIT {limit}",
        conditions.join(" AND ")
    );
    let mut rows = if query.count == 0 {
        Vec::new()
    } else {
        query_built(db, &sql, &params).await?
    };
    let has_next = rows.len() > query.count;
    rows.truncate(query.count);

    let link = |after: Option<String>| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.echo {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("_count", &query.count.to_string());
        if let Some(after) = &after {
            pairs.append_pair("_page", after);
        }
        format!("{}/AuditEvent?{}", ctx.base_url, pairs.finish())
    };
    let mut bundle = Bundle::new("searchset");
    bundle.link.push(Link {
        relation: "self",
        url: link(
            req.params
                .iter()
                .find(|(k, _)| k == "_page")
                .map(|(_, v)| v.clone()),
        ),
    });
    if has_next {
        if let Some(last) = rows.last() {
            let recorded: DateTime<Utc> = last.get(1);
            let seq: i64 = last.get(0);
            bundle.link.push(Link {
                relation: "next",
                url: link(Some(format!("{}.{seq}", recorded.timestamp_micros()))),
            });
        }
    }
    let mut touched = super::Touched::default();
    for row in rows {
        let seq: i64 = row.get(0);
        touched.entities.push(super::EntityRef {
            reference: format!("AuditEvent/{seq}"),
            version: None,
        });
        bundle.entry.push(Entry {
            full_url: Some(format!("{}/AuditEvent/{seq}", ctx.base_url)),
            resource: Some(Embedded::checked(row.get(2))?),
            search: search_match(),
            ..Entry::default()
        });
    }
    if !query.warnings.is_empty() {
        bundle.entry.push(Entry {
            resource: Some(Embedded::tree(&operation_outcome(&query.warnings))?),
            search: Some(json!({ "mode": "outcome" })),
            ..Entry::default()
        });
    }
    let mut response = FhirResponse::json(StatusCode::OK, serde_json::Value::Null);
    response.body = ResponseBody::Text(bundle.to_text()?);
    response.touched = touched;
    Ok(response)
}

/// `GET AuditEvent/{id}`: ids are the chain's sequence numbers.
pub async fn read(db: &impl Db, ctx: &TenantCtx, id: &fhir::Id) -> Result<FhirResponse, ApiError> {
    let not_found = || ApiError::not_found(format!("AuditEvent/{id} is not known"));
    let seq: i64 = id.as_str().parse().map_err(|_| not_found())?;
    let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE tenant = $1 AND seq = $2");
    let rows = db.query(&sql, &[&ctx.tenant, &seq]).await?;
    let row = rows.first().ok_or_else(not_found)?;
    let mut response = FhirResponse::json(StatusCode::OK, serde_json::Value::Null);
    response.body = ResponseBody::Text(row.get(2));
    response.last_modified = Some(row.get(1));
    response.touched.entities.push(super::EntityRef {
        reference: format!("AuditEvent/{seq}"),
        version: None,
    });
    Ok(response)
}
