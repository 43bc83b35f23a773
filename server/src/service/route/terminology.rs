//! The terminology operations' routes (terminology-service.html):
//! `$expand`, `$validate-code`, `$lookup`, `$subsumes`, `$translate` by GET
//! or POST at type and instance level, and `CodeSystem/$load` by POST.

use super::Route;
use crate::error::{ApiError, Category};
use fhir::{Id, ResourceType};

/// The operations of the terminology service (terminology-service.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminologyOp {
    Expand,
    ValidateCodeValueSet,
    ValidateCodeCodeSystem,
    Lookup,
    Subsumes,
    Translate,
    /// `CodeSystem/$load`: uploads (type level, POST only).
    Load,
}

impl TerminologyOp {
    /// The operation `op` on resource type `t`, if it is one.
    pub fn parse(t: ResourceType, op: &str) -> Option<TerminologyOp> {
        Some(match (t.as_str(), op) {
            ("ValueSet", "$expand") => TerminologyOp::Expand,
            ("ValueSet", "$validate-code") => TerminologyOp::ValidateCodeValueSet,
            ("CodeSystem", "$validate-code") => TerminologyOp::ValidateCodeCodeSystem,
            ("CodeSystem", "$lookup") => TerminologyOp::Lookup,
            ("CodeSystem", "$subsumes") => TerminologyOp::Subsumes,
            ("ConceptMap", "$translate") => TerminologyOp::Translate,
            ("CodeSystem", "$load") => TerminologyOp::Load,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TerminologyOp::Expand => "$expand",
            TerminologyOp::ValidateCodeValueSet | TerminologyOp::ValidateCodeCodeSystem => {
                "$validate-code"
            }
            TerminologyOp::Lookup => "$lookup",
            TerminologyOp::Subsumes => "$subsumes",
            TerminologyOp::Translate => "$translate",
            TerminologyOp::Load => "$load",
        }
    }
}

/// A terminology operation on `t` (and the instance `id`): GET or POST,
/// except `$load`, which is POST at type level only.
pub(super) fn terminology(
    method: &str,
    t: ResourceType,
    op: &str,
    id: Option<Id>,
) -> Option<Result<Route, ApiError>> {
    let top = TerminologyOp::parse(t, op)?;
    let allowed = match top {
        TerminologyOp::Load => method == "POST" && id.is_none(),
        _ => method == "GET" || method == "POST",
    };
    Some(if allowed {
        Ok(Route::Terminology(top, t, id))
    } else {
        Err(ApiError::new(
            Category::MethodNotAllowed,
            format!("{method} is not allowed for {op}"),
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    fn route(m: &str, path: &str) -> Result<Route, ApiError> {
        Route::parse(&Method::from_bytes(m.as_bytes()).unwrap(), path, false)
    }

    #[test]
    fn terminology_operations_route_at_type_and_instance_level() {
        for (m, path, op, instance) in [
            ("GET", "ValueSet/$expand", TerminologyOp::Expand, false),
            ("POST", "ValueSet/vs1/$expand", TerminologyOp::Expand, true),
            (
                "GET",
                "ValueSet/$validate-code",
                TerminologyOp::ValidateCodeValueSet,
                false,
            ),
            (
                "GET",
                "CodeSystem/cs/$validate-code",
                TerminologyOp::ValidateCodeCodeSystem,
                true,
            ),
            ("GET", "CodeSystem/$lookup", TerminologyOp::Lookup, false),
            (
                "POST",
                "CodeSystem/$subsumes",
                TerminologyOp::Subsumes,
                false,
            ),
            (
                "GET",
                "ConceptMap/m/$translate",
                TerminologyOp::Translate,
                true,
            ),
            ("POST", "CodeSystem/$load", TerminologyOp::Load, false),
        ] {
            match route(m, path).unwrap() {
                Route::Terminology(got, _, id) => {
                    assert_eq!((got, id.is_some()), (op, instance), "{m} {path}")
                }
                other => panic!("{m} {path}: {other:?}"),
            }
        }
        for (m, path) in [
            ("GET", "CodeSystem/$load"),
            ("POST", "CodeSystem/x/$load"),
            ("DELETE", "ValueSet/$expand"),
        ] {
            let e = route(m, path).unwrap_err();
            assert_eq!(e.category, Category::MethodNotAllowed, "{m} {path}");
        }
        assert_eq!(
            route("GET", "Patient/$expand").unwrap_err().category,
            Category::NotFound
        );
    }
}
