//! Terminology bindings on write (terminologies.html#binding): a code in an
//! element with a `required` binding must be in the value set, or the write
//! is refused (422, an issue naming the element, the code and the value
//! set); `extensible` and `preferred` bindings give warnings only. Value
//! sets this server cannot fully expand (all MIME types, all languages,
//! UCUM, code systems it does not hold) cannot be checked and are skipped
//! (docs/terminology.md). Membership comes from `terminology::cache`.

use crate::error::{ApiError, Category};
use crate::store::write::WriteOp;
use crate::store::{Db, TenantCtx};
use fhir::bindings::{CodedValue, Strength, coded_values};
use fhir::{Issue, IssueCode};
use serde_json::Value;
use terminology::cache::{Membership, Stamp, membership, stamp};

/// Refuses `ops` if a resource has a code outside a required binding.
pub async fn check_ops(db: &impl Db, ctx: &TenantCtx, ops: &[WriteOp]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut current: Option<Stamp> = None;
    for resource in ops.iter().filter_map(|op| op.resource.as_ref()) {
        for issue in issues_with(db, ctx, resource, &mut current).await? {
            if issue.is_error() {
                errors.push(issue);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::from_issues(Category::Unprocessable, errors))
    }
}

/// Every binding issue of `resource`: errors for required bindings,
/// warnings for extensible and preferred ones.
pub async fn issues(
    db: &impl Db,
    ctx: &TenantCtx,
    resource: &Value,
) -> Result<Vec<Issue>, ApiError> {
    issues_with(db, ctx, resource, &mut None).await
}

async fn issues_with(
    db: &impl Db,
    ctx: &TenantCtx,
    resource: &Value,
    current: &mut Option<Stamp>,
) -> Result<Vec<Issue>, ApiError> {
    let values = coded_values(resource);
    let mut out = Vec::new();
    for value in values.iter().filter(|v| !v.codes.is_empty()) {
        let stamp = match current {
            Some(s) => s.clone(),
            None => {
                let s = stamp(&db.term(), &ctx.tenant).await?;
                *current = Some(s.clone());
                s
            }
        };
        let members = membership(&db.term(), &stamp, &value.binding.value_set).await?;
        let Membership::Known(map) = members.as_ref() else {
            continue;
        };
        let in_set = value
            .codes
            .iter()
            .any(|c| match (&c.system, value.bare_code) {
                (Some(system), false) => map.contains_key(&(system.clone(), c.code.clone())),
                _ => map.keys().any(|(_, code)| *code == c.code),
            });
        if !in_set {
            out.push(issue(value));
        }
    }
    Ok(out)
}

fn issue(value: &CodedValue) -> Issue {
    let codes = value
        .codes
        .iter()
        .map(|c| match &c.system {
            Some(system) => format!("{system}#{}", c.code),
            None => format!("{:?}", c.code),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (strength, make): (&str, fn(IssueCode, String) -> Issue) = match value.binding.strength {
        Strength::Required => ("required", |c, m| Issue::error(c, m)),
        Strength::Extensible => ("extensible", |c, m| Issue::warning(c, m)),
        _ => ("preferred", |c, m| Issue::warning(c, m)),
    };
    make(
        IssueCode::CodeInvalid,
        format!(
            "the code {codes} is not in the value set {} ({strength} binding)",
            value.binding.value_set
        ),
    )
    .at(value.expression.clone())
}
