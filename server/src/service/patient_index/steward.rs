//! What data stewards do with the index, with the `mpi-review`
//! permission: `Patient/$merge` and `Patient/$unmerge` (after R5's
//! patient-operation-merge), the review queue `Patient/$mpi-review` and
//! decisions on it, `Patient/$mpi-decide`. Each runs in one transaction
//! that also writes the golden Patients and links the change implies; the
//! link log keeps who did it, and the request's audit event names both
//! Patients.

use super::link::{SetActive, apply_outcome};
use super::{actor_of, is_golden, linker, reference_param, store_error};
use crate::error::{ApiError, Category};
use crate::service::operations::Invocation;
use crate::service::{AppState, FhirRequest, FhirResponse};
use crate::store::{Access, Db, TenantCtx, begin, now, read};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use mpi::store::{Pair, ReviewDecision, ReviewItem, ReviewStatus};
use serde_json::{Value, json};
use std::collections::HashSet;
use terminology::params::{Output, Params};

/// The largest page of `$mpi-review`.
const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 20;

pub fn merge_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(merge(state, ctx, req))
}

pub fn unmerge_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(unmerge(state, ctx, req))
}

pub fn review_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(review(state, ctx, req))
}

pub fn decide_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(decide(state, ctx, req))
}

/// `$merge`: `source-patient` (or `source-patient-identifier`) into
/// `target-patient` (or `target-patient-identifier`); `preview` answers
/// what would happen and changes nothing. The source is made inactive and
/// `replaced-by` the target; the resources referring to it refer to the
/// target from now on (`repoint`), in the same transaction.
async fn merge(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let linker = linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    params.only(&[
        "source-patient",
        "source-patient-identifier",
        "target-patient",
        "target-patient-identifier",
        "result-patient",
        "preview",
    ])?;
    if params.get("result-patient").is_some() {
        return Err(ApiError::new(
            Category::Unprocessable,
            "result-patient is not supported: the target keeps its own content and the MPI \
             rebuilds the golden record",
        )
        .with_code(fhir::IssueCode::NotSupported)
        .at("result-patient"));
    }
    let preview = params.bool("preview")?.unwrap_or(false);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let source = patient_named(&tx, ctx, &params, "source-patient").await?;
    let target = patient_named(&tx, ctx, &params, "target-patient").await?;
    let outcome = mpi::store::merge(&**tx, linker, &ctx.tenant, &source, &target, &actor_of(ctx))
        .await
        .map_err(store_error)?;
    let deactivate = SetActive {
        patient_id: &source,
        active: false,
    };
    let at = now();
    apply_outcome(&tx, ctx, &outcome, &HashSet::new(), Some(deactivate), at).await?;
    let moved = super::repoint::repoint_references(&tx, ctx, &source, &target, at).await?;
    let result = current_patient(&tx, ctx, &target).await?;
    let message = if preview {
        format!(
            "preview: Patient/{source} would be merged into Patient/{target}, and {} resources \
             referring to it would refer to Patient/{target}; nothing changed",
            moved.len()
        )
    } else {
        format!(
            "Patient/{source} was merged into Patient/{target}; {} resources referring to it \
             now refer to Patient/{target}",
            moved.len()
        )
    };
    if !preview {
        tx.commit().await?;
    }
    let mut response = answer(&req, message, result, &[&source, &target])?;
    if !preview {
        for stored in &moved {
            response.touched.add_stored(stored);
        }
    }
    Ok(response)
}

/// `$unmerge`: `source-patient` leaves the record it was merged into,
/// gets a golden record of its own and is active again; the pair is
/// rejected so that matching does not merge it back.
async fn unmerge(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let linker = linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    params.only(&["source-patient", "source-patient-identifier"])?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let source = patient_named(&tx, ctx, &params, "source-patient").await?;
    let outcome = mpi::store::unmerge(&**tx, linker, &ctx.tenant, &source, &actor_of(ctx))
        .await
        .map_err(store_error)?;
    let reactivate = SetActive {
        patient_id: &source,
        active: true,
    };
    apply_outcome(&tx, ctx, &outcome, &HashSet::new(), Some(reactivate), now()).await?;
    let result = current_patient(&tx, ctx, &source).await?;
    tx.commit().await?;
    let message = format!("Patient/{source} was unmerged");
    answer(&req, message, result, &[&source])
}

/// The R5 `$merge` output: the input, an outcome and the resulting Patient.
fn answer(
    req: &FhirRequest,
    message: String,
    result: Value,
    patients: &[&str],
) -> Result<FhirResponse, ApiError> {
    let mut out = Output::default();
    if let crate::service::Body::Resource(input) = &req.body {
        out.add("input", "resource", input.clone());
    }
    out.add(
        "outcome",
        "resource",
        fhir::outcome::operation_outcome(&[fhir::Issue::information(
            fhir::IssueCode::Informational,
            message,
        )]),
    );
    out.add("result", "resource", result);
    let mut response = FhirResponse::json(StatusCode::OK, out.into_parameters());
    response
        .touched
        .patients
        .extend(patients.iter().map(|p| (*p).to_owned()));
    Ok(response)
}

/// The Patient a `…-patient` reference or `…-patient-identifier` names.
async fn patient_named(
    db: &impl Db,
    ctx: &TenantCtx,
    params: &Params,
    name: &str,
) -> Result<String, ApiError> {
    let by_identifier = format!("{name}-identifier");
    let (id, at) = match (
        reference_param(params, name)?,
        params.json(&by_identifier).ok().flatten(),
    ) {
        (Some(found), None) => found,
        (None, Some((identifier, at))) => (
            by_identifier_value(db, ctx, identifier, at).await?,
            at.to_owned(),
        ),
        (Some(_), Some(_)) => {
            return Err(
                ApiError::invalid(format!("give {name} or {by_identifier}, not both"))
                    .at(by_identifier),
            );
        }
        (None, None) => {
            return Err(ApiError::invalid(format!("{name} is required")).at(name.to_owned()));
        }
    };
    if is_golden(&id) {
        return Err(ApiError::new(
            Category::Unprocessable,
            format!("Patient/{id} is a golden record; merge its source records instead"),
        )
        .with_code(fhir::IssueCode::BusinessRule)
        .at(at));
    }
    if read::read_current(db, ctx, "Patient", &id)
        .await?
        .is_none_or(|s| s.deleted)
    {
        return Err(ApiError::not_found(format!("Patient/{id} is not known")).at(at));
    }
    Ok(id)
}

/// The one non-golden Patient carrying `identifier` (system and value).
async fn by_identifier_value(
    db: &impl Db,
    ctx: &TenantCtx,
    identifier: &Value,
    at: &str,
) -> Result<String, ApiError> {
    let system = identifier.get("system").and_then(Value::as_str);
    let value = identifier.get("value").and_then(Value::as_str);
    let (Some(system), Some(value)) = (system, value) else {
        return Err(ApiError::invalid("the identifier needs a system and a value").at(at));
    };
    let rows = db
        .query(
            "SELECT DISTINCT t.res_id FROM search_token t \
             JOIN resources r ON r.tenant = t.tenant AND r.res_type = t.res_type \
               AND r.id = t.res_id AND NOT r.deleted \
             WHERE t.tenant = $1 AND t.res_type = 'Patient' AND t.param = 'identifier' \
               AND t.code = $2 AND t.system = $3 AND t.res_id NOT LIKE 'golden-%' LIMIT 2",
            &[&ctx.tenant, &value, &system],
        )
        .await?;
    match rows.as_slice() {
        [row] => Ok(row.get(0)),
        [] => Err(
            ApiError::not_found(format!("no Patient has the identifier {system}|{value}")).at(at),
        ),
        _ => Err(ApiError::new(
            Category::Unprocessable,
            format!("several Patients have the identifier {system}|{value}"),
        )
        .with_code(fhir::IssueCode::MultipleMatches)
        .at(at)),
    }
}

async fn current_patient(db: &impl Db, ctx: &TenantCtx, id: &str) -> Result<Value, ApiError> {
    read::read_current(db, ctx, "Patient", id)
        .await?
        .and_then(|s| s.content)
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| ApiError::fault(format!("Patient/{id} vanished during the operation")))
}

/// `$mpi-review`: a page of the queue (`status`, default pending;
/// `_count`; `cursor` from the previous page's `next`), each pair with
/// its score, reason, field-by-field comparison and both Patients.
async fn review(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    params.only(&["status", "_count", "cursor"])?;
    let status = match params.text("status")? {
        None | Some(("pending", _)) => ReviewStatus::Pending,
        Some(("deferred", _)) => ReviewStatus::Deferred,
        Some(("accepted", _)) => ReviewStatus::Accepted,
        Some(("rejected", _)) => ReviewStatus::Rejected,
        Some((other, at)) => {
            return Err(ApiError::invalid(format!(
                "status must be pending, deferred, accepted or rejected, not {other:?}"
            ))
            .at(at));
        }
    };
    let limit = params
        .count("_count")?
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE);
    let cursor = match params.text("cursor")? {
        None => None,
        Some((raw, at)) => Some(pair_of(raw, at)?),
    };
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let page = mpi::store::list_review(&**tx, &ctx.tenant, status, limit, cursor.as_ref())
        .await
        .map_err(store_error)?;
    let keys: Vec<(String, String)> = page
        .items
        .iter()
        .flat_map(|i| [i.pair.a.clone(), i.pair.b.clone()])
        .map(|id| ("Patient".to_owned(), id))
        .collect();
    let stored = read::read_many(&tx, ctx, &keys).await?;
    let mut out = Output::default();
    let mut touched = crate::audit::Touched::default();
    for item in &page.items {
        let patient = |id: &str| {
            stored
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.content.as_deref())
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
        };
        out.part(
            "pair",
            pair_parts(item, patient(&item.pair.a), patient(&item.pair.b)),
        );
        touched.patients.push(item.pair.a.clone());
        touched.patients.push(item.pair.b.clone());
    }
    if let Some(next) = &page.next {
        out.add(
            "next",
            "valueString",
            json!(format!("{},{}", next.a, next.b)),
        );
    }
    let mut response = FhirResponse::json(StatusCode::OK, out.into_parameters());
    response.touched = touched;
    Ok(response)
}

fn pair_parts(item: &ReviewItem, a: Option<Value>, b: Option<Value>) -> Output {
    let mut parts = Output::default();
    let reference = |id: &str| json!({"reference": format!("Patient/{id}")});
    parts.add("a", "valueReference", reference(&item.pair.a));
    parts.add("b", "valueReference", reference(&item.pair.b));
    parts.add("score", "valueDecimal", json!(item.score));
    parts.add("reason", "valueString", json!(item.reason));
    parts.add("status", "valueCode", json!(item.status.as_str()));
    parts.add("created", "valueInstant", json!(item.created_at));
    if let (Some(by), Some(at)) = (&item.decided_by, &item.decided_at) {
        parts.add("decidedBy", "valueString", json!(by));
        parts.add("decidedAt", "valueInstant", json!(at));
    }
    for (name, golden) in [("goldenA", &item.golden_a), ("goldenB", &item.golden_b)] {
        if let Some(golden) = golden {
            parts.add(name, "valueReference", reference(golden));
        }
    }
    let fields = item
        .comparison
        .get("fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for field in fields {
        let mut f = Output::default();
        let text = |key: &str| field.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(name) = text("field") {
            f.add("name", "valueString", json!(name));
        }
        if let Some(level) = text("level") {
            f.add("level", "valueCode", json!(level));
        }
        if let Some(weight) = field.get("weight").and_then(Value::as_f64) {
            f.add(
                "weight",
                "valueDecimal",
                json!((weight * 100.0).round() / 100.0),
            );
        }
        if let Some(adjustment) = text("adjustment") {
            f.add("adjustment", "valueString", json!(adjustment));
        }
        parts.part("field", f);
    }
    for (name, patient) in [("patientA", a), ("patientB", b)] {
        if let Some(patient) = patient {
            parts.add(name, "resource", patient);
        }
    }
    parts
}

/// `a,b` (either order) as a pair.
fn pair_of(raw: &str, at: &str) -> Result<Pair, ApiError> {
    let ids: Vec<&str> = raw.split(',').map(str::trim).collect();
    match ids.as_slice() {
        [a, b] if a != b && fhir::Id::parse(a).is_some() && fhir::Id::parse(b).is_some() => {
            Ok(Pair::new(a, b))
        }
        _ => Err(ApiError::invalid(format!("{raw:?} is not a pair of Patient ids a,b")).at(at)),
    }
}

/// `$mpi-decide`: `a`, `b` (references to the pair's Patients) and
/// `decision` (`accept`, `reject` or `defer`).
async fn decide(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let linker = linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    params.only(&["a", "b", "decision"])?;
    let (a, _) =
        reference_param(&params, "a")?.ok_or_else(|| ApiError::invalid("a is required").at("a"))?;
    let (b, at_b) =
        reference_param(&params, "b")?.ok_or_else(|| ApiError::invalid("b is required").at("b"))?;
    if a == b {
        return Err(ApiError::invalid("a and b must be two different Patients").at(at_b));
    }
    let decision = match params.text("decision")? {
        Some(("accept", _)) => ReviewDecision::Accept,
        Some(("reject", _)) => ReviewDecision::Reject,
        Some(("defer", _)) => ReviewDecision::Defer,
        Some((other, at)) => {
            return Err(ApiError::invalid(format!(
                "decision must be accept, reject or defer, not {other:?}"
            ))
            .at(at));
        }
        None => return Err(ApiError::invalid("decision is required").at("decision")),
    };
    let pair = Pair::new(&a, &b);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let outcome = mpi::store::decide(&**tx, linker, &ctx.tenant, &pair, decision, &actor_of(ctx))
        .await
        .map_err(store_error)?;
    apply_outcome(&tx, ctx, &outcome, &HashSet::new(), None, now()).await?;
    tx.commit().await?;
    let mut out = Output::default();
    out.add(
        "a",
        "valueReference",
        json!({"reference": format!("Patient/{}", pair.a)}),
    );
    out.add(
        "b",
        "valueReference",
        json!({"reference": format!("Patient/{}", pair.b)}),
    );
    out.add(
        "decision",
        "valueCode",
        json!(format!("{decision:?}").to_lowercase()),
    );
    if !outcome.golden_id.is_empty() {
        out.add(
            "golden",
            "valueReference",
            json!({"reference": format!("Patient/{}", outcome.golden_id)}),
        );
    }
    let mut response = FhirResponse::json(StatusCode::OK, out.into_parameters());
    response.touched.patients.extend([pair.a, pair.b]);
    Ok(response)
}
